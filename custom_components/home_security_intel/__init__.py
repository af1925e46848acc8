"""Home Security Intelligence: set up and unload one ONVIF camera per config entry."""

from __future__ import annotations

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryError, ConfigEntryNotReady
from homeassistant.helpers import device_registry as dr

from .const import CONF_HOST, CONF_PASSWORD, CONF_PORT, CONF_USERNAME, DOMAIN
from .coordinator import CameraCoordinator
from .data import HsiConfigEntry, HsiData
from .entity import camera_device_info
from .issues import async_delete_unsafe_uri_issues, async_sync_unsafe_uri_issues
from .onvif import (
    CameraInfo,
    InvalidAuth,
    NotOnvif,
    NoVideoProfile,
    OnvifCamera,
    OnvifError,
)

PLATFORMS: list[Platform] = [Platform.CAMERA]
CONFIG_VERSION = 1


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


async def async_setup_entry(hass: HomeAssistant, entry: HsiConfigEntry) -> bool:
    """Connect to the camera, register its device and start its coordinator and entities."""
    camera = OnvifCamera(
        entry.data[CONF_HOST],
        entry.data[CONF_PORT],
        entry.data[CONF_USERNAME],
        entry.data[CONF_PASSWORD],
    )
    try:
        info = await _async_connect(camera, entry)
        coordinator = CameraCoordinator(hass, entry, camera, info)
        await coordinator.async_config_entry_first_refresh()
        dr.async_get(hass).async_get_or_create(
            config_entry_id=entry.entry_id, **camera_device_info(entry.title, info)
        )
        async_sync_unsafe_uri_issues(hass, entry, info)
        entry.runtime_data = HsiData(camera=camera, info=info, coordinator=coordinator)
        await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    except BaseException:
        # Whatever went wrong (including cancellation), the client's session must not leak.
        await camera.async_close()
        raise
    # Keep the health check running even when every entity of the camera is disabled: the
    # coordinator only schedules refreshes while it has listeners.
    entry.async_on_unload(coordinator.async_add_listener(lambda: None))
    return True


async def async_unload_entry(hass: HomeAssistant, entry: HsiConfigEntry) -> bool:
    """Unload the entities and close the camera's client."""
    unload_ok = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unload_ok:
        await entry.runtime_data.camera.async_close()
    return unload_ok


async def async_remove_entry(hass: HomeAssistant, entry: HsiConfigEntry) -> None:
    """Drop the entry's repair issues when the camera is removed."""
    async_delete_unsafe_uri_issues(hass, entry)


async def async_migrate_entry(hass: HomeAssistant, entry: HsiConfigEntry) -> bool:
    """Migrate an entry to the current version; refuse entries written by a newer release."""
    # Version 1 is the only version so far; future migrations go here, step by step.
    return entry.version <= CONFIG_VERSION
