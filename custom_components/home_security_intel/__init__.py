"""Home Security Intelligence: set up and unload cameras and the detectors they share.

A config entry is either one ONVIF camera or one detector (a detector server, the add-on, or a
local model); cameras pick their detector in their options and reach it through its hub.
"""

from __future__ import annotations

import logging
import sqlite3

from homeassistant.config_entries import SOURCE_SYSTEM, ConfigEntry
from homeassistant.const import EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryError, ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv, device_registry as dr
from homeassistant.helpers.typing import ConfigType

from .camera_events import CameraEvents
from .const import (
    CONF_HOST,
    CONF_PASSWORD,
    CONF_PORT,
    CONF_RETENTION_DAYS,
    CONF_USERNAME,
    DEFAULT_RETENTION_DAYS,
    DETECTOR_NONE,
    DOMAIN,
)
from .coordinator import CameraCoordinator
from .data import DetectorConfigEntry, HsiConfigEntry, HsiData, is_detector_entry, is_home_entry
from .detection.model import DetectorError
from .detection_coordinator import DetectionCoordinator, DetectionSettings
from .detector_hub import DetectorHub, async_build_detector
from .entity import camera_device_id, camera_device_info, detector_device_info
from .frame_sources import StreamSessions, detection_profile
from .issues import (
    async_delete_detector_issues,
    async_delete_unsafe_uri_issues,
    async_sync_detector_plaintext_issue,
    async_sync_unsafe_uri_issues,
)
from .onvif import (
    CameraInfo,
    InvalidAuth,
    NotOnvif,
    NoVideoProfile,
    OnvifCamera,
    OnvifError,
)
from .security import SecurityMonitor, SecuritySettings
from .store import HsiStore, async_acquire_store, async_release_store
from .store.database import StoreError

_LOGGER = logging.getLogger(__name__)

CAMERA_PLATFORMS: list[Platform] = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.CALENDAR,
    Platform.CAMERA,
    Platform.EVENT,
    Platform.IMAGE,
    Platform.NUMBER,
    Platform.SENSOR,
    Platform.SWITCH,
]
DETECTOR_PLATFORMS: list[Platform] = [Platform.BINARY_SENSOR, Platform.SENSOR]
HOME_PLATFORMS: list[Platform] = [Platform.BINARY_SENSOR, Platform.CALENDAR]
CONFIG_VERSION = 1

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the integration's services (once, for every entry)."""
    from .media_source import SnapshotView
    from .services import async_setup_services

    async_setup_services(hass)
    # Event snapshots, for authenticated users and signed notification paths only.
    hass.http.register_view(SnapshotView())
    return True


async def _async_connect(camera: OnvifCamera, entry: HsiConfigEntry) -> CameraInfo:
    """Connect, translating the client's errors into what Home Assistant should do next."""
    placeholders = {"camera_name": entry.title}
    try:
        return await camera.async_connect()
    except InvalidAuth as err:
        raise ConfigEntryAuthFailed(
            translation_domain=DOMAIN,
            translation_key="invalid_auth",
            translation_placeholders=placeholders,
        ) from err
    except NoVideoProfile as err:
        # Retrying cannot help: the camera itself must be configured with a video profile. The
        # entry shows the error and the user reloads it after fixing the camera.
        raise ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key="no_video_profile",
            translation_placeholders=placeholders,
        ) from err
    except NotOnvif as err:
        # Often a camera still booting: its web server answers before its ONVIF service does.
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="not_onvif",
            translation_placeholders=placeholders,
        ) from err
    except OnvifError as err:
        # CannotConnect and any other protocol failure at connect time: worth retrying later.
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="cannot_connect",
            translation_placeholders={**placeholders, "error": str(err)},
        ) from err


async def async_setup_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    """Set up a camera, a detector or the home entry."""
    if is_detector_entry(entry):
        return await _async_setup_detector(hass, entry)
    if is_home_entry(entry):
        # The home holds the store for its calendar of every camera's events.
        entry.runtime_data = await _async_acquire_store(hass, None)
        try:
            await hass.config_entries.async_forward_entry_setups(entry, HOME_PLATFORMS)
        except BaseException:
            await async_release_store(hass)
            raise
        return True
    return await _async_setup_camera(hass, entry)


@callback
def _async_ensure_home_entry(hass: HomeAssistant) -> None:
    """Create the home entry (home-wide alert sensor) once, when the first camera with security
    events (that is, with detection) sets up."""
    if any(is_home_entry(entry) for entry in hass.config_entries.async_entries(DOMAIN)):
        return
    # The flow's unique id makes a second, concurrent attempt abort.
    hass.async_create_task(
        hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_SYSTEM}, data={}),
        eager_start=True,
    )


async def _async_setup_detector(hass: HomeAssistant, entry: DetectorConfigEntry) -> bool:
    """Build the detector, register its device and start checking its health."""
    try:
        detector = await async_build_detector(hass, entry.data)
    except DetectorError as err:
        raise ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key="detector_unusable",
            translation_placeholders={"detector_name": entry.title, "error": str(err)},
        ) from err
    hub = DetectorHub(hass, entry, detector)
    entry.runtime_data = hub
    # A detector that is down at start still sets up: its device shows it unreachable, cameras
    # wait for it, and the hub keeps probing (a repair issue follows if it stays away).
    await hub.async_refresh()
    dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id, **detector_device_info(entry, hub)
    )
    async_sync_detector_plaintext_issue(hass, entry)
    await hass.config_entries.async_forward_entry_setups(entry, DETECTOR_PLATFORMS)
    entry.async_on_unload(hub.async_add_listener(lambda: None))
    return True


async def _async_setup_camera(hass: HomeAssistant, entry: HsiConfigEntry) -> bool:
    """Connect to the camera, register its device and start its coordinators and entities."""
    camera = OnvifCamera(
        entry.data[CONF_HOST],
        entry.data[CONF_PORT],
        entry.data[CONF_USERNAME],
        entry.data[CONF_PASSWORD],
    )
    store: HsiStore | None = None
    security: SecurityMonitor | None = None
    try:
        info = await _async_connect(camera, entry)
        coordinator = CameraCoordinator(hass, entry, camera, info)
        await coordinator.async_config_entry_first_refresh()
        dr.async_get(hass).async_get_or_create(
            config_entry_id=entry.entry_id,
            **camera_device_info(entry, info),
        )
        async_sync_unsafe_uri_issues(hass, entry, info)
        streams = StreamSessions(camera, entry.title)
        entry.runtime_data = HsiData(
            camera=camera, info=info, coordinator=coordinator, streams=streams
        )
        entry.runtime_data.detection = _detection_coordinator(hass, entry, info)
        entry.runtime_data.store = store = await _async_acquire_store(hass, entry)
        if (detection := entry.runtime_data.detection) is not None:
            security = SecurityMonitor(
                hass, entry, detection, SecuritySettings.from_options(entry.options)
            )
            await security.async_start()
            entry.runtime_data.security = security
        if info.supports_events:
            entry.runtime_data.events = CameraEvents(hass, entry, camera, info)
        await hass.config_entries.async_forward_entry_setups(entry, CAMERA_PLATFORMS)
    except BaseException:
        # Whatever went wrong (including cancellation), the client's session must not leak.
        if security is not None:
            await security.async_stop()
        await camera.async_close()
        if store is not None:
            await async_release_store(hass)
        raise
    if security is not None:
        # The home-wide alert sensor means something once a camera produces security events.
        _async_ensure_home_entry(hass)
    # Keep the health check running even when every entity of the camera is disabled: the
    # coordinator only schedules refreshes while it has listeners.
    entry.async_on_unload(coordinator.async_add_listener(lambda: None))

    async def _async_close_streams(_event: Event) -> None:
        # Home Assistant stopping does not unload entries: the reader threads end here.
        await streams.async_close()

    entry.async_on_unload(
        hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, _async_close_streams)
    )
    events = entry.runtime_data.events
    if (detection := entry.runtime_data.detection) is not None:
        if events is not None:
            # The frame rate follows the camera's motion (the steady rate while it is unknown).
            entry.async_on_unload(
                events.async_add_listener(lambda: detection.async_set_motion(events.motion))
            )
        # Frames start now, whether or not an entity listens (a detector may still be loading);
        # a camera whose detection is switched off takes none until it is switched on.
        entry.async_on_unload(detection.async_add_listener(lambda: None))
        if detection.enabled:
            entry.async_create_background_task(
                hass, detection.async_refresh(), f"{DOMAIN}_first_frame_{entry.entry_id}"
            )
    if events is not None:
        events.async_start()
    return True


async def _async_acquire_store(hass: HomeAssistant, entry: HsiConfigEntry | None) -> HsiStore:
    """The shared event store, with this camera's retention (None: the home entry)."""
    try:
        store = await async_acquire_store(hass)
    except (sqlite3.Error, StoreError, OSError) as err:
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="store_unavailable",
            translation_placeholders={"error": str(err)},
        ) from err
    if entry is not None:
        store.async_set_retention(
            entry.entry_id, int(entry.options.get(CONF_RETENTION_DAYS, DEFAULT_RETENTION_DAYS))
        )
    return store


def _detection_coordinator(
    hass: HomeAssistant, entry: HsiConfigEntry, info: CameraInfo
) -> DetectionCoordinator | None:
    """The camera's detection loop, or None when its options name no detector or no profile
    has a snapshot or stream URI (a profile without a snapshot URI is read from its stream)."""
    settings = DetectionSettings.from_options(entry.options)
    if settings.detector == DETECTOR_NONE:
        return None
    profile = detection_profile(info.profiles, settings.profile, settings.frame_source)
    if profile is None:
        _LOGGER.warning(
            "%s offers neither a snapshot nor a stream URI: detection is not possible",
            entry.title,
        )
        return None
    _LOGGER.debug("%s: detection reads profile %s", entry.title, profile.name)
    return DetectionCoordinator(
        hass, entry, profile, settings, camera_device_id(entry, info), entry.runtime_data.streams
    )


async def async_unload_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    """Unload the entities, stop the loops and close the clients."""
    if is_detector_entry(entry):
        hub: DetectorHub = entry.runtime_data
        unload_ok = await hass.config_entries.async_unload_platforms(entry, DETECTOR_PLATFORMS)
        if unload_ok:
            await hub.async_shutdown()
        return unload_ok
    if is_home_entry(entry):
        unload_ok = await hass.config_entries.async_unload_platforms(entry, HOME_PLATFORMS)
        if unload_ok:
            await async_release_store(hass)
        return unload_ok
    data: HsiData = entry.runtime_data
    if data.security is not None:
        # First, while the entities still listen: the open event ends and is announced.
        await data.security.async_stop()
    unload_ok = await hass.config_entries.async_unload_platforms(entry, CAMERA_PLATFORMS)
    if unload_ok:
        if data.events is not None:
            # Before the client closes: the subscription ends with Unsubscribe.
            await data.events.async_stop()
        if data.detection is not None:
            await data.detection.async_shutdown()
        await data.streams.async_close()
        await data.camera.async_close()
        if data.store is not None:
            await async_release_store(hass)
    return unload_ok


async def async_remove_entry(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Drop the entry's repair issues when it is removed; a camera's history and snapshots go
    with it (nothing is left behind)."""
    if is_detector_entry(entry):
        async_delete_detector_issues(hass, entry)
        return
    if is_home_entry(entry):
        return
    async_delete_unsafe_uri_issues(hass, entry)
    store = await async_acquire_store(hass)
    try:
        await store.async_delete_camera(entry.entry_id)
    finally:
        await async_release_store(hass)


async def async_migrate_entry(hass: HomeAssistant, entry: HsiConfigEntry) -> bool:
    """Migrate an entry to the current version; refuse entries written by a newer release."""
    # Version 1 is the only version so far; future migrations go here, step by step.
    return entry.version <= CONFIG_VERSION
