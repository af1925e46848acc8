"""Detector answers of the three API dialects turned into DetectorResult, trusting nothing.

A detector is a network peer: its answer may be any bytes. Anything that is not a well-formed
answer (not JSON, wrong types, NaN or infinite numbers, scores outside 0..1, a failed DeepStack
answer) raises InvalidAnswer with a short message; boxes are clipped into the frame and degenerate
ones dropped, over-long labels dropped, and at most MAX_DETECTIONS (the highest scores) kept, so a
hostile answer costs no more than the size cap the client reads it with.
"""

from __future__ import annotations

from collections.abc import Mapping
import heapq
import json
import math
from typing import Any, Literal

from .model import Box, Detection, DetectorResult, InvalidAnswer

type Dialect = Literal["hsi", "deepstack", "rtdetr"]
DIALECTS: tuple[Dialect, ...] = ("hsi", "deepstack", "rtdetr")
MAX_DETECTIONS = 300
MAX_LABEL_LENGTH = 64
MAX_FRAME_SIDE = 100_000
"""A frame side beyond this is a lie, not a camera."""


def _no_constant(name: str) -> float:
    raise InvalidAnswer(f"the answer contains {name}")


def load_json(body: bytes) -> Any:
    """The decoded JSON; NaN and Infinity (which Python's json accepts) are refused."""
    try:
        return json.loads(body, parse_constant=_no_constant)
    except (ValueError, RecursionError) as err:
        # UnicodeDecodeError and JSONDecodeError are ValueErrors; RecursionError: absurd nesting.
        raise InvalidAnswer("the answer is not JSON") from err


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidAnswer(f"{what} is not a number")
    number = float(value)
    if not math.isfinite(number):
        raise InvalidAnswer(f"{what} is not finite")
    return number


def _score(value: object) -> float:
    score = _number(value, "a confidence")
    if not 0.0 <= score <= 1.0:
        raise InvalidAnswer("a confidence is outside 0..1")
    return score


def _mapping(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise InvalidAnswer(f"{what} is not an object")
    return value


def _list(value: object, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidAnswer(f"{what} is not a list")
    return value


def _label(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidAnswer("a label is not a string")
    return value.strip()


def _size(value: object, what: str) -> int:
    side = _number(value, what)
    if side != int(side) or not 0 < side <= MAX_FRAME_SIDE:
        raise InvalidAnswer(f"{what} is not a valid frame size")
    return int(side)


def _optional_ms(value: object) -> float | None:
    """A reported time, or None when absent or not a sensible number (it is only informative)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else None


def detection(
    label: str, score: float, corners: tuple[float, float, float, float], width: int, height: int
) -> Detection | None:
    """A detection with its pixel box normalised and clipped into the frame; None if degenerate."""
    if not label or len(label) > MAX_LABEL_LENGTH:
        return None
    x0, y0, x1, y1 = corners
    box = Box(
        min(max(x0 / width, 0.0), 1.0),
        min(max(y0 / height, 0.0), 1.0),
        min(max(x1 / width, 0.0), 1.0),
        min(max(y1 / height, 0.0), 1.0),
    )
    if box.x_max <= box.x_min or box.y_max <= box.y_min:
        return None
    return Detection(label, score, box)


def _finish(
    found: list[Detection],
    width: int,
    height: int,
    latency_ms: float,
    inference_ms: float | None,
) -> DetectorResult:
    kept = heapq.nlargest(MAX_DETECTIONS, found, key=lambda d: d.score)
    return DetectorResult(tuple(kept), width, height, latency_ms, inference_ms)


def _corners(box: Mapping[str, Any], keys: tuple[str, str, str, str]) -> tuple[float, ...]:
    return tuple(_number(box.get(key), f"box {key}") for key in keys)


_XYXY = ("x_min", "y_min", "x_max", "y_max")


def parse_native(body: bytes, latency_ms: float) -> DetectorResult:
    """`POST /v1/detect` of our server: pixel boxes plus the image size it decoded."""
    answer = _mapping(load_json(body), "the answer")
    image = _mapping(answer.get("image"), "image")
    width, height = _size(image.get("width"), "width"), _size(image.get("height"), "height")
    found: list[Detection] = []
    for item in _list(answer.get("detections"), "detections"):
        entry = _mapping(item, "a detection")
        x0, y0, x1, y1 = _corners(_mapping(entry.get("box"), "box"), _XYXY)
        made = detection(
            _label(entry.get("label")),
            _score(entry.get("confidence")),
            (x0, y0, x1, y1),
            width,
            height,
        )
        if made is not None:
            found.append(made)
    timings = answer.get("timings_ms")
    inference = _optional_ms(timings.get("inference")) if isinstance(timings, dict) else None
    return _finish(found, width, height, latency_ms, inference)


def parse_deepstack(body: bytes, frame_size: tuple[int, int], latency_ms: float) -> DetectorResult:
    """`POST /v1/vision/detection` (DeepStack, CodeProject.AI): pixel boxes, no image size, so the
    frame size comes from the JPEG the client sent."""
    answer = _mapping(load_json(body), "the answer")
    if answer.get("success") is not True:
        raise InvalidAnswer("the detector answered success: false")
    width, height = _size(frame_size[0], "width"), _size(frame_size[1], "height")
    found: list[Detection] = []
    for item in _list(answer.get("predictions", []), "predictions"):
        entry = _mapping(item, "a prediction")
        x0, y0, x1, y1 = _corners(entry, _XYXY)
        made = detection(
            _label(entry.get("label")),
            _score(entry.get("confidence")),
            (x0, y0, x1, y1),
            width,
            height,
        )
        if made is not None:
            found.append(made)
    return _finish(found, width, height, latency_ms, _optional_ms(answer.get("inferenceMs")))


def parse_rtdetr(
    body: bytes, frame_size: tuple[int, int] | None, latency_ms: float
) -> DetectorResult:
    """`POST /detect` (the HSI RT-DETR service): x, y, width, height boxes in pixels; the image size
    from the answer, else from the frame."""
    answer = _mapping(load_json(body), "the answer")
    if "image_width" in answer or frame_size is None:
        width = _size(answer.get("image_width"), "image_width")
        height = _size(answer.get("image_height"), "image_height")
    else:
        width, height = _size(frame_size[0], "width"), _size(frame_size[1], "height")
    found: list[Detection] = []
    for item in _list(answer.get("detections"), "detections"):
        entry = _mapping(item, "a detection")
        x, y, w, h = _corners(_mapping(entry.get("bbox"), "bbox"), ("x", "y", "width", "height"))
        made = detection(
            _label(entry.get("class")),
            _score(entry.get("confidence")),
            (x, y, x + w, y + h),
            width,
            height,
        )
        if made is not None:
            found.append(made)
    return _finish(found, width, height, latency_ms, _optional_ms(answer.get("inference_time_ms")))
