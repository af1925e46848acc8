"""What the AI enrichment decides without Home Assistant: which events go, how often, and what
an answer must look like to be believed.

- `AiFilter`: an event is worth a call when its level reaches the user's minimum, it holds an
  object of a chosen group, and (when asked) one of them was big enough in the frame.
- `AiBudget`: at most one call per camera per interval and a daily cap per camera (the day is
  the local calendar day the caller passes in); it counts calls, failures and skips.
- `parse_verdict`: the AI's structured answer validated into an `AiVerdict`; anything else
  (not a mapping, a score that is no number or out of range, empty or non-text title) raises
  `InvalidVerdictError` and the rules score stands.
- `instructions`: the prompt, built from the event's rules assessment.

The call itself (``ai_task.generate_data``) is made by the Home Assistant side (security.py).
Pure Python, no Home Assistant imports.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import date
import math
from typing import Any

from .model import RISK_LEVELS, AiVerdict, RiskLevel, SecurityEvent, level_rank

MAX_TITLE = 80
MAX_SUMMARY = 600
MAX_REASONING = 1000

type ReasonText = Callable[[SecurityEvent], list[str]]


class InvalidVerdictError(ValueError):
    """The AI's answer is not a verdict we can use."""


@dataclass(frozen=True, slots=True)
class AiFilter:
    """Which security events are sent to the AI."""

    min_level: RiskLevel = "medium"
    groups: frozenset[str] = frozenset({"person", "vehicle"})
    min_area: float = 0.0
    """Minimum box area (fraction of the frame) of at least one object of a chosen group."""

    def passes(self, event: SecurityEvent, areas: Mapping[str, float] | None = None) -> bool:
        """Whether the event is worth a call; `areas` is the largest box area per object id."""
        if level_rank(event.risk.level) < level_rank(self.min_level):
            return False
        chosen = [obj for obj in event.objects if obj.group in self.groups]
        if not chosen:
            return False
        if self.min_area <= 0:
            return True
        sizes = areas or {}
        return any(sizes.get(obj.object_id, 0.0) >= self.min_area for obj in chosen)


@dataclass(slots=True)
class AiBudget:
    """Rate limit and daily cap of one camera's AI calls; counts what happened."""

    interval_s: float = 60.0
    daily_cap: int = 50
    calls: int = 0
    """Calls made since start (answered or not)."""
    failures: int = 0
    skipped: int = 0
    """Events that passed the filter but went unsent (rate limit or cap)."""
    last_error: str | None = None
    _day: date | None = None
    _today: int = 0
    _last_call: float | None = field(default=None, repr=False)

    def calls_today(self, today: date) -> int:
        """Calls made on `today`."""
        return self._today if self._day == today else 0

    def cap_reached(self, today: date) -> bool:
        """Whether the daily cap is used up."""
        return self.calls_today(today) >= self.daily_cap

    def allows(self, now: float, today: date, *, ignore_interval: bool = False) -> bool:
        """Whether a call may go now (monotonic `now`); a refusal is counted as skipped."""
        too_soon = (
            not ignore_interval
            and self._last_call is not None
            and now - self._last_call < self.interval_s
        )
        if too_soon or self.cap_reached(today):
            self.skipped += 1
            return False
        return True

    def spend(self, now: float, today: date) -> None:
        """A call goes now."""
        if self._day != today:
            self._day, self._today = today, 0
        self._today += 1
        self.calls += 1
        self._last_call = now

    def failed(self, reason: str) -> None:
        """The call failed (`reason`: timeout, error, invalid_answer)."""
        self.failures += 1
        self.last_error = reason


def _text(data: Mapping[str, Any], key: str, limit: int, *, required: bool) -> str:
    value = data.get(key, "")
    if not isinstance(value, str):
        raise InvalidVerdictError(f"{key} is not text")
    value = " ".join(value.split())
    if required and not value:
        raise InvalidVerdictError(f"{key} is empty")
    return value[:limit]


def parse_verdict(data: Any) -> AiVerdict:
    """The AI's answer as a verdict; raises InvalidVerdictError for anything else."""
    if not isinstance(data, Mapping):
        raise InvalidVerdictError("the answer is not an object")
    score = data.get("risk_score")
    if isinstance(score, bool) or not isinstance(score, int | float):
        raise InvalidVerdictError("risk_score is not a number")
    if not math.isfinite(score) or not 0 <= score <= 100:
        raise InvalidVerdictError("risk_score is not within 0-100")
    level = data.get("level")
    if level is not None and level not in RISK_LEVELS:
        raise InvalidVerdictError("level is not a risk level")
    return AiVerdict(
        score=round(score),
        title=_text(data, "title", MAX_TITLE, required=True),
        summary=_text(data, "summary", MAX_SUMMARY, required=True),
        reasoning=_text(data, "reasoning", MAX_REASONING, required=False),
    )


def instructions(event: SecurityEvent, reasons: Collection[str], *, night: bool) -> str:
    """The prompt for one security event, with what the rules already concluded."""
    labels = ", ".join(f"{count} {label}" for label, count in sorted(event.labels.items()))
    zones = ", ".join(sorted(event.zones)) or "none"
    because = "; ".join(reasons) or "nothing in particular"
    return (
        "You are the security analyst of a home. Judge how much the attached camera picture "
        "matters for the home's security and answer with: risk_score (0-100: low 0-29, "
        "medium 30-59, high 60-84, critical 85-100), level, a short title (a few words), a "
        "one or two sentence summary of what happens, and your reasoning. Ordinary things "
        "(residents, deliveries, passing cars, pets) are low.\n"
        f"Camera: {event.camera_name}. Time: {'night' if night else 'day'}. "
        f"Objects: {labels or 'none'}. Zones: {zones}.\n"
        f"The rules scored it {event.risk.score} ({event.risk.level}) because: {because}."
    )
