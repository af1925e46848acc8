"""Button per camera: analyse one frame now, outside the steady rate."""

from __future__ import annotations

from homeassistant.components.button import ButtonEntity
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .detection_coordinator import DetectionCoordinator
from .entity import HsiControlEntity, async_add_detection_entity
from .services import async_analyse

PARALLEL_UPDATES = 1


async def async_setup_entry(
    hass: HomeAssistant,
    entry: ConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """The analyse-now button of a camera with detection."""
    async_add_detection_entity(
        hass, entry, async_add_entities, Platform.BUTTON, "analyse_now", AnalyseNowButton
    )


class AnalyseNowButton(HsiControlEntity, ButtonEntity):
    """Takes a snapshot and runs it through the detector and the pipeline at once."""

    _attr_translation_key = "analyse_now"

    def __init__(self, coordinator: DetectionCoordinator) -> None:
        """Create the button of a camera's detection."""
        super().__init__(coordinator, "analyse_now")

    async def async_press(self) -> None:
        """Analyse a frame now; errors are shown to the user, translated."""
        await async_analyse(self.coordinator)
