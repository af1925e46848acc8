"""Switch per camera: detection on or off (configuration); the choice survives restarts."""

from __future__ import annotations

from typing import Any

from homeassistant.components.switch import SwitchEntity
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import EntityCategory, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .detection_coordinator import DetectionCoordinator
from .entity import HsiControlEntity, async_add_detection_entity

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: ConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """The detection switch of a camera with detection."""
    async_add_detection_entity(
        hass, entry, async_add_entities, Platform.SWITCH, "detection_switch", DetectionSwitch
    )


class DetectionSwitch(HsiControlEntity, SwitchEntity):
    """Turns a camera's frame analysis on and off; off forgets every tracked object."""

    _attr_entity_category = EntityCategory.CONFIG
    _attr_translation_key = "detection"

    def __init__(self, coordinator: DetectionCoordinator) -> None:
        """Create the switch of a camera's detection loop."""
        super().__init__(coordinator, "detection_switch")

    @property
    def is_on(self) -> bool:
        """On while frames are analysed."""
        return self.coordinator.enabled

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Start analysing frames."""
        self.coordinator.async_set_enabled(True)
        self.async_write_ha_state()

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Stop analysing frames; detection entities become unavailable."""
        self.coordinator.async_set_enabled(False)
        self.async_write_ha_state()
