"""Security events for the store's tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import uuid

from custom_components.home_security_intel.intelligence.model import (
    SEVERITY_ALERT,
    SEVERITY_DETECTION,
    EventObject,
    Reason,
    RiskAssessment,
    SecurityEvent,
)

T0 = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)
CAMERA = "01JCAMERAAAAAAAAAAAAAAAAAA"
OTHER = "01JCAMERABBBBBBBBBBBBBBBBB"
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64 + b"\xff\xd9"


def make_event(
    start: datetime = T0,
    *,
    camera_id: str = CAMERA,
    score: int = 70,
    length: timedelta | None = timedelta(seconds=40),
    alert: bool | None = None,
    event_id: str | None = None,
    has_snapshot: bool = False,
) -> SecurityEvent:
    """A person event; an alert when its score is high (unless told)."""
    alert = score >= 60 if alert is None else alert
    return SecurityEvent(
        event_id=event_id or uuid.uuid4().hex,
        camera_id=camera_id,
        camera_name="Front door",
        start=start,
        end=start + length if length is not None else None,
        objects=(
            EventObject(
                object_id="person-1",
                label="person",
                group="person",
                first_seen=start,
                last_seen=start + timedelta(seconds=5),
                best_score=0.9,
                zones=frozenset({"Porch"}),
            ),
        ),
        risk=RiskAssessment(score, (Reason("person_in_zone", {"zone": "Porch"}, score),)),
        severity=SEVERITY_ALERT if alert else SEVERITY_DETECTION,
        title="Person on the porch",
        summary="A person walked up to the door.",
        has_snapshot=has_snapshot,
    )
