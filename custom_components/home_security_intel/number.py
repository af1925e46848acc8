"""Number per camera: the confirmation threshold (median score an object needs to count)."""

from __future__ import annotations

from homeassistant.components.number import NumberEntity, NumberMode
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import EntityCategory, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .detection_coordinator import DetectionCoordinator
from .entity import HsiControlEntity, async_add_detection_entity

PARALLEL_UPDATES = 0

THRESHOLD_MIN = 0.3
THRESHOLD_MAX = 0.95


async def async_setup_entry(
    hass: HomeAssistant,
    entry: ConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """The confirmation threshold of a camera with detection."""
    async_add_detection_entity(
        hass,
        entry,
        async_add_entities,
        Platform.NUMBER,
        "confirm_threshold",
        ConfirmThresholdNumber,
    )


class ConfirmThresholdNumber(HsiControlEntity, NumberEntity):
    """Raise it for fewer false alarms, lower it to confirm faint objects sooner."""

    _attr_entity_category = EntityCategory.CONFIG
    _attr_translation_key = "confirm_threshold"
    _attr_native_min_value = THRESHOLD_MIN
    _attr_native_max_value = THRESHOLD_MAX
    _attr_native_step = 0.05
    _attr_mode = NumberMode.SLIDER

    def __init__(self, coordinator: DetectionCoordinator) -> None:
        """Create the threshold control of a camera's detection."""
        super().__init__(coordinator, "confirm_threshold")

    @property
    def native_value(self) -> float:
        """The threshold in force."""
        return self.coordinator.settings.confirm_threshold

    async def async_set_native_value(self, value: float) -> None:
        """Apply the new threshold at once and keep it."""
        self.coordinator.async_set_confirm_threshold(round(value, 2))
        self.async_write_ha_state()
