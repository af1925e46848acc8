"""Event entity per camera: one event per confirmed new object, and when it enters another zone.

``person_detected`` / ``vehicle_detected`` / ``animal_detected`` fire once per object, at the
frame it is confirmed, with the zones it is in already known; moving into another zone later
fires ``zone_entered``, never a second detection. Attributes carry the object id, label, score,
box and zones, so automations can tell one visitor from the next.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime

from homeassistant.components.event import EventEntity
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .detection_coordinator import DetectionCoordinator
from .entity import (
    HsiDetectionEntity,
    HsiSecurityEntity,
    async_add_detection_entity,
    async_security_monitor,
)
from .intelligence.model import SEVERITY_ALERT, SecurityEvent
from .pipeline.state import ObjectEvent
from .security import SecurityMonitor
from .store import async_signed_snapshot_url

PARALLEL_UPDATES = 0

EVENT_ZONE_ENTERED = "zone_entered"
KEY_SECURITY_EVENT = "security_event"
SECURITY_EVENT_TYPES = [f"security_event_{kind}" for kind in ("started", "updated", "ended")]


def event_type(event: ObjectEvent) -> str:
    """The entity's event type for a pipeline event."""
    return f"{event.group}_detected" if event.kind == "detected" else EVENT_ZONE_ENTERED


async def async_setup_entry(
    hass: HomeAssistant,
    entry: ConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One detection event entity per camera with detection."""
    async_add_detection_entity(
        hass, entry, async_add_entities, Platform.EVENT, "detection", DetectionEventEntity
    )
    if monitor := async_security_monitor(hass, entry, Platform.EVENT, {KEY_SECURITY_EVENT}):
        async_add_entities([SecurityEventEntity(monitor)])


class DetectionEventEntity(HsiDetectionEntity, EventEntity):
    """Fires for every confirmed new object and zone entry of one camera."""

    _attr_translation_key = "detection"

    def __init__(self, coordinator: DetectionCoordinator) -> None:
        """Create the event entity of a camera; event types follow the tracked groups."""
        super().__init__(coordinator, "detection")
        types = [f"{group}_detected" for group in coordinator.settings.groups]
        if coordinator.settings.zones:
            types.append(EVENT_ZONE_ENTERED)
        self._attr_event_types = types

    async def async_added_to_hass(self) -> None:
        """Listen to the camera's pipeline events."""
        await super().async_added_to_hass()
        self.async_on_remove(self.coordinator.async_add_event_listener(self._async_on_event))

    @callback
    def _async_on_event(self, event: ObjectEvent) -> None:
        # The pipeline only announces tracked groups, and zone entries only where zones exist:
        # every kind is one of the entity's event types.
        kind = event_type(event)
        box = event.box
        attributes: dict[str, object] = {
            "object_id": event.object_id,
            "label": event.label,
            "score": round(event.score, 3),
            "box": [round(v, 4) for v in (box.x_min, box.y_min, box.x_max, box.y_max)],
            "zones": sorted(event.zones),
        }
        if event.zone is not None:
            attributes["zone"] = event.zone
        self._trigger_event(kind, attributes)
        self.async_write_ha_state()


class SecurityEventEntity(HsiSecurityEntity, EventEntity):
    """Fires when a camera's security event starts, is updated (AI summary), and ends."""

    _attr_translation_key = KEY_SECURITY_EVENT
    _attr_event_types = SECURITY_EVENT_TYPES

    def __init__(self, monitor: SecurityMonitor) -> None:
        """Create the camera's security event entity."""
        super().__init__(monitor, KEY_SECURITY_EVENT)
        # The start of this camera's alert before each recent alert: a notification's cooldown
        # per camera compares the two (the blueprint's), with no state of its own.
        self._last_alert: tuple[str, datetime] | None = None
        self._previous_alert: OrderedDict[str, datetime | None] = OrderedDict()

    def _previous_alert_of(self, event: SecurityEvent) -> datetime | None:
        if event.event_id in self._previous_alert:
            return self._previous_alert[event.event_id]
        if event.severity != SEVERITY_ALERT:
            return None
        previous = self._last_alert[1] if self._last_alert else None
        self._previous_alert[event.event_id] = previous
        while len(self._previous_alert) > 16:
            self._previous_alert.popitem(last=False)
        self._last_alert = (event.event_id, event.start)
        return previous

    async def async_added_to_hass(self) -> None:
        """Listen to the camera's security event changes."""
        await super().async_added_to_hass()
        self.async_on_remove(self.monitor.async_add_change_listener(self._async_on_change))

    @callback
    def _async_on_change(self, kind: str, event: SecurityEvent, snapshot: str | None) -> None:
        previous_alert = self._previous_alert_of(event)
        self._trigger_event(
            f"security_event_{kind}",
            {
                "event_id": event.event_id,
                "camera": event.camera_name,
                "start": event.start.isoformat(),
                "end": event.end.isoformat() if event.end else None,
                "previous_alert": previous_alert.isoformat() if previous_alert else None,
                "level": event.level,
                "score": event.score,
                "severity": event.severity,
                "title": event.title,
                "summary": event.summary,
                "reasons": self.monitor.reasons_text(event.risk),
                "labels": event.labels,
                "zones": sorted(event.zones),
                "snapshot": snapshot,
                # A signed path (24 h): a phone's notification fetches it without a login.
                "snapshot_url": (
                    async_signed_snapshot_url(self.hass, event) if snapshot is not None else None
                ),
                "continues": event.continues,
                "ai": event.ai is not None,
            },
        )
        self.async_write_ha_state()
