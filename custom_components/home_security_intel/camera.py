"""Camera entities: one per selected ONVIF media profile, stills from the ONVIF snapshot URI
(or, for a profile without a usable one, a frame from its RTSP stream)."""

from __future__ import annotations

import logging
from typing import override

from homeassistant.components.camera import Camera
from homeassistant.components.camera.const import CameraEntityFeature
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import CONF_PROFILES, DOMAIN
from .coordinator import CameraCoordinator
from .data import HsiConfigEntry
from .entity import HsiEntity, entity_unique_id
from .onvif import NotAnImage, OnvifError, VideoProfile
from .pipeline.rtsp import RtspError

_LOGGER = logging.getLogger(__name__)

# Camera entities are read-only views of the coordinator; Home Assistant need not limit concurrency.
PARALLEL_UPDATES = 0


def selected_profiles(entry: HsiConfigEntry) -> list[VideoProfile]:
    """The profiles chosen in the options, in camera order; the first profile when none match."""
    profiles = entry.runtime_data.info.profiles
    wanted = set(entry.options.get(CONF_PROFILES) or ())
    chosen = [profile for profile in profiles if profile.token in wanted]
    return chosen or list(profiles[:1])


def profile_key(token: str) -> str:
    """The key of a profile's camera entity within its camera (see entity_unique_id)."""
    return f"camera_{token}"


@callback
def async_remove_deselected(hass: HomeAssistant, entry: HsiConfigEntry, keep: set[str]) -> None:
    """Drop this entry's profile camera entities whose profile token is not in ``keep``.

    Only camera-platform entities of this integration and entry whose unique id is of the
    profile kind are touched: other platforms' (and other kinds of camera) entities are not ours.
    """
    registry = er.async_get(hass)
    prefix = entity_unique_id(entry.runtime_data.coordinator.device_unique_id, profile_key(""))
    for registered in er.async_entries_for_config_entry(registry, entry.entry_id):
        if (
            registered.domain == Platform.CAMERA
            and registered.platform == DOMAIN
            and registered.unique_id.startswith(prefix)
            and registered.unique_id.removeprefix(prefix) not in keep
        ):
            _LOGGER.debug("Removing %s: its profile is no longer selected", registered.entity_id)
            registry.async_remove(registered.entity_id)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HsiConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a camera entity for each selected profile; remove those of deselected profiles."""
    coordinator = entry.runtime_data.coordinator
    selected = selected_profiles(entry)
    # A profile still chosen in the options keeps its entity even while the camera does not
    # report it (the entity then shows as unavailable); only deselecting it removes the entity.
    keep = {profile.token for profile in selected} | set(entry.options.get(CONF_PROFILES) or ())
    async_remove_deselected(hass, entry, keep)
    async_add_entities(HsiCameraEntity(coordinator, profile) for profile in selected)


class HsiCameraEntity(HsiEntity, Camera):
    """One ONVIF media profile of a camera."""

    _attr_translation_key = "profile"

    def __init__(self, coordinator: CameraCoordinator, profile: VideoProfile) -> None:
        """Create the entity for one profile of the coordinator's camera."""
        HsiEntity.__init__(self, coordinator, profile_key(profile.token))
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
        """Return a JPEG from the profile's snapshot URI, or None when there is none to be had.

        A profile without a snapshot URI, or whose snapshot URI answers with something that is
        not a picture (a login page), shows a frame from its stream instead."""
        try:
            if self._profile.snapshot_uri is None:
                image = await self._async_stream_still()
            else:
                try:
                    image = await self.coordinator.camera.async_get_snapshot(self._profile)
                except NotAnImage:
                    if self._profile.stream_uri is None:
                        raise
                    image = await self._async_stream_still()
        except (OnvifError, RtspError) as err:
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

    async def _async_stream_still(self) -> bytes | None:
        return await self.coordinator.config_entry.runtime_data.streams.async_still(self._profile)

    @override
    async def stream_source(self) -> str | None:
        """Return the RTSP URI with credentials, built only now so they are kept nowhere else."""
        return self.coordinator.camera.stream_source(self._profile)

    def _unsupported(self) -> HomeAssistantError:
        # Home Assistant's defaults raise NotImplementedError: HTTP 500 and a traceback.
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="camera_action_unsupported",
            translation_placeholders={"camera_name": self.coordinator.config_entry.title},
        )

    @override
    async def async_turn_on(self) -> None:
        """ONVIF offers no power control: refuse with a translated error."""
        raise self._unsupported()

    @override
    async def async_turn_off(self) -> None:
        """ONVIF offers no power control: refuse with a translated error."""
        raise self._unsupported()

    @override
    async def async_enable_motion_detection(self) -> None:
        """The camera's own motion detection is not switched from here: refuse, translated."""
        raise self._unsupported()

    @override
    async def async_disable_motion_detection(self) -> None:
        """The camera's own motion detection is not switched from here: refuse, translated."""
        raise self._unsupported()
