"""TFLite SSD MobileNet (COCO) through ai_edge_litert: uint8 input, SSD post-processing outputs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from hsi_detector.engines.base import Detection, EngineError, cpu_threads

if TYPE_CHECKING:
    import numpy.typing as npt

    from hsi_detector.config import Settings

_GAP = "???"


def read_labelmap(path: Path) -> tuple[str, ...]:
    """Class names by class id; the COCO starter labelmap starts with a '???' background line."""
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    if lines and lines[0] == _GAP:
        lines = lines[1:]
    return tuple(lines)


class TfliteEngine:
    """One interpreter; the batch is run image by image (the SSD post-processing op is batch-1)."""

    engine_type = "tflite"
    runtime = "litert"
    letterbox = False  # _prepare stretches to the input size
    stride = 0
    streams = 1  # one interpreter: one pass at a time

    def __init__(self, settings: Settings) -> None:
        from ai_edge_litert.interpreter import Interpreter  # lazy: only the tflite engine needs it

        model = Path(settings.model)
        labels = settings.labels or model.with_name("labelmap.txt")
        try:
            self._interpreter = Interpreter(
                model_path=str(model), num_threads=cpu_threads(settings.cpu_threads)
            )
            self._interpreter.allocate_tensors()
            self._labels = read_labelmap(labels)
        except (ValueError, OSError, RuntimeError) as err:
            raise EngineError(f"cannot load TFLite model {model.name}: {err}") from err
        inp = self._interpreter.get_input_details()[0]
        self._input_index = int(inp["index"])
        _, self._in_h, self._in_w, _ = (int(v) for v in inp["shape"])
        self._float_input = inp["dtype"] == np.float32
        self._outputs = [int(o["index"]) for o in self._interpreter.get_output_details()]
        self.name = model.name
        self.device = "cpu"
        self.input_size = max(self._in_h, self._in_w)
        self._wanted = frozenset(settings.classes)

    @property
    def class_names(self) -> tuple[str, ...]:
        """Class names by class id (gaps keep their '???')."""
        return self._labels

    def _prepare(self, image: npt.NDArray[np.uint8]) -> npt.NDArray[np.generic]:
        resized = Image.fromarray(image).resize((self._in_w, self._in_h), Image.Resampling.BILINEAR)
        tensor = np.asarray(resized, dtype=np.uint8)[np.newaxis]
        if self._float_input:
            return (tensor.astype(np.float32) - 127.5) / 127.5
        return tensor

    def _one(self, image: npt.NDArray[np.uint8], min_confidence: float) -> list[Detection]:
        height, width = image.shape[:2]
        self._interpreter.set_tensor(self._input_index, self._prepare(image))
        self._interpreter.invoke()
        boxes, classes, scores = (self._interpreter.get_tensor(i)[0] for i in self._outputs[:3])
        found: list[Detection] = []
        for box, cls, score in zip(boxes, classes, scores, strict=True):
            class_id = int(cls)
            if score < min_confidence or not 0 <= class_id < len(self._labels):
                continue
            label = self._labels[class_id]
            if label == _GAP or (self._wanted and label not in self._wanted):
                continue
            y0, x0, y1, x1 = (float(np.clip(v, 0.0, 1.0)) for v in box)
            box_px = (x0 * width, y0 * height, x1 * width, y1 * height)
            found.append(Detection(label, class_id, float(score), *box_px))
        return found

    def infer(
        self, batch: list[npt.NDArray[np.uint8]], min_confidence: float
    ) -> list[list[Detection]]:
        """Detections for every image of the batch."""
        return [self._one(image, min_confidence) for image in batch]
