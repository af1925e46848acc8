"""Parse each ONVIF WSDL file once per process, off the event loop, and share it.

onvif-zeep-async keeps parsed WSDL documents in a module-level cache and parses in an executor,
but nothing stops several service clients that start at once (ten cameras after a restart, or a
camera's device, media and events services) from each parsing the same file: every parse holds
the GIL for a long time, so the event loop stalls for about 130 ms per camera.

``install()`` wraps the library's loader so one parse per WSDL file is in flight at any time
and every other caller awaits that one. It sits below every zeep service client the library
creates (``ONVIFService.setup``), so the device, media, events and PullPoint services of every
camera share it without doing anything themselves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
import logging
from typing import Any

import onvif.client as onvif_client

_LOGGER = logging.getLogger(__name__)

type _Loader = Callable[[str], Awaitable[Any]]

# The library's own loader, kept so install() is idempotent and the wrapper can call it.
_ORIGINAL: _Loader = onvif_client._cached_document
# One parse in flight per (event loop, WSDL path): a future belongs to the loop that made it.
_IN_FLIGHT: dict[tuple[asyncio.AbstractEventLoop, str], asyncio.Future[Any]] = {}


async def shared_document(url: str) -> Any:
    """The parsed WSDL at ``url``: from the library's cache, or parsed once, off the loop."""
    if (document := onvif_client._DOCUMENT_CACHE.get(url)) is not None:
        return document
    loop = asyncio.get_running_loop()
    key = (loop, url)
    if (pending := _IN_FLIGHT.get(key)) is None:
        _LOGGER.debug("Parsing the ONVIF WSDL %s", url)
        # The library's loader parses in the default executor and fills its own cache.
        pending = asyncio.ensure_future(_ORIGINAL(url))
        _IN_FLIGHT[key] = pending
        pending.add_done_callback(lambda _: _IN_FLIGHT.pop(key, None))
    # Shielded: one caller giving up (a timeout) must not cancel the parse the others await.
    return await asyncio.shield(pending)


def install() -> None:
    """Route every zeep service client of onvif-zeep-async through ``shared_document``."""
    onvif_client._cached_document = shared_document
