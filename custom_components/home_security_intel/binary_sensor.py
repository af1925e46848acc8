"""Binary sensors: occupancy per object group (and per user zone) of a camera; a detector's reach.

Occupancy is on only for confirmed objects and stays on for the off delay after the last one left.
After a restart it starts off and turns on only when frames say so: nothing is restored.
"""

from __future__ import annotations

from homeassistant.components.binary_sensor import BinarySensorEntity
from homeassistant.components.binary_sensor.const import BinarySensorDeviceClass
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import EntityCategory, Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import DOMAIN, HOME_UNIQUE_ID, SIGNAL_ALERT_CHANGED
from .data import is_camera_entry, is_detector_entry, is_home_entry
from .detection.model import GROUPS
from .detection_coordinator import DetectionCoordinator, occupancy_key
from .detector_hub import DetectorHub
from .entity import (
    HsiDetectionEntity,
    HsiDetectorEntity,
    HsiSecurityEntity,
    async_remove_stale_entities,
    async_security_monitor,
    home_device_info,
)
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
