"""Camera entities: one per selected ONVIF media profile, stills from the ONVIF snapshot URI."""

from __future__ import annotations

import logging
from typing import override

from homeassistant.components.camera import Camera
from homeassistant.components.camera.const import CameraEntityFeature
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import CONF_PROFILES
from .coordinator import CameraCoordinator
from .data import HsiConfigEntry
from .entity import HsiEntity
from .onvif import OnvifError, VideoProfile

_LOGGER = logging.getLogger(__name__)

# Camera entities are read-only views of the coordinator; Home Assistant need not limit concurrency.
PARALLEL_UPDATES = 0


def selected_profiles(entry: HsiConfigEntry) -> list[VideoProfile]:
    """The profiles chosen in the options, in camera order; the first profile when none match."""
    profiles = entry.runtime_data.info.profiles
    wanted = set(entry.options.get(CONF_PROFILES) or ())
    chosen = [profile for profile in profiles if profile.token in wanted]
    return chosen or list(profiles[:1])


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HsiConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a camera entity for each selected profile."""
    coordinator = entry.runtime_data.coordinator
    async_add_entities(
        HsiCameraEntity(coordinator, profile) for profile in selected_profiles(entry)
    )


class HsiCameraEntity(HsiEntity, Camera):
    """One ONVIF media profile of a camera."""

    _attr_translation_key = "profile"

    def __init__(self, coordinator: CameraCoordinator, profile: VideoProfile) -> None:
        """Create the entity for one profile of the coordinator's camera."""
        HsiEntity.__init__(self, coordinator, f"camera_{profile.token}")
        Camera.__init__(self)
        self._profile = profile
        self._attr_translation_placeholders = {"profile_name": profile.name}
        identity = coordinator.info.identity
        self._attr_brand = identity.manufacturer or None
        self._attr_model = identity.model or None
        # Only a stream URI that passed the URI guard is offered; otherwise stills only.
        self._attr_supported_features = (
            CameraEntityFeature.STREAM if profile.stream_uri else CameraEntityFeature(0)
        )
        # True while snapshots fail, so an outage is logged once rather than once per frame.
        self._snapshot_failing = False

    @override
    async def async_camera_image(
        self, width: int | None = None, height: int | None = None
    ) -> bytes | None:
        """Return a JPEG from the profile's snapshot URI, or None when there is none to be had."""
        if self._profile.snapshot_uri is None:
            return None
        try:
            image = await self.coordinator.camera.async_get_snapshot(self._profile)
        except OnvifError as err:
            if not self._snapshot_failing:
                self._snapshot_failing = True
                _LOGGER.warning(
                    "Snapshots from %s (%s) are failing: %s",
                    self.coordinator.config_entry.title,
                    self._profile.name,
                    err,
                )
            return None
        if self._snapshot_failing:
            self._snapshot_failing = False
            _LOGGER.info(
                "Snapshots from %s (%s) work again",
                self.coordinator.config_entry.title,
                self._profile.name,
            )
        return image

    @override
    async def stream_source(self) -> str | None:
        """Return the RTSP URI with credentials, built only now so they are kept nowhere else."""
        return self.coordinator.camera.stream_source(self._profile)
