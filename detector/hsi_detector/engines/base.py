"""The engine interface: one batched forward pass from RGB arrays to detections in pixels."""

from __future__ import annotations

from dataclasses import dataclass
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


class Engine(Protocol):
    """A loaded model. `infer` runs in the batcher's inference thread only."""

    name: str
    """Model name reported to clients (file name, never a full path)."""
    device: str
    """Where the model runs: "cpu", "cuda:0"..."""
    engine_type: str
    """"ultralytics" or "tflite"."""
    input_size: int
    """The square size the model looks at; decoding never goes below it."""

    @property
    def class_names(self) -> tuple[str, ...]:
        """Class names by class id."""

    def infer(
        self, batch: list[npt.NDArray[np.uint8]], min_confidence: float
    ) -> list[list[Detection]]:
        """Objects in every RGB image of the batch, in one pass, at or above min_confidence."""


def build_engine(settings: Settings) -> Engine:
    """Load the engine the settings name (imports only that engine's heavy dependencies)."""
    if settings.engine == "tflite":
        from hsi_detector.engines.tflite import TfliteEngine  # lazy: keeps torch unloaded

        return TfliteEngine(settings)
    from hsi_detector.engines.yolo import UltralyticsEngine  # lazy: torch is heavy

    return UltralyticsEngine(settings)
