"""Config flow: onboard ONVIF cameras and the detectors they share; keep both entries current.

``user`` is a menu. A camera: ``camera`` (a WS-Discovery scan shown as progress) -> ``pick`` a
found camera or ``manual`` address (syntax-checked, then probed without credentials) ->
``credentials``, checked by connecting with the integration's own ONVIF client. A detector:
``detector`` (a server by URL, checked with a real test request) or ``local_model`` (a model in
Home Assistant's own Python, downloaded once with progress); the add-on is offered by itself
through Supervisor discovery (``hassio``). DHCP moves a known camera to its new address;
``reauth`` and ``reconfigure`` refresh credentials and addresses; the camera options choose the
frame source, the camera entities, the detector and everything detection does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
import ipaddress
import logging
from pathlib import Path
import re
from typing import TYPE_CHECKING, Any, cast, override

from homeassistant.config_entries import (
    SOURCE_HASSIO,
    ConfigEntry,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlowWithReload,
)
from homeassistant.const import CONF_NAME
from homeassistant.core import HomeAssistant, callback
from homeassistant.data_entry_flow import section
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.aiohttp_client import async_get_clientsession
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
from homeassistant.helpers.service_info.hassio import HassioServiceInfo
import probatio

from .const import (
    API_DEEPSTACK,
    API_HSI,
    API_RTDETR,
    APIS,
    CONF_API,
    CONF_API_KEY,
    CONF_CONFIRM_THRESHOLD,
    CONF_DETECTION_PROFILE,
    CONF_DETECTOR,
    CONF_DETECTOR_KIND,
    CONF_ENGINE,
    CONF_ENTRY_TYPE,
    CONF_FINGERPRINT,
    CONF_FPS,
    CONF_FRAME_SOURCE,
    CONF_GROUPS,
    CONF_HOST,
    CONF_MASKS,
    CONF_MAX_AREA,
    CONF_MIN_AREA,
    CONF_MIN_SCORE,
    CONF_MODEL,
    CONF_MOTION_FPS,
    CONF_OFF_DELAY,
    CONF_PASSWORD,
    CONF_PORT,
    CONF_PROFILES,
    CONF_SERIAL,
    CONF_URL,
    CONF_USERNAME,
    CONF_ZONES,
    DEFAULT_FRAME_SOURCE,
    DEFAULT_MOTION_FPS,
    DEFAULT_PORT,
    DEFAULT_SERVER_URL,
    DETECTION_PROFILE_AUTO,
    DETECTOR_AUTO,
    DETECTOR_KIND_LOCAL,
    DETECTOR_KIND_SERVER,
    DETECTOR_NONE,
    DISCOVERY_TIMEOUT,
    DOMAIN,
    ENGINE_TFLITE,
    ENGINES,
    ENTRY_TYPE_DETECTOR,
    ENTRY_TYPE_HOME,
    FRAME_SOURCES,
    HOME_UNIQUE_ID,
    MODELS_DIR,
)
from .data import is_camera_entry, is_detector_entry
from .detection.local import LocalDetector, local_runtime_problem
from .detection.model import GROUPS, DetectorError, DetectorInfo
from .detection.models import (
    ModelDownloadError,
    async_download_model,
    default_model,
    find_model,
    known_model,
    remove_model,
)
from .detection.remote import RemoteDetector
from .detection.urls import DetectorUrlError, check_detector_url, normalize_fingerprint
from .detection_coordinator import DetectionSettings
from .onvif import (
    CameraFault,
    CameraInfo,
    CannotConnect,
    ClockRefused,
    DeviceIdentity,
    DiscoveredCamera,
    InvalidAuth,
    NotOnvif,
    NoVideoProfile,
    OnvifCamera,
    OnvifError,
    VideoProfile,
    discover_cameras,
)
from .onvif.models import format_host_port
from .pipeline.filters import PolygonSyntaxError, parse_masks, parse_zones
from .security import SECURITY_FIELDS, security_options, security_schema, security_suggested

if TYPE_CHECKING:
    from .data import HsiConfigEntry
    from .detection.local import LocalEngine
    from .detection.parse import Dialect

_LOGGER = logging.getLogger(__name__)

# Form field of the ``pick`` step and the choice in it that leads to the ``manual`` step.
CONF_CAMERA = "camera"
MANUAL_ENTRY = "manual"
# Between a thing's name and its details in selector labels.
LABEL_SEPARATOR = " \N{EN DASH} "

# One RFC 1123 host name label: letters, digits and inner hyphens, at most 63 characters.
_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")

_HOST_SELECTOR = TextSelector(TextSelectorConfig(autocomplete="off"))
# No min/max: the selector's own range check answers "Value 70000.0 is too large" in a banner
# that leaves the form's previous errors standing; the steps check the port themselves.
_PORT_SELECTOR = NumberSelector(NumberSelectorConfig(step=1, mode=NumberSelectorMode.BOX))
_NAME_SELECTOR = TextSelector(TextSelectorConfig(autocomplete="off"))
_USERNAME_SELECTOR = TextSelector(TextSelectorConfig(autocomplete="username"))
_PASSWORD_SELECTOR = TextSelector(
    TextSelectorConfig(type=TextSelectorType.PASSWORD, autocomplete="current-password")
)


def camera_label(camera: DiscoveredCamera) -> str:
    """How a discovered camera is shown in the ``pick`` list: ``name (hardware) - host``."""
    hardware = f" ({camera.hardware})" if camera.hardware else ""
    return f"{camera.name}{hardware}{LABEL_SEPARATOR}{camera.host}"


def profile_label(profile: VideoProfile) -> str:
    """How a media profile is shown in the options: ``name - WxH encoding``.

    What the camera does not say is left out (NVR-style profiles without an encoder have no
    encoding, some not even a size): never "0x0".
    """
    size = f"{profile.width}x{profile.height}" if profile.width and profile.height else ""
    details = " ".join(part for part in (size, profile.encoding) if part)
    return f"{profile.name}{LABEL_SEPARATOR}{details}" if details else profile.name


def parse_port(value: Any) -> int | None:
    """The port as an int, or None unless ``value`` is a whole number from 1 to 65535."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not number.is_integer() or not 1 <= number <= 65535:
        return None
    return int(number)


def default_title(host: str, port: int, model: str | None) -> str:
    """``Model (host[:port])``: two cameras of the same model are told apart by default."""
    address = format_host_port(host, port, DEFAULT_PORT)
    return f"{model} ({address})" if model else address


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


def _credentials_schema(
    username: str | None, name: str | None = None, *, with_name: bool = False
) -> probatio.Schema:
    fields: dict[probatio.Marker, Any] = {}
    if with_name:
        fields[probatio.Optional(CONF_NAME, description={"suggested_value": name})] = _NAME_SELECTOR
    fields[probatio.Required(CONF_USERNAME, description={"suggested_value": username})] = (
        _USERNAME_SELECTOR
    )
    fields[probatio.Required(CONF_PASSWORD)] = _PASSWORD_SELECTOR
    return probatio.Schema(fields)


def _address_schema(host: str | None, port: float) -> dict[probatio.Marker, Any]:
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
    except ClockRefused as err:
        error = _failed(host, port, err, "clock_refused")
    except InvalidAuth as err:
        error = _failed(host, port, err, "invalid_auth")
    except NotOnvif as err:
        error = _failed(host, port, err, "not_onvif")
    except NoVideoProfile as err:
        error = _failed(host, port, err, "no_video_profile")
    except CannotConnect as err:
        error = _failed(host, port, err, "cannot_connect")
    except CameraFault as err:
        error = _failed(host, port, err, "camera_fault")
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


async def async_probe_address(host: str, port: int) -> DeviceIdentity | str | None:
    """Check, before asking for credentials, that an ONVIF device answers.

    Returns an error key, or the identity the camera gives without credentials (None when it
    gives none, as most cameras do): enough to recognise a configured camera, never to trust it.
    """
    camera = OnvifCamera(host, port, "", "")
    try:
        return await camera.async_probe(identify=True)
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


# --- detectors ------------------------------------------------------------------------------------

_URL_SELECTOR = TextSelector(TextSelectorConfig(type=TextSelectorType.URL, autocomplete="off"))
_KEY_SELECTOR = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD, autocomplete="off"))
_FINGERPRINT_SELECTOR = TextSelector(TextSelectorConfig(autocomplete="off"))
_API_SELECTOR = SelectSelector(
    SelectSelectorConfig(options=list(APIS), mode=SelectSelectorMode.LIST, translation_key=CONF_API)
)
_ENGINE_SELECTOR = SelectSelector(
    SelectSelectorConfig(
        options=list(ENGINES), mode=SelectSelectorMode.LIST, translation_key=CONF_ENGINE
    )
)
_MODEL_SELECTOR = TextSelector(TextSelectorConfig(autocomplete="off"))

# Detector failures as form errors (a camera's "cannot_connect" text names the camera).
_DETECTOR_ERRORS = {
    "cannot_connect": "detector_cannot_connect",
    "timeout": "detector_timeout",
    "busy": "detector_busy",
    "invalid_key": "invalid_key",
    "not_a_detector": "not_a_detector",
    "invalid_answer": "not_a_detector",
    "invalid_image": "not_a_detector",
    "wrong_fingerprint": "wrong_fingerprint",
    "model_unavailable": "model_unusable",
    "local_unsupported": "local_unsupported",
}


def _detector_failed(what: str, err: DetectorError) -> str:
    """Log why a detector check failed (the form shows the key) and return the form error key."""
    key = _DETECTOR_ERRORS.get(err.reason, "unknown")
    # DetectorError messages never carry a key (tested in tests/detection).
    _LOGGER.debug("Checking the detector %s: %s (%s)", what, key, err)
    return key


async def async_check_server(
    hass: HomeAssistant, url: str, api: str, api_key: str | None, fingerprint: str | None
) -> tuple[dict[str, Any], DetectorInfo] | dict[str, str]:
    """Validate a detector server for real: URL policy, then a test request. Data or errors."""
    try:
        checked = check_detector_url(url)
    except DetectorUrlError as err:
        return {CONF_URL: err.reason}
    pin: str | None = None
    if fingerprint:
        try:
            pin = normalize_fingerprint(fingerprint)
        except DetectorUrlError as err:
            return {CONF_FINGERPRINT: err.reason}
    detector = RemoteDetector(
        async_get_clientsession(hass),
        checked.base,
        cast("Dialect", api),
        api_key=api_key,
        fingerprint=pin,
    )
    try:
        info = await detector.async_check()
    except DetectorError as err:
        return {"base": _detector_failed(checked.base, err)}
    # A bug must not leave a dead form (as for cameras): "unknown", with the trace logged.
    except Exception:
        _LOGGER.exception("Unexpected error while checking the detector at %s", checked.base)
        return {"base": "unknown"}
    finally:
        await detector.async_close()
    data = {
        CONF_ENTRY_TYPE: ENTRY_TYPE_DETECTOR,
        CONF_DETECTOR_KIND: DETECTOR_KIND_SERVER,
        CONF_URL: checked.base,
        CONF_API: api,
        CONF_API_KEY: api_key,
        CONF_FINGERPRINT: pin,
    }
    return data, info


async def async_check_local(
    hass: HomeAssistant, engine: str, model: str
) -> tuple[dict[str, Any], DetectorInfo] | str:
    """Load a local model and run a test frame through it (off the loop). Data or an error key."""
    files = await hass.async_add_executor_job(
        find_model, hass.config.path(MODELS_DIR), engine, model
    )
    if files is None:
        return "model_not_found"
    detector = LocalDetector(
        cast("LocalEngine", engine),
        files.model,
        files.labels,
        export_dir=Path(hass.config.path(MODELS_DIR, "exports")),
    )
    try:
        info = await detector.async_check()
    except DetectorError as err:
        return _detector_failed(f"{engine} {model}", err)
    finally:
        await detector.async_close()
    data = {
        CONF_ENTRY_TYPE: ENTRY_TYPE_DETECTOR,
        CONF_DETECTOR_KIND: DETECTOR_KIND_LOCAL,
        CONF_ENGINE: engine,
        CONF_MODEL: model,
    }
    return data, info


def _server_schema(values: Mapping[str, Any]) -> probatio.Schema:
    # The key is never suggested back: the stored one does not travel to the browser.
    return probatio.Schema(
        {
            probatio.Required(
                CONF_URL, description={"suggested_value": values.get(CONF_URL)}
            ): _URL_SELECTOR,
            probatio.Required(CONF_API, default=values.get(CONF_API, API_HSI)): _API_SELECTOR,
            probatio.Optional(CONF_API_KEY): _KEY_SELECTOR,
            probatio.Optional(
                CONF_FINGERPRINT, description={"suggested_value": values.get(CONF_FINGERPRINT)}
            ): _FINGERPRINT_SELECTOR,
        }
    )


def _local_schema(values: Mapping[str, Any]) -> probatio.Schema:
    engine = values.get(CONF_ENGINE, ENGINE_TFLITE)
    return probatio.Schema(
        {
            probatio.Required(CONF_ENGINE, default=engine): _ENGINE_SELECTOR,
            probatio.Optional(
                CONF_MODEL, description={"suggested_value": values.get(CONF_MODEL)}
            ): _MODEL_SELECTOR,
        }
    )


_API_TITLES = {API_HSI: "HSI Detector", API_DEEPSTACK: "DeepStack", API_RTDETR: "HSI /detect"}


def _server_title(url: str, api: str) -> str:
    """``HSI Detector (192.168.1.20)``: what serves, and where (the model is the device's model)."""
    return f"{_API_TITLES[api]} ({check_detector_url(url).host})"


def _local_title(engine: str, model: str) -> str:
    return f"Local {'TFLite' if engine == ENGINE_TFLITE else 'YOLO'} ({model})"


def _kept_key(entry: ConfigEntry, url: str) -> str | None:
    """The stored API key, sent again only to the server it belongs to (same scheme, host, port):
    a key left empty while the URL changes must not travel to another machine."""
    try:
        same = check_detector_url(url).base == entry.data[CONF_URL]
    except DetectorUrlError:
        return None
    key: str | None = entry.data.get(CONF_API_KEY)
    return key if same else None


# --- which entry is which camera -----------------------------------------------------------------
#
# A camera's unique id is its MAC (else its serial number), as in core. Several ONVIF devices can
# share one MAC (the channels of an encoder, the ports of an NVR): the first keeps the MAC as its
# unique id, the others get the MAC with their serial number (and port) appended. A MAC match is
# therefore only the same camera when the serial number and the port match too.


def _entry_serial(hass: HomeAssistant, entry: ConfigEntry) -> str | None:
    """A camera entry's serial number: stored at onboarding, else its device's (older entries)."""
    if serial := entry.data.get(CONF_SERIAL):
        return str(serial)
    device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, entry.unique_id or "")})
    return device.serial_number if device is not None else None


def _behind(entry: ConfigEntry, base: str) -> bool:
    """Whether the entry's unique id is ``base`` (a MAC or serial), or one derived from it."""
    unique_id = entry.unique_id or ""
    return unique_id == base or unique_id.startswith(f"{base}_")


def same_camera(
    hass: HomeAssistant, entry: ConfigEntry, identity: DeviceIdentity, port: int | None
) -> bool:
    """Whether ``entry`` is the camera with ``identity`` (at ``port``; None: on any port).

    Same MAC (or, without one, the same serial), no different serial number, and the same port:
    a MAC match with another serial or another port is another device behind that MAC.
    """
    if identity.mac:
        if not _behind(entry, identity.mac):
            return False
        serial = _entry_serial(hass, entry)
        if serial and identity.serial_number and serial != identity.serial_number:
            return False
    elif not identity.serial_number or _entry_serial(hass, entry) != identity.serial_number:
        return False
    return port is None or entry.data[CONF_PORT] == port


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
        # The name suggested in the credentials step (model or found name, plus the address).
        self._suggested_name: str | None = None
        self._local: dict[str, str] = {}
        self._download_task: asyncio.Task[None] | None = None
        self._download_error: str | None = None
        self._downloaded: Path | None = None
        self._addon: dict[str, Any] = {}
        self._addon_name = ""

    @staticmethod
    @callback
    @override
    def async_get_options_flow(config_entry: HsiConfigEntry) -> HsiOptionsFlow:
        """Options: frame source, camera profiles, detector and detection."""
        return HsiOptionsFlow()

    @classmethod
    @callback
    @override
    def async_supports_options_flow(cls, config_entry: ConfigEntry) -> bool:
        """Cameras have options; a detector is changed with reconfigure; the home has none."""
        return is_camera_entry(config_entry)

    # --- the home entry -----------------------------------------------------------------------

    async def async_step_system(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The home-wide entry (alerts of every camera): created once, by the first camera."""
        await self.async_set_unique_id(HOME_UNIQUE_ID)
        self._abort_if_unique_id_configured()
        return self.async_create_entry(title="Home", data={CONF_ENTRY_TYPE: ENTRY_TYPE_HOME})

    # --- onboarding -------------------------------------------------------------------------------

    @override
    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """What to add: a camera, a detector server, or a local model."""
        return self.async_show_menu(
            step_id="user", menu_options=["camera", "detector", "local_model"]
        )

    async def async_step_camera(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Scan the network for ONVIF cameras while the user watches a progress message."""
        if self._scan_task is None:
            self._scan_task = self.hass.async_create_task(self._async_scan(), "hsi_onvif_scan")
        if not self._scan_task.done():
            # Also for input sent while the scan runs (a double click, a stale browser tab):
            # the progress is shown again, nothing is read from the input. Once the scan is
            # done, Home Assistant passes such input on to the next step unvalidated, so pick
            # and manual ignore input that is not theirs.
            return self.async_show_progress(
                step_id="camera", progress_action="scan", progress_task=self._scan_task
            )
        configured = {
            _address_key(entry.data[CONF_HOST], entry.data[CONF_PORT])
            for entry in self._async_current_entries(include_ignore=False)
            if is_camera_entry(entry)
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
        if user_input is not None and (
            user_input.get(CONF_CAMERA) not in {*self._discovered, MANUAL_ENTRY}
        ):
            # Input meant for the scan step: Home Assistant hands it on, unvalidated, to the step
            # after the progress (see async_step_camera). It is no choice: show the list.
            user_input = None
        if user_input is not None:
            choice = user_input[CONF_CAMERA]
            if choice == MANUAL_ENTRY:
                return await self.async_step_manual()
            camera = self._discovered[choice]
            probed = await async_probe_address(camera.host, camera.port)
            # A camera that does not answer now is reported by the credentials step.
            if isinstance(probed, DeviceIdentity) and (
                known := self._recognised(probed, camera.port)
            ):
                return self.async_abort(
                    reason="already_configured_as", description_placeholders={"name": known.title}
                )
            self._host, self._port, self._name = camera.host, camera.port, camera.name
            # A camera without a name scope is "named" by its host: nothing to suggest then.
            label = camera.name if camera.name != camera.host else None
            self._suggested_name = default_title(camera.host, camera.port, label) if label else None
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
        shown_port: float = DEFAULT_PORT
        if user_input is not None and not {CONF_HOST, CONF_PORT} <= user_input.keys():
            user_input = None  # input meant for the scan step, as in async_step_pick
        if user_input is not None:
            shown_port = user_input[CONF_PORT]
            host = normalize_host(user_input[CONF_HOST])
            if host is None:
                host = user_input[CONF_HOST]
                errors[CONF_HOST] = "invalid_host"
            if (port := parse_port(user_input[CONF_PORT])) is None:
                errors[CONF_PORT] = "invalid_port"
            if not errors and host is not None and port is not None:
                if self._configured_at(host, port):
                    return self.async_abort(reason="already_configured")
                probed = await async_probe_address(host, port)
                if isinstance(probed, str):
                    errors["base"] = probed
                elif probed is not None and (known := self._recognised(probed, port)):
                    return self.async_abort(
                        reason="already_configured_as",
                        description_placeholders={"name": known.title},
                    )
                else:
                    self._host, self._port, self._name = host, port, None
                    model = probed.model if probed is not None else None
                    self._suggested_name = default_title(host, port, model) if model else None
                    return await self.async_step_credentials()
        return self.async_show_form(
            step_id="manual",
            data_schema=probatio.Schema(_address_schema(host, shown_port)),
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
                info = result[0]
                identity = info.identity
                if (same := self._recognised(identity, self._port)) is not None:
                    await self.async_set_unique_id(same.unique_id, raise_on_progress=False)
                    # The same camera (MAC, serial and port) at another host has moved: its
                    # entry follows (and reloads). Nothing else is ever re-pointed.
                    self._abort_if_unique_id_configured(updates={CONF_HOST: self._host})
                await self.async_set_unique_id(
                    self._new_unique_id(identity, self._port), raise_on_progress=False
                )
                self._abort_if_unique_id_configured()
                name = (user_input.get(CONF_NAME) or "").strip()
                return self.async_create_entry(
                    title=name
                    or self._suggested_name
                    or default_title(self._host, self._port, identity.model),
                    data={
                        CONF_HOST: self._host,
                        CONF_PORT: self._port,
                        CONF_USERNAME: username,
                        CONF_PASSWORD: password,
                        CONF_SERIAL: identity.serial_number,
                    },
                    options={
                        CONF_FRAME_SOURCE: DEFAULT_FRAME_SOURCE,
                        CONF_PROFILES: [info.profiles[0].token],
                    },
                )
        name = (user_input or {}).get(CONF_NAME, self._suggested_name)
        return self.async_show_form(
            step_id="credentials",
            data_schema=_credentials_schema(
                (user_input or {}).get(CONF_USERNAME), name, with_name=True
            ),
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
        mac = format_mac(discovery_info.macaddress)
        await self.async_set_unique_id(mac)
        # Every device behind the MAC (the channels of one encoder) is at the new address.
        behind = [entry for entry in self._camera_entries() if _behind(entry, mac)]
        if not behind:
            # A MAC that keys none of our entries (say, of a camera removed since).
            return self.async_abort(reason="no_devices_found")
        for entry in behind:
            if entry.data[CONF_HOST] != discovery_info.ip:
                self.hass.config_entries.async_update_entry(
                    entry, data={**entry.data, CONF_HOST: discovery_info.ip}
                )
                self.hass.config_entries.async_schedule_reload(entry.entry_id)
        return self.async_abort(reason="already_configured")

    # --- recognising configured cameras -----------------------------------------------------------

    def _camera_entries(self) -> list[ConfigEntry]:
        return [
            entry
            for entry in self._async_current_entries(include_ignore=False)
            if is_camera_entry(entry)
        ]

    def _configured_at(self, host: str, port: int) -> bool:
        key = _address_key(host, port)
        return any(
            _address_key(entry.data[CONF_HOST], entry.data[CONF_PORT]) == key
            for entry in self._camera_entries()
        )

    def _recognised(self, identity: DeviceIdentity, port: int) -> ConfigEntry | None:
        """The configured entry of the camera with this identity on this port, if any."""
        return next(
            (e for e in self._camera_entries() if same_camera(self.hass, e, identity, port)), None
        )

    def _new_unique_id(self, identity: DeviceIdentity, port: int) -> str:
        """The MAC (else serial); for another device behind a configured MAC, MAC+serial(+port)."""
        base = identity.unique_id
        taken = {entry.unique_id for entry in self._camera_entries()}
        serial = identity.serial_number
        candidates = [base, f"{base}_{serial}", f"{base}_{serial}_{port}"] if serial else []
        return next((c for c in candidates if c not in taken), f"{base}_{port}")

    # --- detectors --------------------------------------------------------------------------------

    async def async_step_detector(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """A detector server by URL (ours, DeepStack / CodeProject.AI, or the /detect API)."""
        errors: dict[str, str] = {}
        values: Mapping[str, Any] = user_input or {CONF_URL: DEFAULT_SERVER_URL}
        if user_input is not None:
            try:
                url = check_detector_url(user_input[CONF_URL]).base
            except DetectorUrlError:
                pass  # async_check_server names the error on the URL field
            else:
                # Before any request: a configured server is not asked again (it may be down).
                await self.async_set_unique_id(url, raise_on_progress=False)
                self._abort_if_unique_id_configured()
                # The add-on's entry is keyed by its discovery id, not by its URL.
                self._async_abort_entries_match({CONF_URL: url})
            result = await async_check_server(
                self.hass,
                user_input[CONF_URL],
                user_input[CONF_API],
                user_input.get(CONF_API_KEY) or None,
                user_input.get(CONF_FINGERPRINT) or None,
            )
            if isinstance(result, dict):
                errors = result
            else:
                data = result[0]
                return self.async_create_entry(
                    title=_server_title(data[CONF_URL], data[CONF_API]), data=data
                )
        return self.async_show_form(
            step_id="detector", data_schema=_server_schema(values), errors=errors
        )

    async def async_step_local_model(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """A model run inside Home Assistant's own Python (where a runtime installs)."""
        errors: dict[str, str] = {}
        if self._download_error:
            errors["base"], self._download_error = self._download_error, None
        values: Mapping[str, Any] = user_input or self._local
        if user_input is not None:
            engine = user_input[CONF_ENGINE]
            model = (user_input.get(CONF_MODEL) or "").strip() or default_model(engine)
            problem = await self.hass.async_add_executor_job(local_runtime_problem, engine)
            if problem is not None:
                # musl (Home Assistant OS, the container): no runtime wheels; the add-on works.
                errors["base"] = "local_unsupported" if problem == "musl" else "local_missing"
            else:
                self._local = {CONF_ENGINE: engine, CONF_MODEL: model}
                await self.async_set_unique_id(f"local_{engine}_{model}", raise_on_progress=False)
                self._abort_if_unique_id_configured()
                present = await self.hass.async_add_executor_job(
                    find_model, self.hass.config.path(MODELS_DIR), engine, model
                )
                if present is not None:
                    return await self.async_step_local_check()
                if known_model(engine, model) is not None:
                    return await self.async_step_local_download()
                errors[CONF_MODEL] = "model_not_found"
        return self.async_show_form(
            step_id="local_model",
            data_schema=_local_schema(values),
            errors=errors,
            description_placeholders={"models_dir": self.hass.config.path(MODELS_DIR)},
        )

    async def async_step_local_download(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Download a known model once into the config directory, showing its progress."""
        if self._download_task is None:
            self._download_task = self.hass.async_create_task(
                self._async_download(), "hsi_model_download"
            )
        if not self._download_task.done():
            return self.async_show_progress(
                step_id="local_download",
                progress_action="download",
                progress_task=self._download_task,
                description_placeholders={"model": self._local[CONF_MODEL]},
            )
        self._download_task = None
        if self._download_error:
            return self.async_show_progress_done(next_step_id="local_model")
        return self.async_show_progress_done(next_step_id="local_check")

    async def _async_download(self) -> None:
        engine, model = self._local[CONF_ENGINE], self._local[CONF_MODEL]
        url = known_model(engine, model)
        assert url is not None  # checked by the step that started the download
        try:
            files = await async_download_model(
                async_get_clientsession(self.hass),
                url,
                self.hass.config.path(MODELS_DIR),
                engine,
                model,
                self.async_update_progress,
            )
        except ModelDownloadError as err:
            _LOGGER.warning("Downloading the %s model %s failed: %s", engine, model, err)
            self._download_error = "download_failed"
        else:
            self._downloaded = files.model.parent

    async def async_step_local_check(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Load the model and analyse a test frame before the entry is created."""
        engine, model = self._local[CONF_ENGINE], self._local[CONF_MODEL]
        result = await async_check_local(self.hass, engine, model)
        if isinstance(result, str):
            if self._downloaded is not None:
                # What this flow downloaded and cannot load would only be found (and fail) again.
                await self.hass.async_add_executor_job(remove_model, self._downloaded)
                self._downloaded = None
            self._download_error = result
            return await self.async_step_local_model()
        return self.async_create_entry(title=_local_title(engine, model), data=result[0])

    async def async_step_hassio(self, discovery_info: HassioServiceInfo) -> ConfigFlowResult:
        """The detector add-on announced itself through the Supervisor, key and pin included."""
        config = discovery_info.config
        scheme = "https" if config.get("tls", True) else "http"
        self._addon = {
            CONF_URL: f"{scheme}://{config['host']}:{int(config['port'])}",
            CONF_API: API_HSI,
            CONF_API_KEY: config.get(CONF_API_KEY) or None,
            CONF_FINGERPRINT: config.get(CONF_FINGERPRINT) or None,
        }
        self._addon_name = discovery_info.name
        await self.async_set_unique_id(discovery_info.uuid)
        # A restarted add-on may come with a new key or certificate: the entry follows.
        self._abort_if_unique_id_configured(updates=self._addon)
        # The same add-on added by hand, by its URL: already there (its key is the user's).
        self._async_abort_entries_match({CONF_URL: self._addon[CONF_URL]})
        self.context["title_placeholders"] = {"name": self._addon_name}
        return await self.async_step_hassio_confirm()

    async def async_step_hassio_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """One click: use the add-on as a detector (checked with a test request first)."""
        errors: dict[str, str] = {}
        if user_input is not None:
            result = await async_check_server(
                self.hass,
                self._addon[CONF_URL],
                API_HSI,
                self._addon[CONF_API_KEY],
                self._addon[CONF_FINGERPRINT],
            )
            if isinstance(result, dict):
                errors = {"base": next(iter(result.values()))}
            else:
                return self.async_create_entry(title=self._addon_name, data=result[0])
        return self.async_show_form(
            step_id="hassio_confirm",
            errors=errors,
            description_placeholders={"addon": self._addon_name},
        )

    # --- credentials changed on the camera --------------------------------------------------------

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """The camera refused the stored credentials, or the detector its key."""
        if is_detector_entry(self._get_reauth_entry()):
            return await self.async_step_reauth_detector()
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_detector(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the detector's new API key and check it with a test request."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            data = entry.data
            result = await async_check_server(
                self.hass,
                data[CONF_URL],
                data[CONF_API],
                user_input.get(CONF_API_KEY) or None,
                data.get(CONF_FINGERPRINT),
            )
            if isinstance(result, dict):
                errors = {"base": next(iter(result.values()))}
            else:
                return self.async_update_reload_and_abort(
                    entry, data_updates={CONF_API_KEY: result[0][CONF_API_KEY]}
                )
        return self.async_show_form(
            step_id="reauth_detector",
            data_schema=probatio.Schema({probatio.Optional(CONF_API_KEY): _KEY_SELECTOR}),
            errors=errors,
            description_placeholders={"name": entry.title, "url": entry.data[CONF_URL]},
        )

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
            elif not same_camera(self.hass, entry, result[0].identity, None):
                return self.async_abort(reason="unique_id_mismatch")
            else:
                return self.async_update_reload_and_abort(
                    entry,
                    data_updates={**user_input, CONF_SERIAL: result[0].identity.serial_number},
                )
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
        if not is_detector_entry(entry) and not is_camera_entry(entry):
            return self.async_abort(reason="nothing_to_reconfigure")
        if is_detector_entry(entry):
            if entry.data[CONF_DETECTOR_KIND] == DETECTOR_KIND_LOCAL:
                return await self.async_step_reconfigure_local()
            return await self.async_step_reconfigure_detector()
        errors: dict[str, str] = {}
        values: Mapping[str, Any] = entry.data
        if user_input is not None:
            host = normalize_host(user_input[CONF_HOST])
            port = parse_port(user_input[CONF_PORT])
            values = {
                CONF_HOST: host or user_input[CONF_HOST],
                CONF_PORT: port or user_input[CONF_PORT],
                CONF_USERNAME: user_input[CONF_USERNAME],
                CONF_PASSWORD: user_input.get(CONF_PASSWORD) or entry.data[CONF_PASSWORD],
            }
            if host is None:
                errors[CONF_HOST] = "invalid_host"
            if port is None:
                errors[CONF_PORT] = "invalid_port"
            if not errors:
                result = await async_probe_camera(**values)
                if isinstance(result, str):
                    errors["base"] = result
                elif not same_camera(self.hass, entry, result[0].identity, None):
                    return self.async_abort(reason="unique_id_mismatch")
                else:
                    serial = result[0].identity.serial_number
                    return self.async_update_reload_and_abort(
                        entry, data_updates={**values, CONF_SERIAL: serial}
                    )
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

    async def async_step_reconfigure_detector(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change a detector server's URL, API, key (empty keeps it) or pinned fingerprint."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        values: Mapping[str, Any] = user_input or entry.data
        if user_input is not None:
            result = await async_check_server(
                self.hass,
                user_input[CONF_URL],
                user_input[CONF_API],
                user_input.get(CONF_API_KEY) or _kept_key(entry, user_input[CONF_URL]),
                user_input.get(CONF_FINGERPRINT) or None,
            )
            if isinstance(result, dict):
                errors = result
            else:
                data = result[0]
                taken = any(
                    other.entry_id != entry.entry_id and other.data.get(CONF_URL) == data[CONF_URL]
                    for other in self._async_current_entries(include_ignore=False)
                )
                if taken:
                    return self.async_abort(reason="already_configured")
                # An add-on's entry keeps its discovery id; one added by URL is keyed by it.
                unique_id = entry.unique_id if entry.source == SOURCE_HASSIO else data[CONF_URL]
                return self.async_update_reload_and_abort(
                    entry, unique_id=unique_id, data_updates=data
                )
        return self.async_show_form(
            step_id="reconfigure_detector",
            data_schema=_server_schema(values),
            errors=errors,
            description_placeholders={"name": entry.title},
        )

    async def async_step_reconfigure_local(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Switch a local detector to another model file of the same engine family."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        values: Mapping[str, Any] = user_input or entry.data
        if user_input is not None:
            engine = user_input[CONF_ENGINE]
            model = (user_input.get(CONF_MODEL) or "").strip() or default_model(engine)
            unique_id = f"local_{engine}_{model}"
            if any(
                other.entry_id != entry.entry_id and other.unique_id == unique_id
                for other in self._async_current_entries(include_ignore=False)
            ):
                return self.async_abort(reason="already_configured")
            result = await async_check_local(self.hass, engine, model)
            if isinstance(result, str):
                errors["base"] = result
            else:
                return self.async_update_reload_and_abort(
                    entry, unique_id=unique_id, data_updates=result[0]
                )
        return self.async_show_form(
            step_id="reconfigure_local",
            data_schema=_local_schema(values),
            errors=errors,
            description_placeholders={
                "name": entry.title,
                "models_dir": self.hass.config.path(MODELS_DIR),
            },
        )


SECTION_DETECTION = "detection"
SECTION_ZONES = "zones_and_masks"
SECTION_SECURITY = "security"
# Fields of each section, as stored (flat) in the entry's options.
_SECTION_FIELDS = {
    SECTION_DETECTION: (
        CONF_DETECTION_PROFILE,
        CONF_FPS,
        CONF_MOTION_FPS,
        CONF_GROUPS,
        CONF_MIN_SCORE,
        CONF_CONFIRM_THRESHOLD,
        CONF_MIN_AREA,
        CONF_MAX_AREA,
        CONF_OFF_DELAY,
    ),
    SECTION_ZONES: (CONF_ZONES, CONF_MASKS),
    SECTION_SECURITY: SECURITY_FIELDS,
}


def _number(minimum: float, maximum: float, step: float, unit: str | None = None) -> NumberSelector:
    config = NumberSelectorConfig(min=minimum, max=maximum, step=step, mode=NumberSelectorMode.BOX)
    if unit is not None:
        config["unit_of_measurement"] = unit
    return NumberSelector(config)


def _detection_schema(profiles: Sequence[VideoProfile]) -> probatio.Schema:
    return probatio.Schema(
        {
            probatio.Optional(CONF_DETECTION_PROFILE): SelectSelector(
                SelectSelectorConfig(
                    options=[
                        SelectOptionDict(
                            value=DETECTION_PROFILE_AUTO, label=DETECTION_PROFILE_AUTO
                        ),
                        *(
                            SelectOptionDict(value=p.token, label=profile_label(p))
                            for p in profiles
                        ),
                    ],
                    mode=SelectSelectorMode.DROPDOWN,
                    translation_key=CONF_DETECTION_PROFILE,
                )
            ),
            probatio.Required(CONF_FPS): _number(0, 10, 0.1, "fps"),
            # Optional so that forms saved before the option existed still validate.
            probatio.Optional(CONF_MOTION_FPS, default=DEFAULT_MOTION_FPS): _number(
                0.1, 10, 0.1, "fps"
            ),
            probatio.Required(CONF_GROUPS): SelectSelector(
                SelectSelectorConfig(
                    options=list(GROUPS),
                    multiple=True,
                    mode=SelectSelectorMode.LIST,
                    translation_key=CONF_GROUPS,
                )
            ),
            probatio.Required(CONF_MIN_SCORE): _number(0.05, 0.95, 0.05),
            probatio.Required(CONF_CONFIRM_THRESHOLD): _number(0.3, 0.95, 0.05),
            probatio.Required(CONF_MIN_AREA): _number(0, 1, 0.001),
            probatio.Required(CONF_MAX_AREA): _number(0.001, 1, 0.001),
            probatio.Required(CONF_OFF_DELAY): _number(0, 600, 1, "s"),
        }
    )


def _zones_schema() -> probatio.Schema:
    text = TextSelector(TextSelectorConfig(multiline=True, autocomplete="off"))
    return probatio.Schema(
        {probatio.Optional(CONF_ZONES): text, probatio.Optional(CONF_MASKS): text}
    )


def _flatten(user_input: Mapping[str, Any]) -> dict[str, Any]:
    """The options as stored: section fields lifted to the top level, numbers as numbers."""
    flat = {k: v for k, v in user_input.items() if k not in _SECTION_FIELDS}
    for name in _SECTION_FIELDS:
        if name == SECTION_SECURITY and name in user_input:
            flat.update(security_options(user_input[name]))
            continue
        flat.update(user_input.get(name, {}))
    flat.setdefault(CONF_ZONES, "")
    flat.setdefault(CONF_MASKS, "")
    return flat


def _validate_detection(options: Mapping[str, Any]) -> tuple[dict[str, str], str]:
    """Errors of the detection options, and the message that names the bad zone or point."""
    if not options.get(CONF_GROUPS):
        return {"base": "no_groups"}, ""
    if float(options[CONF_MIN_AREA]) >= float(options[CONF_MAX_AREA]):
        return {"base": "invalid_area"}, ""
    for key, parse in ((CONF_ZONES, parse_zones), (CONF_MASKS, parse_masks)):
        try:
            parse(options.get(key) or "")
        except PolygonSyntaxError as err:
            return {"base": f"invalid_{key}"}, str(err)
    return {}, ""


class HsiOptionsFlow(OptionsFlowWithReload):
    """A camera's frame source, camera entities, detector and detection; saving reloads it."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Show the options; the profiles on offer are the ones the loaded camera reported."""
        entry: HsiConfigEntry = self.config_entry
        # Profiles come from the live camera; without a loaded entry there is nothing true to offer.
        if entry.state is not ConfigEntryState.LOADED:
            return self.async_abort(reason="not_loaded")
        profiles = entry.runtime_data.info.profiles
        errors: dict[str, str] = {}
        problem = ""
        if user_input is not None:
            options = _flatten(user_input)
            errors, problem = _validate_detection(options)
            if not options.get(CONF_PROFILES):
                errors[CONF_PROFILES] = "no_profiles"
            if not errors:
                # Merge, so options added by later features survive an edit made with this form.
                return self.async_create_entry(data={**entry.options, **options})

        offered = {profile.token for profile in profiles}
        if user_input is not None:
            # Show the user's own choice back, next to the error that refers to it.
            current: Mapping[str, Any] = _flatten(user_input)
            fallback: list[str] = []
        else:
            # Stored tokens the camera no longer has are dropped; the first profile stands in, as
            # it does for the entities.
            current, fallback = entry.options, [profiles[0].token]
        settings = DetectionSettings()
        detectors = sorted(
            (
                SelectOptionDict(value=other.entry_id, label=other.title)
                for other in self.hass.config_entries.async_entries(DOMAIN)
                if is_detector_entry(other)
            ),
            key=lambda option: option["label"].casefold(),
        )
        chosen = current.get(CONF_DETECTOR, DETECTOR_AUTO)
        # A detector entry removed since: offer "auto" rather than an id the list does not have.
        if chosen not in {DETECTOR_AUTO, DETECTOR_NONE, *(d["value"] for d in detectors)}:
            chosen = DETECTOR_AUTO
        schema = probatio.Schema(
            {
                probatio.Required(CONF_DETECTOR): SelectSelector(
                    SelectSelectorConfig(
                        options=[
                            SelectOptionDict(value=DETECTOR_AUTO, label=DETECTOR_AUTO),
                            SelectOptionDict(value=DETECTOR_NONE, label=DETECTOR_NONE),
                            *detectors,
                        ],
                        mode=SelectSelectorMode.DROPDOWN,
                        translation_key=CONF_DETECTOR,
                    )
                ),
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
                probatio.Required(SECTION_DETECTION): section(
                    _detection_schema(profiles), {"collapsed": False}
                ),
                probatio.Required(SECTION_ZONES): section(_zones_schema(), {"collapsed": True}),
                probatio.Optional(SECTION_SECURITY): section(
                    security_schema(), {"collapsed": True}
                ),
            }
        )
        defaults: dict[str, Any] = {
            CONF_DETECTION_PROFILE: DETECTION_PROFILE_AUTO,
            CONF_FPS: settings.fps,
            CONF_MOTION_FPS: settings.motion_fps,
            CONF_GROUPS: list(settings.groups),
            CONF_MIN_SCORE: settings.min_score,
            CONF_CONFIRM_THRESHOLD: settings.confirm_threshold,
            CONF_MIN_AREA: settings.min_area,
            CONF_MAX_AREA: settings.max_area,
            CONF_OFF_DELAY: settings.off_delay,
            CONF_ZONES: "",
            CONF_MASKS: "",
        }
        suggested: dict[str, Any] = {
            CONF_DETECTOR: chosen,
            CONF_FRAME_SOURCE: current.get(CONF_FRAME_SOURCE, DEFAULT_FRAME_SOURCE),
            CONF_PROFILES: [t for t in current.get(CONF_PROFILES, []) if t in offered] or fallback,
        }
        for name, fields in _SECTION_FIELDS.items():
            if name == SECTION_SECURITY:
                suggested[name] = security_suggested(current)
                continue
            suggested[name] = {key: current.get(key, defaults[key]) for key in fields}
        if suggested[SECTION_DETECTION][CONF_DETECTION_PROFILE] not in offered:
            # "auto", or a profile the camera no longer has: auto stands in for the latter.
            suggested[SECTION_DETECTION][CONF_DETECTION_PROFILE] = DETECTION_PROFILE_AUTO
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
            description_placeholders={"problem": problem},
        )
