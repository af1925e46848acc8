"""OpenVINO int8 beside bf16 and fp32: speed of the model alone, and how closely int8 follows fp32.

All three run the same weights through our server's own engine (``--runtime openvino``, the server's
threads and passes at once): fp32 (OpenVINO forced to f32), OpenVINO's default on this CPU (bf16
where the CPU has AMX / AVX512-BF16, else f32), and int8 calibrated on ``--calibration``. The raw
outputs (boxes and class scores of every anchor, before NMS) are compared with fp32's on the frames
of ``--frames`` (default: ultralytics' bus.jpg and zidane.jpg, images the calibration did not see).

    PYTHONPATH=detector .venv-detector/bin/python benchmarks/int8_check.py --calibration DIR

A model built from a yaml has random weights: they are drawn once (seeded) and saved as a .pt in
the work folder, so every variant runs the same ones. Random weights say whether the quantized
model computes the same function as the float one to within int8's noise; they cannot say how
many detections a trained model gains or loses (that needs real weights and labelled data:
``yolo val``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
import functools
from pathlib import Path
import re
import sys
import tempfile
from typing import Any

from model_time import _per_image
import numpy as np

from hsi_detector.config import parse_settings
from hsi_detector.engines.base import build_engine
from hsi_detector.engines.exports import valid_entry
from hsi_detector.engines.yolo import open_runtime, stack
from hsi_detector.imaging import decode_image

TOP = 100  # anchors compared closely: fp32's most confident ones


@dataclass(frozen=True, slots=True)
class Agreement:
    """How one variant's raw outputs differ from fp32's, over all frames."""

    score_mae: float
    score_max: float
    logit_corr: float
    """Pearson correlation of the class logits (random weights score everything near 0: the
    logits, not the squashed scores, show whether the two rank the anchors alike)."""
    box_mae_px: float
    top_overlap: float
    class_agree: float


def fixed_model(model: str, folder: Path, frames: list[Any], seed: int = 0) -> str:
    """A .pt holding the model's weights: a yaml model's random ones drawn once with `seed`.

    Freshly initialised batch norms (mean 0, variance 1) let the activations of a random YOLO
    shrink layer after layer (P5 reaches ~1e-9 on these frames), which no trained model does and
    which int8 cannot represent. Their statistics are therefore set from the frames first (one
    pass in training mode, cumulative averages), so every layer works at unit scale, as in a
    trained network; the weights stay random.
    """
    if not model.endswith((".yaml", ".yml")):
        return model
    import torch
    from ultralytics import YOLO  # type: ignore[attr-defined]

    torch.manual_seed(seed)
    yolo = YOLO(model)
    network: Any = yolo.model
    norms = [m for m in network.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    network.train()
    with torch.no_grad():
        for image in frames:
            network(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255)
    network.eval()
    path = folder / (Path(model).stem + f"-seed{seed}.pt")
    yolo.save(path)
    return str(path)


def _logit(scores: Any) -> Any:
    clipped = np.clip(scores.astype(np.float64), 1e-7, 1 - 1e-7)
    return np.log(clipped / (1 - clipped))


def compare(reference: list[Any], other: list[Any]) -> Agreement:
    """Scores (0..1), boxes (pixels of the model input) and the top anchors against fp32."""
    score_err: list[float] = []
    score_max = 0.0
    corr: list[float] = []
    box_err: list[float] = []
    overlap: list[float] = []
    agree: list[float] = []
    for ref, out in zip(reference, other, strict=True):
        ref_scores, out_scores = ref[0, 4:], out[0, 4:]
        diff = np.abs(ref_scores - out_scores)
        score_err.append(float(diff.mean()))
        score_max = max(score_max, float(diff.max()))
        corr.append(
            float(np.corrcoef(_logit(ref_scores).ravel(), _logit(out_scores).ravel())[0, 1])
        )
        top = np.argsort(ref_scores.max(axis=0))[-TOP:]
        top_other = np.argsort(out_scores.max(axis=0))[-TOP:]
        box_err.append(float(np.abs(ref[0, :4, top] - out[0, :4, top]).mean()))
        overlap.append(len(set(top.tolist()) & set(top_other.tolist())) / TOP)
        same = ref_scores[:, top].argmax(axis=0) == out_scores[:, top].argmax(axis=0)
        agree.append(float(same.mean()))
    return Agreement(
        float(np.mean(score_err)),
        score_max,
        float(np.mean(corr)),
        float(np.mean(box_err)),
        float(np.mean(overlap)),
        float(np.mean(agree)),
    )


def _head_inputs(model: Any) -> list[Any]:
    """The feature maps the detection head reads (P3, P4, P5 for YOLO11), in branch order: what
    the backbone and neck computed from the frame. Found by the head's first box convolutions,
    named `model.N.cv2.I.0.conv` (from torch) or `/model.N/cv2.I/cv2.I.0/conv` (from ONNX)."""
    pattern = re.compile(r"model\.\d+[./]cv2\.(\d+)[./](?:cv2\.\d+\.)?0[./]conv")
    found: dict[int, Any] = {}
    for op in model.get_ordered_ops():
        match = pattern.search(op.get_friendly_name())
        if op.get_type_name() == "Convolution" and match:
            source = op.input(0).get_source_output()
            while source.get_node().get_type_name() == "FakeQuantize":  # int8: its float input
                source = source.get_node().input(0).get_source_output()
            found.setdefault(int(match.group(1)), source)
    return [found[index] for index in sorted(found)]


def features(xml: Path, inputs: list[Any], hint: str) -> list[list[Any]]:
    """The head's input feature maps for every input (NHWC uint8), OpenVINO with `hint`."""
    import openvino as ov  # type: ignore[import-untyped, unused-ignore]

    core = ov.Core()
    model = core.read_model(str(xml))
    wanted = _head_inputs(model)
    first = len(model.outputs)
    model.add_outputs(wanted)
    compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": hint})
    request = compiled.create_infer_request()
    out: list[list[Any]] = []
    for image in inputs:
        tensor = image.transpose(2, 0, 1)[np.newaxis].astype(np.float32) / np.float32(255)
        request.infer([tensor])
        out.append(
            [np.array(request.get_output_tensor(first + i).data) for i in range(len(wanted))]
        )
    return out


def feature_agreement(reference: list[list[Any]], other: list[list[Any]]) -> tuple[float, float]:
    """Relative error (|other - ref| / |ref|) and cosine similarity, the worst map and frame."""
    errors, cosines = [], []
    for ref_maps, maps in zip(reference, other, strict=True):
        for ref, out in zip(ref_maps, maps, strict=True):
            a, b = ref.ravel().astype(np.float64), out.ravel().astype(np.float64)
            errors.append(float(np.linalg.norm(b - a) / np.linalg.norm(a)))
            cosines.append(float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))))
    return max(errors), min(cosines)


def _frames(folder: Path | None) -> list[bytes]:
    if folder is not None:
        return [
            p.read_bytes()
            for p in sorted(folder.iterdir())
            if p.suffix.lower() in {".jpg", ".jpeg", ".png"}
        ]
    import ultralytics

    assets = Path(ultralytics.__file__).resolve().parent / "assets"
    return [(assets / name).read_bytes() for name in ("bus.jpg", "zidane.jpg")]


def run(args: argparse.Namespace, work: Path) -> str:
    """Build the three variants, time them, compare them; a markdown report."""
    calibration = [
        decode_image(p.read_bytes(), 40_000_000, args.imgsz, letterbox=True, stride=32).pixels
        for p in sorted(args.calibration.iterdir())
        if p.suffix.lower() in {".jpg", ".jpeg", ".png"}
    ]
    model = fixed_model(args.model, work, calibration)
    exports = args.export_dir or work / "exports"
    flags = ["--model", model, "--runtime", "openvino", "--export-dir", str(exports)]
    flags += ["--imgsz", str(args.imgsz), "--device", "cpu"]
    settings = parse_settings(flags, env={})
    # The ultralytics engine: forward, precision and threads are beyond the Engine protocol.
    default: Any = build_engine(settings)
    int8_flags = [*flags, "--int8-calibration", str(args.calibration)]
    quantized: Any = build_engine(parse_settings(int8_flags, env={}))
    entry = next(
        p for p in sorted(exports.iterdir()) if "-openvino-" in p.name and "-int8-" not in p.name
    )
    artifact = valid_entry(entry)
    assert artifact is not None
    threads, streams = default.threads, default.streams
    fp32_forward, _ = open_runtime("openvino", artifact, threads, streams, precision_hint="f32")
    variants: dict[str, Callable[[list[Any]], Any]] = {
        "fp32": lambda batch: fp32_forward(stack(batch, default.stride)),
        f"default ({default.precision})": default.forward,
        "int8": quantized.forward,
    }
    inputs = [
        decode_image(
            data, settings.max_pixels, default.input_size, letterbox=True, stride=default.stride
        ).pixels
        for data in _frames(args.frames)
    ]
    outputs = {
        name: [np.array(forward([x]), copy=True) for x in inputs]
        for name, forward in variants.items()
    }
    rows = [
        f"### OpenVINO int8 beside bf16 / fp32 ({Path(args.model).name}, imgsz {args.imgsz}, "
        f"input {inputs[0].shape[1]}x{inputs[0].shape[0]}, {streams} pass(es) at once, "
        f"{len(inputs)} frame(s))",
        "",
        "| variant | ms per image | vs fp32 | features: relative error / cosine (worst) "
        "| score error mean / max | logit correlation | box error (px, top 100) "
        "| top-100 anchors shared | same class (top 100) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    int8_entry = next(p for p in sorted(exports.iterdir()) if "-int8-" in p.name)
    int8_artifact = valid_entry(int8_entry)
    assert int8_artifact is not None
    fp32_xml, int8_xml = next(artifact.glob("*.xml")), next(int8_artifact.glob("*.xml"))
    reference = features(fp32_xml, inputs, "f32")
    feature_rows = {
        "fp32": feature_agreement(reference, reference),
        f"default ({default.precision})": feature_agreement(
            reference, features(fp32_xml, inputs, default.precision.replace("fp", "f"))
        ),
        "int8": feature_agreement(reference, features(int8_xml, inputs, "f32")),
    }
    speed: dict[str, float] = {}
    first = [inputs[0]]
    for name, forward in variants.items():
        speed[name] = _per_image(functools.partial(forward, first), streams, args.repeats, 5)
    for name in variants:
        agreement = compare(outputs["fp32"], outputs[name])
        rows.append(
            f"| {name} | {speed[name]:.1f} | {speed['fp32'] / speed[name]:.2f}x | "
            f"{feature_rows[name][0]:.4f} / {feature_rows[name][1]:.5f} | "
            f"{agreement.score_mae:.5f} / {agreement.score_max:.4f} | {agreement.logit_corr:.4f} | "
            f"{agreement.box_mae_px:.2f} | "
            f"{agreement.top_overlap:.0%} | {agreement.class_agree:.0%} |"
        )
    return "\n".join(rows)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command line of the check."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibration", type=Path, required=True, help="folder of frames")
    parser.add_argument("--frames", type=Path, default=None, help="frames to compare on")
    parser.add_argument("--model", default="yolo11n.yaml")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--export-dir", type=Path, default=None, help="default: a temporary one")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: the report on stdout."""
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        print(run(args, Path(work)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
