"""Config flow: find an ONVIF camera, prove its credentials for real, keep its entry current.

Onboarding is ``user`` (a WS-Discovery scan shown as progress) -> ``pick`` a found camera or
``manual`` address (syntax-checked, then probed without credentials) -> ``credentials``, checked by
connecting with the integration's own ONVIF client. DHCP moves a known camera to its new address;
``reauth`` and ``reconfigure`` refresh an entry's credentials and address; the options flow
chooses the frame source and which media profiles get a camera entity.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
import ipaddress
import logging
import re
from typing import TYPE_CHECKING, Any, override

from homeassistant.config_entries import (
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlowWithReload,
)
from homeassistant.core import callback
from homeassistant.helpers.device_registry import format_mac
from homeassistant.helpers.selector import (
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
from homeassistant.helpers.service_info.dhcp import DhcpServiceInfo
import probatio

from .const import (
    CONF_FRAME_SOURCE,
    CONF_HOST,
    CONF_PASSWORD,
    CONF_PORT,
    CONF_PROFILES,
    CONF_USERNAME,
    DEFAULT_FRAME_SOURCE,
    DEFAULT_PORT,
    DISCOVERY_TIMEOUT,
    DOMAIN,
    FRAME_SOURCES,
)
from .onvif import (
    CameraInfo,
    CannotConnect,
    DiscoveredCamera,
    InvalidAuth,
    NotOnvif,
    NoVideoProfile,
    OnvifCamera,
    OnvifError,
    VideoProfile,
    discover_cameras,
)

if TYPE_CHECKING:
    from .data import HsiConfigEntry

_LOGGER = logging.getLogger(__name__)

# Form field of the ``pick`` step and the choice in it that leads to the ``manual`` step.
CONF_CAMERA = "camera"
MANUAL_ENTRY = "manual"
# Between a thing's name and its details in selector labels.
LABEL_SEPARATOR = " \N{EN DASH} "

# One RFC 1123 host name label: letters, digits and inner hyphens, at most 63 characters.
_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")

_HOST_SELECTOR = TextSelector(TextSelectorConfig(autocomplete="off"))
_PORT_SELECTOR = NumberSelector(
    NumberSelectorConfig(min=1, max=65535, step=1, mode=NumberSelectorMode.BOX)
)
_USERNAME_SELECTOR = TextSelector(TextSelectorConfig(autocomplete="username"))
_PASSWORD_SELECTOR = TextSelector(
    TextSelectorConfig(type=TextSelectorType.PASSWORD, autocomplete="current-password")
)


def camera_label(camera: DiscoveredCamera) -> str:
    """How a discovered camera is shown in the ``pick`` list: ``name (hardware) - host``."""
    hardware = f" ({camera.hardware})" if camera.hardware else ""
    return f"{camera.name}{hardware}{LABEL_SEPARATOR}{camera.host}"


def profile_label(profile: VideoProfile) -> str:
    """How a media profile is shown in the options: ``name - WxH encoding``."""
    details = f"{profile.width}x{profile.height} {profile.encoding}"
    return f"{profile.name}{LABEL_SEPARATOR}{details}"


def normalize_host(text: str) -> str | None:
    """The host as stored, or None when ``text`` is neither an IP address nor a host name.

    Accepts an IPv4 or IPv6 literal (IPv6 also in brackets, stored without them) or an RFC 1123
    host name; refuses schemes, paths, ports and whitespace, which the user must remove, not us.
    """
    host = text.strip()
    literal = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return str(ipaddress.ip_address(literal))
    except ValueError:
        pass
    name = host.removesuffix(".")
    labels = name.split(".")
    if len(name) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        return None
    # RFC 1123 2.1: the top-level label is never all digits, so "8897" or "10.0.0.256" is no name.
    if labels[-1].isdigit():
        return None
    return host


def _address_key(host: str, port: int) -> str:
    return f"{host}:{port}"


def _credentials_schema(username: str | None) -> probatio.Schema:
    return probatio.Schema(
        {
            probatio.Required(
                CONF_USERNAME, description={"suggested_value": username}
            ): _USERNAME_SELECTOR,
            probatio.Required(CONF_PASSWORD): _PASSWORD_SELECTOR,
        }
    )


def _address_schema(host: str | None, port: int) -> dict[probatio.Marker, Any]:
    # A suggestion, not a default: an empty host must be refused by the form, not tried.
    return {
        probatio.Required(CONF_HOST, description={"suggested_value": host}): _HOST_SELECTOR,
        probatio.Required(CONF_PORT, default=port): _PORT_SELECTOR,
    }


def _failed(host: str, port: int, err: OnvifError, key: str) -> str:
    """Log why a check failed (for troubleshooting; the form shows ``key``) and return ``key``."""
    # The client's error messages never carry credentials (tested in tests/onvif).
    _LOGGER.debug("Checking the ONVIF camera at %s:%s: %s (%s)", host, port, key, err)
    return key


async def async_probe_camera(
    host: str, port: int, username: str, password: str
) -> tuple[CameraInfo, str] | str:
    """Connect to the camera for real; return what it reported and its unique id, or an error key.

    The session is always closed: a flow only needs the answer; the entry opens its own session.
    """
    camera = OnvifCamera(host, port, username, password)
    error: str
    try:
        info = await camera.async_connect()
        # NotOnvif for a camera with neither MAC nor serial: it cannot be told apart from others.
        unique_id = info.identity.unique_id
    except InvalidAuth as err:
        error = _failed(host, port, err, "invalid_auth")
    except NotOnvif as err:
        error = _failed(host, port, err, "not_onvif")
    except NoVideoProfile as err:
        error = _failed(host, port, err, "no_video_profile")
    except CannotConnect as err:
        error = _failed(host, port, err, "cannot_connect")
    # A bug must not leave the user with a dead form: answer "unknown" and log the trace for a
    # bug report (the message names host and port, never the credentials).
    except Exception:
        _LOGGER.exception("Unexpected error while checking the ONVIF camera at %s:%s", host, port)
        error = "unknown"
    else:
        return info, unique_id
    finally:
        await camera.async_close()
    return error


async def async_probe_address(host: str, port: int) -> str | None:
    """Check, before asking for credentials, that an ONVIF device answers; None or an error key."""
    camera = OnvifCamera(host, port, "", "")
    try:
        await camera.async_probe()
    except NotOnvif as err:
        return _failed(host, port, err, "not_onvif")
    except CannotConnect as err:
        return _failed(host, port, err, "cannot_connect")
    # As in async_probe_camera: a bug must not leave a dead form; the trace is logged.
    except Exception:
        _LOGGER.exception("Unexpected error while probing the ONVIF camera at %s:%s", host, port)
        return "unknown"
    finally:
        await camera.async_close()
    return None


class HsiConfigFlow(ConfigFlow, domain=DOMAIN):
    """Onboard an ONVIF camera, and keep its address and credentials up to date."""

    VERSION = 1
    MINOR_VERSION = 1

    def __init__(self) -> None:
        """Start with nothing scanned and no address chosen."""
        self._scan_task: asyncio.Task[list[DiscoveredCamera]] | None = None
        self._discovered: dict[str, DiscoveredCamera] = {}
        self._host = ""
        self._port = DEFAULT_PORT
        self._name: str | None = None

    @staticmethod
    @callback
    @override
    def async_get_options_flow(config_entry: HsiConfigEntry) -> HsiOptionsFlow:
        """Options: frame source and camera profiles."""
        return HsiOptionsFlow()

    # --- onboarding -------------------------------------------------------------------------------

    @override
    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Scan the network for ONVIF cameras while the user watches a progress message."""
        if self._scan_task is None:
            self._scan_task = self.hass.async_create_task(self._async_scan(), "hsi_onvif_scan")
        if not self._scan_task.done():
            return self.async_show_progress(
                step_id="user", progress_action="scan", progress_task=self._scan_task
            )
        configured = {
            _address_key(entry.data[CONF_HOST], entry.data[CONF_PORT])
            for entry in self._async_current_entries(include_ignore=False)
        }
        self._discovered = {
            key: camera
            for camera in self._scan_task.result()
            if (key := _address_key(camera.host, camera.port)) not in configured
        }
        return self.async_show_progress_done(next_step_id="pick" if self._discovered else "manual")

    async def _async_scan(self) -> list[DiscoveredCamera]:
        """Run the blocking WS-Discovery probe in an executor; a network failure finds nothing."""
        try:
            return await self.hass.async_add_executor_job(discover_cameras, DISCOVERY_TIMEOUT)
        except OSError as err:
            # No multicast route (containers, VPNs) is common; manual entry still works.
            _LOGGER.warning("ONVIF WS-Discovery scan failed: %s", err)
            return []

    async def async_step_pick(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Let the user choose a found camera, or enter an address by hand."""
        if user_input is not None:
            choice = user_input[CONF_CAMERA]
            if choice == MANUAL_ENTRY:
                return await self.async_step_manual()
            camera = self._discovered[choice]
            self._host, self._port, self._name = camera.host, camera.port, camera.name
            return await self.async_step_credentials()

        options = [
            SelectOptionDict(value=key, label=camera_label(camera))
            for key, camera in self._discovered.items()
        ]
        options.append(SelectOptionDict(value=MANUAL_ENTRY, label="Enter manually"))
        return self.async_show_form(
            step_id="pick",
            data_schema=probatio.Schema(
                {
                    probatio.Required(CONF_CAMERA): SelectSelector(
                        SelectSelectorConfig(
                            options=options,
                            mode=SelectSelectorMode.LIST,
                            translation_key=CONF_CAMERA,
                        )
                    )
                }
            ),
        )

    async def async_step_manual(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the camera's address when it was not found, or the user prefers to type it.

        The address is checked here, without credentials, so a wrong one is fixed on this form
        rather than reported on the credentials form, which has no address field.
        """
        errors: dict[str, str] = {}
        host: str | None = None
        port = DEFAULT_PORT
        if user_input is not None:
            port = int(user_input[CONF_PORT])
            host = normalize_host(user_input[CONF_HOST])
            if host is None:
                host = user_input[CONF_HOST]
                errors[CONF_HOST] = "invalid_host"
            elif error := await async_probe_address(host, port):
                errors["base"] = error
            else:
                self._host, self._port, self._name = host, port, None
                return await self.async_step_credentials()
        return self.async_show_form(
            step_id="manual",
            data_schema=probatio.Schema(_address_schema(host, port)),
            errors=errors,
            description_placeholders={"found": str(len(self._discovered))},
        )

    async def async_step_credentials(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Check the credentials against the camera itself, then create the entry."""
        errors: dict[str, str] = {}
        if user_input is not None:
            username, password = user_input[CONF_USERNAME], user_input[CONF_PASSWORD]
            result = await async_probe_camera(self._host, self._port, username, password)
            if isinstance(result, str):
                errors["base"] = result
            else:
                info, unique_id = result
                await self.async_set_unique_id(unique_id, raise_on_progress=False)
                # The same camera at another address has moved: its entry follows (and reloads).
                self._abort_if_unique_id_configured(
                    updates={CONF_HOST: self._host, CONF_PORT: self._port}
                )
                return self.async_create_entry(
                    title=self._name or info.identity.model or self._host,
                    data={
                        CONF_HOST: self._host,
                        CONF_PORT: self._port,
                        CONF_USERNAME: username,
                        CONF_PASSWORD: password,
                    },
                    options={
                        CONF_FRAME_SOURCE: DEFAULT_FRAME_SOURCE,
                        CONF_PROFILES: [info.profiles[0].token],
                    },
                )
        return self.async_show_form(
            step_id="credentials",
            data_schema=_credentials_schema((user_input or {}).get(CONF_USERNAME)),
            errors=errors,
            description_placeholders={
                "name": self._name or self._host,
                "host": _address_key(self._host, self._port),
            },
        )

    # --- discovery of a known camera at a new address ---------------------------------------------

    @override
    async def async_step_dhcp(self, discovery_info: DhcpServiceInfo) -> ConfigFlowResult:
        """A registered camera got a new IP address: point its entry there (this reloads it)."""
        await self.async_set_unique_id(format_mac(discovery_info.macaddress))
        self._abort_if_unique_id_configured(updates={CONF_HOST: discovery_info.ip})
        # A MAC that keys none of our entries (say, of a camera removed since): nothing to update.
        return self.async_abort(reason="no_devices_found")

    # --- credentials changed on the camera --------------------------------------------------------

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """The camera refused the stored credentials."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for new credentials and check them against the same camera."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            host, port = entry.data[CONF_HOST], entry.data[CONF_PORT]
            result = await async_probe_camera(
                host, port, user_input[CONF_USERNAME], user_input[CONF_PASSWORD]
            )
            if isinstance(result, str):
                errors["base"] = result
            else:
                await self.async_set_unique_id(result[1], raise_on_progress=False)
                self._abort_if_unique_id_mismatch()
                return self.async_update_reload_and_abort(entry, data_updates=user_input)
        username = (user_input or {}).get(CONF_USERNAME) or entry.data[CONF_USERNAME]
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=_credentials_schema(username),
            errors=errors,
            description_placeholders={
                "name": entry.title,
                "host": _address_key(entry.data[CONF_HOST], entry.data[CONF_PORT]),
            },
        )

    # --- the user changes address or credentials --------------------------------------------------

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change address and credentials of the camera; it must still be the same camera.

        An empty password keeps the stored one, so changing only the port needs no re-typing; the
        camera still has to accept the credentials before anything is saved.
        """
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        values: Mapping[str, Any] = entry.data
        if user_input is not None:
            host = normalize_host(user_input[CONF_HOST])
            values = {
                CONF_HOST: host or user_input[CONF_HOST],
                CONF_PORT: int(user_input[CONF_PORT]),
                CONF_USERNAME: user_input[CONF_USERNAME],
                CONF_PASSWORD: user_input.get(CONF_PASSWORD) or entry.data[CONF_PASSWORD],
            }
            if host is None:
                errors[CONF_HOST] = "invalid_host"
            elif isinstance(result := await async_probe_camera(**values), str):
                errors["base"] = result
            else:
                await self.async_set_unique_id(result[1], raise_on_progress=False)
                self._abort_if_unique_id_mismatch()
                return self.async_update_reload_and_abort(entry, data_updates=values)
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=probatio.Schema(
                {
                    **_address_schema(values[CONF_HOST], values[CONF_PORT]),
                    probatio.Required(
                        CONF_USERNAME, description={"suggested_value": values[CONF_USERNAME]}
                    ): _USERNAME_SELECTOR,
                    # Never suggested: the stored password is not sent back to the browser.
                    probatio.Optional(CONF_PASSWORD): _PASSWORD_SELECTOR,
                }
            ),
            errors=errors,
            description_placeholders={"name": entry.title},
        )


class HsiOptionsFlow(OptionsFlowWithReload):
    """Frame source and which media profiles get a camera entity; saving reloads the entry."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Show the options; the profiles on offer are the ones the loaded camera reported."""
        entry: HsiConfigEntry = self.config_entry
        # Profiles come from the live camera; without a loaded entry there is nothing true to offer.
        if entry.state is not ConfigEntryState.LOADED:
            return self.async_abort(reason="not_loaded")
        profiles = entry.runtime_data.info.profiles
        errors: dict[str, str] = {}
        if user_input is not None:
            if user_input.get(CONF_PROFILES):
                # Merge, so options added by later features survive an edit made with this form.
                return self.async_create_entry(data={**entry.options, **user_input})
            errors[CONF_PROFILES] = "no_profiles"

        offered = {profile.token for profile in profiles}
        if user_input is not None:
            # Show the user's own choice back (here: none), next to the error that refers to it.
            current: Mapping[str, Any] = user_input
            fallback: list[str] = []
        else:
            # Stored tokens the camera no longer has are dropped; the first profile stands in, as
            # it does for the entities.
            current, fallback = entry.options, [profiles[0].token]
        suggested = {
            CONF_FRAME_SOURCE: current.get(CONF_FRAME_SOURCE, DEFAULT_FRAME_SOURCE),
            CONF_PROFILES: [t for t in current.get(CONF_PROFILES, []) if t in offered] or fallback,
        }
        schema = probatio.Schema(
            {
                probatio.Required(CONF_FRAME_SOURCE): SelectSelector(
                    SelectSelectorConfig(
                        options=list(FRAME_SOURCES),
                        mode=SelectSelectorMode.LIST,
                        translation_key=CONF_FRAME_SOURCE,
                    )
                ),
                probatio.Optional(CONF_PROFILES): SelectSelector(
                    SelectSelectorConfig(
                        options=[
                            SelectOptionDict(value=p.token, label=profile_label(p))
                            for p in profiles
                        ],
                        multiple=True,
                        mode=SelectSelectorMode.LIST,
                    )
                ),
            }
        )
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
        )
