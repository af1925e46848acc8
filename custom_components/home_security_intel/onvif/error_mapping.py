"""Translate what onvif-zeep-async, zeep and aiohttp raise into this package's errors.

The library surfaces raw aiohttp, zeep and its own exceptions depending on where a call fails;
callers of the client only ever see CannotConnect, InvalidAuth, NotOnvif or OnvifError. Messages
carry the camera host and the step, never library text (which may quote URIs or camera replies).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
import logging
import re

import aiohttp
from onvif.exceptions import ONVIFAuthError, ONVIFError, ONVIFTimeoutError
from onvif.util import extract_subcodes_as_strings, is_auth_error
from zeep.exceptions import Error as ZeepError, Fault, TransportError

from .errors import CameraFault, CannotConnect, InvalidAuth, NotOnvif, OnvifError

_LOGGER = logging.getLogger(__name__)

_AUTH_STATUSES = frozenset({401, 403})
# What of a fault code may be shown: the camera chooses the text.
_UNSAFE_FAULT_CHARS = re.compile(r"[^A-Za-z0-9:._-]")


def fault_code(err: Fault) -> str:
    """The fault's most specific subcode (else its code), reduced to safe characters."""
    subcodes = extract_subcodes_as_strings(err.subcodes) if err.subcodes else []
    codes = [str(err.code or ""), *subcodes]
    # A QName reads "{namespace}local"; the local part is what cameras and the spec name.
    code = next((c for c in reversed(codes) if c), "").rpartition("}")[2]
    return _UNSAFE_FAULT_CHARS.sub("", code)[:64] or "unknown"


@asynccontextmanager
async def mapped_errors(
    host: str,
    step: str,
    timeout: float | None,  # noqa: ASYNC109 - applied with asyncio.timeout below
) -> AsyncIterator[None]:
    """Run the body within ``timeout`` seconds and re-raise failures as OnvifError subclasses."""
    try:
        async with asyncio.timeout(timeout):
            yield
    except OnvifError:
        raise
    except TimeoutError as err:
        raise CannotConnect(f"{host}: no answer within {timeout:g} s while {step}") from err
    except Fault as err:
        if is_auth_error(err):
            raise InvalidAuth(f"{host}: the camera rejected the credentials") from err
        if err.code is None and err.subcodes is None:
            # zeep's stand-in for an error status whose body holds no SOAP Fault element.
            raise NotOnvif(f"{host}: no SOAP answer while {step}") from err
        code = fault_code(err)
        raise CameraFault(
            f"{host}: the camera answered with the SOAP fault {code} while {step}",
            step=step,
            fault=code,
        ) from err
    except TransportError as err:
        if err.status_code in _AUTH_STATUSES:
            raise InvalidAuth(f"{host}: the camera rejected the credentials") from err
        raise NotOnvif(f"{host}: no ONVIF answer while {step} (HTTP {err.status_code})") from err
    except ZeepError as err:
        # XMLSyntaxError, XMLParseError and friends: it answered, but not with SOAP.
        raise NotOnvif(f"{host}: the answer while {step} is not ONVIF SOAP") from err
    except ONVIFAuthError as err:
        raise InvalidAuth(f"{host}: the camera rejected the credentials") from err
    except ONVIFTimeoutError as err:
        raise CannotConnect(f"{host}: no answer while {step}") from err
    except ONVIFError as err:
        # The library's catch-all, e.g. "device doesn't support service: media".
        _LOGGER.debug("%s: ONVIF library error while %s: %s", host, step, type(err).__name__)
        raise NotOnvif(f"{host}: the device is not a usable ONVIF camera ({step})") from err
    except aiohttp.InvalidUrlRedirectClientError as err:
        # The camera redirected to an address that is no URL: its answer is at fault.
        raise NotOnvif(f"{host}: the answer while {step} redirects to an invalid URL") from err
    except aiohttp.InvalidURL as err:
        # The address itself (e.g. host "8897") makes no URL: nothing was sent, nothing answered.
        raise CannotConnect(f"{host}: the address does not form a valid URL") from err
    except (aiohttp.ClientConnectionError, OSError) as err:
        raise CannotConnect(f"{host}: cannot connect ({type(err).__name__})") from err
    except aiohttp.ClientError as err:
        # Anything else aiohttp raises means the peer did not speak proper HTTP.
        raise NotOnvif(f"{host}: the answer while {step} is not valid HTTP") from err
    except (AttributeError, KeyError, TypeError, ValueError) as err:
        # What zeep and the library raise when a reply parses but is not ONVIF-shaped, e.g. an
        # empty document from a web server on the wrong port (Home Assistant core maps these alike).
        _LOGGER.debug("%s: malformed answer while %s: %s", host, step, type(err).__name__)
        raise NotOnvif(f"{host}: the answer while {step} is not ONVIF") from err
