"""Small builders for pipeline tests: detections and frames from plain numbers."""

from __future__ import annotations

from custom_components.home_security_intel.detection.model import Box, Detection, DetectorResult
from custom_components.home_security_intel.pipeline.filters import ZonedDetection


def det(label: str, score: float, x0: float, y0: float, x1: float, y1: float) -> Detection:
    """A detection with a box given as x_min, y_min, x_max, y_max."""
    return Detection(label, score, Box(x0, y0, x1, y1))


def centred(label: str, score: float, cx: float, cy: float, w: float, h: float) -> Detection:
    """A detection with a box given by its centre and size."""
    return det(label, score, cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def zoned(
    detection: Detection, group: str | None = None, zones: frozenset[str] = frozenset()
) -> ZonedDetection:
    """A detection as the filter stage would pass it on (group defaults to the label)."""
    return ZonedDetection(detection, group or detection.label, zones)


def frame(*detections: Detection) -> DetectorResult:
    """A detector answer for one frame."""
    return DetectorResult(detections=detections, width=1280, height=720, latency_ms=12.0)
