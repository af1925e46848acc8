"""Ultralytics YOLO: one batched `predict` per batch, CUDA with fp16 when present, CPU otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hsi_detector.engines.base import Detection, EngineError, cpu_threads

if TYPE_CHECKING:
    import numpy.typing as npt

    from hsi_detector.config import Settings


def pick_device(requested: str, cuda_available: bool) -> str:
    """auto means the first GPU when there is one; an explicit cuda without a GPU is an error."""
    if requested == "auto":
        return "cuda:0" if cuda_available else "cpu"
    if requested.startswith("cuda") and not cuda_available:
        raise EngineError(f"--device {requested} requested but CUDA is not available")
    return "cuda:0" if requested == "cuda" else requested


def use_half(mode: str, device: str) -> bool:
    """fp16 only on CUDA (auto), or when asked for explicitly on CUDA."""
    return device.startswith("cuda") and mode in {"auto", "on"}


class UltralyticsEngine:
    """A YOLO detection model; `classes` from the settings is applied inside the model's NMS."""

    engine_type = "ultralytics"
    letterbox = True  # ultralytics scales the long side to imgsz

    def __init__(self, settings: Settings) -> None:
        import torch  # lazy: heavy
        from ultralytics import YOLO  # type: ignore[attr-defined]  # lazy: heavy

        self._torch: Any = torch

        self.device = pick_device(settings.device, torch.cuda.is_available())
        self._half = use_half(settings.half, self.device)
        try:
            self._model: Any = YOLO(settings.model, task="detect")
        except (FileNotFoundError, OSError, RuntimeError, ValueError) as err:
            raise EngineError(f"cannot load model {Path(settings.model).name}: {err}") from err
        names = self._model.names
        self._names = tuple(str(names[i]) for i in range(len(names)))
        unknown = [c for c in settings.classes if c not in self._names]
        if unknown:
            raise EngineError(f"--classes names unknown to the model: {', '.join(unknown)}")
        self._class_ids = [self._names.index(c) for c in settings.classes] or None
        self._imgsz = settings.imgsz
        # Ultralytics sets torch to cores - 1 threads when it sets up the predictor (it keeps a core
        # for training's data loader); a server wants every core on the forward pass: measured on
        # 2 cores, YOLO11n 640: 11 img/s with 1 thread, 20 with 2. Decoding takes little beside it.
        self._threads = cpu_threads(settings.cpu_threads) if self.device == "cpu" else 0
        self.name = Path(settings.model).name
        self.input_size = settings.imgsz

    @property
    def class_names(self) -> tuple[str, ...]:
        """Class names by class id."""
        return self._names

    def infer(
        self, batch: list[npt.NDArray[np.uint8]], min_confidence: float
    ) -> list[list[Detection]]:
        """One forward pass over the whole batch."""
        # Ultralytics treats numpy arrays as OpenCV BGR; ours are RGB.
        bgr = [np.ascontiguousarray(image[..., ::-1]) for image in batch]
        if self._threads and self._torch.get_num_threads() != self._threads:
            self._torch.set_num_threads(self._threads)
        results = self._model.predict(
            bgr,
            imgsz=self._imgsz,
            conf=min_confidence,
            classes=self._class_ids,
            quantize=16 if self._half else None,
            device=self.device,
            verbose=False,
        )
        out: list[list[Detection]] = []
        for result in results:
            boxes = result.boxes
            xyxy = boxes.xyxy.cpu().numpy().tolist()
            confs = boxes.conf.cpu().numpy().tolist()
            classes = boxes.cls.cpu().numpy().astype(int).tolist()
            out.append(
                [
                    Detection(self._names[c], c, float(p), box[0], box[1], box[2], box[3])
                    for box, p, c in zip(xyxy, confs, classes, strict=True)
                ]
            )
        return out
