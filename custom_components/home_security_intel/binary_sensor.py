"""Binary sensors: occupancy per object group (and per user zone) of a camera; a detector's reach;
what the camera's own ONVIF events report (motion, and its own detections).

Occupancy is on only for confirmed objects and stays on for the off delay after the last one left.
After a restart it starts off and turns on only when frames say so: nothing is restored.
The event sensors follow the camera's PullPoint subscription: motion for every camera with events,
its own person / vehicle / animal / line-crossing / intrusion detections (disabled by default) once
it declares or reports them. They are unavailable while no subscription is live.
"""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.components.binary_sensor import (
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.components.binary_sensor.const import BinarySensorDeviceClass
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import EntityCategory, Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .camera_events import CameraEvents
from .const import DOMAIN, HOME_UNIQUE_ID, SIGNAL_ALERT_CHANGED
from .coordinator import CameraCoordinator
from .data import HsiConfigEntry, is_camera_entry, is_detector_entry, is_home_entry
from .detection.model import GROUPS
from .detection_coordinator import DetectionCoordinator, occupancy_key
from .detector_hub import DetectorHub
from .entity import (
    HsiDetectionEntity,
    HsiDetectorEntity,
    HsiEntity,
    HsiSecurityEntity,
    async_remove_stale_entities,
    async_security_monitor,
    entity_unique_id,
    home_device_info,
)
from .onvif.events import EventKind
from .security import SecurityMonitor

KEY_ALERT_ACTIVE = "alert_active"

# Entities read their coordinator's data; Home Assistant need not limit concurrency.
PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: ConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Occupancy sensors for a camera; the reachability sensor for a detector."""
    if is_detector_entry(entry):
        async_add_entities([DetectorReachableSensor(entry.runtime_data)])
        return
    if is_home_entry(entry):
        async_add_entities([HomeAlertSensor()])
        return
    if monitor := async_security_monitor(hass, entry, Platform.BINARY_SENSOR, {KEY_ALERT_ACTIVE}):
        async_add_entities([AlertActiveSensor(monitor)])
    detection: DetectionCoordinator | None = entry.runtime_data.detection
    sensors = []
    if detection is not None:
        zone_names = {zone.slug: zone.name for zone in detection.settings.zones}
        sensors = [
            OccupancySensor(detection, group, zone_slug, zone_names.get(zone_slug or ""))
            for group, zone_slug in detection.settings.occupancy_keys()
        ]
    async_remove_stale_entities(
        hass,
        entry,
        Platform.BINARY_SENSOR,
        {sensor.key for sensor in sensors},
        lambda key: key in GROUPS or key.startswith("zone_"),
    )
    async_add_entities(sensors)
    _async_setup_event_sensors(hass, entry, async_add_entities)


@dataclass(frozen=True, kw_only=True)
class CameraEventSensorDescription(BinarySensorEntityDescription):
    """A binary sensor for one kind of what the camera's events report."""

    kind: EventKind


CAMERA_EVENT_SENSORS: tuple[CameraEventSensorDescription, ...] = (
    CameraEventSensorDescription(
        key="motion",
        translation_key="motion",
        device_class=BinarySensorDeviceClass.MOTION,
        kind=EventKind.MOTION,
    ),
    *(
        CameraEventSensorDescription(
            key=f"camera_{kind}",
            translation_key=f"camera_{kind}",
            device_class=device_class,
            entity_registry_enabled_default=False,
            kind=kind,
        )
        for kind, device_class in (
            (EventKind.PERSON, BinarySensorDeviceClass.OCCUPANCY),
            (EventKind.VEHICLE, BinarySensorDeviceClass.OCCUPANCY),
            (EventKind.ANIMAL, BinarySensorDeviceClass.OCCUPANCY),
            (EventKind.LINE_CROSSING, BinarySensorDeviceClass.MOTION),
            (EventKind.INTRUSION, BinarySensorDeviceClass.OCCUPANCY),
        )
    ),
)


@callback
def _async_setup_event_sensors(
    hass: HomeAssistant, entry: HsiConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    """Motion for a camera with events; its own detections as it declares or reports them."""
    events = entry.runtime_data.events
    keys = {description.key for description in CAMERA_EVENT_SENSORS}
    if events is None:
        async_remove_stale_entities(hass, entry, Platform.BINARY_SENSOR, (), keys.__contains__)
        return
    coordinator = entry.runtime_data.coordinator
    added: set[EventKind] = set()
    # Sensors of an earlier run come back at once, before the camera reports their kind again.
    prefix = entity_unique_id(coordinator.device_unique_id, "")
    registered = {
        registered.unique_id.removeprefix(prefix)
        for registered in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
        if registered.domain == Platform.BINARY_SENSOR
    }
    known = {d.kind for d in CAMERA_EVENT_SENSORS if d.key in registered}

    @callback
    def add_reported() -> None:
        reported = (events.reported_kinds() | known) - added
        if not reported:
            return
        added.update(reported)
        async_add_entities(
            CameraEventSensor(coordinator, events, description)
            for description in CAMERA_EVENT_SENSORS
            if description.kind in reported
        )

    add_reported()
    entry.async_on_unload(events.async_add_listener(add_reported))


class CameraEventSensor(HsiEntity, BinarySensorEntity):
    """On while the camera's events report one kind of happening (motion, its own detections)."""

    entity_description: CameraEventSensorDescription

    def __init__(
        self,
        coordinator: CameraCoordinator,
        events: CameraEvents,
        description: CameraEventSensorDescription,
    ) -> None:
        """Create the sensor that ``description`` describes."""
        super().__init__(coordinator, description.key)
        self.entity_description = description
        self._events = events

    async def async_added_to_hass(self) -> None:
        """Follow the camera's events as well as its health."""
        await super().async_added_to_hass()
        self.async_on_remove(self._events.async_add_listener(self.async_write_ha_state))

    @property
    def available(self) -> bool:
        """Unavailable while the camera is away or no event subscription is live."""
        return super().available and self._events.available

    @property
    def is_on(self) -> bool:
        """What the camera reports now."""
        return self._events.active(self.entity_description.kind)


class OccupancySensor(HsiDetectionEntity, BinarySensorEntity):
    """Whether confirmed objects of one group are in view (in the frame, or in one zone)."""

    _attr_device_class = BinarySensorDeviceClass.OCCUPANCY

    def __init__(
        self,
        coordinator: DetectionCoordinator,
        group: str,
        zone_slug: str | None,
        zone_name: str | None,
    ) -> None:
        """Create the sensor of ``group``, for the whole frame or for one zone."""
        self._key = occupancy_key(group, zone_slug)
        self.key = group if zone_slug is None else f"zone_{zone_slug}_{group}"
        """The entity's key within its camera (see entity_unique_id)."""
        super().__init__(coordinator, self.key)
        if zone_slug is None:
            self._attr_translation_key = group
        else:
            self._attr_translation_key = f"zone_{group}"
            self._attr_translation_placeholders = {"zone_name": zone_name or zone_slug}
        self._group = group
        self._zone_name = zone_name

    @property
    def is_on(self) -> bool:
        """On while confirmed objects are present (or left less than the off delay ago)."""
        return self._key in self.coordinator.data.occupied

    @property
    def extra_state_attributes(self) -> dict[str, object]:
        """The confirmed objects in view, by id: what the sensor is on for."""
        outcome = self.coordinator.data.outcome
        if outcome is None:
            return {"object_ids": []}
        ids = [
            obj.object_id
            for obj in outcome.objects
            if obj.group == self._group
            and (self._zone_name is None or self._zone_name in obj.zones)
        ]
        return {"object_ids": ids}


class AlertActiveSensor(HsiSecurityEntity, BinarySensorEntity):
    """On while the camera's open security event is an alert (its risk reached the level)."""

    _attr_device_class = BinarySensorDeviceClass.SAFETY
    _attr_translation_key = KEY_ALERT_ACTIVE

    def __init__(self, monitor: SecurityMonitor) -> None:
        """Create the camera's alert sensor."""
        super().__init__(monitor, KEY_ALERT_ACTIVE)

    @property
    def is_on(self) -> bool:
        """On during an alert."""
        return self.monitor.alert_active

    @property
    def extra_state_attributes(self) -> dict[str, object]:
        """The alert's event, level and title."""
        event = self.monitor.event
        if event is None or not self.monitor.alert_active:
            return {"event_id": None}
        return {"event_id": event.event_id, "level": event.level, "title": event.title}


class HomeAlertSensor(BinarySensorEntity):
    """On while any camera has an alert going on: one sensor to arm automations on."""

    _attr_has_entity_name = True
    _attr_device_class = BinarySensorDeviceClass.SAFETY
    _attr_translation_key = "home_alert_active"
    _attr_should_poll = False

    def __init__(self) -> None:
        """Create the home's alert sensor."""
        self._attr_unique_id = f"{HOME_UNIQUE_ID}_{KEY_ALERT_ACTIVE}"
        self._attr_device_info = home_device_info()

    async def async_added_to_hass(self) -> None:
        """Follow every camera's alerts."""
        self.async_on_remove(
            async_dispatcher_connect(self.hass, SIGNAL_ALERT_CHANGED, self._async_changed)
        )

    @callback
    def _async_changed(self) -> None:
        self.async_write_ha_state()

    def _alerting(self) -> list[str]:
        names = []
        for entry in self.hass.config_entries.async_loaded_entries(DOMAIN):
            if not is_camera_entry(entry):
                continue
            monitor = entry.runtime_data.security
            if monitor is not None and monitor.alert_active:
                names.append(entry.title)
        return sorted(names)

    @property
    def is_on(self) -> bool:
        """On while any camera has an alert."""
        return bool(self._alerting())

    @property
    def extra_state_attributes(self) -> dict[str, object]:
        """Which cameras have an alert."""
        return {"cameras": self._alerting()}


class DetectorReachableSensor(HsiDetectorEntity, BinarySensorEntity):
    """Whether the detector answers (connectivity, diagnostic)."""

    _attr_device_class = BinarySensorDeviceClass.CONNECTIVITY
    _attr_entity_category = EntityCategory.DIAGNOSTIC
    _attr_translation_key = "reachable"

    def __init__(self, hub: DetectorHub) -> None:
        """Create the detector's reachability sensor."""
        super().__init__(hub, "reachable")

    @property
    def available(self) -> bool:
        """Always available: being unreachable is what this sensor reports."""
        return True

    @property
    def is_on(self) -> bool:
        """On while the detector answers."""
        return self.coordinator.reachable
