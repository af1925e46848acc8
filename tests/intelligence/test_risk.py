"""The risk rules on a table of scenarios: expected levels and the reasons that explain them."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from custom_components.home_security_intel.intelligence.model import Reason, RiskLevel
from custom_components.home_security_intel.intelligence.risk import (
    ENGLISH,
    RiskContext,
    VisitLog,
    assess,
    render_reason,
)
from custom_components.home_security_intel.pipeline.tracker import TrackedObject

from .common import tracked

BACKYARD = frozenset({"Backyard"})
DRIVEWAY = frozenset({"Driveway"})
DOOR = frozenset({"Front door"})


@dataclass(frozen=True)
class Scenario:
    name: str
    objects: tuple[TrackedObject, ...]
    context: RiskContext
    level: RiskLevel
    reasons: tuple[str, ...]
    """Rendered (English), biggest contribution first."""


SCENARIOS = (
    Scenario(
        "a cat at noon",
        (tracked("c1", "cat", last_seen=5.0),),
        RiskContext(night=False, anybody_home=True),
        "low",
        ("cat in view",),
    ),
    Scenario(
        "a person at 3 am in the backyard, nobody home",
        (tracked("p1", zones=BACKYARD, last_seen=8.0),),
        RiskContext(night=True, anybody_home=False),
        "high",
        ("person in view", "person in Backyard at night", "nobody home"),
    ),
    Scenario(
        "the same at 3 am with the alarm armed",
        (tracked("p1", zones=BACKYARD, last_seen=8.0),),
        RiskContext(night=True, anybody_home=False, alarm_armed=True),
        "critical",
        ("person in view", "person in Backyard at night", "alarm armed", "nobody home"),
    ),
    Scenario(
        "a car arriving in the driveway",
        (tracked("v1", "car", zones=DRIVEWAY, last_seen=4.0),),
        RiskContext(night=False, anybody_home=True),
        "medium",
        ("car moving", "car in Driveway"),
    ),
    Scenario(
        "a car parked for an hour",
        (tracked("v1", "car", zones=DRIVEWAY, last_seen=3600.0, stationary=True),),
        RiskContext(night=False, anybody_home=True),
        "low",
        ("car parked",),
    ),
    Scenario(
        "loitering at the door",
        (tracked("p1", zones=DOOR, first_seen=0.0, last_seen=200.0),),
        RiskContext(night=False, anybody_home=True),
        "high",
        ("person in view", "person lingering for 3 min", "person in Front door"),
    ),
    Scenario(
        "the same person three times in an hour",
        (tracked("p3", last_seen=5.0),),
        RiskContext(night=False, anybody_home=True, visits_last_hour=3),
        "medium",
        ("person in view", "3 visits within an hour"),
    ),
    Scenario(
        "nothing in view",
        (),
        RiskContext(night=True, anybody_home=False, alarm_armed=True),
        "low",
        (),
    ),
)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_scenarios(scenario: Scenario) -> None:
    assessment = assess(scenario.objects, scenario.context)
    assert assessment.level == scenario.level, assessment
    assert tuple(render_reason(r) for r in assessment.reasons) == scenario.reasons
    assert assessment.score == sum(r.points for r in assessment.reasons)
    assert assessment.source == "rules"


def test_more_people_add_a_little_and_are_capped() -> None:
    two = assess([tracked("a"), tracked("b")], RiskContext())
    crowd = assess([tracked(str(i)) for i in range(10)], RiskContext())
    one = assess([tracked("a")], RiskContext())
    assert one.score < two.score < crowd.score
    assert crowd.score - one.score == 15
    assert "10 people in view" in [render_reason(r) for r in crowd.reasons]


def test_an_animal_next_to_a_person_adds_nothing() -> None:
    alone = assess([tracked("p")], RiskContext())
    with_dog = assess([tracked("p"), tracked("d", "dog")], RiskContext())
    assert alone == with_dog


def test_a_parked_car_does_not_trip_the_alarm_rule() -> None:
    parked = assess([tracked("v", "car", stationary=True)], RiskContext(alarm_armed=True))
    moving = assess([tracked("v", "car")], RiskContext(alarm_armed=True, night=True))
    assert [r.key for r in parked.reasons] == ["vehicle_parked"]
    assert {r.key for r in moving.reasons} == {"vehicle", "vehicle_at_night", "alarm_armed"}


def test_unknown_home_and_panel_add_nothing() -> None:
    unknown = assess([tracked("p")], RiskContext(anybody_home=None, alarm_armed=None))
    assert [r.key for r in unknown.reasons] == ["person"]


def test_the_score_is_capped_at_100() -> None:
    worst = assess(
        [tracked(str(i), zones=BACKYARD, last_seen=400.0) for i in range(5)],
        RiskContext(night=True, anybody_home=False, alarm_armed=True, visits_last_hour=9),
    )
    assert worst.score == 100
    assert worst.level == "critical"


def test_visit_log_counts_the_last_hour_only() -> None:
    log = VisitLog()
    for at in (0.0, 1000.0, 2000.0):
        log.add(at)
    assert log.count(2000.0) == 3
    assert log.count(3600.0) == 2  # the first visit is exactly an hour old: gone
    assert log.count(10_000.0) == 0


def test_rendering_uses_translations_and_falls_back_to_english() -> None:
    reason = Reason("person_in_zone_at_night", {"label": "person", "zone": "Garten"}, 30)
    german = {"person_in_zone_at_night": "{label} im Bereich {zone} bei Nacht"}
    assert render_reason(reason, german) == "person im Bereich Garten bei Nacht"
    assert render_reason(reason, {}) == "person in Garten at night"
    # A translation naming a placeholder the reason does not carry falls back to English.
    broken = {"person_in_zone_at_night": "{person} {where"}
    assert render_reason(reason, broken) == "person in Garten at night"
    assert render_reason(Reason("from_a_newer_release")) == "from_a_newer_release"


def test_every_reason_key_has_an_english_template() -> None:
    from custom_components.home_security_intel.intelligence import risk

    keys = {value for name, value in vars(risk).items() if name.startswith("REASON_")}
    assert keys == set(ENGLISH)


def test_the_translations_hold_every_reason() -> None:
    """The Home Assistant side renders reasons from strings.json; English matches the fallback."""
    import json
    from pathlib import Path

    package = Path(__file__).parents[2] / "custom_components" / "home_security_intel"
    for name in ("strings.json", "translations/en.json"):
        strings = json.loads((package / name).read_text())
        reasons = strings["entity"]["sensor"]["risk_level"]["state_attributes"]["reasons"]
        assert reasons["state"] == dict(ENGLISH)
