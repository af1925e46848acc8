"""Base entities of the integration: one place for device info, unique ids and availability."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.device_registry import (
    CONNECTION_NETWORK_MAC,
    DeviceEntryType,
    DeviceInfo,
    format_mac,
)
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import (
    CONF_DETECTOR_KIND,
    CONF_ENGINE,
    CONF_URL,
    DETECTOR_KIND_LOCAL,
    DOMAIN,
    HOME_UNIQUE_ID,
    MANUFACTURER_FALLBACK,
)
from .coordinator import CameraCoordinator
from .detection_coordinator import DetectionCoordinator
from .onvif import CameraInfo

if TYPE_CHECKING:
    from .data import HsiConfigEntry
    from .detector_hub import DetectorHub
    from .security import SecurityMonitor


def camera_device_id(entry: ConfigEntry, info: CameraInfo) -> str:
    """The id of a camera's device and the prefix of its entities' unique ids.

    The entry's unique id: the camera's MAC (else serial), or for another device behind the same
    MAC (an encoder's channel, an NVR port) that MAC with its serial (and port) appended.
    """
    return entry.unique_id or info.identity.unique_id


def camera_device_info(entry: ConfigEntry, info: CameraInfo) -> DeviceInfo:
    """Describe a camera's device; used both to register it at setup and by every entity."""
    identity = info.identity
    device_info = DeviceInfo(
        identifiers={(DOMAIN, camera_device_id(entry, info))},
        name=entry.title,
        manufacturer=identity.manufacturer or MANUFACTURER_FALLBACK,
        model=identity.model or None,
        sw_version=identity.firmware_version or None,
        hw_version=identity.hardware_id or None,
        serial_number=identity.serial_number or None,
        configuration_url=info.configuration_url,
    )
    if identity.mac:
        device_info["connections"] = {(CONNECTION_NETWORK_MAC, format_mac(identity.mac))}
    return device_info


def detector_device_info(entry: ConfigEntry, hub: DetectorHub) -> DeviceInfo:
    """Describe a detector's device (a service, not hardware); cameras link to it."""
    info = hub.data.info if hub.data else None
    local = entry.data.get(CONF_DETECTOR_KIND) == DETECTOR_KIND_LOCAL
    device_info = DeviceInfo(
        identifiers={(DOMAIN, hub.device_identifier)},
        name=entry.title,
        manufacturer="Home Security Intelligence",
        model=(info.name if info else None)
        or (f"Local {entry.data.get(CONF_ENGINE)} model" if local else "Detector server"),
        sw_version=info.version if info else None,
        entry_type=DeviceEntryType.SERVICE,
    )
    if not local and (url := entry.data.get(CONF_URL)):
        device_info["configuration_url"] = f"{url.rstrip('/')}/health"
    return device_info


def entity_unique_id(device_unique_id: str, key: str) -> str:
    """Unique id of one of a camera's entities; the key names the entity within its camera."""
    return f"{device_unique_id}_{key}"


@callback
def async_remove_stale_entities(
    hass: HomeAssistant,
    entry: HsiConfigEntry,
    domain: str,
    wanted: Collection[str],
    owns: Callable[[str], bool],
) -> None:
    """Drop a camera's registered entities of ``domain`` whose key ``owns`` claims but that the
    options no longer call for (a zone removed, a group deselected, detection set to none), so
    they do not linger as unavailable."""
    registry = er.async_get(hass)
    prefix = entity_unique_id(camera_device_id(entry, entry.runtime_data.info), "")
    for registered in er.async_entries_for_config_entry(registry, entry.entry_id):
        key = registered.unique_id.removeprefix(prefix)
        if (
            registered.domain == domain
            and registered.platform == DOMAIN
            and registered.unique_id.startswith(prefix)
            and owns(key)
            and key not in wanted
        ):
            registry.async_remove(registered.entity_id)


@callback
def async_add_detection_entity(
    hass: HomeAssistant,
    entry: HsiConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    domain: str,
    key: str,
    create: Callable[[DetectionCoordinator], Entity],
) -> None:
    """Add a platform's one detection entity of a camera, or drop it when the camera has no
    detection (its options say no detector)."""
    detection = entry.runtime_data.detection
    if detection is None:
        async_remove_stale_entities(hass, entry, domain, (), key.__eq__)
        return
    async_add_entities([create(detection)])


class HsiEntity(CoordinatorEntity[CameraCoordinator]):
    """An entity of one camera; unavailable whenever the camera's health check fails."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: CameraCoordinator, key: str) -> None:
        """Attach the entity to its camera's coordinator and device."""
        super().__init__(coordinator)
        self._attr_unique_id = entity_unique_id(coordinator.device_unique_id, key)
        self._attr_device_info = camera_device_info(coordinator.config_entry, coordinator.info)


class HsiDetectionEntity(CoordinatorEntity[DetectionCoordinator]):
    """A detection entity of one camera: available while frames are being analysed."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: DetectionCoordinator, key: str) -> None:
        """Attach the entity to its camera's detection loop and device."""
        super().__init__(coordinator)
        entry = coordinator.config_entry
        self._attr_unique_id = entity_unique_id(coordinator.device_unique_id, key)
        self._attr_device_info = camera_device_info(entry, entry.runtime_data.info)

    async def async_added_to_hass(self) -> None:
        """Follow the camera's health too: availability depends on it."""
        await super().async_added_to_hass()
        camera = self.coordinator.config_entry.runtime_data.coordinator
        self.async_on_remove(camera.async_add_listener(self._handle_coordinator_update))

    @property
    def available(self) -> bool:
        """Unavailable while detection is off, the camera is away or the detector is down."""
        return (
            super().available
            and self.coordinator.enabled
            and not self.coordinator.waiting_for_detector
            and not self.coordinator.detector_down
            and self.coordinator.config_entry.runtime_data.coordinator.last_update_success
        )


class HsiSecurityEntity(HsiDetectionEntity):
    """A security entity of one camera (risk, alerts, events): available like detection."""

    def __init__(self, monitor: SecurityMonitor, key: str) -> None:
        """Attach the entity to the camera's security monitor (and its detection loop)."""
        super().__init__(monitor.detection, key)
        self.monitor = monitor

    async def async_added_to_hass(self) -> None:
        """Follow the monitor too: risk and alerts change between frames (timers, AI)."""
        await super().async_added_to_hass()
        self.async_on_remove(self.monitor.async_add_listener(self.async_write_ha_state))


@callback
def async_security_monitor(
    hass: HomeAssistant, entry: HsiConfigEntry, domain: str, keys: Collection[str]
) -> SecurityMonitor | None:
    """The camera's security monitor; without one (no detection) its entities are dropped."""
    monitor = entry.runtime_data.security
    if monitor is None:
        async_remove_stale_entities(hass, entry, domain, (), keys.__contains__)
    return monitor


def home_device_info() -> DeviceInfo:
    """The home entry's device: a service grouping what concerns every camera."""
    return DeviceInfo(
        identifiers={(DOMAIN, HOME_UNIQUE_ID)},
        name="Home",
        manufacturer="Home Security Intelligence",
        model="Home",
        entry_type=DeviceEntryType.SERVICE,
    )


class HsiControlEntity(HsiDetectionEntity):
    """A control of the detection loop (switch, number, button): usable while it is off too."""

    @property
    def available(self) -> bool:
        """Available whenever the camera answers, whatever the detector does."""
        return self.coordinator.config_entry.runtime_data.coordinator.last_update_success


class HsiDetectorEntity(CoordinatorEntity["DetectorHub"]):
    """An entity of a detector's device (reachability and figures)."""

    _attr_has_entity_name = True

    def __init__(self, hub: DetectorHub, key: str) -> None:
        """Attach the entity to the detector's hub and device."""
        super().__init__(hub)
        self._attr_unique_id = f"{hub.entry.entry_id}_{key}"
        self._attr_device_info = detector_device_info(hub.entry, hub)
