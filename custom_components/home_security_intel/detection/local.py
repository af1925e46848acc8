"""A detector inside Home Assistant's own Python: the detector server's engines, without the server.

The pre- and post-processing is `hsi_detector`'s (engines, reduced-scale decoding): one
implementation serves the add-on and this class. Engines are not thread-safe, so the model is
loaded, and every frame decoded and run, on one worker thread this class owns; the event loop only
awaits it. The runtimes (ai_edge_litert, ultralytics/torch) are imported in that thread on first
use, never at import time: they publish no musl wheels, so on Home Assistant OS and the official
container `local_runtime_problem` says why the local model cannot run there.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
import importlib.util
import logging
import os
from pathlib import Path
import platform
import threading
import time
from typing import TYPE_CHECKING, Any, Literal, Protocol

from packaging.tags import sys_tags

from hsi_detector.config import Settings
from hsi_detector.engines import EngineError, build_engine
from hsi_detector.imaging import ImageRejectedError, decode_image

from .model import (
    DetectorError,
    DetectorInfo,
    DetectorResult,
    InvalidImage,
    LocalUnsupported,
    ModelUnavailable,
)
from .parse import detection

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from hsi_detector.engines import Engine

_LOGGER = logging.getLogger(__name__)

type LocalEngine = Literal["tflite", "ultralytics"]
RUNTIME_MODULES: dict[LocalEngine, tuple[str, ...]] = {
    "tflite": ("ai_edge_litert",),
    "ultralytics": ("ultralytics", "torch"),
}
MUSL = "musl"
MISSING = "missing"
DEFAULT_MAX_PIXELS = 40_000_000


class ExecutorRunner(Protocol):
    """How the caller runs other blocking work (Home Assistant: `hass.async_add_executor_job`)."""

    def __call__[T](self, func: Callable[..., T], /, *args: Any) -> Awaitable[T]:
        """Run `func(*args)` in the caller's executor."""


def is_musl() -> bool:
    """Whether this Python runs on musl libc (Alpine: Home Assistant OS, the official container)."""
    libc, _ = platform.libc_ver()
    if libc == "glibc":
        return False
    return any(tag.platform.startswith("musllinux") for tag in sys_tags())


def local_runtime_problem(engine: LocalEngine) -> str | None:
    """None when the engine's runtime is installed here; MUSL when it cannot be (musl libc, for
    which no inference runtime publishes wheels: use the add-on); MISSING when just not installed.

    Looks the packages up without importing them (cheap, safe on the event loop).
    """
    if all(importlib.util.find_spec(name) is not None for name in RUNTIME_MODULES[engine]):
        return None
    return MUSL if is_musl() else MISSING


def _default_threads() -> int:
    # Home Assistant shares the machine: half the cores leave it (and the cameras) room.
    return max(1, (os.cpu_count() or 2) // 2)


class LocalDetector:
    """A local model on one worker thread; one instance may serve several cameras."""

    def __init__(
        self,
        engine: LocalEngine,
        model_path: Path,
        labels_path: Path | None = None,
        executor_runner: ExecutorRunner | None = None,
        *,
        min_confidence: float = 0.3,
        imgsz: int = 640,
        cpu_threads: int | None = None,
        device: str = "cpu",
        max_pixels: int = DEFAULT_MAX_PIXELS,
        export_dir: Path | None = None,
    ) -> None:
        """Nothing is loaded yet: the model loads on the worker thread at first use.

        `executor_runner` runs the little other blocking work (joining the worker on close);
        frames never go through it: they run on the detector's own thread.
        """
        if engine not in RUNTIME_MODULES:
            raise ValueError(f"unknown local engine {engine!r}")
        self.engine_type: LocalEngine = engine
        self.model_path = model_path
        self.labels_path = labels_path
        self._runner = executor_runner
        self._min_confidence = min_confidence
        self._imgsz = imgsz
        self._threads = cpu_threads or _default_threads()
        self._device = device
        self._max_pixels = max_pixels
        # Ultralytics models are exported once (OpenVINO / ONNX where installed) next to the models,
        # not into the home folder of whoever runs Home Assistant.
        self._export_dir = export_dir or model_path.parent / "exports"
        self._engine: Engine | None = None
        self._closed = False
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hsi_local_detector")
        self._lock = threading.Lock()  # the engine is made once even if two frames race to it

    def __repr__(self) -> str:
        return f"LocalDetector({self.engine_type!r}, {self.model_path.name!r})"

    async def _run[T](self, func: Callable[..., T], *args: Any) -> T:
        """On the detector's own worker thread (model, decode, inference)."""
        if self._closed:
            raise DetectorError("the local detector is closed")
        return await asyncio.get_running_loop().run_in_executor(self._worker, func, *args)

    async def _run_elsewhere[T](self, func: Callable[..., T], *args: Any) -> T:
        """Other blocking work, in the caller's executor."""
        if self._runner is not None:
            return await self._runner(func, *args)
        return await asyncio.get_running_loop().run_in_executor(None, func, *args)

    # --- on the worker thread ---------------------------------------------------------------

    def _load(self) -> Engine:
        with self._lock:
            if self._engine is not None:
                return self._engine
            problem = local_runtime_problem(self.engine_type)
            if problem is not None:
                raise LocalUnsupported(
                    f"the {self.engine_type} runtime cannot run here ({problem}): "
                    "use the HSI Detector add-on instead"
                    if problem == MUSL
                    else f"the {self.engine_type} runtime is not installed"
                )
            architecture = self.engine_type == "ultralytics" and self.model_path.suffix in {
                ".yaml",
                ".yml",
            }  # ultralytics builds it (random weights): no file
            if not architecture and not self.model_path.is_file():
                raise ModelUnavailable(f"the model file {self.model_path.name} does not exist")
            settings = Settings(
                engine=self.engine_type,
                model=str(self.model_path),
                labels=self.labels_path,
                device=self._device,
                imgsz=self._imgsz,
                confidence=self._min_confidence,
                cpu_threads=self._threads,
                # One pass at a time: Home Assistant and its cameras share the machine.
                cpu_streams=1,
                export_dir=self._export_dir,
                warmup=False,
            )
            try:
                self._engine = build_engine(settings)
            except EngineError as err:
                raise ModelUnavailable(str(err)) from err
            except ImportError as err:
                raise LocalUnsupported(
                    f"the {self.engine_type} runtime does not load here ({type(err).__name__})"
                ) from err
            _LOGGER.debug("loaded %s model %s", self.engine_type, self.model_path.name)
            return self._engine

    def _detect_sync(self, image: bytes) -> DetectorResult:
        engine = self._load()
        start = time.perf_counter()
        try:
            decoded = decode_image(
                image, self._max_pixels, engine.input_size, letterbox=engine.letterbox
            )
        except ImageRejectedError as err:
            raise InvalidImage(str(err)) from err
        began = time.perf_counter()
        try:
            [found] = engine.infer([decoded.pixels], self._min_confidence)
        # The runtimes raise what their native code raises; any of it means "this frame failed".
        except Exception as err:
            raise DetectorError(f"inference failed ({type(err).__name__})") from err
        inference_ms = (time.perf_counter() - began) * 1000
        sx, sy = decoded.scale
        made = (
            detection(
                d.label,
                min(max(d.confidence, 0.0), 1.0),
                (d.x_min * sx, d.y_min * sy, d.x_max * sx, d.y_max * sy),
                decoded.width,
                decoded.height,
            )
            for d in found
        )
        detections = tuple(sorted((d for d in made if d), key=lambda d: -d.score))
        total_ms = (time.perf_counter() - start) * 1000
        return DetectorResult(detections, decoded.width, decoded.height, total_ms, inference_ms)

    def _info_sync(self) -> DetectorInfo:
        engine = self._load()
        return DetectorInfo(
            name=engine.name, version=engine.runtime, labels=tuple(engine.class_names)
        )

    # --- the Detector protocol, on the event loop -------------------------------------------

    async def async_detect(self, image: bytes) -> DetectorResult:
        """Detections in one frame (decoded and run on the worker thread)."""
        start = time.perf_counter()
        result = await self._run(self._detect_sync, image)
        latency_ms = (time.perf_counter() - start) * 1000
        return DetectorResult(
            result.detections, result.width, result.height, latency_ms, result.inference_ms
        )

    async def async_check(self) -> DetectorInfo:
        """Load the model (first use) and say what it is; LocalUnsupported / ModelUnavailable."""
        return await self._run(self._info_sync)

    async def async_close(self) -> None:
        """Stop the worker thread (after the frame in progress) and drop the model."""
        if self._closed:
            return
        self._closed = True
        # Joining the worker blocks until the frame in progress is done: not on the loop.
        await self._run_elsewhere(self._shutdown)

    def _shutdown(self) -> None:
        self._worker.shutdown(wait=True, cancel_futures=True)
        self._engine = None
