"""What every detector answers: detections with normalised boxes, and the errors a detector raises.

Plain frozen dataclasses, no Home Assistant imports: the remote clients, the local engines, the
pipeline and the entities all speak these types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

# Label -> group. Groups are what entities are made of (occupancy and counts per group).
GROUP_PERSON = "person"
GROUP_VEHICLE = "vehicle"
GROUP_ANIMAL = "animal"
GROUPS: tuple[str, ...] = (GROUP_PERSON, GROUP_VEHICLE, GROUP_ANIMAL)
LABEL_GROUPS: dict[str, str] = {
    "person": GROUP_PERSON,
    **dict.fromkeys(
        ("bicycle", "car", "motorcycle", "motorbike", "bus", "truck", "boat", "train"),
        GROUP_VEHICLE,
    ),
    **dict.fromkeys(
        ("bird", "cat", "dog", "horse", "sheep", "cow", "bear", "elephant", "zebra", "giraffe"),
        GROUP_ANIMAL,
    ),
}


def label_group(label: str) -> str | None:
    """The group of a detector label (COCO names, case-insensitive), or None for other objects."""
    return LABEL_GROUPS.get(label.strip().lower())


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned box in normalised frame coordinates: 0..1, origin top left."""

    x_min: float
    y_min: float
    x_max: float
    y_max: float

    @property
    def area(self) -> float:
        """Fraction of the frame the box covers."""
        return max(0.0, self.x_max - self.x_min) * max(0.0, self.y_max - self.y_min)

    @property
    def bottom_center(self) -> tuple[float, float]:
        """Where the object stands: zones are tested at this point."""
        return ((self.x_min + self.x_max) / 2, self.y_max)


@dataclass(frozen=True, slots=True)
class Detection:
    """One object a detector found in one frame."""

    label: str
    score: float
    box: Box


@dataclass(frozen=True, slots=True)
class DetectorResult:
    """A detector's answer for one frame: valid, finite, boxes clipped to the frame."""

    detections: tuple[Detection, ...]
    width: int
    """Frame size in pixels as the detector saw it (0 when the detector did not say)."""
    height: int
    latency_ms: float
    """Wall time of the whole call as the client measured it."""
    inference_ms: float | None = None
    """Model time, when the detector reports it."""


@dataclass(frozen=True, slots=True)
class DetectorInfo:
    """What a detector says about itself when checked."""

    name: str
    """Model or server name, for the device page."""
    version: str | None = None
    labels: tuple[str, ...] = ()
    queue_depth: int | None = None


class DetectorError(Exception):
    """A detector could not answer. The message is safe to log (never a key or credential)."""

    reason = "unknown"
    """Form error key / diagnostic reason for this failure."""


class CannotConnect(DetectorError):  # noqa: N818 - names the reason, as core's do
    """Nothing answers at the address, or the connection broke."""

    reason = "cannot_connect"


class InvalidKey(DetectorError):  # noqa: N818 - names the reason, as core's do
    """The detector refused the API key (or needs one and none was given)."""

    reason = "invalid_key"


class NotADetector(DetectorError):  # noqa: N818 - names the reason, as core's do
    """Something answered, but not as a detector of the chosen kind would."""

    reason = "not_a_detector"


class FingerprintMismatch(DetectorError):  # noqa: N818 - names the reason, as core's do
    """TLS: the certificate is not the pinned one (or is unverifiable and none is pinned)."""

    reason = "wrong_fingerprint"


class DetectorTimeout(DetectorError):  # noqa: N818 - names the reason, as core's do
    """The detector took longer than allowed."""

    reason = "timeout"


class DetectorBusy(DetectorError):  # noqa: N818 - names the reason, as core's do
    """The detector is overloaded (HTTP 503/429); try again later."""

    reason = "busy"

    def __init__(self, message: str = "", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        """Seconds the detector asked us to wait (its Retry-After header), when it said."""


class InvalidAnswer(DetectorError):  # noqa: N818 - names the reason, as core's do
    """The detector answered something that is not a valid detection result."""

    reason = "invalid_answer"


class InvalidImage(DetectorError):  # noqa: N818 - names the reason, as core's do
    """The frame itself was refused (truncated, not an image): skip it, the detector is fine."""

    reason = "invalid_image"


class ModelUnavailable(DetectorError):  # noqa: N818 - names the reason, as core's do
    """The local model file is missing, broken or cannot be loaded by its runtime."""

    reason = "model_unavailable"


class LocalUnsupported(DetectorError):  # noqa: N818 - names the reason, as core's do
    """The local model cannot run in this Python (no runtime wheel, e.g. musl)."""

    reason = "local_unsupported"


class Detector(Protocol):
    """Anything that turns a JPEG into detections; one instance may serve many cameras."""

    async def async_detect(self, image: bytes) -> DetectorResult:
        """Detect objects in one encoded frame (JPEG/PNG)."""

    async def async_check(self) -> DetectorInfo:
        """Prove the detector works for real (a test request); raise DetectorError if not."""

    async def async_close(self) -> None:
        """Release sessions, threads and models."""
