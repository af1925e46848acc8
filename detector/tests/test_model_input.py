"""The model's input made by the decoder (ultralytics' letterbox, checked against ultralytics),
boxes mapped back, batches of mixed sizes, passes at once, the int8 calibration set."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
import threading
from typing import Any

import numpy as np
from PIL import Image
import pytest

from hsi_detector.batcher import MicroBatcher
from hsi_detector.config import ConfigError, parse_settings
from hsi_detector.engines import int8
from hsi_detector.engines.base import Detection, cpu_streams
from hsi_detector.engines.yolo import stack
from hsi_detector.imaging import PAD_VALUE, decode_image, letterbox
from tests.support import BUS, ZIDANE, encode


@pytest.mark.parametrize(
    "size", [(1920, 1080), (810, 1080), (1280, 720), (640, 480), (333, 777), (100, 60), (50, 2000)]
)
def test_decoded_input_is_ultralytics_letterbox(size: tuple[int, int]) -> None:
    from ultralytics.data.augment import LetterBox

    with Image.open(io.BytesIO(ZIDANE)) as raw:
        image = raw.convert("RGB").resize(size)
    png = encode(image, "PNG")  # lossless and never drafted: both sides see the same pixels
    decoded = decode_image(png, 40_000_000, 640, letterbox=True, stride=32)
    bgr = np.ascontiguousarray(np.asarray(image)[..., ::-1])
    boxed: Any = LetterBox((640, 640), auto=True, stride=32)(image=bgr)
    expected = boxed[..., ::-1]
    assert decoded.pixels.shape == expected.shape
    assert decoded.pixels.dtype == np.uint8
    assert decoded.pixels.shape[0] % 32 == 0
    assert decoded.pixels.shape[1] % 32 == 0
    assert np.array_equal(decoded.pixels, expected)
    assert decoded.box is not None
    left, top, width, height = decoded.box
    assert decoded.offset == (left, top)
    assert decoded.scale == (size[0] / width, size[1] / height)


def test_16_9_frame_becomes_640x384_from_a_half_scale_decode() -> None:
    with Image.open(io.BytesIO(BUS)) as raw:
        frame = encode(raw.convert("RGB").resize((1920, 1080)))
    decoded = decode_image(frame, 40_000_000, 640, letterbox=True, stride=32)
    assert decoded.pixels.shape == (384, 640, 3)
    assert decoded.box == (0, 12, 640, 360)
    assert (decoded.pixels[:12] == PAD_VALUE).all()
    assert (decoded.pixels[372:] == PAD_VALUE).all()
    assert letterbox(1920, 1080, 640, 32) == letterbox(960, 540, 640, 32)  # drafted: same input


def test_grey_16_bit_and_palette_images_are_letterboxed_in_rgb() -> None:
    grey = np.full((40, 80), 40_000, dtype=np.uint16)
    decoded = decode_image(
        encode(Image.fromarray(grey), "PNG"), 10_000, 64, letterbox=True, stride=32
    )
    assert decoded.pixels.shape == (32, 64, 3)  # 64x32 scaled, already a multiple of 32
    assert decoded.pixels[16, 32].tolist() == [40_000 >> 8] * 3
    palette = Image.new("P", (64, 20), 3)
    decoded = decode_image(encode(palette, "PNG"), 10_000, 64, letterbox=True, stride=32)
    assert decoded.pixels.shape == (32, 64, 3)  # already at size: copied, not resized, padded
    assert decoded.box == (0, 6, 64, 20)


def test_boxes_are_placed_back_and_clipped() -> None:
    found = Detection("car", 2, 0.9, 10.0, 2.0, 650.0, 372.0)
    placed = found.placed((0, 12), (3.0, 3.0), (1920, 1080))
    assert (placed.x_min, placed.y_min, placed.x_max, placed.y_max) == (30.0, 0.0, 1920, 1080)
    assert (placed.label, placed.class_id, placed.confidence) == ("car", 2, 0.9)


def test_stack_pads_mixed_sizes_and_keeps_a_single_image_as_a_view() -> None:
    one = np.zeros((384, 640, 3), np.uint8)
    assert np.shares_memory(stack([one], 32), one)
    mixed = stack([np.ones((100, 200, 3), np.uint8), np.ones((64, 320, 3), np.uint8)], 32)
    assert mixed.shape == (2, 128, 320, 3)
    assert mixed[0, :100, :200].min() == 1
    assert mixed[0, 100:].max() == PAD_VALUE
    assert (mixed[1, :64, :320] == 1).all()


def test_cpu_streams() -> None:
    assert cpu_streams(0, 2) == 2
    assert cpu_streams(0, 1) == 1
    assert cpu_streams(3, 2) == 2  # at most one per thread
    assert cpu_streams(1, 16) == 1
    assert parse_settings(["--cpu-streams", "3"], env={}).cpu_streams == 3


class SlowEngine:
    """Records how many passes run at the same time."""

    name = device = engine_type = runtime = "slow"
    input_size = 64
    letterbox = False
    stride = 0
    streams = 2

    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self.lock = threading.Lock()

    @property
    def class_names(self) -> tuple[str, ...]:
        return ("thing",)

    def infer(self, batch: list[Any], min_confidence: float) -> list[list[Detection]]:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        threading.Event().wait(0.05)
        with self.lock:
            self.running -= 1
        return [[] for _ in batch]


async def test_batcher_runs_as_many_passes_at_once_as_the_engine_has_streams() -> None:
    engine = SlowEngine()
    batcher = MicroBatcher(engine, 1, 0.0, 64, workers=engine.streams)
    batcher.start()
    try:
        image = np.zeros((8, 8, 3), np.uint8)
        await asyncio.gather(*(batcher.submit(image, 0.5) for _ in range(8)))
    finally:
        batcher.stop()
    assert engine.most == 2


def _images(folder: Path) -> None:
    folder.mkdir()
    (folder / "b.jpg").write_bytes(BUS)
    (folder / "a.png").write_bytes(encode(Image.new("RGB", (64, 48), "red"), "PNG"))
    (folder / "notes.txt").write_text("not an image", encoding="utf-8")
    (folder / "c.jpg").write_bytes(b"\xff\xd8\xff" + b"\x00" * 40)  # JPEG magic, undecodable
    (folder / "sub").mkdir()


def test_calibration_set(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    _images(folder)
    found = int8.calibration_images(folder)
    assert [p.name for p in found] == ["a.png", "b.jpg", "c.jpg"]
    digest = int8.calibration_digest(found)
    (folder / "a.png").write_bytes(encode(Image.new("RGB", (64, 48), "blue"), "PNG"))
    assert int8.calibration_digest(found) != digest  # other frames: calibrated (exported) again
    tensors = int8.model_inputs(found, 64, 32)
    assert [t.shape for t in tensors] == [(1, 3, 64, 64), (1, 3, 64, 64)]  # c.jpg skipped
    assert all(t.dtype == np.float32 and t.min() >= 0 and t.max() <= 1 for t in tensors)


def test_calibration_without_a_decodable_image_fails(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff" + b"\x00" * 40)
    with pytest.raises(RuntimeError, match="no calibration image"):
        int8.quantize_to_openvino(tmp_path / "m.onnx", [bad], 64, 32, tmp_path / "out")


def test_int8_settings_are_checked(tmp_path: Path) -> None:
    assert (
        parse_settings(["--int8-calibration", str(tmp_path)], env={}).int8_calibration == tmp_path
    )
    with pytest.raises(ConfigError, match="is not a folder"):
        parse_settings(["--int8-calibration", str(tmp_path / "missing")], env={})
    with pytest.raises(ConfigError, match="needs --runtime openvino or auto"):
        parse_settings(["--int8-calibration", str(tmp_path), "--runtime", "onnx"], env={})


def _predictions(seed: int, images: int = 2, boxes: int = 3000) -> np.ndarray:
    """Raw YOLO output (batch, 4 + 80, boxes): centre-size boxes bunched around a few objects,
    so that many overlap, and class scores mostly low with some confident ones."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(50, 590, (images, 12, 2))
    pick = rng.integers(0, 12, (images, boxes))
    xy = np.take_along_axis(centres, pick[..., None], 1) + rng.normal(0, 6, (images, boxes, 2))
    wh = rng.uniform(20, 120, (images, boxes, 2))
    scores = rng.uniform(0, 1, (images, boxes, 80)) ** 12  # few over 0.25
    raw = np.concatenate((xy, wh, scores), axis=2).transpose(0, 2, 1)
    return np.ascontiguousarray(raw, dtype=np.float32)


@pytest.mark.parametrize(
    ("seed", "confidence", "classes", "max_det"),
    [(1, 0.25, None, 300), (2, 0.5, None, 300), (3, 0.25, [0, 2, 7], 300), (4, 0.1, None, 7)],
)
def test_numpy_nms_is_ultralytics_nms(
    seed: int, confidence: float, classes: list[int] | None, max_det: int
) -> None:
    import torch
    from ultralytics.utils.nms import non_max_suppression

    from hsi_detector.engines.yolo import NMS_IOU, nms

    raw = _predictions(seed)
    ours = nms(raw, confidence, classes, max_det=max_det)
    theirs = non_max_suppression(
        torch.from_numpy(raw), confidence, NMS_IOU, classes, max_det=max_det
    )
    for mine, reference in zip(ours, theirs, strict=True):
        expected = reference[:, :6].numpy()
        assert len(expected) > 3  # the case has real work: several objects of several classes
        assert mine.shape == expected.shape
        assert np.allclose(mine, expected, atol=1e-4)  # same boxes, same order
    if classes is not None:
        assert set(np.concatenate([o[:, 5] for o in ours]).astype(int)) <= set(classes)


def test_numpy_nms_of_an_end_to_end_model_only_filters() -> None:
    from hsi_detector.engines.yolo import nms

    rows = np.array(
        [[[0, 0, 10, 10, 0.9, 1], [0, 0, 10, 10, 0.8, 2], [5, 5, 9, 9, 0.1, 1]]], np.float32
    )
    assert nms(rows, 0.25, None, end2end=True)[0].tolist() == rows[0, :2].tolist()
    assert nms(rows, 0.25, [2], end2end=True)[0].tolist() == [rows[0, 1].tolist()]
    assert nms(rows, 0.0, None, end2end=True, max_det=1)[0].shape == (1, 6)
    empty = nms(np.zeros((1, 84, 10), np.float32), 0.25, None)
    assert empty[0].shape == (0, 6)
