"""Security-event grouping driven by a fake clock: open, stay open, close, continue, restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest

from custom_components.home_security_intel.intelligence.grouping import (
    EventGrouper,
    GroupingConfig,
    close_interrupted,
    severity_for,
)
from custom_components.home_security_intel.intelligence.model import (
    AiVerdict,
    RiskAssessment,
    SecurityEvent,
)
from custom_components.home_security_intel.intelligence.risk import RiskContext, assess

from .common import tracked

T0 = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
LOW = RiskAssessment(10)
MEDIUM = RiskAssessment(40)
HIGH = RiskAssessment(70)


class Clock:
    """A fake clock: seconds after T0."""

    def __init__(self) -> None:
        self.now = T0

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def grouper(**config: object) -> EventGrouper:
    ids = count(1)
    return EventGrouper(
        "cam",
        "Garden",
        GroupingConfig(**config),  # type: ignore[arg-type]
        describe=lambda risk: (f"score {risk.score}", f"{len(risk.reasons)} reasons"),
        id_factory=lambda: f"{next(ids):032x}",
    )


def kinds(changes: list) -> list[str]:  # type: ignore[type-arg]
    return [change.kind for change in changes]


def test_opens_with_the_first_object_stays_open_and_closes_after_the_idle_time() -> None:
    clock, events = Clock(), grouper()
    person = tracked("p1", zones=frozenset({"Backyard"}))
    opened = events.update([person], MEDIUM, clock.now)
    assert kinds(opened) == ["started"]
    event = opened[0].event
    assert opened[0].best_frame
    assert event.is_open
    assert event.start == T0
    assert event.labels == {"person": 1}
    assert event.severity == "detection"
    assert event.title == "score 40"
    # Seen again 20 s later, gone for 29 s: still the same event.
    assert events.update([person], MEDIUM, clock.advance(20)) == []
    assert events.update([], LOW, clock.advance(29)) == []
    assert events.tick(clock.advance(0.5)) == []
    assert events.deadline() == T0 + timedelta(seconds=50)
    closed = events.tick(clock.advance(0.5))
    assert kinds(closed) == ["ended"]
    assert closed[0].event.end == T0 + timedelta(seconds=20)  # when it was last seen
    assert closed[0].event.event_id == event.event_id
    assert events.current is None
    assert events.deadline() is None


def test_objects_arriving_within_the_idle_time_join_the_event() -> None:
    clock, events = Clock(), grouper()
    events.update([tracked("p1")], MEDIUM, clock.now)
    events.update([], LOW, clock.advance(25))
    joined = events.update([tracked("d1", "dog", zones=frozenset({"Lawn"}))], LOW, clock.advance(4))
    assert joined == []
    assert events.current is not None
    assert events.current.labels == {"person": 1, "dog": 1}
    assert events.current.zones == {"Lawn"}
    # An object after the idle time opens a new event.
    events.tick(clock.advance(31))
    assert kinds(events.update([tracked("p2")], MEDIUM, clock.advance(1))) == ["started"]


def test_zones_and_best_score_accumulate_per_object() -> None:
    clock, events = Clock(), grouper()
    events.update([tracked("p1", zones=frozenset({"Drive"}), score=0.8)], MEDIUM, clock.now)
    events.update([tracked("p1", zones=frozenset({"Door"}), score=0.95)], MEDIUM, clock.advance(1))
    events.update([tracked("p1", score=0.7)], MEDIUM, clock.advance(1))
    assert events.current is not None
    (obj,) = events.current.objects
    assert obj.zones == {"Drive", "Door"}
    assert obj.best_score == 0.95
    assert obj.first_seen == T0
    assert obj.last_seen == T0 + timedelta(seconds=2)


def test_a_parked_car_opens_nothing_and_keeps_nothing_open() -> None:
    clock, events = Clock(), grouper()
    parked = tracked("v1", "car", stationary=True)
    for _ in range(100):
        assert events.update([parked], LOW, clock.advance(36)) == []
    assert events.current is None
    # A person walking past the parked car opens an event; the car does not keep it open.
    (started,) = events.update([parked, tracked("p1")], MEDIUM, clock.advance(1))
    assert started.event.labels == {"person": 1}
    for _ in range(30):
        events.update([parked], LOW, clock.advance(1))
    assert events.current is None


def test_a_rise_in_level_is_announced_a_better_frame_is_recorded_quietly() -> None:
    clock, events = Clock(), grouper()
    events.update([tracked("p1")], RiskAssessment(35), clock.now)
    improved = events.update([tracked("p1")], RiskAssessment(45), clock.advance(1))
    assert kinds(improved) == ["improved"]
    assert improved[0].best_frame
    assert events.update([tracked("p1")], RiskAssessment(40), clock.advance(1)) == []
    raised = events.update([tracked("p1")], HIGH, clock.advance(1))
    assert kinds(raised) == ["updated"]
    assert raised[0].best_frame is False
    assert raised[0].event.severity == "alert"
    assert raised[0].event.risk == HIGH


def test_a_person_with_a_high_score_opens_as_an_alert_at_once() -> None:
    events = grouper()
    person = tracked("p1", zones=frozenset({"Backyard"}))
    risk = assess([person], RiskContext(night=True, anybody_home=False))
    (change,) = events.update([person], risk, T0)
    assert change.kind == "started"
    assert change.event.severity == "alert"
    assert change.event.level == "high"
    assert change.event.risk.reasons == risk.reasons


@pytest.mark.parametrize(
    ("alert_level", "score", "severity"),
    [
        ("high", 59, "detection"),
        ("high", 60, "alert"),
        ("medium", 30, "alert"),
        ("critical", 84, "detection"),
        ("low", 0, "alert"),
    ],
)
def test_severity_follows_the_alert_level(alert_level: str, score: int, severity: str) -> None:
    assert severity_for(score, alert_level) == severity  # type: ignore[arg-type]


def test_the_maximum_length_closes_and_a_new_event_continues_it() -> None:
    clock, events = Clock(), grouper(max_s=90)
    first = events.update([tracked("p1")], MEDIUM, clock.now)[0].event
    for _ in range(89):
        assert events.update([tracked("p1")], MEDIUM, clock.advance(1)) == []
    assert events.deadline() == T0 + timedelta(seconds=90)
    changes = events.update([tracked("p1")], MEDIUM, clock.advance(1))
    assert kinds(changes) == ["ended", "started"]
    ended, started = (c.event for c in changes)
    assert ended.event_id == first.event_id
    assert ended.end == T0 + timedelta(seconds=90)
    assert started.continues == first.event_id
    assert started.event_id != first.event_id
    assert started.start == T0 + timedelta(seconds=90)
    assert started.labels == {"person": 1}


def test_the_maximum_length_without_objects_just_closes() -> None:
    clock, events = Clock(), grouper(max_s=10, idle_s=30)
    events.update([tracked("p1")], MEDIUM, clock.now)
    events.update([tracked("p1")], MEDIUM, clock.advance(9))
    (ended,) = events.tick(clock.advance(1))
    assert ended.kind == "ended"
    assert ended.event.end == T0 + timedelta(seconds=10)
    assert events.current is None


def test_an_ai_verdict_refines_the_open_event_only() -> None:
    clock, events = Clock(), grouper()
    event = events.update([tracked("p1")], MEDIUM, clock.now)[0].event
    verdict = AiVerdict(90, "Stranger at the back", "Someone tries the back door.", "tools")
    refined = events.apply_verdict(event.event_id, verdict)
    assert refined is not None
    assert refined.score == 90
    assert refined.severity == "alert"
    assert refined.title == "Stranger at the back"
    assert refined.risk == MEDIUM
    # Later frames raise the rules peak but keep the AI's title and score.
    events.update([tracked("p1")], HIGH, clock.advance(1))
    assert events.current is not None
    assert events.current.title == "Stranger at the back"
    assert events.current.risk == HIGH
    assert events.apply_verdict("someone else", verdict) is None
    events.close()
    assert events.apply_verdict(event.event_id, verdict) is None


def test_closing_on_unload_ends_the_event_when_last_seen() -> None:
    clock, events = Clock(), grouper()
    assert events.close() == []
    events.update([tracked("p1")], MEDIUM, clock.now)
    events.update([tracked("p1")], MEDIUM, clock.advance(5))
    clock.advance(10)
    (ended,) = events.close()
    assert ended.kind == "ended"
    assert ended.event.end == T0 + timedelta(seconds=5)


def test_restart_in_the_middle_of_an_event_closes_it_at_its_last_sighting() -> None:
    """The process stopped while an event was open: the stored copy is closed on start."""
    clock, before = Clock(), grouper()
    before.update([tracked("p1")], HIGH, clock.now)
    before.update([tracked("p1"), tracked("p2")], HIGH, clock.advance(12))
    stored = SecurityEvent.from_dict(before.current.to_dict())  # type: ignore[union-attr]
    assert stored.is_open
    # ... the process is gone; a new one starts and finds the open event in the store.
    closed = close_interrupted(stored)
    assert closed.end == T0 + timedelta(seconds=12)
    assert closed.event_id == stored.event_id
    assert closed.labels == {"person": 2}
    assert close_interrupted(closed) is closed
    # An open event without objects ends where it started.
    bare = SecurityEvent("0" * 32, "cam", "Garden", T0)
    assert close_interrupted(bare).end == T0
    # The new process's grouper starts fresh: the next person opens a new event.
    after = grouper()
    assert kinds(after.update([tracked("p3")], HIGH, clock.advance(60))) == ["started"]


def test_settings_that_cannot_work_are_refused() -> None:
    with pytest.raises(ValueError, match="idle"):
        GroupingConfig(idle_s=0)
    with pytest.raises(ValueError, match="urgent"):
        GroupingConfig(alert_level="urgent")  # type: ignore[arg-type]
