"""LocalDetector with the real TFLite runtime and the server's own engine code."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
import threading
from typing import Any

import aiohttp
import pytest

from custom_components.home_security_intel.detection import local
from custom_components.home_security_intel.detection.local import (
    LocalDetector,
    is_musl,
    local_runtime_problem,
)
from custom_components.home_security_intel.detection.model import (
    Box,
    DetectorError,
    InvalidImage,
    LocalUnsupported,
    ModelUnavailable,
)
from custom_components.home_security_intel.detection.remote import RemoteDetector

from .support import BUS, LOCAL_MODEL, DetectorServer, jpeg, needs_detector_venv

pytestmark = pytest.mark.skipif(LOCAL_MODEL is None, reason="fhempy is not installed in .venv")


@pytest.fixture
async def detector() -> Any:
    assert LOCAL_MODEL is not None
    made = LocalDetector("tflite", LOCAL_MODEL, None, min_confidence=0.3)
    yield made
    await made.async_close()


async def test_runtime_is_found_here() -> None:
    assert local_runtime_problem("tflite") is None
    # ultralytics and torch stay out of the integration's test environment (see README).
    assert local_runtime_problem("ultralytics") == "missing"
    assert not is_musl()


def test_musl_is_recognised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("platform.libc_ver", lambda: ("", ""))
    # Off glibc the wheel tags decide; this machine's are manylinux.
    assert not is_musl()
    monkeypatch.setattr(local, "is_musl", lambda: True)
    assert local_runtime_problem("ultralytics") == "musl"


async def test_bus_and_check(detector: LocalDetector) -> None:
    info = await detector.async_check()
    assert info.name == "detect.tflite"
    assert info.version == "litert"
    assert "person" in info.labels
    result = await detector.async_detect(BUS)
    assert (result.width, result.height) == (810, 1080)
    labels = [d.label for d in result.detections]
    assert labels.count("person") >= 3
    assert "bus" in labels
    assert result.inference_ms is not None
    assert result.latency_ms >= result.inference_ms
    scores = [d.score for d in result.detections]
    assert scores == sorted(scores, reverse=True)


@needs_detector_venv
async def test_same_detections_as_the_server(
    detector: LocalDetector, open_server: DetectorServer
) -> None:
    async with aiohttp.ClientSession() as session:
        served = await RemoteDetector(session, open_server.url, "hsi").async_detect(BUS)
    mine = await detector.async_detect(BUS)
    assert [d.label for d in mine.detections] == [d.label for d in served.detections]
    # Same code, but the two environments carry different Pillow builds (Home Assistant pins its
    # own): JPEG decoding and resizing differ in the last bits, the quantised model by a step. So
    # each local detection is matched to the server's by label and overlap, not by position.
    for mine_one in mine.detections:
        best = max(
            (d for d in served.detections if d.label == mine_one.label),
            key=lambda d: _iou(d.box, mine_one.box),
        )
        assert _iou(best.box, mine_one.box) > 0.9
        assert abs(best.score - mine_one.score) < 0.02


def _iou(a: Box, b: Box) -> float:
    w = max(0.0, min(a.x_max, b.x_max) - max(a.x_min, b.x_min))
    h = max(0.0, min(a.y_max, b.y_max) - max(a.y_min, b.y_min))
    return w * h / (a.area + b.area - w * h)


async def test_frames_run_on_one_worker_thread(detector: LocalDetector) -> None:
    names: list[str] = []
    original = detector._detect_sync

    def spy(image: bytes) -> Any:
        names.append(threading.current_thread().name)
        return original(image)

    detector._detect_sync = spy  # type: ignore[method-assign]
    frames = [jpeg(320, 240, (i * 20, 0, 0)) for i in range(6)]
    await asyncio.gather(*(detector.async_detect(frame) for frame in frames))
    assert len(set(names)) == 1
    assert names[0].startswith("hsi_local_detector")
    assert names[0] != threading.main_thread().name


async def test_bad_frames_are_invalid_image(detector: LocalDetector) -> None:
    with pytest.raises(InvalidImage):
        await detector.async_detect(b"definitely not a jpeg")
    with pytest.raises(InvalidImage):
        await detector.async_detect(BUS[:300])


async def test_missing_and_broken_models(tmp_path: Path) -> None:
    missing = LocalDetector("tflite", tmp_path / "none.tflite", None)
    with pytest.raises(ModelUnavailable, match=r"none\.tflite"):
        await missing.async_check()
    await missing.async_close()
    broken_file = tmp_path / "broken.tflite"
    broken_file.write_bytes(b"\x00" * 1000)
    broken = LocalDetector("tflite", broken_file, tmp_path / "labels.txt")
    with pytest.raises(ModelUnavailable):
        await broken.async_detect(BUS)
    await broken.async_close()


async def test_ultralytics_without_its_runtime(tmp_path: Path) -> None:
    model = tmp_path / "yolo11n.pt"
    model.write_bytes(b"x")
    detector = LocalDetector("ultralytics", model, None)
    with pytest.raises(LocalUnsupported, match="not installed"):
        await detector.async_check()
    await detector.async_close()


async def test_closed_detector_refuses_work_and_uses_the_runner() -> None:
    assert LOCAL_MODEL is not None
    ran: list[Callable[..., Any]] = []

    async def runner(func: Callable[..., Any], *args: Any) -> Any:
        ran.append(func)
        return await asyncio.get_running_loop().run_in_executor(None, func, *args)

    detector = LocalDetector("tflite", LOCAL_MODEL, None, runner)
    await detector.async_check()
    await detector.async_close()
    await detector.async_close()  # twice is fine
    assert len(ran) == 1
    with pytest.raises(DetectorError, match="closed"):
        await detector.async_detect(BUS)
    with pytest.raises(ValueError, match="unknown local engine"):
        LocalDetector("onnx", LOCAL_MODEL, None)  # type: ignore[arg-type]
    assert "detect.tflite" in repr(detector)
