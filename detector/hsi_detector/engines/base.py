"""The engine interface: one batched forward pass from RGB arrays to detections in pixels."""

from __future__ import annotations

from dataclasses import dataclass
import os
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from hsi_detector.config import Settings


class EngineError(RuntimeError):
    """The model could not be loaded or a forward pass failed."""


@dataclass(frozen=True, slots=True)
class Detection:
    """One object found in one image; box in pixels of the array the engine was given."""

    label: str
    class_id: int
    confidence: float
    x_min: float
    y_min: float
    x_max: float
    y_max: float

    def scaled(self, sx: float, sy: float) -> Detection:
        """The same detection with its box scaled (the image was decoded at a reduced size)."""
        return Detection(
            self.label,
            self.class_id,
            self.confidence,
            self.x_min * sx,
            self.y_min * sy,
            self.x_max * sx,
            self.y_max * sy,
        )

    def placed(
        self, offset: tuple[int, int], scale: tuple[float, float], size: tuple[int, int]
    ) -> Detection:
        """From model-input pixels (a letterbox canvas) to the original image: remove the padding,
        scale, clip to the image (ultralytics' scale_boxes)."""
        (ox, oy), (sx, sy), (width, height) = offset, scale, size
        return Detection(
            self.label,
            self.class_id,
            self.confidence,
            min(max((self.x_min - ox) * sx, 0.0), width),
            min(max((self.y_min - oy) * sy, 0.0), height),
            min(max((self.x_max - ox) * sx, 0.0), width),
            min(max((self.y_max - oy) * sy, 0.0), height),
        )


class Engine(Protocol):
    """A loaded model. `infer` runs in the batcher's inference thread only."""

    name: str
    """Model name reported to clients (file name, never a full path)."""
    device: str
    """Where the model runs: "cpu", "cuda:0"..."""
    engine_type: str
    """"ultralytics" or "tflite"."""
    runtime: str
    """What runs the model: "torch", "openvino", "onnx" (ultralytics) or "litert" (tflite)."""
    input_size: int
    """The square size the model looks at; decoding never goes below what it needs of it."""
    letterbox: bool
    """True: the model scales the long side to input_size, keeping the aspect ratio (YOLO);
    False: it stretches the image to input_size x input_size (SSD)."""
    streams: int
    """Forward passes the engine can run at once (from as many threads): the batcher runs that
    many inference threads."""
    stride: int
    """With letterbox: > 0 means the engine takes the letterboxed model input itself (scaled and
    padded to multiples of `stride` by the decoder, `imaging.letterbox`); 0: images as decoded."""

    @property
    def class_names(self) -> tuple[str, ...]:
        """Class names by class id."""

    def infer(
        self, batch: list[npt.NDArray[np.uint8]], min_confidence: float
    ) -> list[list[Detection]]:
        """Objects in every RGB image of the batch, in one pass, at or above min_confidence."""


CPU_BATCH_SIZE = 1
"""On CPU a batch is no faster per image than single frames (measured with ultralytics: slower),
and one at a time gives the lowest latency; the gain there comes from decoding during inference."""
CUDA_BATCH_SIZE = 16
"""On a GPU one pass of 16 costs little more than a pass of one; 64 is allowed for big GPUs."""


def auto_batch_size(requested: int | None, device: str) -> int:
    """`--max-batch-size`: the number given, or for `auto` (None) the size that pays on `device`."""
    if requested is not None:
        return requested
    return CUDA_BATCH_SIZE if device.startswith("cuda") else CPU_BATCH_SIZE


def cpu_threads(requested: int) -> int:
    """`--cpu-threads`: the number given, or for 0 every core of the machine."""
    return requested if requested > 0 else max(1, os.cpu_count() or 1)


AUTO_CPU_STREAMS = 2
"""Two passes at once, each single-threaded on 2 cores: measured on this project's 2-core VM with
decoding beside the model, 2x the images/s of one pass on both cores (a pass spread over every core
waits at each layer for the thread that decoding or the event loop preempted)."""


def cpu_streams(requested: int, threads: int) -> int:
    """`--cpu-streams`: the number given (at most one per thread), or for 0 two when the model has
    two threads or more."""
    wanted = requested if requested > 0 else AUTO_CPU_STREAMS
    return max(1, min(wanted, threads))


def build_engine(settings: Settings) -> Engine:
    """Load the engine the settings name (imports only that engine's heavy dependencies)."""
    if settings.engine == "tflite":
        from hsi_detector.engines.tflite import TfliteEngine  # lazy: keeps torch unloaded

        return TfliteEngine(settings)
    from hsi_detector.engines.yolo import UltralyticsEngine  # lazy: torch is heavy

    return UltralyticsEngine(settings)
