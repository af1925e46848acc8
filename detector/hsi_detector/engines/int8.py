"""Opt-in OpenVINO int8: the model quantized once, calibrated on the user's own frames.

`--int8-calibration DIR` names a folder of JPEG/PNG/WebP images (the cameras' own snapshots suit it
best: the activations' ranges are learnt from what the model will see). Nothing is downloaded.
The export (`UltralyticsEngine`, cached like the fp32 one, keyed by the images' SHA-256 too):

1. ultralytics exports the model to ONNX (dynamic shapes);
2. ONNX Runtime's static post-training quantization calibrates it on the images, decoded and
   letterboxed exactly as the server decodes requests (QDQ format: int8 weights per channel,
   uint8 activations, min/max ranges);
3. OpenVINO converts the QDQ model to its IR, whose CPU plugin runs the quantized layers in int8.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hsi_detector.imaging import ImageRejectedError, decode_image, sniff_format

if TYPE_CHECKING:
    import numpy.typing as npt

_LOGGER = logging.getLogger("hsi_detector")
MAX_CALIBRATION_IMAGES = 300
MAX_CALIBRATION_PIXELS = 40_000_000


def calibration_images(folder: Path) -> list[Path]:
    """The images of `folder` (by their magic bytes, sorted by name, at most 300)."""
    found: list[Path] = []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        with path.open("rb") as handle:
            if sniff_format(handle.read(16)) is not None:
                found.append(path)
        if len(found) == MAX_CALIBRATION_IMAGES:
            break
    return found


def calibration_digest(images: list[Path]) -> str:
    """SHA-256 over the images' names and contents: another set quantizes (exports) again."""
    digest = hashlib.sha256()
    for path in images:
        digest.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def model_inputs(images: list[Path], imgsz: int, stride: int) -> list[npt.NDArray[np.float32]]:
    """The images as the model gets them from the server: letterboxed, NCHW, 0..1."""
    tensors: list[npt.NDArray[np.float32]] = []
    for path in images:
        try:
            decoded = decode_image(
                path.read_bytes(), MAX_CALIBRATION_PIXELS, imgsz, letterbox=True, stride=stride
            )
        except ImageRejectedError as err:
            _LOGGER.warning("calibration image %s skipped: %s", path.name, err)
            continue
        tensor = decoded.pixels.transpose(2, 0, 1)[np.newaxis].astype(np.float32)
        tensors.append(tensor / np.float32(255))
    return tensors


def quantize_to_openvino(
    onnx_model: Path, images: list[Path], imgsz: int, stride: int, out_dir: Path
) -> Path:
    """Calibrate and quantize `onnx_model`, convert it to OpenVINO IR in `out_dir`; its path."""
    from onnxruntime.quantization import (  # type: ignore[import-untyped]
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    import openvino as ov  # type: ignore[import-untyped]  # lazy: only int8 needs these

    tensors = model_inputs(images, imgsz, stride)
    if not tensors:
        raise RuntimeError("no calibration image could be decoded")
    _LOGGER.info("int8: calibrating on %d images (this takes a while)", len(tensors))

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self._left = iter(tensors)

        def get_next(self) -> dict[str, Any] | None:
            tensor = next(self._left, None)
            return None if tensor is None else {"images": tensor}

    import onnx

    graph = onnx.load(str(onnx_model)).graph
    # The box decoding (DFL) and everything after the last convolutions (sigmoid scores, box
    # maths) stay in float, as ultralytics' own NNCF int8 export keeps the head's post-processing:
    # uint8 steps would round every score under 1/255 to 0 and shift boxes by whole steps.
    keep_float = [node.name for node in graph.node if "/dfl/" in node.name]
    quantized = onnx_model.with_name(onnx_model.stem + "_int8.onnx")
    quantize_static(
        str(onnx_model),
        str(quantized),
        Reader(),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=["Conv", "MatMul"],
        nodes_to_exclude=keep_float,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
    xml = out_dir / "model.xml"
    ov.save_model(ov.convert_model(str(quantized)), str(xml))
    for leftover in (onnx_model, quantized):
        leftover.unlink(missing_ok=True)
    return xml
