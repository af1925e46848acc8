"""The AI enrichment's decisions without Home Assistant: filter, budget, verdicts, prompt."""

from __future__ import annotations

from datetime import UTC, date, datetime
import math
from typing import Any

import pytest

from custom_components.home_security_intel.intelligence.ai import (
    MAX_TITLE,
    AiBudget,
    AiFilter,
    InvalidVerdictError,
    instructions,
    parse_verdict,
)
from custom_components.home_security_intel.intelligence.model import (
    EventObject,
    RiskAssessment,
    SecurityEvent,
)

T0 = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
DAY = date(2026, 12, 2)


def event(score: int = 70, *labels: tuple[str, str]) -> SecurityEvent:
    objects = tuple(
        EventObject(f"o{i}", label, group, T0, T0, 0.9, frozenset({"Backyard"}))
        for i, (label, group) in enumerate(labels or (("person", "person"),))
    )
    return SecurityEvent("0" * 32, "cam", "Garden", T0, objects=objects, risk=RiskAssessment(score))


def test_the_filter_needs_level_group_and_size() -> None:
    chosen = AiFilter(min_level="medium", groups=frozenset({"person"}), min_area=0.1)
    assert not chosen.passes(event(20), {"o0": 0.5})  # low
    assert not chosen.passes(event(70, ("cat", "animal")), {"o0": 0.5})  # no person
    assert not chosen.passes(event(70), {"o0": 0.05})  # too small
    assert not chosen.passes(event(70))  # size unknown
    assert chosen.passes(event(70), {"o0": 0.1})
    assert AiFilter(min_area=0).passes(event(40))


def test_the_budget_limits_the_rate_and_the_day() -> None:
    budget = AiBudget(interval_s=60, daily_cap=2)
    assert budget.allows(0.0, DAY)
    budget.spend(0.0, DAY)
    assert not budget.allows(30.0, DAY)
    assert budget.allows(30.0, DAY, ignore_interval=True)
    assert budget.allows(60.0, DAY)
    budget.spend(60.0, DAY)
    assert budget.cap_reached(DAY)
    assert not budget.allows(1000.0, DAY, ignore_interval=True)
    assert budget.skipped == 2
    # A new day, a new allowance; the total keeps counting.
    tomorrow = date(2026, 12, 3)
    assert budget.calls_today(tomorrow) == 0
    assert budget.allows(90_000.0, tomorrow)
    budget.spend(90_000.0, tomorrow)
    assert budget.calls == 3
    assert budget.calls_today(tomorrow) == 1
    budget.failed("timeout")
    assert (budget.failures, budget.last_error) == (1, "timeout")


GOOD: dict[str, Any] = {
    "risk_score": 88.6,
    "title": "Someone",
    "summary": "A person.",
    "level": "critical",
}


def test_a_good_verdict_is_cleaned_up() -> None:
    verdict = parse_verdict({**GOOD, "title": "  A\n very   long " + "x" * 200})
    assert verdict.score == 89
    assert verdict.title.startswith("A very long x")
    assert len(verdict.title) == MAX_TITLE
    assert verdict.reasoning == ""
    assert verdict.level == "critical"


@pytest.mark.parametrize(
    "data",
    [
        "a string",
        ["a", "list"],
        {**GOOD, "risk_score": None},
        {**GOOD, "risk_score": math.nan},
        {**GOOD, "risk_score": -1},
        {**GOOD, "risk_score": False},
        {**GOOD, "title": ""},
        {**GOOD, "summary": ["no"]},
        {**GOOD, "reasoning": 3},
        {**GOOD, "level": "HIGH"},
    ],
)
def test_anything_else_is_refused(data: Any) -> None:
    with pytest.raises(InvalidVerdictError):
        parse_verdict(data)


def test_the_prompt_carries_the_rules_view() -> None:
    text = instructions(
        event(70, ("person", "person"), ("dog", "animal")), ["person at night"], night=True
    )
    assert "Camera: Garden. Time: night." in text
    assert "Objects: 1 dog, 1 person. Zones: Backyard." in text
    assert "scored it 70 (high) because: person at night." in text
    assert "because: nothing in particular" in instructions(event(5), [], night=False)
