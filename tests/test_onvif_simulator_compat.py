"""The simulator's firmware behaviours (issue 10's compatibility list), seen on the wire.

Raw HTTP requests, so what each switch sends is pinned down independently of the client that
tests/onvif/test_compat.py drives against it.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.support.onvif_sim import OnvifSimulator

CLOCK = (
    '<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope">'
    '<s:Body><GetSystemDateAndTime xmlns="http://www.onvif.org/ver10/device/wsdl"/>'
    "</s:Body></s:Envelope>"
)
INTERFACES = CLOCK.replace("GetSystemDateAndTime", "GetNetworkInterfaces")


async def _post(
    sim: OnvifSimulator, body: str, *, auth: aiohttp.DigestAuthMiddleware | None = None
) -> tuple[int, dict[str, str], str]:
    middlewares = (auth,) if auth is not None else ()
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{sim.url}/onvif/device_service",
            data=body,
            headers={"Content-Type": "application/soap+xml"},
            middlewares=middlewares,
        ) as response,
    ):
        return response.status, dict(response.headers), await response.text()


async def test_auth_failure_as_http_401_with_an_empty_body(onvif_sim: OnvifSimulator) -> None:
    onvif_sim.preauth_operations.discard("GetSystemDateAndTime")
    onvif_sim.auth_fault_empty = True

    status, _, body = await _post(onvif_sim, CLOCK)

    assert (status, body) == (401, "")


async def test_clock_behind_http_digest(onvif_sim: OnvifSimulator) -> None:
    onvif_sim.http_digest_operations.add("GetSystemDateAndTime")

    status, headers, body = await _post(onvif_sim, CLOCK)
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Digest ")
    assert body == ""

    config = onvif_sim.config
    digest = aiohttp.DigestAuthMiddleware(config.username, config.password)
    status, _, body = await _post(onvif_sim, CLOCK, auth=digest)
    assert status == 200
    assert "UTCDateTime" in body

    wrong = aiohttp.DigestAuthMiddleware(config.username, "wrong")
    status, _, _ = await _post(onvif_sim, CLOCK, auth=wrong)
    assert status == 401


async def test_soap_fault_switch(onvif_sim: OnvifSimulator) -> None:
    onvif_sim.soap_faults["GetSystemDateAndTime"] = "ter:ActionNotSupported"

    status, _, body = await _post(onvif_sim, CLOCK)

    assert status == 500
    assert "ter:ActionNotSupported" in body
    assert "env:Receiver" in body


@pytest.mark.parametrize(
    ("failure", "status", "marker"),
    [("500", 500, "<html>"), ("empty", 200, "")],
)
async def test_http_failures(
    onvif_sim: OnvifSimulator, failure: str, status: int, marker: str
) -> None:
    onvif_sim.http_failures["GetSystemDateAndTime"] = failure  # type: ignore[assignment]

    answer = await _post(onvif_sim, CLOCK)

    assert answer[0] == status
    assert answer[2].startswith(marker) if marker else answer[2] == ""


async def test_http_failure_timeout_hangs_until_stopped(onvif_sim: OnvifSimulator) -> None:
    onvif_sim.http_failures["GetSystemDateAndTime"] = "timeout"
    onvif_sim.hang_seconds = 60.0
    request = asyncio.ensure_future(_post(onvif_sim, CLOCK))
    await asyncio.sleep(0.2)
    assert not request.done()
    await onvif_sim.stop()  # wakes the hang, as for long polls: no answer worth the name
    try:
        status = (await request)[0]
    except aiohttp.ClientError:
        status = None
    assert status in (503, None)


async def test_reported_addresses(onvif_sim: OnvifSimulator) -> None:
    onvif_sim.preauth_operations.add("GetNetworkInterfaces")
    onvif_sim.reported_addresses = ["192.168.1.64", "10.0.0.5", "fd00::5"]

    _, _, body = await _post(onvif_sim, INTERFACES)

    assert body.count("<tt:Manual>") == 2  # IPv4 only
    assert "192.168.1.64" in body
    assert "10.0.0.5" in body
    assert onvif_sim.host not in body
