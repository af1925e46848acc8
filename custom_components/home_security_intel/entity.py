"""Base entity of the integration: one place for device info, unique ids and availability."""

from __future__ import annotations

from homeassistant.helpers.device_registry import (
    CONNECTION_NETWORK_MAC,
    DeviceInfo,
    format_mac,
)
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN, MANUFACTURER_FALLBACK
from .coordinator import CameraCoordinator
from .onvif import CameraInfo


def camera_device_info(name: str, info: CameraInfo) -> DeviceInfo:
    """Describe a camera's device; used both to register it at setup and by every entity."""
    identity = info.identity
    device_info = DeviceInfo(
        identifiers={(DOMAIN, identity.unique_id)},
        name=name,
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


def entity_unique_id(device_unique_id: str, key: str) -> str:
    """Unique id of one of a camera's entities; the key names the entity within its camera."""
    return f"{device_unique_id}_{key}"


class HsiEntity(CoordinatorEntity[CameraCoordinator]):
    """An entity of one camera; unavailable whenever the camera's health check fails."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: CameraCoordinator, key: str) -> None:
        """Attach the entity to its camera's coordinator and device."""
        super().__init__(coordinator)
        self._attr_unique_id = entity_unique_id(coordinator.device_unique_id, key)
        self._attr_device_info = camera_device_info(
            coordinator.config_entry.title, coordinator.info
        )
