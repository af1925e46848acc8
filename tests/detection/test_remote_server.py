"""RemoteDetector against the real detector server process: three dialects, keys, TLS pinning."""

from __future__ import annotations

import logging
import traceback

import aiohttp
import pytest

from custom_components.home_security_intel.detection.model import (
    CannotConnect,
    DetectorResult,
    FingerprintMismatch,
    InvalidImage,
    InvalidKey,
)
from custom_components.home_security_intel.detection.parse import Dialect
from custom_components.home_security_intel.detection.remote import RemoteDetector

from .support import API_KEY, BUS, DetectorServer, free_port, needs_detector_venv

pytestmark = needs_detector_venv
DIALECTS: tuple[Dialect, ...] = ("hsi", "deepstack", "rtdetr")


def _summary(result: DetectorResult) -> list[tuple[str, float]]:
    return sorted((d.label, round(d.score, 2)) for d in result.detections)


def assert_bus_scene(result: DetectorResult) -> None:
    """bus.jpg (810x1080): a bus and several people, boxes inside the frame."""
    assert (result.width, result.height) == (810, 1080)
    labels = [d.label for d in result.detections]
    assert labels.count("person") >= 3
    assert "bus" in labels
    for found in result.detections:
        assert 0.3 <= found.score <= 1.0
        assert 0 <= found.box.x_min < found.box.x_max <= 1
        assert 0 <= found.box.y_min < found.box.y_max <= 1
    assert result.latency_ms > 0


@pytest.mark.parametrize("api", DIALECTS)
async def test_bus_through_every_dialect_with_a_key(
    session: aiohttp.ClientSession, keyed_server: DetectorServer, api: Dialect
) -> None:
    detector = RemoteDetector(session, keyed_server.url, api, api_key=API_KEY)
    result = await detector.async_detect(BUS)
    assert_bus_scene(result)
    await detector.async_close()
    assert not session.closed  # the shared session is not the detector's to close


async def test_dialects_agree(session: aiohttp.ClientSession, keyed_server: DetectorServer) -> None:
    results = [
        await RemoteDetector(session, keyed_server.url, api, api_key=API_KEY).async_detect(BUS)
        for api in DIALECTS
    ]
    assert _summary(results[0]) == _summary(results[1]) == _summary(results[2])
    native, deepstack = results[0].detections, results[1].detections
    for a, b in zip(native, deepstack, strict=True):
        # DeepStack rounds boxes to whole pixels.
        assert abs(a.box.x_min - b.box.x_min) < 0.002
        assert abs(a.box.y_max - b.box.y_max) < 0.002


@pytest.mark.parametrize("api", DIALECTS)
async def test_wrong_and_missing_keys_are_invalid_key(
    session: aiohttp.ClientSession,
    keyed_server: DetectorServer,
    api: Dialect,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "Xq7Wm2Xc9Vb4Nt6Rk8Hs3Jd5Lf1Gp0Yb"
    for key in (wrong, None):
        detector = RemoteDetector(session, keyed_server.url, api, api_key=key)
        with pytest.raises(InvalidKey) as err:
            await detector.async_detect(BUS)
        text = "".join(traceback.format_exception(err.value)) + repr(detector)
        assert wrong not in text
        assert API_KEY not in text
    assert wrong not in caplog.text
    assert API_KEY not in caplog.text


async def test_check_reports_the_model(
    session: aiohttp.ClientSession, keyed_server: DetectorServer
) -> None:
    info = await RemoteDetector(session, keyed_server.url, "hsi", api_key=API_KEY).async_check()
    assert info.name == "detect.tflite"
    assert info.version == "0.2.0"
    assert info.queue_depth == 0
    rtdetr = RemoteDetector(session, keyed_server.url, "rtdetr", api_key=API_KEY)
    assert (await rtdetr.async_check()).name == "detect.tflite"
    deepstack = RemoteDetector(session, keyed_server.url, "deepstack", api_key=API_KEY)
    assert (await deepstack.async_check()).name == "DeepStack / CodeProject.AI"
    stats = await RemoteDetector(session, keyed_server.url, "hsi", api_key=API_KEY).async_stats()
    assert stats is not None
    assert stats.queue_depth == 0
    assert await deepstack.async_stats() is None


async def test_check_with_a_wrong_key_fails(
    session: aiohttp.ClientSession, keyed_server: DetectorServer
) -> None:
    with pytest.raises(InvalidKey):
        await RemoteDetector(session, keyed_server.url, "hsi", api_key="nope" * 8).async_check()


async def test_the_server_refuses_a_broken_frame(
    session: aiohttp.ClientSession, keyed_server: DetectorServer
) -> None:
    detector = RemoteDetector(session, keyed_server.url, "hsi", api_key=API_KEY)
    with pytest.raises(InvalidImage):
        await detector.async_detect(BUS[:200])
    with pytest.raises(InvalidImage):
        await detector.async_detect(b"not an image at all")
    # DeepStack needs the size from the frame: refused before anything is sent.
    deepstack = RemoteDetector(session, keyed_server.url, "deepstack", api_key=API_KEY)
    with pytest.raises(InvalidImage):
        await deepstack.async_detect(b"not an image at all")


@pytest.mark.parametrize("api", DIALECTS)
async def test_without_a_key(
    session: aiohttp.ClientSession, open_server: DetectorServer, api: Dialect
) -> None:
    detector = RemoteDetector(session, open_server.url, api)
    assert_bus_scene(await detector.async_detect(BUS))
    info = await detector.async_check()
    assert info.name in {"detect.tflite", "DeepStack / CodeProject.AI"}


async def test_tls_with_the_pinned_fingerprint(
    session: aiohttp.ClientSession, tls_server: DetectorServer
) -> None:
    pin = tls_server.fingerprint
    for api in DIALECTS:
        detector = RemoteDetector(session, tls_server.url, api, api_key=API_KEY, fingerprint=pin)
        assert_bus_scene(await detector.async_detect(BUS))
    # As the user pastes it from the log: upper case with colons.
    printed = ":".join(pin[i : i + 2] for i in range(0, 64, 2)).upper()
    detector = RemoteDetector(session, tls_server.url, "hsi", api_key=API_KEY, fingerprint=printed)
    assert (await detector.async_check()).version == "0.2.0"


async def test_tls_with_a_wrong_fingerprint(
    session: aiohttp.ClientSession, tls_server: DetectorServer
) -> None:
    detector = RemoteDetector(session, tls_server.url, "hsi", api_key=API_KEY, fingerprint="0" * 64)
    with pytest.raises(FingerprintMismatch) as err:
        await detector.async_detect(BUS)
    assert "pinned" in str(err.value)
    assert API_KEY not in "".join(traceback.format_exception(err.value))


async def test_tls_self_signed_without_a_pin_is_refused(
    session: aiohttp.ClientSession, tls_server: DetectorServer
) -> None:
    detector = RemoteDetector(session, tls_server.url, "hsi", api_key=API_KEY)
    with pytest.raises(FingerprintMismatch) as err:
        await detector.async_check()
    assert "pin the SHA-256 fingerprint" in str(err.value)


async def test_https_to_a_plain_http_server(
    session: aiohttp.ClientSession, open_server: DetectorServer
) -> None:
    url = open_server.url.replace("http://", "https://")
    with pytest.raises(CannotConnect):
        await RemoteDetector(session, url, "hsi", fingerprint="0" * 64).async_detect(BUS)


async def test_nothing_listening(session: aiohttp.ClientSession) -> None:
    detector = RemoteDetector(session, f"http://127.0.0.1:{free_port()}", "hsi")
    with pytest.raises(CannotConnect):
        await detector.async_detect(BUS)
