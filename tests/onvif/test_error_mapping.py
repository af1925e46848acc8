"""Every library exception shape maps to one of the client's errors, without leaking its text.

These feed real exception objects of onvif-zeep-async, zeep and aiohttp into the mapper: several
(ONVIFAuthError, a bare ClientError) cannot be provoked from the simulator on demand.
"""

from __future__ import annotations

import re

import aiohttp
from lxml import etree
from onvif.exceptions import ONVIFAuthError, ONVIFError, ONVIFTimeoutError
import pytest
from zeep.exceptions import Fault, TransportError, XMLSyntaxError

from custom_components.home_security_intel.onvif import (
    CameraFault,
    CannotConnect,
    InvalidAuth,
    NotOnvif,
    OnvifError,
)
from custom_components.home_security_intel.onvif.error_mapping import mapped_errors

SECRET = "s3cr3t-in-library-text"


def _subcode(text: str) -> etree._Element:
    element = etree.Element("Value")
    element.text = text
    return element


CASES: list[tuple[BaseException, type[OnvifError]]] = [
    (TimeoutError(SECRET), CannotConnect),
    (Fault(SECRET, code="env:Sender", subcodes=[_subcode("ter:NotAuthorized")]), InvalidAuth),
    (Fault("Sender not authorized " + SECRET, code="env:Sender"), InvalidAuth),
    (
        Fault(SECRET, code="env:Receiver", subcodes=[_subcode("ter:ActionNotSupported")]),
        CameraFault,
    ),
    (Fault("Unknown fault occured"), NotOnvif),
    (TransportError(SECRET, status_code=401), InvalidAuth),
    (TransportError(SECRET, status_code=403), InvalidAuth),
    (TransportError(SECRET, status_code=404), NotOnvif),
    (XMLSyntaxError(SECRET), NotOnvif),
    (ONVIFAuthError(SECRET), InvalidAuth),
    (ONVIFTimeoutError(SECRET), CannotConnect),
    (ONVIFError(SECRET), NotOnvif),
    (aiohttp.ServerDisconnectedError(SECRET), CannotConnect),
    (ConnectionRefusedError(SECRET), CannotConnect),
    (aiohttp.ClientPayloadError(SECRET), NotOnvif),
    # The address itself makes no URL (host "8897"): nothing answered, so not "no ONVIF".
    (aiohttp.InvalidUrlClientError(SECRET), CannotConnect),
    (aiohttp.InvalidURL(SECRET), CannotConnect),
    # The camera redirected to something that is no URL: its answer is at fault.
    (aiohttp.InvalidUrlRedirectClientError(SECRET), NotOnvif),
    (AttributeError(SECRET), NotOnvif),
    (KeyError(SECRET), NotOnvif),
    (NotOnvif("passes through"), NotOnvif),
]


@pytest.mark.parametrize(("raised", "expected"), CASES, ids=lambda v: type(v).__name__)
async def test_mapping(raised: BaseException, expected: type[OnvifError]) -> None:
    with pytest.raises(OnvifError) as caught:
        async with mapped_errors("cam.lan", "testing", 5):
            raise raised

    assert type(caught.value) is expected
    assert SECRET not in str(caught.value)
    if raised is not caught.value:
        assert caught.value.__cause__ is raised
        assert "cam.lan" in str(caught.value)


async def test_unrelated_exceptions_are_not_swallowed() -> None:
    with pytest.raises(ZeroDivisionError):
        async with mapped_errors("cam.lan", "testing", 5):
            _ = 1 / 0


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (Fault("x", code="env:Receiver", subcodes=[_subcode("ter:ActionNotSupported")]), None),
        (Fault("x", code="env:Sender", subcodes=None), "env:Sender"),
        # Camera-chosen text: only the characters of a QName survive, and a bounded length.
        (Fault("x", code="env:Receiver", subcodes=[_subcode("<b>evil</b>\n" + "a" * 99)]), None),
    ],
    ids=["subcode", "code-only", "hostile"],
)
async def test_a_fault_names_its_code_and_step(fault: Fault, code: str | None) -> None:
    """A SOAP fault that is no authentication fault is a CameraFault naming step and code."""
    with pytest.raises(CameraFault) as caught:
        async with mapped_errors("cam.lan", "reading media profiles", 5):
            raise fault

    assert caught.value.step == "reading media profiles"
    if code is not None:
        assert caught.value.fault == code
    assert re.fullmatch(r"[A-Za-z0-9:._-]{1,64}", caught.value.fault)
    assert caught.value.fault != "unknown"
    assert "ter:ActionNotSupported" in str(caught.value) or caught.value.fault in str(caught.value)
