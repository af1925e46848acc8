"""Rule-based risk: a 0-100 score per camera from what is in view and its context, with reasons.

Always available and cheap (run on every frame). The rules add points; every rule that adds
points leaves a `Reason` (a translation key and its placeholders), so the score explains itself:

- what: a person counts far more than a moving vehicle, an animal barely; more people add a
  little; a stationary (parked) vehicle adds almost nothing and is reported as parked;
- where: a person (or vehicle) inside one of the user's zones;
- when: darkness (the Home Assistant side reads `sun.sun` below the horizon);
- context: nobody home (`zone.home`), an alarm panel that is armed;
- behaviour: a person lingering (dwell time), and repeat visits within an hour.

Pure Python, no Home Assistant imports. Rendering reasons to text (`render_reason`) takes the
templates as an argument: the Home Assistant side passes its translations, and the English
templates here are the fallback.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
import string

from ..detection.model import GROUP_ANIMAL, GROUP_PERSON, GROUP_VEHICLE
from ..pipeline.tracker import TrackedObject
from .model import Reason, RiskAssessment, clamp_score

VISIT_WINDOW_S = 3600.0
"""Visits counted for the repeat-visit rule: the last hour."""
MAX_VISITS_KEPT = 200
"""The visit log is bounded: a crowd walking past cannot grow it without end."""

# Points of each rule (tuned on the scenario table in tests/intelligence/test_risk.py).
POINTS_PERSON = 35
POINTS_EXTRA_PERSON = 5
MAX_EXTRA_PEOPLE_POINTS = 15
POINTS_VEHICLE = 20
POINTS_PARKED = 5
POINTS_ANIMAL = 5
POINTS_ZONE = 10
POINTS_NIGHT_PERSON = 20
POINTS_NIGHT_VEHICLE = 10
POINTS_NOBODY_HOME = 15
POINTS_ALARM_ARMED = 20
LOITER_S = 60.0
LONG_LOITER_S = 180.0
POINTS_LOITER = 15
POINTS_LONG_LOITER = 25
REPEAT_VISITS = 3
POINTS_REPEAT = 15

# Reason keys (translations: entity.sensor.risk_level.state_attributes.reasons.state.<key>).
REASON_PERSON = "person"
REASON_PEOPLE = "people"
REASON_PERSON_IN_ZONE = "person_in_zone"
REASON_PERSON_AT_NIGHT = "person_at_night"
REASON_PERSON_IN_ZONE_AT_NIGHT = "person_in_zone_at_night"
REASON_VEHICLE = "vehicle"
REASON_VEHICLE_IN_ZONE = "vehicle_in_zone"
REASON_VEHICLE_AT_NIGHT = "vehicle_at_night"
REASON_VEHICLE_PARKED = "vehicle_parked"
REASON_ANIMAL = "animal"
REASON_NOBODY_HOME = "nobody_home"
REASON_ALARM_ARMED = "alarm_armed"
REASON_LOITERING = "loitering"
REASON_REPEAT_VISITS = "repeat_visits"

ENGLISH: Mapping[str, str] = {
    REASON_PERSON: "{label} in view",
    REASON_PEOPLE: "{count} people in view",
    REASON_PERSON_IN_ZONE: "{label} in {zone}",
    REASON_PERSON_AT_NIGHT: "{label} at night",
    REASON_PERSON_IN_ZONE_AT_NIGHT: "{label} in {zone} at night",
    REASON_VEHICLE: "{label} moving",
    REASON_VEHICLE_IN_ZONE: "{label} in {zone}",
    REASON_VEHICLE_AT_NIGHT: "{label} moving at night",
    REASON_VEHICLE_PARKED: "{label} parked",
    REASON_ANIMAL: "{label} in view",
    REASON_NOBODY_HOME: "nobody home",
    REASON_ALARM_ARMED: "alarm armed",
    REASON_LOITERING: "{label} lingering for {minutes} min",
    REASON_REPEAT_VISITS: "{count} visits within an hour",
}
"""English templates of every reason key: the fallback when no translation is at hand."""


@dataclass(frozen=True, slots=True)
class RiskContext:
    """What the camera cannot see but the home knows, at the time of the frame."""

    night: bool = False
    anybody_home: bool | None = None
    """None when unknown (no `zone.home`, or it is unavailable): the rule then adds nothing."""
    alarm_armed: bool | None = None
    """None when no alarm panel is configured or its state is unknown."""
    visits_last_hour: int = 0
    """Distinct people who arrived at this camera in the last hour, this one included."""


class VisitLog:
    """When people arrived at a camera (monotonic seconds), for the repeat-visit rule."""

    def __init__(self, window_s: float = VISIT_WINDOW_S) -> None:
        """Start with no visits."""
        self._window = window_s
        self._arrivals: deque[float] = deque(maxlen=MAX_VISITS_KEPT)

    def add(self, now: float) -> None:
        """Record an arrival (a newly confirmed person)."""
        self._arrivals.append(now)

    def count(self, now: float) -> int:
        """Arrivals within the window before `now`."""
        while self._arrivals and self._arrivals[0] <= now - self._window:
            self._arrivals.popleft()
        return len(self._arrivals)


def _zone(obj: TrackedObject) -> str | None:
    """The zone named in a reason: the first in name order (stable across frames)."""
    return min(obj.zones) if obj.zones else None


def _person_reasons(people: Sequence[TrackedObject], context: RiskContext) -> list[Reason]:
    lead = max(people, key=lambda p: (len(p.zones), p.score))
    label = lead.label
    zone = _zone(lead)
    reasons = [Reason(REASON_PERSON, {"label": label}, POINTS_PERSON)]
    if len(people) > 1:
        extra = min(MAX_EXTRA_PEOPLE_POINTS, POINTS_EXTRA_PERSON * (len(people) - 1))
        reasons.append(Reason(REASON_PEOPLE, {"count": str(len(people))}, extra))
    # Zone and darkness read best as one reason: "person in Backyard at night".
    if zone is not None and context.night:
        reasons.append(
            Reason(
                REASON_PERSON_IN_ZONE_AT_NIGHT,
                {"label": label, "zone": zone},
                POINTS_ZONE + POINTS_NIGHT_PERSON,
            )
        )
    elif zone is not None:
        reasons.append(Reason(REASON_PERSON_IN_ZONE, {"label": label, "zone": zone}, POINTS_ZONE))
    elif context.night:
        reasons.append(Reason(REASON_PERSON_AT_NIGHT, {"label": label}, POINTS_NIGHT_PERSON))
    dwell = max(p.last_seen - p.first_seen for p in people)
    if dwell >= LOITER_S:
        points = POINTS_LONG_LOITER if dwell >= LONG_LOITER_S else POINTS_LOITER
        reasons.append(
            Reason(REASON_LOITERING, {"label": label, "minutes": str(int(dwell // 60))}, points)
        )
    if context.anybody_home is False:
        reasons.append(Reason(REASON_NOBODY_HOME, {}, POINTS_NOBODY_HOME))
    if context.visits_last_hour >= REPEAT_VISITS:
        reasons.append(
            Reason(REASON_REPEAT_VISITS, {"count": str(context.visits_last_hour)}, POINTS_REPEAT)
        )
    return reasons


def _vehicle_reasons(vehicles: Sequence[TrackedObject], context: RiskContext) -> list[Reason]:
    moving = [v for v in vehicles if not v.stationary]
    if not moving:
        return [Reason(REASON_VEHICLE_PARKED, {"label": vehicles[0].label}, POINTS_PARKED)]
    lead = max(moving, key=lambda v: (len(v.zones), v.score))
    zone = _zone(lead)
    reasons = [Reason(REASON_VEHICLE, {"label": lead.label}, POINTS_VEHICLE)]
    if zone is not None:
        reasons.append(
            Reason(REASON_VEHICLE_IN_ZONE, {"label": lead.label, "zone": zone}, POINTS_ZONE)
        )
    if context.night:
        reasons.append(Reason(REASON_VEHICLE_AT_NIGHT, {"label": lead.label}, POINTS_NIGHT_VEHICLE))
    return reasons


def assess(objects: Iterable[TrackedObject], context: RiskContext) -> RiskAssessment:
    """Score what a camera has in view (its counted objects) in its context."""
    present = list(objects)
    people = [o for o in present if o.group == GROUP_PERSON]
    vehicles = [o for o in present if o.group == GROUP_VEHICLE]
    animals = [o for o in present if o.group == GROUP_ANIMAL]
    reasons: list[Reason] = []
    if people:
        reasons.extend(_person_reasons(people, context))
    if vehicles:
        reasons.extend(_vehicle_reasons(vehicles, context))
    if animals and not people:
        # Next to a person an animal changes nothing worth a line.
        reasons.append(Reason(REASON_ANIMAL, {"label": animals[0].label}, POINTS_ANIMAL))
    if context.alarm_armed and (people or any(not v.stationary for v in vehicles)):
        reasons.append(Reason(REASON_ALARM_ARMED, {}, POINTS_ALARM_ARMED))
    # Biggest contribution first: the first reason is the headline.
    reasons.sort(key=lambda r: -r.points)
    return RiskAssessment(clamp_score(sum(r.points for r in reasons)), tuple(reasons))


def render_reason(reason: Reason, templates: Mapping[str, str] | None = None) -> str:
    """A reason as short text, from `templates` (translations) or the English fallback.

    A template that names a placeholder the reason lacks, or that is malformed, falls back to
    English; an unknown key shows the key itself (an old stored reason after an upgrade).
    """
    for source in (templates or {}, ENGLISH):
        template = source.get(reason.key)
        if template is None:
            continue
        try:
            return string.Formatter().vformat(template, (), dict(reason.params))
        except (KeyError, IndexError, ValueError):
            continue
    return reason.key
