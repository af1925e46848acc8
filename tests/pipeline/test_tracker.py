"""The tracker: ids across frames, motion model, confirmation, stationary objects, caps."""

from __future__ import annotations

from collections.abc import Callable
import random

import pytest

from custom_components.home_security_intel.detection.model import Box
from custom_components.home_security_intel.pipeline.filters import (
    MAX_DETECTIONS_PER_FRAME,
    ZonedDetection,
)
from custom_components.home_security_intel.pipeline.tracker import (
    MAX_TRACKS,
    ObjectTracker,
    TrackedObject,
    TrackerConfig,
    iou,
)

from .common import centred, zoned


def person_at(cx: float, score: float = 0.8, cy: float = 0.6) -> ZonedDetection:
    """A person 0.1 wide and 0.3 tall centred at (cx, cy)."""
    return zoned(centred("person", score, cx, cy, 0.1, 0.3))


def car_at(cx: float, cy: float = 0.7, label: str = "car", score: float = 0.8) -> ZonedDetection:
    """A car 0.3 x 0.2 centred at (cx, cy)."""
    return zoned(centred(label, score, cx, cy, 0.3, 0.2), "vehicle")


def only(objects: tuple[TrackedObject, ...]) -> TrackedObject:
    """The single track of an update."""
    assert len(objects) == 1, objects
    return objects[0]


def test_iou() -> None:
    """Identical, disjoint, touching, half-overlapping and empty boxes."""
    a = Box(0.0, 0.0, 0.2, 0.2)
    assert iou(a, a) == pytest.approx(1.0)
    assert iou(a, Box(0.5, 0.5, 0.6, 0.6)) == 0.0
    assert iou(a, Box(0.2, 0.0, 0.4, 0.2)) == 0.0
    assert iou(a, Box(0.1, 0.0, 0.3, 0.2)) == pytest.approx(1 / 3)
    assert iou(a, Box(0.1, 0.1, 0.1, 0.1)) == 0.0


def test_person_walking_across_keeps_one_id(ids: Callable[[], str]) -> None:
    """30 frames, 1 s apart, 0.03 per frame: one track, confirmed from the second frame."""
    tracker = ObjectTracker(TrackerConfig(), ids)
    seen: set[str] = set()
    for step in range(30):
        obj = only(tracker.update([person_at(0.05 + 0.03 * step)], float(step)))
        seen.add(obj.object_id)
        assert obj.visible
        assert obj.confirmed is (step >= 1)
        assert obj.frames_seen == step + 1
        assert not obj.stationary
    assert seen == {"obj1"}
    assert obj.first_seen == 0.0
    assert obj.last_seen == 29.0


def test_fast_walker_needs_the_motion_model(ids: Callable[[], str]) -> None:
    """At 0.07 per frame consecutive boxes overlap too little; the prediction still matches."""
    assert iou(person_at(0.1).detection.box, person_at(0.17).detection.box) < 0.25
    tracker = ObjectTracker(TrackerConfig(), ids)
    # The first two frames overlap enough to measure a velocity.
    objects = tracker.update([person_at(0.10)], 0.0)
    objects = tracker.update([person_at(0.13)], 1.0)
    for step in range(2, 12):
        objects = tracker.update([person_at(0.13 + 0.07 * (step - 1))], float(step))
    assert {obj.object_id for obj in objects} == {"obj1"}
    assert only(objects).frames_seen == 12


def test_motion_model_uses_elapsed_time(ids: Callable[[], str]) -> None:
    """After a 2 s gap the prediction has moved twice as far as after 1 s."""
    tracker = ObjectTracker(TrackerConfig(), ids)
    tracker.update([person_at(0.10)], 0.0)
    tracker.update([person_at(0.13)], 1.0)
    tracker.update([person_at(0.16)], 2.0)
    # Missed at t=3 and t=4; at t=5 the person is at 0.27, far from the last box at 0.16 and
    # from where one frame's worth of motion would put it (0.19).
    tracker.update([], 3.0)
    tracker.update([], 4.0)
    assert iou(person_at(0.19).detection.box, person_at(0.27).detection.box) < 0.25
    assert iou(person_at(0.16).detection.box, person_at(0.27).detection.box) < 0.25
    objects = tracker.update([person_at(0.27)], 5.0)
    assert [obj.object_id for obj in objects] == ["obj1"]


def test_two_people_crossing_keep_their_ids(ids: Callable[[], str]) -> None:
    """Walking towards each other, overlapping in the middle, each keeps its id."""
    tracker = ObjectTracker(TrackerConfig(), ids)
    for step in range(15):
        left = person_at(0.15 + 0.05 * step, cy=0.60)
        right = person_at(0.85 - 0.05 * step, cy=0.62)
        objects = tracker.update([left, right], float(step))
        assert len(objects) == 2
        by_id = {obj.object_id: obj for obj in objects}
        assert by_id["obj1"].box == left.detection.box
        assert by_id["obj2"].box == right.detection.box
    assert all(obj.confirmed and obj.frames_seen == 15 for obj in objects)


def test_flicker_keeps_the_id_until_forget_time(ids: Callable[[], str]) -> None:
    """Missed frames (up to just under forget_after_s) keep the track; a longer gap drops it."""
    tracker = ObjectTracker(TrackerConfig(forget_after_s=10.0), ids)
    tracker.update([person_at(0.5)], 0.0)
    tracker.update([person_at(0.5)], 1.0)
    for t in (2.0, 3.0):
        lost = only(tracker.update([], t))
        assert (lost.object_id, lost.visible, lost.confirmed) == ("obj1", False, True)
        assert lost.last_seen == 1.0
    assert only(tracker.update([person_at(0.51)], 4.0)).object_id == "obj1"
    # Unseen for 9.9 s: still there.
    assert only(tracker.update([], 13.9)).object_id == "obj1"
    assert only(tracker.update([person_at(0.5)], 13.95)).object_id == "obj1"
    # Unseen for 10 s: forgotten before matching, so the same spot gives a new id.
    assert tracker.update([], 23.95) == ()
    fresh = only(tracker.update([person_at(0.5)], 24.0))
    assert fresh.object_id == "obj2"
    assert not fresh.confirmed
    assert len(tracker) == 1


def test_groups_never_match_each_other(ids: Callable[[], str]) -> None:
    """A person box exactly on a car's box starts its own track."""
    tracker = ObjectTracker(TrackerConfig(), ids)
    car = car_at(0.5)
    tracker.update([car], 0.0)
    person = zoned(car.detection.__class__("person", 0.9, car.detection.box), "person")
    objects = tracker.update([person], 1.0)
    assert [(o.object_id, o.group, o.visible) for o in objects] == [
        ("obj1", "vehicle", False),
        ("obj2", "person", True),
    ]


def test_label_is_the_most_frequent_of_the_history(ids: Callable[[], str]) -> None:
    """A car that the detector sometimes calls a truck stays a car, and the other way round."""
    tracker = ObjectTracker(TrackerConfig(history=4), ids)
    labels = ["car", "truck", "car", "truck"]
    for step, label in enumerate(labels):
        obj = only(tracker.update([car_at(0.5, label=label)], float(step)))
    # Two each: the most recent wins the tie.
    assert obj.label == "truck"
    obj = only(tracker.update([car_at(0.5, label="car")], 4.0))
    # History is the last 4: truck, car, truck, car -> tie, latest is car.
    assert obj.label == "car"
    obj = only(tracker.update([car_at(0.5, label="truck")], 5.0))
    obj = only(tracker.update([car_at(0.5, label="truck")], 6.0))
    assert obj.label == "truck"
    assert obj.group == "vehicle"


def test_confirmation_uses_the_median_and_min_frames(ids: Callable[[], str]) -> None:
    """One high score is not enough; min_frames must be reached; the median must pass."""
    tracker = ObjectTracker(TrackerConfig(min_frames=3, confirm_threshold=0.7), ids)
    assert not only(tracker.update([person_at(0.5, 0.95)], 0.0)).confirmed
    assert not only(tracker.update([person_at(0.5, 0.95)], 1.0)).confirmed
    assert only(tracker.update([person_at(0.5, 0.95)], 2.0)).confirmed

    tracker = ObjectTracker(TrackerConfig(min_frames=2, confirm_threshold=0.7), ids)
    scores = [0.95, 0.55, 0.6, 0.9, 0.9]
    confirmed = []
    for step, score in enumerate(scores):
        obj = only(tracker.update([person_at(0.5, score)], float(step)))
        confirmed.append(obj.confirmed)
    # Medians: 0.95 (1 frame), 0.75, 0.6, 0.75 -> confirmed at the second frame already.
    assert confirmed == [False, True, True, True, True]

    tracker = ObjectTracker(TrackerConfig(min_frames=2, confirm_threshold=0.7), ids)
    confirmed = []
    for step, score in enumerate([0.9, 0.5, 0.6, 0.8, 0.8]):
        obj = only(tracker.update([person_at(0.5, score)], float(step)))
        confirmed.append(obj.confirmed)
        assert obj.score == score
    # Medians: -, 0.7 (>= 0.7 passes)
    assert confirmed == [False, True, True, True, True]
    assert obj.median_score == pytest.approx(0.8)


def test_low_scores_never_confirm(ids: Callable[[], str]) -> None:
    """A person scored 0.55 for a minute is tracked but never confirmed."""
    tracker = ObjectTracker(TrackerConfig(), ids)
    for step in range(60):
        obj = only(tracker.update([person_at(0.5, 0.55)], float(step)))
        assert not obj.confirmed
    assert obj.frames_seen == 60
    assert obj.median_score == pytest.approx(0.55)


def test_confirm_threshold_changes_at_run_time(ids: Callable[[], str]) -> None:
    """Lowering it confirms on the next match; raising it never unconfirms."""
    tracker = ObjectTracker(TrackerConfig(confirm_threshold=0.7), ids)
    tracker.update([person_at(0.5, 0.6)], 0.0)
    assert not only(tracker.update([person_at(0.5, 0.6)], 1.0)).confirmed
    tracker.set_confirm_threshold(0.6)
    assert tracker.config.confirm_threshold == 0.6
    assert only(tracker.update([person_at(0.5, 0.6)], 2.0)).confirmed
    tracker.set_confirm_threshold(0.9)
    assert only(tracker.update([person_at(0.5, 0.6)], 3.0)).confirmed
    with pytest.raises(ValueError, match="confirm_threshold"):
        tracker.set_confirm_threshold(1.5)
    assert tracker.config.confirm_threshold == 0.9


def jittered_car(rng: random.Random, cx: float = 0.5, cy: float = 0.7) -> ZonedDetection:
    """A parked car as a detector sees it: the box wobbles by up to 0.5 % of the frame."""
    return car_at(cx + rng.uniform(-0.005, 0.005), cy + rng.uniform(-0.005, 0.005))


def test_parked_car_becomes_stationary_and_survives_long_gaps(ids: Callable[[], str]) -> None:
    """Half the frames missed for 10 minutes, one 2-minute gap: still the same one track.

    Until it is stationary every other frame is missed (gaps of 4 s, under forget_after_s);
    then a random half, and for two minutes every frame.
    """
    rng = random.Random(6)
    tracker = ObjectTracker(TrackerConfig(), ids)
    # Drives in from the left.
    for step in range(5):
        obj = only(tracker.update([car_at(0.1 + 0.1 * step)], float(step)))
    assert not obj.stationary
    t = 5.0
    became_stationary = None
    while t < 600.0:
        # Every other frame until stationary, then a random half and a 2-minute gap.
        seen = int(t) % 4 == 1 if t < 40.0 else rng.random() < 0.5 and not 300.0 <= t < 420.0
        objects = tracker.update([jittered_car(rng)] if seen else [], t)
        obj = only(objects)
        assert obj.object_id == "obj1"
        if obj.stationary and became_stationary is None:
            became_stationary = obj.last_seen
        t += 2.0
    assert became_stationary is not None
    # Stationary once its box stayed put for stationary_after_s after it parked at t=4.
    assert 34.0 <= became_stationary <= 40.0
    assert obj.stationary
    assert obj.confirmed


def test_stationary_track_is_forgotten_after_its_own_delay(ids: Callable[[], str]) -> None:
    """A lost stationary track lasts stationary_forget_after_s; then a new id."""
    tracker = ObjectTracker(TrackerConfig(stationary_forget_after_s=300.0), ids)
    for t in range(0, 40, 2):
        obj = only(tracker.update([car_at(0.5)], float(t)))
    assert obj.stationary
    assert only(tracker.update([], 38.0 + 299.0)).object_id == "obj1"
    assert tracker.update([], 38.0 + 300.0) == ()
    assert only(tracker.update([car_at(0.5)], 340.0)).object_id == "obj2"


def test_moving_again_clears_stationary(ids: Callable[[], str]) -> None:
    """A parked car that drives off is no longer stationary (and forgotten at the short delay)."""
    tracker = ObjectTracker(TrackerConfig(), ids)
    for t in range(0, 32, 2):
        obj = only(tracker.update([car_at(0.5)], float(t)))
    assert obj.stationary
    obj = only(tracker.update([car_at(0.55)], 32.0))
    assert not obj.stationary
    assert obj.object_id == "obj1"
    # Back to the short forget delay.
    assert tracker.update([], 42.0) == ()


def test_stationary_window_restarts_when_the_object_moves(ids: Callable[[], str]) -> None:
    """Slow creeping (each step small, the drift large) never counts as stationary."""
    tracker = ObjectTracker(TrackerConfig(stationary_after_s=30.0), ids)
    for step in range(60):
        obj = only(tracker.update([car_at(0.2 + 0.01 * step)], float(step)))
        assert not obj.stationary
    assert obj.object_id == "obj1"


def test_hostile_flood_is_capped(ids: Callable[[], str]) -> None:
    """10,000 boxes per frame: at most MAX_TRACKS tracks, the real person keeps its id."""
    rng = random.Random(10_000)
    tracker = ObjectTracker(TrackerConfig(), ids)
    tracker.update([person_at(0.5, 0.9, cy=0.5)], 0.0)
    tracker.update([person_at(0.5, 0.9, cy=0.5)], 1.0)
    for step in range(2, 5):
        flood = [
            zoned(centred("person", rng.uniform(0.5, 0.85), rng.random(), rng.random(), 0.01, 0.01))
            for _ in range(10_000)
        ]
        objects = tracker.update([*flood, person_at(0.5, 0.9, cy=0.5)], float(step))
        assert len(objects) <= MAX_TRACKS
        assert len(tracker) <= MAX_TRACKS
    ids_now = {obj.object_id: obj for obj in objects}
    assert ids_now["obj1"].confirmed
    assert ids_now["obj1"].visible
    assert len(objects) == MAX_TRACKS


def test_tracker_caps_detections_per_frame(ids: Callable[[], str]) -> None:
    """Only the best MAX_DETECTIONS_PER_FRAME detections are considered."""
    tracker = ObjectTracker(TrackerConfig(), ids)
    detections = [
        zoned(centred("person", 0.5 + i / 100_000, (i % 100) / 100, (i // 100) / 100, 0.005, 0.005))
        for i in range(10_000)
    ]
    objects = tracker.update(detections, 0.0)
    assert len(objects) == MAX_TRACKS
    # The tracks started are the highest-scored ones.
    assert min(obj.score for obj in objects) >= 0.5 + (10_000 - MAX_TRACKS) / 100_000 - 1e-12
    assert MAX_DETECTIONS_PER_FRAME > MAX_TRACKS


def test_full_tracker_evicts_lost_unconfirmed_tracks_first(ids: Callable[[], str]) -> None:
    """When full, lost unconfirmed tracks make room; confirmed ones are never evicted."""
    tracker = ObjectTracker(TrackerConfig(), ids)
    confirmed_car = car_at(0.5, cy=0.1)
    tracker.update([confirmed_car], 0.0)
    tracker.update([confirmed_car], 1.0)
    first = [person_at(i / 200, 0.6, cy=0.9) for i in range(MAX_TRACKS - 1)]
    tracker.update(first, 2.0)
    assert len(tracker) == MAX_TRACKS
    # A new batch elsewhere: the old unconfirmed, now unseen, tracks make room.
    second = [person_at(i / 200, 0.6, cy=0.3) for i in range(MAX_TRACKS - 1)]
    objects = tracker.update(second, 3.0)
    assert len(objects) == MAX_TRACKS
    by_id = {obj.object_id: obj for obj in objects}
    assert by_id["obj1"].confirmed
    assert not by_id["obj1"].visible
    assert sum(obj.visible for obj in objects) == MAX_TRACKS - 1
    # Full of visible tracks: a further new detection finds no room this frame.
    extra = [*second, person_at(0.5, 0.6, cy=0.6)]
    objects = tracker.update(extra, 4.0)
    assert len(objects) == MAX_TRACKS
    assert not any(obj.box == extra[-1].detection.box for obj in objects)


def test_greedy_matching_prefers_the_best_overlap(ids: Callable[[], str]) -> None:
    """Two detections near one track: the closer one continues it, the other starts a track."""
    tracker = ObjectTracker(TrackerConfig(), ids)
    tracker.update([person_at(0.5)], 0.0)
    objects = tracker.update([person_at(0.56), person_at(0.51)], 1.0)
    by_id = {obj.object_id: obj for obj in objects}
    assert by_id["obj1"].box == person_at(0.51).detection.box
    assert by_id["obj2"].box == person_at(0.56).detection.box


def test_same_time_update_does_not_break_the_motion_model(ids: Callable[[], str]) -> None:
    """Two frames with the same timestamp (dt = 0): no division by zero, same track."""
    tracker = ObjectTracker(TrackerConfig(), ids)
    tracker.update([person_at(0.5)], 1.0)
    tracker.update([person_at(0.52)], 1.0)
    obj = only(tracker.update([person_at(0.54)], 2.0))
    assert (obj.object_id, obj.frames_seen) == ("obj1", 3)


def test_zones_follow_the_latest_detection(ids: Callable[[], str]) -> None:
    """A track's zones are its latest detection's, and kept while it is unseen."""
    tracker = ObjectTracker(TrackerConfig(), ids)
    tracker.update([zoned(person_at(0.5).detection, zones=frozenset({"Porch"}))], 0.0)
    obj = only(tracker.update([zoned(person_at(0.5).detection, zones=frozenset({"Path"}))], 1.0))
    assert obj.zones == {"Path"}
    assert only(tracker.update([], 2.0)).zones == {"Path"}


def test_reset_and_reconfigure(ids: Callable[[], str]) -> None:
    """Reconfigure keeps tracks (shortening histories); reset forgets them."""
    tracker = ObjectTracker(TrackerConfig(history=10, confirm_threshold=0.9), ids)
    for step, score in enumerate([0.2, 0.2, 0.2, 0.8, 0.8]):
        obj = only(tracker.update([person_at(0.5, score)], float(step)))
    assert not obj.confirmed
    tracker.reconfigure(TrackerConfig(history=2, confirm_threshold=0.8))
    assert tracker.config.history == 2
    obj = only(tracker.update([person_at(0.5, 0.8)], 5.0))
    assert obj.object_id == "obj1"
    assert obj.median_score == pytest.approx(0.8)
    assert obj.confirmed
    tracker.reconfigure(TrackerConfig(history=2, forget_after_s=1.0))
    assert tracker.update([], 6.0) == ()
    tracker.update([person_at(0.5)], 7.0)
    tracker.reset()
    assert len(tracker) == 0
    assert only(tracker.update([person_at(0.5)], 8.0)).object_id == "obj3"


def test_default_ids_are_unique_and_repeating_factories_are_survived() -> None:
    """Default ids are random hex; a factory that repeats itself still gives distinct ids."""
    tracker = ObjectTracker()
    objects = tracker.update([person_at(0.2), person_at(0.8)], 0.0)
    assert len({obj.object_id for obj in objects}) == 2
    assert all(len(obj.object_id) == 32 for obj in objects)
    assert tracker.config == TrackerConfig()

    stuck = ObjectTracker(TrackerConfig(), lambda: "same")
    objects = stuck.update([person_at(0.2), person_at(0.8)], 0.0)
    object_ids = [obj.object_id for obj in objects]
    assert object_ids[0] == "same"
    assert object_ids[1].startswith("same-")
    assert len(set(object_ids)) == 2


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("iou_threshold", 0.0),
        ("iou_threshold", 1.1),
        ("stationary_iou", float("nan")),
        ("confirm_threshold", -0.1),
        ("confirm_threshold", float("inf")),
        ("min_frames", 0),
        ("history", 0),
        ("forget_after_s", -1.0),
        ("stationary_after_s", float("nan")),
        ("stationary_forget_after_s", float("inf")),
    ],
)
def test_tracker_config_refuses_nonsense(field: str, value: float) -> None:
    """Every setting is checked, and the error names it."""
    with pytest.raises(ValueError, match=field):
        TrackerConfig(**{field: value})  # type: ignore[arg-type]
