"""Scene state, object events, occupancy and the whole pipeline on scripted scenes."""

from __future__ import annotations

from collections.abc import Callable
import random

import pytest

from custom_components.home_security_intel.detection.model import Box, Detection
from custom_components.home_security_intel.pipeline.filters import FilterConfig, Zone, parse_zones
from custom_components.home_security_intel.pipeline.state import (
    DetectionPipeline,
    EventEmitter,
    FrameOutcome,
    ObjectEvent,
    Occupancy,
    event_type_name,
    group_key,
    is_counted,
    scene_state,
    zone_key,
)
from custom_components.home_security_intel.pipeline.tracker import TrackedObject, TrackerConfig

from .common import centred, frame

ZONES = parse_zones(
    """
    Path: 0,0.5 0.5,0.5 0.5,1 0,1
    Porch: 0.5,0.5 1,0.5 1,1 0.5,1 | person
    """
)


def person(cx: float, score: float = 0.8, cy: float = 0.6) -> Detection:
    """A person 0.1 x 0.3; with cy = 0.6 the feet are at y = 0.75."""
    return centred("person", score, cx, cy, 0.1, 0.3)


def car(cx: float, cy: float = 0.7, score: float = 0.8) -> Detection:
    """A car 0.3 x 0.2."""
    return centred("car", score, cx, cy, 0.3, 0.2)


def track(
    object_id: str = "a",
    *,
    group: str = "person",
    confirmed: bool = True,
    visible: bool = True,
    stationary: bool = False,
    zones: frozenset[str] = frozenset(),
) -> TrackedObject:
    """A tracker answer for one object, built by hand."""
    return TrackedObject(
        object_id=object_id,
        label=group,
        group=group,
        score=0.9,
        median_score=0.9,
        box=Box(0.1, 0.1, 0.2, 0.4),
        zones=zones,
        first_seen=0.0,
        last_seen=1.0,
        frames_seen=2,
        confirmed=confirmed,
        stationary=stationary,
        visible=visible,
    )


def run(
    pipeline: DetectionPipeline, frames: list[tuple[float, list[Detection]]]
) -> list[FrameOutcome]:
    """Process scripted (time, detections) frames."""
    return [pipeline.process(frame(*detections), t) for t, detections in frames]


def all_events(outcomes: list[FrameOutcome]) -> list[ObjectEvent]:
    """Every event of a run, in order."""
    return [event for outcome in outcomes for event in outcome.events]


# --- names and keys ---------------------------------------------------------------------------


def test_event_type_names_and_keys() -> None:
    """Event types per group, and occupancy keys by zone slug."""
    assert event_type_name("detected", "person") == "person_detected"
    assert event_type_name("detected", "vehicle") == "vehicle_detected"
    assert event_type_name("zone_entered", "animal") == "zone_entered"
    assert group_key("person") == "person"
    assert zone_key("Front door", "person") == "zone:front_door:person"


# --- scene_state ------------------------------------------------------------------------------


def test_scene_counts_confirmed_visible_and_stationary_only() -> None:
    """Unconfirmed and lost moving tracks are not counted; lost stationary ones are."""
    tracks = (
        track("seen", zones=frozenset({"Path"})),
        track("unconfirmed", confirmed=False),
        track("lost", visible=False),
        track("parked", group="vehicle", visible=False, stationary=True, zones=frozenset({"Path"})),
        track("dog", group="animal", zones=frozenset({"Porch"})),
    )
    assert [is_counted(t) for t in tracks] == [True, False, False, True, True]
    scene = scene_state(tracks, frozenset({"person", "vehicle", "animal"}), ZONES)
    assert [obj.object_id for obj in scene.objects] == ["seen", "parked", "dog"]
    assert dict(scene.counts) == {"person": 1, "vehicle": 1, "animal": 1}
    # Porch only tracks people: no (Porch, vehicle) or (Porch, animal) keys, the dog is ignored.
    assert dict(scene.zone_counts) == {
        ("Path", "person"): 1,
        ("Path", "vehicle"): 1,
        ("Path", "animal"): 0,
        ("Porch", "person"): 0,
    }
    assert scene.present_groups == {"person", "vehicle", "animal"}
    assert scene.present_keys() == {
        "person",
        "vehicle",
        "animal",
        "zone:path:person",
        "zone:path:vehicle",
    }


def test_scene_of_nothing_has_zeros() -> None:
    """Every tracked group and zone x group is there with 0 (entities show 0, not unknown)."""
    scene = scene_state((), ("vehicle", "person"), ZONES)
    assert dict(scene.counts) == {"person": 0, "vehicle": 0}
    assert set(scene.zone_counts) == {("Path", "person"), ("Path", "vehicle"), ("Porch", "person")}
    assert scene.present_groups == frozenset()
    assert scene.present_keys() == set()


def test_scene_ignores_untracked_groups_and_unknown_zones() -> None:
    """Tracks of a group no longer tracked, or in a zone no longer configured, are not counted."""
    scene = scene_state(
        (track("cat", group="animal"), track("p", zones=frozenset({"Gone", "Path"}))),
        ("person",),
        ZONES,
    )
    assert dict(scene.counts) == {"person": 1}
    assert dict(scene.zone_counts) == {("Path", "person"): 1, ("Porch", "person"): 0}


# --- EventEmitter -----------------------------------------------------------------------------


def test_emitter_fires_once_per_object_and_zone() -> None:
    """Detected once; zone_entered once per new zone; nothing for unconfirmed or unseen."""
    emitter = EventEmitter()
    assert emitter.update((track("a", confirmed=False, zones=frozenset({"Path"})),), 0.0) == ()
    (detected,) = emitter.update((track("a", zones=frozenset({"Path"})),), 1.0)
    assert (detected.kind, detected.event_type, detected.zone, detected.zones, detected.at) == (
        "detected",
        "person_detected",
        None,
        frozenset({"Path"}),
        1.0,
    )
    assert emitter.update((track("a", zones=frozenset({"Path"})),), 2.0) == ()
    assert emitter.update((track("a", visible=False, zones=frozenset({"Porch"})),), 3.0) == ()
    both = frozenset({"Path", "Porch", "Yard"})
    entered = emitter.update((track("a", zones=both),), 4.0)
    assert [(e.kind, e.event_type, e.zone, e.zones) for e in entered] == [
        ("zone_entered", "zone_entered", "Porch", both),
        ("zone_entered", "zone_entered", "Yard", both),
    ]
    assert emitter.update((track("a", zones=frozenset()),), 5.0) == ()
    assert emitter.update((track("a", zones=frozenset({"Porch"})),), 6.0) == ()


def test_emitter_forgets_ids_the_tracker_forgot() -> None:
    """An id that disappears from the tracker's answer is forgotten (memory stays bounded)."""
    emitter = EventEmitter()
    assert len(emitter.update((track("a"),), 0.0)) == 1
    assert emitter.update((track("a", visible=False),), 1.0) == ()
    assert emitter.update((), 2.0) == ()
    assert len(emitter.update((track("a"),), 3.0)) == 1
    emitter.reset()
    assert len(emitter.update((track("a"),), 4.0)) == 1


# --- Occupancy --------------------------------------------------------------------------------


def test_occupancy_off_delay_and_next_change() -> None:
    """A key stays on until off_delay after it was last present; next_change says when."""
    occupancy = Occupancy(off_delay_s=30.0)
    assert occupancy.off_delay_s == 30.0
    assert occupancy.update(set(), 0.0) == frozenset()
    assert occupancy.next_change(0.0) is None
    assert occupancy.update({"person", "zone:path:person"}, 10.0) == {"person", "zone:path:person"}
    assert occupancy.next_change(10.0) == 40.0
    assert occupancy.update({"person"}, 20.0) == {"person", "zone:path:person"}
    assert occupancy.next_change(20.0) == 40.0
    assert occupancy.update(set(), 39.9) == {"person", "zone:path:person"}
    assert occupancy.update(set(), 40.0) == {"person"}
    assert occupancy.next_change(40.0) == 50.0
    assert occupancy.update(set(), 50.0) == frozenset()
    assert occupancy.next_change(50.0) is None


def test_occupancy_without_delay_and_reset() -> None:
    """With no delay a key is on exactly while present; reset turns everything off."""
    occupancy = Occupancy(0.0)
    assert occupancy.update({"person"}, 1.0) == {"person"}
    assert occupancy.next_change(1.0) is None
    assert occupancy.update(set(), 1.5) == frozenset()
    occupancy.off_delay_s = 5.0
    assert occupancy.update({"vehicle"}, 2.0) == {"vehicle"}
    occupancy.reset()
    assert occupancy.update(set(), 2.0) == frozenset()
    assert occupancy.next_change(2.0) is None


@pytest.mark.parametrize("delay", [-1.0, float("nan"), float("inf")])
def test_occupancy_refuses_bad_delays(delay: float) -> None:
    """Negative or non-finite delays are refused, in the constructor and the setter."""
    with pytest.raises(ValueError, match="off delay"):
        Occupancy(delay)
    occupancy = Occupancy(1.0)
    with pytest.raises(ValueError, match="off delay"):
        occupancy.off_delay_s = delay
    assert occupancy.off_delay_s == 1.0


# --- the whole pipeline on scripted scenes ----------------------------------------------------


def test_person_walking_across_is_one_object_and_one_event(ids: Callable[[], str]) -> None:
    """30 frames: one id, one person_detected at the confirming frame, counted from then on."""
    pipeline = DetectionPipeline(off_delay_s=5.0, id_factory=ids)
    outcomes = run(pipeline, [(float(i), [person(0.05 + 0.03 * i)]) for i in range(30)])
    events = all_events(outcomes)
    assert [(e.kind, e.event_type, e.object_id, e.at) for e in events] == [
        ("detected", "person_detected", "obj1", 1.0)
    ]
    assert events[0].label == "person"
    assert events[0].group == "person"
    assert events[0].score == 0.8
    assert events[0].box == person(0.08).box
    assert outcomes[0].counts["person"] == 0
    assert outcomes[0].occupied == frozenset()
    assert outcomes[0].tracks[0].object_id == "obj1"
    assert all(o.counts["person"] == 1 and o.occupied == {"person"} for o in outcomes[1:])
    assert {t.object_id for o in outcomes for t in o.tracks} == {"obj1"}
    assert pipeline.next_change(29.0) == 34.0
    assert pipeline.tick(33.0) == {"person"}
    assert pipeline.tick(34.0) == frozenset()
    assert pipeline.next_change(34.0) is None


def test_two_people_crossing_are_two_events(ids: Callable[[], str]) -> None:
    """Crossing paths: two ids, two events, a count of two throughout."""
    pipeline = DetectionPipeline(id_factory=ids)
    outcomes = run(
        pipeline,
        [
            (float(i), [person(0.15 + 0.05 * i, cy=0.6), person(0.85 - 0.05 * i, cy=0.62)])
            for i in range(15)
        ],
    )
    assert [(e.object_id, e.at) for e in all_events(outcomes)] == [("obj1", 1.0), ("obj2", 1.0)]
    assert [o.counts["person"] for o in outcomes] == [0] + [2] * 14
    last = {obj.object_id: obj.box.bottom_center for obj in outcomes[-1].objects}
    assert last["obj1"] == pytest.approx((0.85, 0.75))
    assert last["obj2"] == pytest.approx((0.15, 0.77))


def test_flicker_keeps_the_object_and_occupancy(ids: Callable[[], str]) -> None:
    """Missed frames: same id, no second event; the count dips, occupancy stays on."""
    pipeline = DetectionPipeline(off_delay_s=10.0, id_factory=ids)
    seen = [True, True, False, True, False, False, True, False, False, False, False, True]
    outcomes = run(
        pipeline,
        [(float(i), [person(0.3 + 0.01 * i)] if s else []) for i, s in enumerate(seen)],
    )
    assert [e.object_id for e in all_events(outcomes)] == ["obj1"]
    assert [o.counts["person"] for o in outcomes] == [0, 1, 0, 1, 0, 0, 1, 0, 0, 0, 0, 1]
    assert all(o.occupied == {"person"} for o in outcomes[1:])
    assert {t.object_id for o in outcomes for t in o.tracks} == {"obj1"}


def test_parked_car_for_ten_minutes_is_one_event(ids: Callable[[], str]) -> None:
    """Half the frames missed and a 2-minute gap: one vehicle_detected, one id, counted on.

    Until it is stationary (30 s) every other frame is missed; after that, a random half of
    them and, for two minutes, all of them (longer than forget_after_s, shorter than
    stationary_forget_after_s).
    """
    rng = random.Random(1)
    pipeline = DetectionPipeline(off_delay_s=30.0, id_factory=ids)
    frames: list[tuple[float, list[Detection]]] = [
        (float(i), [car(0.1 + 0.1 * i)]) for i in range(5)
    ]
    t = 5.0
    while t <= 600.0:
        # Every other frame until stationary, then a random half and a 2-minute gap.
        seen = int(t) % 4 == 1 if t < 40.0 else rng.random() < 0.5 and not 300.0 <= t < 420.0
        jitter = car(0.5 + rng.uniform(-0.005, 0.005), 0.7 + rng.uniform(-0.005, 0.005))
        frames.append((t, [jitter] if seen else []))
        t += 2.0
    outcomes = run(pipeline, frames)
    events = all_events(outcomes)
    assert [(e.event_type, e.object_id) for e in events] == [("vehicle_detected", "obj1")]
    assert {tr.object_id for o in outcomes for tr in o.tracks} == {"obj1"}
    stationary_from = next(i for i, o in enumerate(outcomes) if o.tracks[0].stationary)
    # Once stationary, the car is counted in every frame, seen or not (the 2-minute gap too).
    assert all(o.counts["vehicle"] == 1 for o in outcomes[stationary_from:])
    assert all(o.occupied == {"vehicle"} for o in outcomes[1:])


def test_leaving_and_returning_after_forget_time_is_a_new_object(ids: Callable[[], str]) -> None:
    """Gone longer than forget_after_s: a new id and a new event."""
    pipeline = DetectionPipeline(
        tracker_config=TrackerConfig(forget_after_s=10.0), off_delay_s=5.0, id_factory=ids
    )
    frames = [(float(i), [person(0.5)]) for i in range(5)]
    frames += [(float(i), []) for i in range(5, 15)]
    frames += [(float(i), [person(0.5)]) for i in range(15, 20)]
    outcomes = run(pipeline, frames)
    events = all_events(outcomes)
    assert [(e.object_id, e.at) for e in events] == [("obj1", 1.0), ("obj2", 16.0)]
    assert outcomes[8].occupied == {"person"}  # last seen at 4, off delay 5
    assert outcomes[9].occupied == frozenset()
    assert outcomes[14].tracks == ()


def test_zones_in_the_first_event_and_one_zone_entered(ids: Callable[[], str]) -> None:
    """Confirmed on the path: detected carries Path; walking onto the porch: one zone_entered."""
    pipeline = DetectionPipeline(FilterConfig(zones=ZONES), off_delay_s=3.0, id_factory=ids)
    xs = [0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.65, 0.6, 0.55, 0.5, 0.45, 0.4]
    outcomes = run(pipeline, [(float(i), [person(x)]) for i, x in enumerate(xs)])
    events = all_events(outcomes)
    assert [(e.kind, e.zone, e.zones, e.at) for e in events] == [
        ("detected", None, frozenset({"Path"}), 1.0),
        # x = 0.5: the feet are on the border, which counts as both zones.
        ("zone_entered", "Porch", frozenset({"Path", "Porch"}), 5.0),
    ]
    assert outcomes[1].zone_counts[("Path", "person")] == 1
    assert outcomes[7].zone_counts == {
        ("Path", "person"): 0,
        ("Path", "vehicle"): 0,
        ("Path", "animal"): 0,
        ("Porch", "person"): 1,
    }
    assert outcomes[7].occupied == {"person", "zone:path:person", "zone:porch:person"}
    assert outcomes[9].occupied == {"person", "zone:porch:person"}
    # Back on the path: no event (it was announced there), the porch stays on for its delay.
    assert outcomes[-1].occupied == {"person", "zone:path:person", "zone:porch:person"}
    assert {t.object_id for o in outcomes for t in o.tracks} == {"obj1"}


def test_zone_at_confirmation_not_before(ids: Callable[[], str]) -> None:
    """Unconfirmed on the path, confirmed on the porch: detected carries Porch, nothing for Path."""
    pipeline = DetectionPipeline(FilterConfig(zones=ZONES), id_factory=ids)
    outcomes = run(pipeline, [(0.0, [person(0.45)]), (1.0, [person(0.52)]), (2.0, [person(0.55)])])
    assert [(e.kind, e.zones) for e in all_events(outcomes)] == [("detected", frozenset({"Porch"}))]


def test_vehicle_in_a_person_only_zone_is_not_in_it(ids: Callable[[], str]) -> None:
    """The porch tracks people only: a car parked there has no zone."""
    pipeline = DetectionPipeline(FilterConfig(zones=ZONES), id_factory=ids)
    outcomes = run(pipeline, [(0.0, [car(0.8)]), (1.0, [car(0.8)])])
    (event,) = all_events(outcomes)
    assert event.zones == frozenset()
    assert outcomes[1].zone_counts[("Path", "vehicle")] == 0


def test_unconfirmed_objects_never_emit_or_count(ids: Callable[[], str]) -> None:
    """Scores of 0.55 pass the filter (0.5) but never reach the confirm threshold (0.7)."""
    pipeline = DetectionPipeline(FilterConfig(zones=ZONES), id_factory=ids)
    outcomes = run(pipeline, [(float(i), [person(0.2 + 0.02 * i, 0.55)]) for i in range(40)])
    assert all_events(outcomes) == []
    assert all(o.objects == () for o in outcomes)
    assert all(sum(o.counts.values()) == 0 for o in outcomes)
    assert all(sum(o.zone_counts.values()) == 0 for o in outcomes)
    assert all(o.occupied == frozenset() for o in outcomes)
    assert all(len(o.tracks) == 1 and not o.tracks[0].confirmed for o in outcomes)
    assert pipeline.next_change(40.0) is None


def test_ten_thousand_boxes_are_capped(ids: Callable[[], str]) -> None:
    """A hostile detector's 10,000 boxes per frame: the caps hold and real objects survive."""
    rng = random.Random(42)
    pipeline = DetectionPipeline(id_factory=ids)
    outcomes = []
    for step in range(3):
        flood = [
            centred("person", rng.uniform(0.5, 0.69), rng.random(), rng.random(), 0.01, 0.01)
            for _ in range(10_000)
        ]
        outcomes.append(pipeline.process(frame(*flood, person(0.5, 0.95)), float(step)))
    assert all(len(o.tracks) <= 200 for o in outcomes)
    # Only the real person scores above 0.7: the only confirmed object and the only event.
    assert [e.object_id for e in all_events(outcomes)] == ["obj1"]
    assert outcomes[-1].counts["person"] == 1


def test_runtime_threshold_and_reconfigure_keep_tracks(ids: Callable[[], str]) -> None:
    """Threshold changes keep tracks (no second event); zone or group changes start over."""
    pipeline = DetectionPipeline(FilterConfig(zones=ZONES), off_delay_s=30.0, id_factory=ids)
    outcomes = run(pipeline, [(0.0, [person(0.3, 0.6)]), (1.0, [person(0.3, 0.6)])])
    assert all_events(outcomes) == []
    pipeline.tracker.set_confirm_threshold(0.6)
    (event,) = pipeline.process(frame(person(0.3, 0.6)), 2.0).events
    assert event.object_id == "obj1"

    pipeline.reconfigure(
        FilterConfig(zones=ZONES, min_score=0.4, min_area=0.001),
        TrackerConfig(confirm_threshold=0.6, forget_after_s=20.0),
        off_delay_s=5.0,
    )
    assert pipeline.filter_config.min_score == 0.4
    assert pipeline.tracker.config.forget_after_s == 20.0
    assert pipeline.occupancy.off_delay_s == 5.0
    outcome = pipeline.process(frame(person(0.3, 0.45)), 3.0)
    assert outcome.events == ()
    assert [o.object_id for o in outcome.objects] == ["obj1"]
    assert pipeline.next_change(3.0) == 8.0

    # New zones: everything starts over, the person is announced again under a new id.
    pipeline.reconfigure(FilterConfig(zones=(Zone("Yard", ((0, 0), (1, 0), (1, 1), (0, 1))),)))
    assert pipeline.tick(3.0) == frozenset()
    outcomes = run(pipeline, [(4.0, [person(0.3)]), (5.0, [person(0.3)])])
    assert [(e.object_id, e.zones) for e in all_events(outcomes)] == [("obj2", frozenset({"Yard"}))]
    assert outcomes[-1].occupied == {"person", "zone:yard:person"}

    # No longer tracking people: counts drop the group, tracks start over.
    pipeline.reconfigure(FilterConfig(groups=frozenset({"vehicle"})))
    outcome = pipeline.process(frame(person(0.3), car(0.7)), 6.0)
    assert dict(outcome.counts) == {"vehicle": 0}
    assert [t.group for t in outcome.tracks] == ["vehicle"]


def test_reset_forgets_everything(ids: Callable[[], str]) -> None:
    """After reset the same object is new again, and occupancy is off."""
    pipeline = DetectionPipeline(id_factory=ids)
    run(pipeline, [(0.0, [person(0.5)]), (1.0, [person(0.5)])])
    # Only the off delay: the tracks stay, the object is not announced again.
    pipeline.reconfigure(off_delay_s=7.0)
    assert pipeline.process(frame(person(0.5)), 1.5).events == ()
    assert pipeline.next_change(1.5) == 8.5
    pipeline.reset()
    assert pipeline.tick(1.0) == frozenset()
    outcomes = run(pipeline, [(2.0, [person(0.5)]), (3.0, [person(0.5)])])
    assert [e.object_id for e in all_events(outcomes)] == ["obj2"]


def test_default_pipeline_settings() -> None:
    """Defaults: every group, no zones, a 30 s off delay."""
    pipeline = DetectionPipeline()
    assert pipeline.filter_config == FilterConfig()
    assert pipeline.tracker.config == TrackerConfig()
    assert pipeline.occupancy.off_delay_s == 30.0
    outcome = pipeline.process(frame(), 0.0)
    assert dict(outcome.counts) == {"person": 0, "vehicle": 0, "animal": 0}
    assert dict(outcome.zone_counts) == {}
    assert outcome.events == ()
