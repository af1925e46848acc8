"""Image entity per camera: the latest detection frame, with boxes and labels drawn.

The detection loop keeps the latest frame worth showing (new objects announced, or the objects in
view changed) with its boxes; it is drawn off the event loop only when somebody asks for the
image, once per frame. Drawing every frame would cost more than the pipeline itself.
"""

from __future__ import annotations

from datetime import datetime

from homeassistant.components.image import ImageEntity
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .detection_coordinator import DetectionCoordinator
from .entity import HsiDetectionEntity, async_add_detection_entity

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: ConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """The detection frame image of a camera with detection."""
    async_add_detection_entity(
        hass,
        entry,
        async_add_entities,
        Platform.IMAGE,
        "detection_image",
        lambda detection: DetectionImageEntity(hass, detection),
    )


class DetectionImageEntity(HsiDetectionEntity, ImageEntity):
    """The latest frame with confirmed objects, annotated."""

    _attr_translation_key = "detection_image"
    _attr_content_type = "image/jpeg"

    def __init__(self, hass: HomeAssistant, coordinator: DetectionCoordinator) -> None:
        """Create the image entity of a camera."""
        HsiDetectionEntity.__init__(self, coordinator, "detection_image")
        ImageEntity.__init__(self, hass)

    @property
    def image_last_updated(self) -> datetime | None:
        """When the shown frame was taken."""
        return self.coordinator.data.image_updated

    async def async_image(self) -> bytes | None:
        """The latest detection frame, annotated (None until something was detected)."""
        return await self.coordinator.async_annotated_image()
