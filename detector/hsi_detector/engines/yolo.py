"""Ultralytics YOLO: one batched `predict` per batch, CUDA with fp16 when present, CPU otherwise.

`--runtime openvino|onnx` runs the same `predict` on the model exported once by ultralytics' own
exporter (cached by `exports`); `torch` runs the model as loaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hsi_detector.engines.base import Detection, EngineError, auto_batch_size, cpu_threads
from hsi_detector.engines.exports import (
    EXPORTED_RUNTIMES,
    ExportKey,
    cached_export,
    file_digest,
    invalidate as invalidate_export,
)

if TYPE_CHECKING:
    import numpy.typing as npt

    from hsi_detector.config import Settings

_LOGGER = logging.getLogger("hsi_detector")


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


AUTO_CPU_RUNTIME = "openvino"
"""What `--runtime auto` runs on CPU (measured fastest there; see the README); torch on CUDA."""


def pick_runtime(requested: str, device_setting: str, cuda_available: bool) -> tuple[str, str]:
    """(runtime, device): the exported runtimes run on CPU here, so `--device auto` means cpu for
    them and an explicit CUDA device is refused (no onnxruntime-gpu / OpenVINO GPU plugin)."""
    if requested == "auto":
        device = pick_device(device_setting, cuda_available)
        return ("torch" if device.startswith("cuda") else AUTO_CPU_RUNTIME), device
    if requested == "torch":
        return requested, pick_device(device_setting, cuda_available)
    if device_setting.startswith("cuda"):
        raise EngineError(f"--runtime {requested} runs on CPU; use --runtime torch for CUDA")
    return requested, "cpu"


def model_digest(model: Any, name: str) -> str:
    """SHA-256 of the model file; for a model built from a yaml name, of its architecture."""
    for candidate in (name, getattr(model, "ckpt_path", None)):
        if candidate and Path(candidate).is_file():
            return file_digest(Path(candidate))
    architecture = json.dumps(model.model.yaml, sort_keys=True, default=str)
    return hashlib.sha256(architecture.encode()).hexdigest()


def _offline_ultralytics() -> None:
    """Ultralytics pip-installs missing export/runtime packages when it meets them: the pinned
    requirements bring them, so a server never installs anything and never waits on the network."""
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_OFFLINE", "true")


def limit_threads(runtime: str, backend: Any, artifact: Path, threads: int) -> None:
    """Ultralytics compiles OpenVINO and opens ONNX Runtime sessions with every core and no way to
    pass a thread count, so an explicit --cpu-threads recompiles / reopens them with it."""
    if runtime == "openvino":
        import openvino as ov  # type: ignore[import-untyped]  # lazy: only this runtime needs it

        xml = next(artifact.glob("*.xml"))
        ov_model = ov.Core().read_model(model=str(xml), weights=xml.with_suffix(".bin"))
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads}
        backend.ov_compiled_model = backend.compile_model(ov_model, config=config)
    else:
        import onnxruntime  # type: ignore[import-untyped]  # lazy: only this runtime needs it

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        providers = backend.session.get_providers()
        backend.session = onnxruntime.InferenceSession(str(artifact), options, providers=providers)


class UltralyticsEngine:
    """A YOLO detection model; `classes` from the settings is applied inside the model's NMS."""

    engine_type = "ultralytics"
    letterbox = True  # ultralytics scales the long side to imgsz

    def __init__(self, settings: Settings) -> None:
        _offline_ultralytics()
        import torch  # lazy: heavy
        from ultralytics import YOLO  # type: ignore[attr-defined]  # lazy: heavy

        self._torch: Any = torch
        self._yolo: Any = YOLO

        self.runtime, self.device = pick_runtime(
            settings.runtime, settings.device, torch.cuda.is_available()
        )
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
        if self.runtime in EXPORTED_RUNTIMES:
            self._model = self._load_exported(settings)

    def _load_exported(self, settings: Settings) -> Any:
        """The exported model, cached or exported now; exported afresh once if it will not run."""
        import ultralytics  # lazy: heavy (already imported above)

        key = ExportKey(
            runtime=self.runtime,
            model_stem=Path(settings.model).stem,
            model_digest=model_digest(self._model, settings.model),
            imgsz=settings.imgsz,
            batch=auto_batch_size(settings.max_batch_size, self.device),
            ultralytics_version=ultralytics.__version__,
        )
        for attempt in (1, 2):
            try:
                artifact, _ = cached_export(settings.export_dir, key, self._exporter(key))
                exported = self._yolo(str(artifact), task="detect")
                self._probe(exported)
            # The exporter and the runtimes wrap a dozen converters and native libraries whose
            # failures share no base class; every one means "this export cannot serve".
            except Exception as err:
                invalidate_export(settings.export_dir, key)
                if attempt == 2:
                    raise EngineError(f"cannot run the model on {self.runtime}: {err}") from err
                _LOGGER.warning("the %s export does not run (%s): exporting again", self.runtime,
                                type(err).__name__)  # fmt: skip
                continue
            if settings.cpu_threads > 0:
                limit_threads(self.runtime, exported.predictor.model.backend, artifact,
                              settings.cpu_threads)  # fmt: skip
            return exported
        raise AssertionError("unreachable")  # pragma: no cover

    def _exporter(self, key: ExportKey) -> Any:
        def export(staging: Path) -> None:
            # The exporter writes next to the model's file name (a yaml-built model: the current
            # folder): point that name into the staging folder so nothing lands elsewhere.
            self._model.model.pt_path = str(staging / "model.pt")
            # fp32 (no `quantize`); dynamic shapes: any batch up to the maximum without padding to
            # it, and ultralytics' minimal letterbox (a 16:9 frame runs at 640x384, not 640x640).
            self._model.export(format=key.runtime, imgsz=key.imgsz, dynamic=True,
                               batch=key.batch, device="cpu", verbose=False)  # fmt: skip

        return export

    def _probe(self, model: Any) -> None:
        """One tiny forward pass: sets the predictor up and proves the export loads and runs."""
        blank = np.zeros((64, 64, 3), dtype=np.uint8)
        model.predict([blank], imgsz=self._imgsz, device="cpu", verbose=False)

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
