"""What entities and events are made of: a camera's scene, its object events and occupancy.

The last stage of one frame's way through the pipeline (filters -> tracker -> here):

- `scene_state` counts the *confirmed* objects: those seen in this frame, plus stationary ones not
  yet forgotten (a parked car the detector misses every other frame stays counted). A moving object
  missed in one frame drops out of the counts for that frame; occupancy's off delay is what
  smooths that over for the binary sensors.
- `EventEmitter` fires "detected" once per confirmed object, at the frame it is confirmed, and
  "zone_entered" the first time it is seen in each further zone. Unconfirmed tracks never fire.
- `Occupancy` keeps a key on until `off_delay_s` after it was last present.
- `DetectionPipeline` ties the stages together for one camera.

Pure Python, no Home Assistant imports; time is always passed in (monotonic seconds).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
import math
from types import MappingProxyType
from typing import Literal

from ..detection.model import GROUPS, Box, DetectorResult
from .filters import FilterConfig, Zone, filter_detections, zone_slug
from .tracker import ObjectTracker, TrackedObject, TrackerConfig

type EventKind = Literal["detected", "zone_entered"]
EVENT_DETECTED: EventKind = "detected"
EVENT_ZONE_ENTERED: EventKind = "zone_entered"
DEFAULT_OFF_DELAY_S = 30.0


def group_key(group: str) -> str:
    """Occupancy key of a group anywhere in view: "person"."""
    return group


def zone_key(zone: str, group: str) -> str:
    """Occupancy key of a group in a zone (by zone name): "zone:driveway:person"."""
    return f"zone:{zone_slug(zone)}:{group}"


def event_type_name(kind: EventKind, group: str) -> str:
    """The event type of an object event: "person_detected", "zone_entered"."""
    return f"{group}_detected" if kind == EVENT_DETECTED else "zone_entered"


@dataclass(frozen=True, slots=True)
class SceneState:
    """Who is in view of one camera after a frame, counting confirmed objects only."""

    objects: tuple[TrackedObject, ...]
    """Confirmed objects seen in this frame, and confirmed stationary ones not yet forgotten."""
    counts: Mapping[str, int]
    """Objects per group; every tracked group is present, zeros included."""
    zone_counts: Mapping[tuple[str, str], int]
    """Objects per (zone name, group); every zone x group the zone tracks, zeros included."""

    @property
    def present_groups(self) -> frozenset[str]:
        """Groups with at least one object in view."""
        return frozenset(group for group, count in self.counts.items() if count)

    def present_keys(self) -> set[str]:
        """Occupancy keys (see `group_key`, `zone_key`) with at least one object."""
        keys = {group_key(group) for group in self.present_groups}
        keys.update(zone_key(zone, group) for (zone, group), n in self.zone_counts.items() if n)
        return keys


def is_counted(obj: TrackedObject) -> bool:
    """Whether a track counts as in view: confirmed, and seen now or parked (stationary)."""
    return obj.confirmed and (obj.visible or obj.stationary)


def scene_state(
    tracks: Iterable[TrackedObject],
    groups: Iterable[str] = GROUPS,
    zones: Iterable[Zone] = (),
) -> SceneState:
    """Count the confirmed objects in view per group and per zone x group."""
    tracked = tuple(group for group in GROUPS if group in frozenset(groups))
    counts = dict.fromkeys(tracked, 0)
    zone_counts: dict[tuple[str, str], int] = {
        (zone.name, group): 0 for zone in zones for group in tracked if zone.tracks(group)
    }
    objects = tuple(obj for obj in tracks if is_counted(obj) and obj.group in counts)
    for obj in objects:
        counts[obj.group] += 1
        for zone_name in obj.zones:
            # Zones no longer configured (a stale lost track) are not counted.
            if (zone_name, obj.group) in zone_counts:
                zone_counts[zone_name, obj.group] += 1
    return SceneState(objects, MappingProxyType(counts), MappingProxyType(zone_counts))


@dataclass(frozen=True, slots=True)
class ObjectEvent:
    """Something happened to one confirmed object."""

    kind: EventKind
    object_id: str
    label: str
    group: str
    score: float
    box: Box
    zones: frozenset[str]
    """Every zone the object is in at that moment."""
    zone: str | None
    """The zone entered ("zone_entered"); None for "detected"."""
    at: float

    @property
    def event_type(self) -> str:
        """The event type: "person_detected", "vehicle_detected", ... or "zone_entered"."""
        return event_type_name(self.kind, self.group)


class EventEmitter:
    """Turns successive tracker answers into object events, each fired once."""

    def __init__(self) -> None:
        """Start having announced nothing."""
        # object id -> zones already announced for it (present = "detected" was fired).
        self._announced: dict[str, set[str]] = {}

    def reset(self) -> None:
        """Forget which objects were announced."""
        self._announced.clear()

    def update(self, tracks: Sequence[TrackedObject], now: float) -> tuple[ObjectEvent, ...]:
        """Events for this frame; `tracks` is every live track (ids missing are forgotten)."""
        events: list[ObjectEvent] = []
        for obj in tracks:
            if not (obj.confirmed and obj.visible):
                continue
            known = self._announced.get(obj.object_id)
            if known is None:
                self._announced[obj.object_id] = set(obj.zones)
                events.append(_event(EVENT_DETECTED, obj, None, now))
                continue
            for zone in sorted(obj.zones - known):
                known.add(zone)
                events.append(_event(EVENT_ZONE_ENTERED, obj, zone, now))
        live = {obj.object_id for obj in tracks}
        for object_id in [oid for oid in self._announced if oid not in live]:
            del self._announced[object_id]
        return tuple(events)


def _event(kind: EventKind, obj: TrackedObject, zone: str | None, now: float) -> ObjectEvent:
    return ObjectEvent(
        kind=kind,
        object_id=obj.object_id,
        label=obj.label,
        group=obj.group,
        score=obj.score,
        box=obj.box,
        zones=obj.zones,
        zone=zone,
        at=now,
    )


def _check_delay(off_delay_s: float) -> float:
    if not (math.isfinite(off_delay_s) and off_delay_s >= 0):
        raise ValueError(f"off delay must be a finite number >= 0, not {off_delay_s}")
    return float(off_delay_s)


class Occupancy:
    """Keys that are on: present now, or last present less than `off_delay_s` ago."""

    def __init__(self, off_delay_s: float = DEFAULT_OFF_DELAY_S) -> None:
        """Start with every key off."""
        self._off_delay = _check_delay(off_delay_s)
        self._last_present: dict[str, float] = {}

    @property
    def off_delay_s(self) -> float:
        """Seconds a key stays on after it was last present."""
        return self._off_delay

    @off_delay_s.setter
    def off_delay_s(self, value: float) -> None:
        self._off_delay = _check_delay(value)

    def update(self, present_keys: Iterable[str], now: float) -> frozenset[str]:
        """Record the keys present at `now`; return the keys that are on."""
        present = set(present_keys)
        for key in present:
            self._last_present[key] = now
        for key in [k for k, t in self._last_present.items() if now - t >= self._off_delay]:
            if key not in present:
                del self._last_present[key]
        return frozenset(self._last_present)

    def next_change(self, now: float) -> float | None:
        """When the next key turns off if nothing is seen again; None when every key is off."""
        times = [
            t + self._off_delay for t in self._last_present.values() if t + self._off_delay > now
        ]
        return min(times, default=None)

    def reset(self) -> None:
        """Turn every key off."""
        self._last_present.clear()


@dataclass(frozen=True, slots=True)
class FrameOutcome:
    """Everything one frame changed for one camera."""

    objects: tuple[TrackedObject, ...]
    """The counted (confirmed, in view) objects."""
    counts: Mapping[str, int]
    zone_counts: Mapping[tuple[str, str], int]
    occupied: frozenset[str]
    """Occupancy keys that are on (see `group_key`, `zone_key`)."""
    events: tuple[ObjectEvent, ...]
    tracks: tuple[TrackedObject, ...] = field(default=())
    """Every live track, confirmed or not (for diagnostics)."""


class DetectionPipeline:
    """Filters -> tracker -> scene state -> events -> occupancy, for one camera."""

    def __init__(
        self,
        filter_config: FilterConfig | None = None,
        tracker_config: TrackerConfig | None = None,
        off_delay_s: float = DEFAULT_OFF_DELAY_S,
        id_factory: Callable[[], str] | None = None,
    ) -> None:
        """Build the stages; nothing is tracked yet."""
        self._filter_config = filter_config or FilterConfig()
        self._tracker = ObjectTracker(tracker_config, id_factory)
        self._emitter = EventEmitter()
        self._occupancy = Occupancy(off_delay_s)

    @property
    def filter_config(self) -> FilterConfig:
        """The filter settings in use."""
        return self._filter_config

    @property
    def tracker(self) -> ObjectTracker:
        """The tracker (its config, `set_confirm_threshold`)."""
        return self._tracker

    @property
    def occupancy(self) -> Occupancy:
        """The occupancy stage (`next_change` tells when to call `tick`)."""
        return self._occupancy

    def process(self, result: DetectorResult, now: float) -> FrameOutcome:
        """Run one frame's detector answer through every stage."""
        detections = filter_detections(result.detections, self._filter_config)
        tracks = self._tracker.update(detections, now)
        scene = scene_state(tracks, self._filter_config.groups, self._filter_config.zones)
        events = self._emitter.update(tracks, now)
        occupied = self._occupancy.update(scene.present_keys(), now)
        return FrameOutcome(
            objects=scene.objects,
            counts=scene.counts,
            zone_counts=scene.zone_counts,
            occupied=occupied,
            events=events,
            tracks=tracks,
        )

    def tick(self, now: float) -> frozenset[str]:
        """Occupancy after time passed without a frame (call it at `occupancy.next_change`)."""
        return self._occupancy.update((), now)

    def next_change(self, now: float) -> float | None:
        """When occupancy next changes if no frame comes (see `Occupancy.next_change`)."""
        return self._occupancy.next_change(now)

    def reconfigure(
        self,
        filter_config: FilterConfig | None = None,
        tracker_config: TrackerConfig | None = None,
        off_delay_s: float | None = None,
    ) -> None:
        """Apply new settings (None: keep).

        Thresholds, masks, tracker settings and the off delay apply to the live tracks. A change
        of tracked groups or zones starts over (tracks, announced objects, occupancy): counts and
        zone memberships of the old tracks would not mean the same any more.
        """
        if filter_config is not None:
            old = self._filter_config
            self._filter_config = filter_config
            if filter_config.groups != old.groups or filter_config.zones != old.zones:
                self.reset()
        if tracker_config is not None:
            self._tracker.reconfigure(tracker_config)
        if off_delay_s is not None:
            self._occupancy.off_delay_s = off_delay_s

    def reset(self) -> None:
        """Forget every track, every announced object and all occupancy."""
        self._tracker.reset()
        self._emitter.reset()
        self._occupancy.reset()
