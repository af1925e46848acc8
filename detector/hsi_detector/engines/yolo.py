"""Ultralytics YOLO: one batched `predict` per batch, CUDA with fp16 when present, CPU otherwise.

`--runtime openvino|onnx` runs the same `predict` on the model exported once by ultralytics' own
exporter (cached by `exports`); `torch` runs the model as loaded.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
from pathlib import Path
import sys
import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from hsi_detector.engines.base import (
    Detection,
    EngineError,
    auto_batch_size,
    cpu_streams,
    cpu_threads,
)
from hsi_detector.engines.exports import (
    ExportKey,
    cached_export,
    file_digest,
    invalidate as invalidate_export,
)
from hsi_detector.imaging import PAD_VALUE

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


AUTO_CPU_RUNTIMES = ("openvino", "onnx", "torch")
"""What `--runtime auto` tries on CPU, fastest first (measured, see the README): the first that
exports, loads and runs a probe serves; torch always works. On CUDA auto is torch."""


def pick_runtime(requested: str, device_setting: str, cuda_available: bool) -> tuple[str, str]:
    """(runtime, device) of the first choice: the exported runtimes run on CPU here, so `--device
    auto` means cpu for them and an explicit CUDA device is refused (no onnxruntime-gpu / OpenVINO
    GPU plugin)."""
    runtimes, device = runtime_candidates(requested, device_setting, cuda_available)
    return runtimes[0], device


def runtime_candidates(
    requested: str, device_setting: str, cuda_available: bool
) -> tuple[tuple[str, ...], str]:
    """The runtimes to try in order, and the device they run on."""
    if requested == "auto":
        device = pick_device(device_setting, cuda_available)
        return (("torch",) if device.startswith("cuda") else AUTO_CPU_RUNTIMES), device
    if requested == "torch":
        return (requested,), pick_device(device_setting, cuda_available)
    if device_setting.startswith("cuda"):
        raise EngineError(f"--runtime {requested} runs on CPU; use --runtime torch for CUDA")
    return (requested,), "cpu"


def model_digest(model: Any, name: str) -> str:
    """SHA-256 of the model file; for a model built from a yaml name, of its architecture."""
    for candidate in (name, getattr(model, "ckpt_path", None)):
        if candidate and Path(candidate).is_file():
            return file_digest(Path(candidate))
    architecture = json.dumps(model.model.yaml, sort_keys=True, default=str)
    return hashlib.sha256(architecture.encode()).hexdigest()


def _offline_ultralytics() -> None:
    """Ultralytics pip-installs missing export/runtime packages when it meets them: the pinned
    requirements bring them, so a server never installs anything and never waits on the network.

    OpenVINO sends usage telemetry from `import openvino` (openvino-telemetry, opted in unless a
    consent file says no) in a child process, which on Python 3.14 also starts a forkserver that
    imports the server's `__main__` again: blocking the package makes OpenVINO use its own no-op
    stub, so nothing leaves the machine and no process is started.
    """
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_OFFLINE", "true")
    sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]


NMS_IOU = 0.7
"""Ultralytics' predict default."""
MAX_DETECTIONS = 300
MAX_WH = 7680
"""Ultralytics' per-class box offset: boxes of different classes never overlap in the NMS."""


def nms(
    prediction: npt.NDArray[np.float32],
    min_confidence: float,
    class_ids: list[int] | None,
    *,
    end2end: bool = False,
    iou: float = NMS_IOU,
    max_det: int = MAX_DETECTIONS,
) -> list[npt.NDArray[np.float32]]:
    """Ultralytics' `non_max_suppression` (best class per box, class-aware, greedy by score) in
    numpy, for the exported runtimes' numpy output: rows (x0, y0, x1, y1, confidence, class) per
    image, highest confidence first. Only the candidates over `min_confidence` are touched (a few
    dozen of the 5040 boxes of a 640x384 input), with no tensor library between runtime and answer.

    `prediction` is (batch, 4 + classes, boxes) with centre-size boxes, or with `end2end` the
    model's own (batch, boxes, 6) detections, which are only filtered.
    """
    out: list[npt.NDArray[np.float32]] = []
    wanted = None if class_ids is None else np.asarray(class_ids)
    for image in prediction:
        if end2end:
            keep = image[:, 4] > min_confidence
            if wanted is not None:
                keep &= np.isin(image[:, 5], wanted)
            out.append(np.ascontiguousarray(image[keep][:max_det], dtype=np.float32))
            continue
        scores = image[4:]
        candidates = np.flatnonzero(scores.max(axis=0) > min_confidence)
        best = scores[:, candidates].argmax(axis=0)
        confidence = scores[best, candidates]
        if wanted is not None:
            chosen = np.isin(best, wanted)
            candidates, best, confidence = candidates[chosen], best[chosen], confidence[chosen]
        cx, cy, w, h = image[:4, candidates]
        boxes = np.stack((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), axis=1)
        offsets = best.astype(np.float32) * MAX_WH  # float32, as ultralytics' tensors
        kept = _greedy(boxes + offsets[:, None], confidence, iou, max_det)
        rows = np.empty((len(kept), 6), np.float32)
        rows[:, :4], rows[:, 4], rows[:, 5] = boxes[kept], confidence[kept], best[kept]
        out.append(rows)
    return out


def _greedy(
    boxes: npt.NDArray[np.float32], scores: npt.NDArray[np.float32], iou: float, limit: int
) -> npt.NDArray[np.intp]:
    """Indices kept by greedy NMS, best score first: torchvision's `nms` (IoU over `iou` is
    suppressed, float32 throughout)."""
    order = np.argsort(-scores, kind="stable")
    x0, y0, x1, y1 = boxes.T
    areas = (x1 - x0) * (y1 - y0)
    kept: list[int] = []
    while order.size and len(kept) < limit:
        first, rest = order[0], order[1:]
        kept.append(int(first))
        width = np.minimum(x1[first], x1[rest]) - np.maximum(x0[first], x0[rest])
        height = np.minimum(y1[first], y1[rest]) - np.maximum(y0[first], y0[rest])
        inter = np.maximum(width, 0) * np.maximum(height, 0)
        order = rest[inter / (areas[first] + areas[rest] - inter) <= iou]
    return np.asarray(kept, dtype=np.intp)


def stack(batch: list[npt.NDArray[np.uint8]], stride: int) -> npt.NDArray[np.uint8]:
    """One NHWC uint8 array: a single image as a view (no copy); images of different sizes padded
    at the right and bottom (so their boxes keep their coordinates) to the largest, and every side
    to a multiple of the stride."""
    height = -(-max(image.shape[0] for image in batch) // stride) * stride
    width = -(-max(image.shape[1] for image in batch) // stride) * stride
    if len(batch) == 1 and batch[0].shape[:2] == (height, width):
        return batch[0][np.newaxis]
    out = np.full((len(batch), height, width, 3), PAD_VALUE, np.uint8)
    for index, image in enumerate(batch):
        out[index, : image.shape[0], : image.shape[1]] = image
    return out


class UltralyticsEngine:
    """A YOLO detection model; `classes` from the settings is applied inside the model's NMS.

    Ultralytics loads the model (and exports it for OpenVINO / ONNX Runtime); the forward pass is
    ours: the decoder already made the letterboxed RGB input (`imaging.letterbox`), so the engine
    hands it to the runtime as it is (OpenVINO converts uint8 NHWC to float NCHW inside the
    compiled model), then runs ultralytics' own NMS.
    """

    engine_type = "ultralytics"
    letterbox = True  # ultralytics scales the long side to imgsz

    def __init__(self, settings: Settings) -> None:
        _offline_ultralytics()
        import torch  # lazy: heavy
        from ultralytics import YOLO  # type: ignore[attr-defined]  # lazy: heavy
        from ultralytics.utils import nms

        self._torch: Any = torch
        self._nms: Any = nms.non_max_suppression
        self._yolo: Any = YOLO

        candidates, self.device = runtime_candidates(
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
        network: Any = self._model.model
        self.stride = max(int(network.stride.max()), 32)
        self._end2end = bool(getattr(network, "end2end", False))
        self._threads = cpu_threads(settings.cpu_threads) if self.device == "cpu" else 0
        # On a CPU, passes run side by side (one per batcher thread), sharing the threads.
        self.streams = cpu_streams(settings.cpu_streams, self._threads) if self._threads else 1
        self.name = Path(settings.model).name
        self.input_size = settings.imgsz
        self.runtime = candidates[0]
        self.precision = "fp16" if self._half else "fp32"
        self._forward: Any = None
        for runtime in candidates:
            self.precision = "fp16" if self._half else "fp32"
            try:
                self._forward = self._load(runtime, settings)
            except EngineError as err:
                if runtime == candidates[-1]:
                    raise
                _LOGGER.warning(
                    "%s; trying %s instead", err, candidates[candidates.index(runtime) + 1]
                )
                continue
            self.runtime = runtime
            break
        _LOGGER.info("model %s runs on %s %s (%s, %s thread(s), %d pass(es) at once)", self.name,
                     self.runtime, self.precision, self.device, self._threads or "all",
                     self.streams)  # fmt: skip

    def _load(self, runtime: str, settings: Settings) -> Any:
        if runtime == "torch":
            return self._torch_forward()
        return self._load_exported(runtime, settings)

    def _torch_forward(self) -> Any:
        torch = self._torch
        # Torch's intra-op pool on a CPU: each pass gets its share of the threads (one on 2 cores,
        # see `base.AUTO_CPU_STREAMS`). Set once: nothing here changes it later (ultralytics'
        # predictor did, at its set-up).
        if self.device == "cpu":
            torch.set_num_threads(max(1, self._threads // self.streams))
        module = self._model.model.fuse(verbose=False).to(self.device).eval()
        if self._half:
            module = module.half()
        dtype = torch.float16 if self._half else torch.float32
        # One copy of the network per inference thread: ultralytics' Detect head caches its
        # anchors for the last input shape, so two passes of different shapes must not share it.
        local = threading.local()
        spare = [module]

        def forward(batch: npt.NDArray[np.uint8]) -> Any:
            own = getattr(local, "module", None)
            if own is None:
                own = local.module = spare.pop() if spare else copy.deepcopy(module)
            with torch.inference_mode():
                tensor = torch.from_numpy(batch).to(self.device).permute(0, 3, 1, 2)
                out = own(tensor.to(dtype).div_(255))
            return out[0] if isinstance(out, (tuple, list)) else out

        forward(np.full((1, 2 * self.stride, 2 * self.stride, 3), PAD_VALUE, np.uint8))
        return forward

    def _load_exported(self, runtime: str, settings: Settings) -> Any:
        """The exported model, cached or exported now; exported afresh once if it will not run."""
        import ultralytics  # lazy: heavy (already imported above)

        calibration: list[Path] = []
        precision = "fp32"
        if runtime == "openvino" and settings.int8_calibration is not None:
            from hsi_detector.engines import int8  # lazy: only the opt-in int8 export needs it

            calibration = int8.calibration_images(settings.int8_calibration)
            if not calibration:
                raise EngineError(f"cannot run the model on {runtime} int8: no JPEG/PNG/WebP "
                                  f"image in {settings.int8_calibration}")  # fmt: skip
            precision = "int8-" + int8.calibration_digest(calibration)[:12]
        key = ExportKey(
            runtime=runtime,
            model_stem=Path(settings.model).stem,
            model_digest=model_digest(self._model, settings.model),
            imgsz=settings.imgsz,
            batch=auto_batch_size(settings.max_batch_size, self.device),
            ultralytics_version=ultralytics.__version__,
            precision=precision,
        )
        quantized = precision != "fp32"
        self._torch.set_num_threads(1)  # no torch pool beside the runtime: torch runs nothing here
        for attempt in (1, 2):
            try:
                artifact, _ = cached_export(
                    settings.export_dir, key, self._exporter(key, calibration)
                )
                forward, ran_as = open_runtime(
                    runtime, artifact, self._threads, self.streams, int8=quantized
                )
                forward(np.full((1, 2 * self.stride, 2 * self.stride, 3), PAD_VALUE, np.uint8))
            # The exporter and the runtimes wrap a dozen converters and native libraries whose
            # failures share no base class; every one means "this export cannot serve".
            except Exception as err:
                if isinstance(err, OSError) and not settings.export_dir.is_dir():
                    where = f"export folder {settings.export_dir}"
                    raise EngineError(
                        f"cannot run the model on {runtime}: {where}: {err.strerror}"
                    ) from err
                invalidate_export(settings.export_dir, key)
                if attempt == 2 or isinstance(err, ImportError):
                    raise EngineError(f"cannot run the model on {runtime}: {err}") from err
                _LOGGER.warning("the %s export does not run (%s): exporting again", runtime,
                                type(err).__name__)  # fmt: skip
                continue
            self.precision = "int8" if quantized else ran_as
            return forward
        raise AssertionError("unreachable")  # pragma: no cover

    def _exporter(self, key: ExportKey, calibration: list[Path]) -> Any:
        def export(staging: Path) -> None:
            # The exporter writes next to the model's file name (a yaml-built model: the current
            # folder): point that name into the staging folder so nothing lands elsewhere.
            self._model.model.pt_path = str(staging / "model.pt")
            # fp32 (no `quantize`); dynamic shapes: any batch up to the maximum without padding to
            # it, and any letterboxed size (a 16:9 frame runs at 640x384, not 640x640). int8:
            # the ONNX export, quantized and converted to OpenVINO by `engines.int8`.
            fmt = "onnx" if calibration else key.runtime
            exported = self._model.export(format=fmt, imgsz=key.imgsz, dynamic=True,
                                          batch=key.batch, device="cpu", verbose=False)  # fmt: skip
            if calibration:
                from hsi_detector.engines import int8  # lazy: opt-in

                out = staging / "model_int8_openvino_model"
                int8.quantize_to_openvino(Path(exported), calibration, key.imgsz, self.stride, out)

        return export

    @property
    def class_names(self) -> tuple[str, ...]:
        """Class names by class id."""
        return self._names

    @property
    def threads(self) -> int:
        """Threads of the model on a CPU, all passes together (0: not on a CPU)."""
        return self._threads

    def forward(self, batch: list[npt.NDArray[np.uint8]]) -> Any:
        """The model alone: raw predictions for letterboxed RGB inputs (no NMS)."""
        return self._forward(stack(batch, self.stride))

    def infer(
        self, batch: list[npt.NDArray[np.uint8]], min_confidence: float
    ) -> list[list[Detection]]:
        """One forward pass over the whole batch, then the NMS: ours in numpy for the exported
        runtimes' arrays, ultralytics' own for torch tensors (on the GPU where they are)."""
        raw = self.forward(batch)
        count = len(batch)
        if isinstance(raw, np.ndarray):
            found = nms(raw[:count], min_confidence, self._class_ids, end2end=self._end2end)
            rows = [image.tolist() for image in found]
        else:
            results = self._nms(
                raw,
                min_confidence,
                NMS_IOU,
                self._class_ids,
                max_det=MAX_DETECTIONS,
                end2end=self._end2end,
            )
            rows = [image[:, :6].float().cpu().tolist() for image in results[:count]]
        return [
            [
                Detection(self._names[int(c)], int(c), float(p), x0, y0, x1, y1)
                for x0, y0, x1, y1, p, c in image
            ]
            for image in rows
        ]


def open_runtime(
    runtime: str,
    artifact: Path,
    threads: int,
    streams: int = 1,
    *,
    int8: bool = False,
    precision_hint: str | None = None,
) -> tuple[Any, str]:
    """A forward function over an exported model (NHWC uint8 batch in, raw predictions out) and
    the precision the runtime computes in (OpenVINO picks bf16 on CPUs with AMX / AVX512-BF16;
    `precision_hint` "f32" or "bf16" overrides that, for comparisons).

    `threads` in all (0: every core) shared by `streams` passes that may run at once, each called
    from its own thread (the batcher's inference threads).
    """
    if runtime == "openvino":
        import openvino as ov  # type: ignore[import-untyped]  # lazy: only this runtime needs it
        from openvino.preprocess import PrePostProcessor  # type: ignore[import-untyped]

        core = ov.Core()
        xml = next(artifact.glob("*.xml"))
        model = core.read_model(model=str(xml), weights=str(xml.with_suffix(".bin")))
        # The decoder's uint8 RGB HWC canvas goes in as it is: type, layout and the /255 scale
        # are converted inside the compiled graph (fused into its first layer).
        ppp = PrePostProcessor(model)
        ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
        ppp.input().model().set_layout(ov.Layout("NCHW"))
        ppp.input().preprocess().convert_element_type(ov.Type.f32).scale(255.0)
        config: dict[str, Any] = {"NUM_STREAMS": streams}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        if int8:
            # The quantized layers run in int8 either way; the CPU plugin (2026.4) cannot compile
            # a quantized graph whose other layers it would run in bf16 (its default with AMX).
            config["INFERENCE_PRECISION_HINT"] = "f32"
        if precision_hint:
            config["INFERENCE_PRECISION_HINT"] = precision_hint
        compiled = core.compile_model(ppp.build(), "CPU", config)
        local = threading.local()  # one infer request per calling thread

        def ov_forward(batch: npt.NDArray[np.uint8]) -> Any:
            request = getattr(local, "request", None)
            if request is None:
                request = local.request = compiled.create_infer_request()
            # start + wait, not `infer`: infer copies every output into a fresh array (1.7 MB
            # for a 640x384 input) and its wait costs the calling thread ~3x the CPU; the output
            # is read in place, before this thread's next pass overwrites it.
            request.start_async([batch], share_inputs=True)
            request.wait()
            return request.get_output_tensor(0).data

        precision = compiled.get_property("INFERENCE_PRECISION_HINT").to_string()
        return ov_forward, {"f32": "fp32", "f16": "fp16"}.get(precision, precision)
    import onnxruntime  # type: ignore[import-untyped]  # lazy: only this runtime needs it

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = max(1, threads // streams) if threads else 0
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        str(artifact), options, providers=["CPUExecutionProvider"]
    )
    name = session.get_inputs()[0].name

    def onnx_forward(batch: npt.NDArray[np.uint8]) -> Any:
        tensor = np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32)
        tensor *= 1 / 255
        return session.run(None, {name: tensor})[0]

    return onnx_forward, "fp32"
