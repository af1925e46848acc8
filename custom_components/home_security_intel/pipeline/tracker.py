"""The tracker: gives each object a stable id across frames and decides when it is real.

Frigate-like semantics, per camera:

- Each frame's detections are matched to the live tracks by IoU with the track's predicted box
  (constant-velocity model on centre and size) or its last box, whichever overlaps more, greedily
  highest IoU first, only within the same group (a "car" may become a "truck", never a "person").
- A track is *confirmed* once seen in `min_frames` frames with a median score over its last
  `history` scores of at least `confirm_threshold`; it then stays confirmed. Only confirmed
  tracks become entities and events (the state stage), so one lucky 0.6 never announces anyone.
- A track whose box stays put for `stationary_after_s` is *stationary*: it is kept
  `stationary_forget_after_s` after it was last seen instead of `forget_after_s`, so a parked car
  the detector misses for a minute re-attaches to its old id instead of being announced again.

Bounded work: at most `MAX_TRACKS` tracks and `MAX_DETECTIONS_PER_FRAME` detections per update,
so a hostile detector answering 10,000 boxes costs at most a 200 x 300 IoU matrix (numpy).

Pure Python + numpy, no Home Assistant imports.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
import math
import statistics
import uuid

import numpy as np
from numpy.typing import NDArray

from ..detection.model import Box
from .filters import MAX_DETECTIONS_PER_FRAME, ZonedDetection

MAX_TRACKS = 200
"""Live tracks per camera. When full, lost unconfirmed tracks make room first; detections that
still find no room are ignored for that frame."""
MAX_PREDICT_S = 5.0
"""The motion model extrapolates at most this far: after a longer gap the velocity is stale."""
_VELOCITY_SMOOTHING = 0.5
"""Weight of the newest velocity measurement (exponential smoothing against detector jitter)."""
_MIN_SIZE = 1e-4


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    """How the tracker matches, confirms and forgets (times in seconds)."""

    iou_threshold: float = 0.25
    confirm_threshold: float = 0.7
    min_frames: int = 2
    history: int = 10
    """Scores (and labels) remembered per track for the median and the majority label."""
    forget_after_s: float = 10.0
    stationary_after_s: float = 30.0
    stationary_iou: float = 0.8
    stationary_forget_after_s: float = 300.0

    def __post_init__(self) -> None:
        """Refuse settings that cannot work, with the setting's name."""
        for name in ("iou_threshold", "stationary_iou"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0.0 < value <= 1.0):
                raise ValueError(f"{name} must be in (0, 1], not {value}")
        if not (math.isfinite(self.confirm_threshold) and 0.0 <= self.confirm_threshold <= 1.0):
            raise ValueError(f"confirm_threshold must be in [0, 1], not {self.confirm_threshold}")
        for name in ("min_frames", "history"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        for name in ("forget_after_s", "stationary_after_s", "stationary_forget_after_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"{name} must be a finite number >= 0, not {value}")


@dataclass(frozen=True, slots=True)
class TrackedObject:
    """One track as the tracker sees it after an update."""

    object_id: str
    label: str
    """The most frequent label of the recent history (a track may flip between car and truck)."""
    group: str
    score: float
    """Score of the latest matched detection."""
    median_score: float
    box: Box
    """Latest matched box."""
    zones: frozenset[str]
    """Zones of the latest matched detection."""
    first_seen: float
    last_seen: float
    frames_seen: int
    confirmed: bool
    stationary: bool
    visible: bool
    """Matched in the latest update."""


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when they do not overlap or are empty)."""
    width = min(a.x_max, b.x_max) - max(a.x_min, b.x_min)
    height = min(a.y_max, b.y_max) - max(a.y_min, b.y_min)
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return inter / (a.area + b.area - inter)


def _iou_matrix(tracks: NDArray[np.float64], dets: NDArray[np.float64]) -> NDArray[np.float64]:
    """IoU of every (track, detection) pair; rows of x_min, y_min, x_max, y_max."""
    tx0, ty0, tx1, ty1 = (tracks[:, i : i + 1] for i in range(4))
    dx0, dy0, dx1, dy1 = (dets[:, i] for i in range(4))
    width = np.clip(np.minimum(tx1, dx1) - np.maximum(tx0, dx0), 0.0, None)
    height = np.clip(np.minimum(ty1, dy1) - np.maximum(ty0, dy0), 0.0, None)
    inter = width * height
    area_t = np.clip(tx1 - tx0, 0.0, None) * np.clip(ty1 - ty0, 0.0, None)
    area_d = np.clip(dx1 - dx0, 0.0, None) * np.clip(dy1 - dy0, 0.0, None)
    union = area_t + area_d - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def _box_array(box: Box) -> tuple[float, float, float, float]:
    return (box.x_min, box.y_min, box.x_max, box.y_max)


class _Track:
    """Mutable per-track state; the outside world only sees TrackedObject snapshots."""

    __slots__ = (
        "anchor_box",
        "anchor_time",
        "box",
        "confirmed",
        "first_seen",
        "frames_seen",
        "group",
        "labels",
        "last_seen",
        "object_id",
        "score",
        "scores",
        "stationary",
        "velocity",
        "visible",
        "zones",
    )

    def __init__(self, object_id: str, detection: ZonedDetection, now: float, history: int) -> None:
        self.object_id = object_id
        self.group = detection.group
        self.labels: deque[str] = deque([detection.detection.label], maxlen=history)
        self.scores: deque[float] = deque([detection.detection.score], maxlen=history)
        self.score = detection.detection.score
        self.box = detection.detection.box
        self.zones = detection.zones
        self.first_seen = now
        self.last_seen = now
        self.frames_seen = 1
        self.confirmed = False
        self.stationary = False
        self.visible = True
        # Velocity of (centre x, centre y, width, height) per second.
        self.velocity = (0.0, 0.0, 0.0, 0.0)
        # Start of the current "has not moved" window.
        self.anchor_box = self.box
        self.anchor_time = now

    def predicted(self, now: float) -> Box:
        """Where the motion model expects the box at `now`."""
        dt = min(max(now - self.last_seen, 0.0), MAX_PREDICT_S)
        cx, cy, w, h = _centre_size(self.box)
        vx, vy, vw, vh = self.velocity
        cx, cy = cx + vx * dt, cy + vy * dt
        w, h = max(w + vw * dt, _MIN_SIZE), max(h + vh * dt, _MIN_SIZE)
        return Box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)

    def label(self) -> str:
        """Most frequent recent label; ties go to the most recent of them."""
        counts = Counter(self.labels)
        last_index = {label: index for index, label in enumerate(self.labels)}
        return max(counts, key=lambda label: (counts[label], last_index[label]))

    def match(self, detection: ZonedDetection, now: float, config: TrackerConfig) -> None:
        """Take this frame's detection as the track's new observation."""
        box = detection.detection.box
        dt = now - self.last_seen
        if dt > 0:
            old = _centre_size(self.box)
            new = _centre_size(box)
            measured = tuple((n - o) / dt for n, o in zip(new, old, strict=True))
            if self.frames_seen == 1:
                self.velocity = (measured[0], measured[1], measured[2], measured[3])
            else:
                a = _VELOCITY_SMOOTHING
                self.velocity = (
                    a * measured[0] + (1 - a) * self.velocity[0],
                    a * measured[1] + (1 - a) * self.velocity[1],
                    a * measured[2] + (1 - a) * self.velocity[2],
                    a * measured[3] + (1 - a) * self.velocity[3],
                )
        self.box = box
        self.zones = detection.zones
        self.score = detection.detection.score
        self.labels.append(detection.detection.label)
        self.scores.append(detection.detection.score)
        self.last_seen = max(self.last_seen, now)
        self.frames_seen += 1
        self.visible = True
        if (
            not self.confirmed
            and self.frames_seen >= config.min_frames
            and statistics.median(self.scores) >= config.confirm_threshold
        ):
            self.confirmed = True
        self._update_stationary(now, config)

    def _update_stationary(self, now: float, config: TrackerConfig) -> None:
        if iou(self.box, self.anchor_box) >= config.stationary_iou:
            if not self.stationary and now - self.anchor_time >= config.stationary_after_s:
                self.stationary = True
                # A parked object does not drift: stop extrapolating detector jitter.
                self.velocity = (0.0, 0.0, 0.0, 0.0)
        else:
            self.stationary = False
            self.anchor_box = self.box
            self.anchor_time = now

    def expired(self, now: float, config: TrackerConfig) -> bool:
        """Whether the track has been unseen long enough to be forgotten."""
        limit = config.stationary_forget_after_s if self.stationary else config.forget_after_s
        return now - self.last_seen >= limit

    def snapshot(self) -> TrackedObject:
        """The immutable view of this track."""
        return TrackedObject(
            object_id=self.object_id,
            label=self.label(),
            group=self.group,
            score=self.score,
            median_score=float(statistics.median(self.scores)),
            box=self.box,
            zones=self.zones,
            first_seen=self.first_seen,
            last_seen=self.last_seen,
            frames_seen=self.frames_seen,
            confirmed=self.confirmed,
            stationary=self.stationary,
            visible=self.visible,
        )


def _centre_size(box: Box) -> tuple[float, float, float, float]:
    return (
        (box.x_min + box.x_max) / 2,
        (box.y_min + box.y_max) / 2,
        box.x_max - box.x_min,
        box.y_max - box.y_min,
    )


def _new_id() -> str:
    return uuid.uuid4().hex


class ObjectTracker:
    """Tracks the objects of one camera across frames. Not thread-safe; one caller at a time.

    `now` is a monotonic clock in seconds; the tracker never reads a clock itself.
    """

    def __init__(
        self, config: TrackerConfig | None = None, id_factory: Callable[[], str] | None = None
    ) -> None:
        """Start with no tracks; `id_factory` makes object ids (default: random hex)."""
        self._config = config or TrackerConfig()
        self._new_id = id_factory or _new_id
        self._tracks: dict[str, _Track] = {}

    @property
    def config(self) -> TrackerConfig:
        """The settings in use."""
        return self._config

    def __len__(self) -> int:
        """Number of live tracks."""
        return len(self._tracks)

    def set_confirm_threshold(self, value: float) -> None:
        """Change the confirmation threshold at run time; tracks already confirmed stay so."""
        self._config = replace(self._config, confirm_threshold=value)

    def reconfigure(self, config: TrackerConfig) -> None:
        """Use new settings, keeping the live tracks (their histories cut to the new length)."""
        if config.history != self._config.history:
            for track in self._tracks.values():
                track.labels = deque(track.labels, maxlen=config.history)
                track.scores = deque(track.scores, maxlen=config.history)
        self._config = config

    def reset(self) -> None:
        """Forget every track."""
        self._tracks.clear()

    def update(self, detections: Sequence[ZonedDetection], now: float) -> tuple[TrackedObject, ...]:
        """Take one frame's filtered detections; return every live track, confirmed or not."""
        config = self._config
        for object_id in [oid for oid, t in self._tracks.items() if t.expired(now, config)]:
            del self._tracks[object_id]
        for track in self._tracks.values():
            track.visible = False

        if len(detections) > MAX_DETECTIONS_PER_FRAME:
            detections = sorted(detections, key=lambda d: d.detection.score, reverse=True)[
                :MAX_DETECTIONS_PER_FRAME
            ]

        tracks = list(self._tracks.values())
        unmatched = self._match(tracks, detections, now)
        self._start_tracks([detections[index] for index in unmatched], now)
        return tuple(track.snapshot() for track in self._tracks.values())

    def _match(
        self, tracks: list[_Track], detections: Sequence[ZonedDetection], now: float
    ) -> list[int]:
        """Match detections to tracks; returns the indices of detections left unmatched."""
        if not tracks or not detections:
            return list(range(len(detections)))
        config = self._config
        det_boxes = np.array([_box_array(d.detection.box) for d in detections], dtype=np.float64)
        last = np.array([_box_array(t.box) for t in tracks], dtype=np.float64)
        predicted = np.array([_box_array(t.predicted(now)) for t in tracks], dtype=np.float64)
        overlap = np.maximum(_iou_matrix(last, det_boxes), _iou_matrix(predicted, det_boxes))
        track_groups = np.array([t.group for t in tracks])
        det_groups = np.array([d.group for d in detections])
        overlap[track_groups[:, None] != det_groups[None, :]] = 0.0

        rows, cols = np.nonzero(overlap >= config.iou_threshold)
        order = np.argsort(-overlap[rows, cols], kind="stable")
        used_tracks: set[int] = set()
        used_dets: set[int] = set()
        for pair in order:
            row, col = int(rows[pair]), int(cols[pair])
            if row in used_tracks or col in used_dets:
                continue
            used_tracks.add(row)
            used_dets.add(col)
            tracks[row].match(detections[col], now, config)
        return [index for index in range(len(detections)) if index not in used_dets]

    def _start_tracks(self, detections: list[ZonedDetection], now: float) -> None:
        """Start a track per unmatched detection, best scores first, within MAX_TRACKS."""
        if not detections:
            return
        detections = sorted(detections, key=lambda d: d.detection.score, reverse=True)
        room = MAX_TRACKS - len(self._tracks)
        if room < len(detections):
            # Lost unconfirmed tracks are the cheapest to give up: nobody was told about them.
            evictable = sorted(
                (t for t in self._tracks.values() if not t.visible and not t.confirmed),
                key=lambda t: t.last_seen,
            )
            for track in evictable[: len(detections) - room]:
                del self._tracks[track.object_id]
            room = MAX_TRACKS - len(self._tracks)
        for detection in detections[: max(room, 0)]:
            object_id = self._new_id()
            if object_id in self._tracks:  # a custom id_factory repeated itself
                object_id = f"{object_id}-{_new_id()[:8]}"
            self._tracks[object_id] = _Track(object_id, detection, now, self._config.history)
