"""Answer parsing of the three dialects: valid answers, and every way an answer can be wrong."""

# ruff: noqa: E501 - tables of cases read best one case per line

from __future__ import annotations

import json
from typing import Any

import pytest

from custom_components.home_security_intel.detection.model import Box, InvalidAnswer
from custom_components.home_security_intel.detection.parse import (
    MAX_DETECTIONS,
    parse_deepstack,
    parse_native,
    parse_rtdetr,
)


def _native(*detections: dict[str, Any], width: Any = 200, height: Any = 100) -> bytes:
    return json.dumps(
        {
            "detections": list(detections),
            "image": {"width": width, "height": height},
            "timings_ms": {"inference": 12.5},
        }
    ).encode()


def _det(
    label: Any = "person", confidence: Any = 0.9, box: Any = (20, 10, 120, 90)
) -> dict[str, Any]:
    x0, y0, x1, y1 = box
    return {"label": label, "confidence": confidence, "box": {"x_min": x0, "y_min": y0, "x_max": x1, "y_max": y1}}  # fmt: skip


def test_native_answer_is_normalised() -> None:
    result = parse_native(_native(_det()), latency_ms=3.0)
    assert (result.width, result.height, result.latency_ms, result.inference_ms) == (
        200,
        100,
        3.0,
        12.5,
    )
    [found] = result.detections
    assert (found.label, found.score) == ("person", 0.9)
    assert found.box == Box(0.1, 0.1, 0.6, 0.9)


def test_boxes_are_clipped_and_degenerate_ones_dropped() -> None:
    result = parse_native(
        _native(
            _det(box=(-50, -10, 400, 300)),  # beyond every edge: the whole frame
            _det(box=(120, 10, 20, 90)),  # inverted
            _det(box=(300, 10, 400, 90)),  # entirely outside: nothing left after clipping
            _det(box=(50, 50, 50, 60)),  # zero width
        ),
        1.0,
    )
    assert [d.box for d in result.detections] == [Box(0.0, 0.0, 1.0, 1.0)]


def test_long_and_empty_labels_are_dropped() -> None:
    result = parse_native(_native(_det(label="x" * 65), _det(label="  "), _det(label=" car ")), 1.0)
    assert [d.label for d in result.detections] == ["car"]


def test_at_most_the_best_detections_are_kept() -> None:
    many = [_det(confidence=i / 20_000) for i in range(10_000)]
    result = parse_native(_native(*many), 1.0)
    assert len(result.detections) == MAX_DETECTIONS
    assert result.detections[0].score == 9_999 / 20_000
    assert min(d.score for d in result.detections) == (10_000 - MAX_DETECTIONS) / 20_000


@pytest.mark.parametrize(
    "body",
    [
        b"<html>nope</html>",
        b"",
        b"\xff\xfe\x00garbage",
        b"[" * 100_000,
        b"[]",
        b'{"detections": []}',
        _native(width=0),
        _native(width=10.5),
        _native(width=True),
        _native(height="100"),
        _native(width=10**9),
        json.dumps({"detections": {}, "image": {"width": 1, "height": 1}}).encode(),
        _native("nope"),  # type: ignore[arg-type]
        _native(_det(label=5)),
        _native(_det(confidence="0.9")),
        _native(_det(confidence=True)),
        _native(_det(confidence=1.5)),
        _native(_det(confidence=-0.1)),
        _native(_det(box=(0, 0, "1", 1))),
        _native({"label": "person", "confidence": 0.5, "box": [1, 2, 3, 4]}),
        b'{"detections": [{"label": "person", "confidence": NaN, "box": {}}], "image": {"width": 2, "height": 2}}',
        b'{"detections": [{"label": "p", "confidence": 0.5, "box": {"x_min": Infinity, "y_min": 0, "x_max": 1, "y_max": 1}}], "image": {"width": 2, "height": 2}}',
        b'{"detections": [{"label": "p", "confidence": 0.5, "box": {"x_min": 1e999, "y_min": 0, "x_max": 1, "y_max": 1}}], "image": {"width": 2, "height": 2}}',
    ],
)  # fmt: skip
def test_invalid_native_answers_raise_invalid_answer(body: bytes) -> None:
    with pytest.raises(InvalidAnswer) as err:
        parse_native(body, latency_ms=1.0)
    assert len(str(err.value)) < 80


def test_unusable_timings_are_ignored() -> None:
    body = json.dumps(
        {"detections": [], "image": {"width": 2, "height": 2}, "timings_ms": {"inference": -1}}
    ).encode()
    assert parse_native(body, 1.0).inference_ms is None
    text = json.dumps({"detections": [], "image": {"width": 2, "height": 2}, "timings_ms": 5})
    assert parse_native(text.encode(), 1.0).inference_ms is None


def _deepstack(**answer: Any) -> bytes:
    return json.dumps({"success": True, "predictions": [], **answer}).encode()


def test_deepstack_answer_uses_the_frame_size() -> None:
    prediction = {"label": "dog", "confidence": 0.75, "x_min": 40, "y_min": 0, "x_max": 80, "y_max": 50}  # fmt: skip
    result = parse_deepstack(_deepstack(predictions=[prediction], inferenceMs=30), (400, 100), 2.0)
    assert (result.width, result.height, result.inference_ms) == (400, 100, 30.0)
    assert result.detections[0].box == Box(0.1, 0.0, 0.2, 0.5)
    assert parse_deepstack(b'{"success": true}', (4, 4), 1.0).detections == ()


@pytest.mark.parametrize(
    "body",
    [
        _deepstack(success=False),
        b'{"predictions": []}',
        _deepstack(success="true"),
        _deepstack(predictions=None),
        _deepstack(predictions=[{"label": "dog", "confidence": 0.5}]),
    ],
)
def test_invalid_deepstack_answers(body: bytes) -> None:
    with pytest.raises(InvalidAnswer):
        parse_deepstack(body, (10, 10), 1.0)


def _rtdetr(width: int | None = 100, **extra: Any) -> bytes:
    answer: dict[str, Any] = {
        "detections": [{"class": "car", "confidence": 0.6, "bbox": {"x": 10, "y": 20, "width": 30, "height": 40}}],
        "inference_time_ms": 7.5,
        **extra,
    }  # fmt: skip
    if width is not None:
        answer |= {"image_width": width, "image_height": 200}
    return json.dumps(answer).encode()


def test_rtdetr_answer_prefers_its_own_size() -> None:
    result = parse_rtdetr(_rtdetr(), (999, 999), 1.0)
    assert (result.width, result.height, result.inference_ms) == (100, 200, 7.5)
    assert result.detections[0].box == Box(0.1, 0.1, 0.4, 0.3)
    without = parse_rtdetr(_rtdetr(width=None), (100, 200), 1.0)
    assert without.detections == result.detections


@pytest.mark.parametrize(
    ("body", "size"),
    [
        (_rtdetr(width=None), None),
        (_rtdetr(width=0), (10, 10)),
        (json.dumps({"detections": [{"class": "car", "confidence": 0.5, "bbox": None}]}).encode(), (4, 4)),
    ],
)  # fmt: skip
def test_invalid_rtdetr_answers(body: bytes, size: tuple[int, int] | None) -> None:
    with pytest.raises(InvalidAnswer):
        parse_rtdetr(body, size, 1.0)
