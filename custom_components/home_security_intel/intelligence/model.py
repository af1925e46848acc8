"""What the security layer says about a camera: risk with its reasons, and security events.

Plain frozen dataclasses shared by the risk rules, the event grouping, the AI enrichment, the
event store and the entities. No Home Assistant imports. Times are aware UTC datetimes.

A `SecurityEvent` serialises to a JSON-safe dict (`to_dict`) and back (`from_dict`); the store
keeps that dict as the row's payload, so a field added here must get a default and be read with
`.get` in `from_dict` (old rows stay readable).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal, cast

type RiskLevel = Literal["low", "medium", "high", "critical"]
RISK_LEVELS: tuple[RiskLevel, ...] = ("low", "medium", "high", "critical")
"""Lowest first; a level's index is its rank."""
_LEVEL_FLOORS: tuple[tuple[int, RiskLevel], ...] = ((85, "critical"), (60, "high"), (30, "medium"))

type Severity = Literal["alert", "detection"]
SEVERITY_ALERT: Severity = "alert"
SEVERITY_DETECTION: Severity = "detection"


def risk_level(score: int) -> RiskLevel:
    """The level of a 0-100 score: low 0-29, medium 30-59, high 60-84, critical 85-100."""
    for floor, level in _LEVEL_FLOORS:
        if score >= floor:
            return level
    return "low"


def level_rank(level: str) -> int:
    """0 (low) .. 3 (critical); raises ValueError for anything else."""
    return RISK_LEVELS.index(cast(RiskLevel, level))


def clamp_score(score: float) -> int:
    """A score rounded into 0..100."""
    return max(0, min(100, round(score)))


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason behind a score, in a form that translates: a key and its placeholders.

    `key` names a translation (e.g. "person_in_zone_at_night"); `params` fills it
    (e.g. {"label": "person", "zone": "Backyard"}); `points` is what it added to the score.
    """

    key: str
    params: Mapping[str, str] = field(default_factory=dict)
    points: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {"key": self.key, "params": dict(self.params), "points": self.points}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Reason:
        """Inverse of `to_dict`."""
        return cls(
            key=str(data["key"]),
            params={str(k): str(v) for k, v in dict(data.get("params", {})).items()},
            points=int(data.get("points", 0)),
        )


@dataclass(frozen=True, slots=True)
class RiskAssessment:
    """A 0-100 score, its level and why."""

    score: int
    reasons: tuple[Reason, ...] = ()
    source: Literal["rules", "ai"] = "rules"

    @property
    def level(self) -> RiskLevel:
        """The score's level."""
        return risk_level(self.score)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "score": self.score,
            "level": self.level,
            "reasons": [reason.to_dict() for reason in self.reasons],
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RiskAssessment:
        """Inverse of `to_dict`."""
        source = data.get("source", "rules")
        return cls(
            score=clamp_score(float(data["score"])),
            reasons=tuple(Reason.from_dict(r) for r in data.get("reasons", ())),
            source="ai" if source == "ai" else "rules",
        )


NO_RISK = RiskAssessment(0)


@dataclass(frozen=True, slots=True)
class EventObject:
    """One confirmed object that took part in a security event."""

    object_id: str
    label: str
    group: str
    first_seen: datetime
    last_seen: datetime
    best_score: float
    zones: frozenset[str] = frozenset()
    """Every zone it was seen in during the event."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "object_id": self.object_id,
            "label": self.label,
            "group": self.group,
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "best_score": self.best_score,
            "zones": sorted(self.zones),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EventObject:
        """Inverse of `to_dict`."""
        return cls(
            object_id=str(data["object_id"]),
            label=str(data["label"]),
            group=str(data["group"]),
            first_seen=datetime.fromisoformat(data["first_seen"]),
            last_seen=datetime.fromisoformat(data["last_seen"]),
            best_score=float(data["best_score"]),
            zones=frozenset(str(z) for z in data.get("zones", ())),
        )


@dataclass(frozen=True, slots=True)
class AiVerdict:
    """What Home Assistant's AI Task answered about an event (validated)."""

    score: int
    title: str
    summary: str
    reasoning: str = ""

    @property
    def level(self) -> RiskLevel:
        """The AI score's level."""
        return risk_level(self.score)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "score": self.score,
            "level": self.level,
            "title": self.title,
            "summary": self.summary,
            "reasoning": self.reasoning,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AiVerdict:
        """Inverse of `to_dict`."""
        return cls(
            score=clamp_score(float(data["score"])),
            title=str(data["title"]),
            summary=str(data["summary"]),
            reasoning=str(data.get("reasoning", "")),
        )


@dataclass(frozen=True, slots=True)
class SecurityEvent:
    """A camera's security event: confirmed objects grouped in time, with its peak risk."""

    event_id: str
    """Opaque, [0-9a-f]{32} (uuid4 hex): safe in file names and media-source identifiers."""
    camera_id: str
    """The camera's config entry id."""
    camera_name: str
    start: datetime
    end: datetime | None = None
    """None while the event is open."""
    objects: tuple[EventObject, ...] = ()
    risk: RiskAssessment = NO_RISK
    """The peak rules assessment (the AI verdict, when there is one, refines `score`)."""
    severity: Severity = SEVERITY_DETECTION
    title: str = ""
    summary: str = ""
    ai: AiVerdict | None = None
    has_snapshot: bool = False
    """The best frame (original and annotated) is saved in the snapshot store."""
    continues: str | None = None
    """The event this one continues (the previous one reached the maximum length)."""

    @property
    def score(self) -> int:
        """The event's score: the AI's when it answered, else the rules'."""
        return self.ai.score if self.ai is not None else self.risk.score

    @property
    def level(self) -> RiskLevel:
        """The event's level (see `score`)."""
        return risk_level(self.score)

    @property
    def is_open(self) -> bool:
        """Still collecting objects."""
        return self.end is None

    @property
    def labels(self) -> dict[str, int]:
        """Objects per label, e.g. {"person": 2, "car": 1}."""
        counts: dict[str, int] = {}
        for obj in self.objects:
            counts[obj.label] = counts.get(obj.label, 0) + 1
        return counts

    @property
    def zones(self) -> frozenset[str]:
        """Every zone any of its objects was seen in."""
        return frozenset().union(*(obj.zones for obj in self.objects))

    def with_changes(self, **changes: Any) -> SecurityEvent:
        """A copy with some fields replaced."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (the store's payload, the services' answers)."""
        return {
            "event_id": self.event_id,
            "camera_id": self.camera_id,
            "camera_name": self.camera_name,
            "start": self.start.isoformat(),
            "end": self.end.isoformat() if self.end else None,
            "objects": [obj.to_dict() for obj in self.objects],
            "labels": self.labels,
            "zones": sorted(self.zones),
            "risk": self.risk.to_dict(),
            "score": self.score,
            "level": self.level,
            "severity": self.severity,
            "title": self.title,
            "summary": self.summary,
            "ai": self.ai.to_dict() if self.ai else None,
            "has_snapshot": self.has_snapshot,
            "continues": self.continues,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SecurityEvent:
        """Inverse of `to_dict` (derived keys are ignored)."""
        end = data.get("end")
        ai = data.get("ai")
        severity = data.get("severity", SEVERITY_DETECTION)
        return cls(
            event_id=str(data["event_id"]),
            camera_id=str(data["camera_id"]),
            camera_name=str(data.get("camera_name", "")),
            start=datetime.fromisoformat(data["start"]),
            end=datetime.fromisoformat(end) if end else None,
            objects=tuple(EventObject.from_dict(o) for o in data.get("objects", ())),
            risk=RiskAssessment.from_dict(data["risk"]) if data.get("risk") else NO_RISK,
            severity=SEVERITY_ALERT if severity == SEVERITY_ALERT else SEVERITY_DETECTION,
            title=str(data.get("title", "")),
            summary=str(data.get("summary", "")),
            ai=AiVerdict.from_dict(ai) if ai else None,
            has_snapshot=bool(data.get("has_snapshot", False)),
            continues=data.get("continues"),
        )
