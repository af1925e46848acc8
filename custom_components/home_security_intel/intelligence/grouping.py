"""Security events: one camera's confirmed objects grouped in time.

- An event opens with the first confirmed object that moves (a parked car, stationary in the
  tracker's sense, never opens one nor keeps one open) and is announced at once ("started"), so a
  person with a high score is announced in the very frame that confirms it.
- It stays open while objects remain or new ones arrive within the idle time, and closes
  ("ended", end = when its last object was last seen) after the idle time, or when it reaches the
  maximum length; then a new event continues it (`continues` names the one before).
- Its risk is the peak of the frames' assessments; a frame that raises the peak is the event's
  best frame ("improved", recorded with that frame, not announced). A rise in level is announced
  ("updated"). The severity is "alert" while the score reaches the alert level, else "detection".
- An AI verdict (`apply_verdict`) refines the score, title and summary ("updated").
- After a restart an event the store still has open is closed at its last sighting
  (`close_interrupted`): the objects it waited for are gone with the old process.

Pure Python, no Home Assistant imports; time is passed in (aware UTC datetimes), so tests drive
it with a fake clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
import uuid

from ..pipeline.tracker import TrackedObject
from .model import (
    RISK_LEVELS,
    SEVERITY_ALERT,
    SEVERITY_DETECTION,
    AiVerdict,
    EventObject,
    RiskAssessment,
    RiskLevel,
    SecurityEvent,
    Severity,
    level_rank,
    risk_level,
)

type ChangeKind = Literal["started", "improved", "updated", "ended"]
CHANGE_STARTED: ChangeKind = "started"
CHANGE_IMPROVED: ChangeKind = "improved"
CHANGE_UPDATED: ChangeKind = "updated"
CHANGE_ENDED: ChangeKind = "ended"

type Describe = Callable[[RiskAssessment], tuple[str, str]]
"""(title, summary) of a rules assessment; the Home Assistant side renders translated text."""


def _no_description(_risk: RiskAssessment) -> tuple[str, str]:
    return "", ""


def _new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class GroupingConfig:
    """How events are cut (seconds) and when one is an alert."""

    idle_s: float = 30.0
    max_s: float = 90.0
    alert_level: RiskLevel = "high"

    def __post_init__(self) -> None:
        """Refuse settings that cannot work."""
        if not self.idle_s > 0 or not self.max_s > 0:
            raise ValueError(f"idle and max length must be > 0, not {self.idle_s}/{self.max_s}")
        if self.alert_level not in RISK_LEVELS:
            raise ValueError(f"alert level must be one of {RISK_LEVELS}, not {self.alert_level}")


def severity_for(score: int, alert_level: RiskLevel) -> Severity:
    """ "alert" when the score's level reaches the alert level, else "detection"."""
    if level_rank(risk_level(score)) >= level_rank(alert_level):
        return SEVERITY_ALERT
    return SEVERITY_DETECTION


@dataclass(frozen=True, slots=True)
class EventChange:
    """Something happened to a security event; `kind` says what (see the module doc)."""

    kind: ChangeKind
    event: SecurityEvent

    @property
    def best_frame(self) -> bool:
        """This frame is the event's best so far: save it with the event."""
        return self.kind in (CHANGE_STARTED, CHANGE_IMPROVED)


def close_interrupted(event: SecurityEvent) -> SecurityEvent:
    """An event left open by a process that stopped: closed when it was last seen."""
    if not event.is_open:
        return event
    last = max((obj.last_seen for obj in event.objects), default=event.start)
    return event.with_changes(end=max(last, event.start))


class EventGrouper:
    """Groups one camera's confirmed objects into security events."""

    def __init__(
        self,
        camera_id: str,
        camera_name: str,
        config: GroupingConfig | None = None,
        *,
        describe: Describe = _no_description,
        id_factory: Callable[[], str] = _new_id,
    ) -> None:
        """Start with no event open."""
        self.camera_id = camera_id
        self.camera_name = camera_name
        self.config = config or GroupingConfig()
        self._describe = describe
        self._new_id = id_factory
        self._current: SecurityEvent | None = None
        self._objects: dict[str, EventObject] = {}
        self._last_active: datetime | None = None
        self._at_max = False

    @property
    def current(self) -> SecurityEvent | None:
        """The open event, if any."""
        return self._current

    def deadline(self) -> datetime | None:
        """When the open event closes (or is continued) if nothing new happens; call `tick`."""
        if self._current is None or self._last_active is None:
            return None
        idle = self._last_active + timedelta(seconds=self.config.idle_s)
        return min(idle, self._current.start + timedelta(seconds=self.config.max_s))

    def update(
        self, objects: Iterable[TrackedObject], risk: RiskAssessment, now: datetime
    ) -> list[EventChange]:
        """One frame: its counted objects and their assessment."""
        active = [obj for obj in objects if obj.visible and not obj.stationary]
        changes = self._expire(now)
        if not active:
            return changes
        if self._current is None:
            # A maximum length just reached: the new event continues the one that ended.
            continues = changes[-1].event.event_id if changes and self._at_max else None
            changes.append(self._open(active, risk, now, continues))
            return changes
        current = self._current
        self._merge(active, now)
        self._last_active = now
        peak = risk if risk.score > current.risk.score else current.risk
        event = self._with_risk(self._current, peak)
        self._current = event
        if peak is not current.risk:
            raised = level_rank(event.level) > level_rank(current.level)
            announce = raised or event.severity != current.severity
            kind = CHANGE_UPDATED if announce else CHANGE_IMPROVED
            changes.append(EventChange(kind, event))
        return changes

    def tick(self, now: datetime) -> list[EventChange]:
        """Time passed without a frame: close the event when its idle time is over."""
        return self._expire(now)

    def apply_verdict(self, event_id: str, verdict: AiVerdict) -> SecurityEvent | None:
        """The AI answered about the open event: refine it (None when it is closed already)."""
        if self._current is None or self._current.event_id != event_id:
            return None
        self._current = self.refined(self._current, verdict)
        return self._current

    def refined(self, event: SecurityEvent, verdict: AiVerdict) -> SecurityEvent:
        """An event with the AI's verdict: its score, title and summary, severity from them."""
        return event.with_changes(
            ai=verdict,
            title=verdict.title,
            summary=verdict.summary,
            severity=severity_for(verdict.score, self.config.alert_level),
        )

    def close(self) -> list[EventChange]:
        """Close the open event now (unload): it ends when it was last seen."""
        if self._current is None:
            return []
        return [self._end()]

    # --- inside --------------------------------------------------------------------------------

    def _expire(self, now: datetime) -> list[EventChange]:
        current = self._current
        self._at_max = False
        if current is None or self._last_active is None:
            return []
        if now >= self._last_active + timedelta(seconds=self.config.idle_s):
            return [self._end()]
        if now >= current.start + timedelta(seconds=self.config.max_s):
            self._at_max = True
            return [self._end(at=now)]
        return []

    def _open(
        self,
        active: list[TrackedObject],
        risk: RiskAssessment,
        now: datetime,
        continues: str | None,
    ) -> EventChange:
        self._objects = {}
        self._last_active = now
        self._current = SecurityEvent(
            event_id=self._new_id(),
            camera_id=self.camera_id,
            camera_name=self.camera_name,
            start=now,
            continues=continues,
        )
        self._merge(active, now)
        self._current = self._with_risk(self._current, risk)
        return EventChange(CHANGE_STARTED, self._current)

    def _merge(self, active: list[TrackedObject], now: datetime) -> None:
        for obj in active:
            known = self._objects.get(obj.object_id)
            if known is None:
                self._objects[obj.object_id] = EventObject(
                    obj.object_id, obj.label, obj.group, now, now, obj.score, obj.zones
                )
            else:
                self._objects[obj.object_id] = EventObject(
                    obj.object_id,
                    obj.label,
                    obj.group,
                    known.first_seen,
                    now,
                    max(known.best_score, obj.score),
                    known.zones | obj.zones,
                )
        assert self._current is not None
        self._current = self._current.with_changes(objects=tuple(self._objects.values()))

    def _with_risk(self, event: SecurityEvent, risk: RiskAssessment) -> SecurityEvent:
        if event.ai is not None:
            # The AI's verdict stands for score, title and summary; the rules peak is kept.
            return event.with_changes(risk=risk)
        title, summary = self._describe(risk)
        return event.with_changes(
            risk=risk,
            title=title,
            summary=summary,
            severity=severity_for(risk.score, self.config.alert_level),
        )

    def _end(self, at: datetime | None = None) -> EventChange:
        assert self._current is not None
        ended = close_interrupted(self._current)
        if at is not None:
            ended = ended.with_changes(end=at)
        self._current = None
        self._objects = {}
        self._last_active = None
        return EventChange(CHANGE_ENDED, ended)
