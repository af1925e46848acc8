"""Config, options, reauth, reconfigure and DHCP flows, against the real ONVIF camera simulator.

Every flow talks to the simulator through the integration's real ONVIF client. The only stand-in is
the WS-Discovery scan (``discover_cameras``, replaced where ``config_flow`` imports it): a multicast
probe cannot be answered inside this test process, and the real probe is tested with the client.
One test also makes ``async_connect`` fail unexpectedly, a client bug no real camera can cause.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator
from contextlib import contextmanager
import dataclasses
import json
import logging
from pathlib import Path
import re
import threading
from typing import Any
from unittest.mock import patch

from homeassistant.config_entries import (
    SOURCE_DHCP,
    SOURCE_USER,
    ConfigEntry,
    ConfigEntryState,
    ConfigFlowResult,
)
from homeassistant.const import CONF_NAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, section
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.service_info.dhcp import DhcpServiceInfo
import probatio
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
import pytest_socket

from custom_components.home_security_intel import config_flow
from custom_components.home_security_intel.const import (
    CONF_CONFIRM_THRESHOLD,
    CONF_DETECTION_PROFILE,
    CONF_DETECTOR,
    CONF_FPS,
    CONF_FRAME_SOURCE,
    CONF_GROUPS,
    CONF_HOST,
    CONF_MASKS,
    CONF_MAX_AREA,
    CONF_MIN_AREA,
    CONF_MIN_SCORE,
    CONF_MOTION_FPS,
    CONF_OFF_DELAY,
    CONF_PASSWORD,
    CONF_PORT,
    CONF_PROFILES,
    CONF_SERIAL,
    CONF_USERNAME,
    CONF_ZONES,
    DETECTION_PROFILE_AUTO,
    DETECTOR_AUTO,
    DETECTOR_NONE,
    DISCOVERY_TIMEOUT,
    DOMAIN,
    FRAME_SOURCE_RTSP,
    FRAME_SOURCE_SNAPSHOT,
)
from custom_components.home_security_intel.data import is_camera_entry
from custom_components.home_security_intel.onvif import (
    DiscoveredCamera,
    OnvifCamera,
    VideoProfile,
)
from tests.common import setup_entry
from tests.support.onvif_sim import OnvifSimulator, SimConfig

ALLOWED_HOSTS = ["127.0.0.1"]  # what pytest-homeassistant-custom-component allows by default
SIM_MAC = "02:00:5e:10:00:01"
OTHER_MAC = "02:00:5e:10:00:99"
NEW_PASSWORD = "a-brand-new-passphrase"


class FakeScan:
    """Stands in for the blocking multicast probe; records how it was called."""

    def __init__(self) -> None:
        self.cameras: list[DiscoveredCamera] = []
        self.error: OSError | None = None
        self.timeouts: list[float] = []
        # Like the real probe, the scan blocks its executor thread until "the network" answers,
        # so the test sees the progress step before the result; the wait only guards against a hang.
        self.answer = threading.Event()

    def __call__(self, timeout: float = 4.0) -> list[DiscoveredCamera]:
        self.timeouts.append(timeout)
        self.answer.wait(60)
        if self.error is not None:
            raise self.error
        return list(self.cameras)


# Where a camera used to be: loopback, so nothing leaves the machine, and nothing listens there.
DEAD_HOST = "127.0.0.2"
# Where a camera moved to (same port): loopback too; moved_host_sim listens there.
NEW_HOST = "127.0.0.3"


@pytest.fixture(autouse=True)
def allow_sockets(socket_enabled: None) -> None:
    """The simulator is a real server on 127.0.0.1; the client reaches it over real sockets.

    DEAD_HOST is let through as well, so a vanished camera is a real refused connection rather
    than the test harness's socket guard.
    """
    pytest_socket.socket_allow_hosts([*ALLOWED_HOSTS, DEAD_HOST, NEW_HOST], allow_unix_socket=True)


STRINGS: dict[str, Any] = json.loads(
    (Path(config_flow.__file__).parent / "strings.json").read_text(encoding="utf-8")
)


def _placeholders(text: str) -> set[str]:
    return set(re.findall(r"{(\w+)}", text))


def _assert_fields(
    strings: dict[str, Any], schema: probatio.Schema, placeholders: set[str]
) -> None:
    """Every field has a label and a description; every section a name and its own fields."""
    for marker, selector in schema.schema.items():
        if isinstance(selector, section):
            texts = strings["sections"][marker]
            assert texts["name"]
            assert _placeholders(texts.get("description", "")) <= placeholders
            _assert_fields(texts, selector.schema, placeholders)
            continue
        assert strings["data"][marker]
        assert strings["data_description"][marker]
        assert _placeholders(strings["data_description"][marker]) <= placeholders, marker
        if key := getattr(selector, "config", {}).get("translation_key"):
            assert STRINGS["selector"][key]["options"]


def assert_translated(section_name: str, result: ConfigFlowResult) -> None:
    """Every text a flow result makes the frontend look up exists in strings.json.

    Placeholders in titles, descriptions, field descriptions and errors must all be filled.
    """
    strings = STRINGS[section_name]
    placeholders = set(result.get("description_placeholders") or {})
    match result["type"]:
        case FlowResultType.FORM:
            step = strings["step"][result["step_id"]]
            for text in (step["title"], step.get("description", "")):
                assert _placeholders(text) <= placeholders, text
            if (schema := result["data_schema"]) is not None:
                _assert_fields(step, schema, placeholders)
            for error in (result["errors"] or {}).values():
                assert strings["error"][error]
                assert _placeholders(strings["error"][error]) <= placeholders, error
        case FlowResultType.MENU:
            step = strings["step"][result["step_id"]]
            assert _placeholders(step["title"] + step.get("description", "")) <= placeholders
            options = result["menu_options"]
            assert isinstance(options, list)
            for option in options:
                assert step["menu_options"][option]
        case FlowResultType.ABORT:
            assert strings["abort"][result["reason"]]
            assert _placeholders(strings["abort"][result["reason"]]) <= placeholders
        case FlowResultType.SHOW_PROGRESS:
            text = strings["progress"][result["progress_action"]]
            assert _placeholders(text) <= placeholders, text
        case _:
            pass


@contextmanager
def checking_translations(hass: HomeAssistant) -> Generator[None]:
    """Check the strings behind every flow result seen inside (as hassfest does for core)."""
    results: list[tuple[str, ConfigFlowResult]] = []

    def recording(manager: Any, name: str, section_name: str) -> Any:
        original = getattr(manager, name)

        async def record(*args: Any, **kwargs: Any) -> ConfigFlowResult:
            result: ConfigFlowResult = await original(*args, **kwargs)
            results.append((section_name, result))
            return result

        return patch.object(manager, name, record)

    flows, options = hass.config_entries.flow, hass.config_entries.options
    with (
        recording(flows, "async_init", "config"),
        recording(flows, "async_configure", "config"),
        recording(options, "async_init", "options"),
        recording(options, "async_configure", "options"),
    ):
        yield
    for section_name, result in results:
        assert_translated(section_name, result)


@pytest.fixture(autouse=True)
def translated(hass: HomeAssistant) -> Generator[None]:
    """Every flow result a test sees is translated."""
    with checking_translations(hass):
        yield


@pytest.fixture
def scan() -> Generator[FakeScan]:
    """Replace WS-Discovery at the executor boundary (see module docstring)."""
    fake = FakeScan()
    with patch.object(config_flow, "discover_cameras", fake):
        yield fake
    fake.answer.set()


@pytest.fixture
async def other_sim() -> AsyncGenerator[OnvifSimulator]:
    """A second camera (different MAC and serial) on its own port."""
    simulator = OnvifSimulator(SimConfig(mac=OTHER_MAC, serial="SIM-0099", model="OtherCam"))
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def moved_sim(onvif_sim: OnvifSimulator) -> AsyncGenerator[OnvifSimulator]:
    """The same camera (same identity and credentials) answering on a second port: it "moved"."""
    simulator = OnvifSimulator(onvif_sim.config)
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def moved_host_sim(onvif_sim: OnvifSimulator) -> AsyncGenerator[OnvifSimulator]:
    """The same camera (same identity, credentials and port) answering at another host."""
    simulator = OnvifSimulator(onvif_sim.config)
    await simulator.start(host=NEW_HOST, port=onvif_sim.port)
    yield simulator
    await simulator.stop()


def found(
    sim: OnvifSimulator, name: str = "Front door", hardware: str = "SimCam4K"
) -> DiscoveredCamera:
    """What WS-Discovery would report for the simulator."""
    return DiscoveredCamera(
        host=sim.host,
        port=sim.port,
        name=name,
        hardware=hardware,
        xaddr=f"{sim.url}/onvif/device_service",
        scopes=(f"onvif://www.onvif.org/name/{name}",),
    )


def state(entry: ConfigEntry) -> ConfigEntryState:
    """The entry's state now (a call, so type narrowing from an earlier assert does not stick)."""
    return entry.state


def creds(sim: OnvifSimulator, password: str | None = None) -> dict[str, str]:
    """The simulator's credentials as the forms take them."""
    return {
        CONF_USERNAME: sim.config.username,
        CONF_PASSWORD: password if password is not None else sim.config.password,
    }


def expected_data(sim: OnvifSimulator, port: int | None = None) -> dict[str, Any]:
    """Entry data for the simulator, as onboarding stores it."""
    return {
        CONF_HOST: sim.host,
        CONF_PORT: port if port is not None else sim.port,
        CONF_USERNAME: sim.config.username,
        CONF_PASSWORD: sim.config.password,
        CONF_SERIAL: sim.config.serial,
    }


def fixture_data(sim: OnvifSimulator) -> dict[str, Any]:
    """Entry data as the shared ``config_entry`` fixture has it (an entry from before serials)."""
    data = expected_data(sim)
    del data[CONF_SERIAL]
    return data


def select_options(result: ConfigFlowResult, field: str) -> list[dict[str, str]]:
    """The options a form's select selector offers for ``field``."""
    schema = result["data_schema"]
    assert schema is not None
    for marker, selector in schema.schema.items():
        if marker == field:
            return list(selector.config["options"])
    raise AssertionError(f"no field {field}")


def suggested(result: ConfigFlowResult, field: str) -> Any:
    """The value a form suggests for ``field``."""
    schema = result["data_schema"]
    assert schema is not None
    for marker in schema.schema:
        if marker == field:
            return (marker.description or {}).get("suggested_value")
    raise AssertionError(f"no field {field}")


def schema_of(result: ConfigFlowResult) -> list[Any]:
    """The markers of a form's schema."""
    schema = result["data_schema"]
    assert schema is not None
    return list(schema.schema)


def assert_password_optional_and_blank(result: ConfigFlowResult) -> None:
    """The reconfigure form may be sent without a password and never shows the stored one."""
    (marker,) = (marker for marker in schema_of(result) if marker == CONF_PASSWORD)
    assert isinstance(marker, probatio.Optional)
    assert not marker.description
    assert marker.default is probatio.UNDEFINED


def suggested_default(result: ConfigFlowResult, field: str) -> Any:
    """The default a form offers for ``field``."""
    schema = result["data_schema"]
    assert schema is not None
    for marker in schema.schema:
        if marker == field:
            return marker.default()
    raise AssertionError(f"no field {field}")


async def start_user_flow(hass: HomeAssistant, scan: FakeScan) -> ConfigFlowResult:
    """Start onboarding, choose a camera in the menu, let the scan finish; return the next step."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "user"
    assert result["menu_options"] == ["camera", "detector", "local_model"]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "camera"}
    )
    assert result["type"] is FlowResultType.SHOW_PROGRESS
    assert result["step_id"] == "camera"
    assert result["progress_action"] == "scan"
    scan.answer.set()
    await hass.async_block_till_done()
    result = await hass.config_entries.flow.async_configure(result["flow_id"])
    assert scan.timeouts == [DISCOVERY_TIMEOUT]
    return result


async def manual_to_credentials(
    hass: HomeAssistant, scan: FakeScan, host: str, port: int
) -> ConfigFlowResult:
    """Nothing found: enter the address by hand and return the credentials form."""
    result = await start_user_flow(hass, scan)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "manual"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: f" {host} ", CONF_PORT: float(port)}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "credentials"
    return result


# ----------------------------------------------------------------------------------- onboarding


async def test_discovered_camera_onboards(
    hass: HomeAssistant, scan: FakeScan, onvif_sim: OnvifSimulator
) -> None:
    """Scan, pick the camera, sign in: the entry is keyed by MAC and titled with the found name."""
    scan.cameras = [found(onvif_sim)]
    result = await start_user_flow(hass, scan)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "pick"
    assert select_options(result, config_flow.CONF_CAMERA) == [
        {
            "value": f"127.0.0.1:{onvif_sim.port}",
            "label": "Front door (SimCam4K) \N{EN DASH} 127.0.0.1",
        },
        {"value": config_flow.MANUAL_ENTRY, "label": "Enter manually"},
    ]

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {config_flow.CONF_CAMERA: f"127.0.0.1:{onvif_sim.port}"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "credentials"
    assert result["description_placeholders"] == {
        "name": "Front door",
        "host": f"127.0.0.1:{onvif_sim.port}",
    }
    assert result["errors"] == {}

    result = await hass.config_entries.flow.async_configure(result["flow_id"], creds(onvif_sim))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    # The found name, with the address: two cameras of one model are told apart by default.
    assert result["title"] == f"Front door (127.0.0.1:{onvif_sim.port})"
    assert result["data"] == expected_data(onvif_sim)
    assert result["options"] == {
        CONF_FRAME_SOURCE: FRAME_SOURCE_SNAPSHOT,
        CONF_PROFILES: ["profile_main"],
    }
    entry = result["result"]
    assert entry.unique_id == SIM_MAC
    await hass.async_block_till_done()
    assert state(entry) is ConfigEntryState.LOADED


async def test_nothing_found_goes_to_manual_and_titles_with_model(
    hass: HomeAssistant, scan: FakeScan, onvif_sim: OnvifSimulator
) -> None:
    """An empty scan leads straight to the address form, which says so; titled with the model."""
    result = await start_user_flow(hass, scan)
    assert result["step_id"] == "manual"
    assert result["description_placeholders"] == {"found": "0"}
    assert "{found}" in STRINGS["config"]["step"]["manual"]["description"]
    assert result["errors"] == {}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: f" {onvif_sim.host} ", CONF_PORT: float(onvif_sim.port)}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "credentials"
    # The address was probed without credentials before they were asked for (the identity, too,
    # which this camera keeps behind its credentials).
    assert onvif_sim.requests == ["GetSystemDateAndTime", "GetDeviceInformation"]
    assert suggested(result, CONF_NAME) is None
    assert result["description_placeholders"] == {
        "name": "127.0.0.1",
        "host": f"127.0.0.1:{onvif_sim.port}",
    }
    result = await hass.config_entries.flow.async_configure(result["flow_id"], creds(onvif_sim))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == f"SimCam 4K (127.0.0.1:{onvif_sim.port})"
    assert result["data"] == expected_data(onvif_sim)
    assert result["result"].unique_id == SIM_MAC


async def test_failed_scan_goes_to_manual(
    hass: HomeAssistant,
    scan: FakeScan,
    onvif_sim: OnvifSimulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A scan that cannot even send (no multicast route) is "nothing found", and is logged."""
    scan.error = OSError("Network is unreachable")
    result = await manual_to_credentials(hass, scan, onvif_sim.host, onvif_sim.port)
    assert "WS-Discovery scan failed: Network is unreachable" in caplog.text
    result = await hass.config_entries.flow.async_configure(result["flow_id"], creds(onvif_sim))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == expected_data(onvif_sim)


async def test_pick_enter_manually(
    hass: HomeAssistant, scan: FakeScan, onvif_sim: OnvifSimulator, other_sim: OnvifSimulator
) -> None:
    """Choosing "Enter manually" among found cameras leads to the address form."""
    scan.cameras = [found(other_sim, "Garage")]
    result = await start_user_flow(hass, scan)
    assert result["step_id"] == "pick"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {config_flow.CONF_CAMERA: config_flow.MANUAL_ENTRY}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "manual"
    assert result["description_placeholders"] == {"found": "1"}
    assert suggested(result, CONF_HOST) is None
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: onvif_sim.host, CONF_PORT: onvif_sim.port}
    )
    result = await hass.config_entries.flow.async_configure(result["flow_id"], creds(onvif_sim))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == f"SimCam 4K (127.0.0.1:{onvif_sim.port})"
    assert result["data"] == expected_data(onvif_sim)


async def test_pick_hides_configured_cameras(
    hass: HomeAssistant,
    scan: FakeScan,
    config_entry: MockConfigEntry,
    onvif_sim: OnvifSimulator,
    other_sim: OnvifSimulator,
) -> None:
    """A camera already set up at its address is not offered again; a label without hardware."""
    config_entry.add_to_hass(hass)
    scan.cameras = [found(onvif_sim), found(other_sim, "Garage", hardware="")]
    result = await start_user_flow(hass, scan)
    key = f"127.0.0.1:{other_sim.port}"
    assert select_options(result, config_flow.CONF_CAMERA) == [
        {"value": key, "label": "Garage \N{EN DASH} 127.0.0.1"},
        {"value": config_flow.MANUAL_ENTRY, "label": "Enter manually"},
    ]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {config_flow.CONF_CAMERA: key}
    )
    result = await hass.config_entries.flow.async_configure(result["flow_id"], creds(other_sim))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == f"Garage (127.0.0.1:{other_sim.port})"
    assert result["data"] == expected_data(other_sim)
    assert result["result"].unique_id == OTHER_MAC
    # Beside the two cameras: the home entry the first camera with detection created.
    assert len([e for e in hass.config_entries.async_entries(DOMAIN) if e.unique_id != "home"]) == 2


async def test_only_configured_cameras_found_goes_to_manual(
    hass: HomeAssistant, scan: FakeScan, config_entry: MockConfigEntry, onvif_sim: OnvifSimulator
) -> None:
    """When every camera found is configured already, the flow asks for an address."""
    config_entry.add_to_hass(hass)
    scan.cameras = [found(onvif_sim)]
    result = await start_user_flow(hass, scan)
    assert result["step_id"] == "manual"
    assert result["description_placeholders"] == {"found": "0"}  # new cameras only
    assert config_entry.data == fixture_data(onvif_sim)


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("offline", "cannot_connect"),
        ("not_onvif", "not_onvif"),
        ("no_video_profiles", "no_video_profile"),
        ("no_profiles", "no_video_profile"),
        ("malformed_xml", "not_onvif"),
    ],
)
async def test_camera_faults_show_error_then_recover(
    hass: HomeAssistant, scan: FakeScan, onvif_sim: OnvifSimulator, fault: str, error: str
) -> None:
    """Each camera fault is named in the form; once the camera is fixed the same form succeeds."""
    result = await manual_to_credentials(hass, scan, onvif_sim.host, onvif_sim.port)
    setattr(onvif_sim, fault, True)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], creds(onvif_sim))
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "credentials"
    assert result["errors"] == {"base": error}
    assert suggested(result, CONF_USERNAME) == onvif_sim.config.username

    setattr(onvif_sim, fault, False)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], creds(onvif_sim))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == expected_data(onvif_sim)
    assert result["result"].unique_id == SIM_MAC


async def test_wrong_password_then_right_one(
    hass: HomeAssistant, scan: FakeScan, onvif_sim: OnvifSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    """The camera's own authentication decides; a rejected password never reaches the log."""
    result = await manual_to_credentials(hass, scan, onvif_sim.host, onvif_sim.port)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], creds(onvif_sim, "not-the-password")
    )
    assert result["errors"] == {"base": "invalid_auth"}
    assert hass.config_entries.async_entries(DOMAIN) == []
    result = await hass.config_entries.flow.async_configure(result["flow_id"], creds(onvif_sim))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_PASSWORD] == onvif_sim.config.password
    assert "not-the-password" not in caplog.text
    assert onvif_sim.config.password not in caplog.text


async def test_unexpected_error_is_unknown(
    hass: HomeAssistant, scan: FakeScan, onvif_sim: OnvifSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug in the client gives "unknown" and a logged trace, never a dead form.

    No well-behaved camera makes the client raise something unexpected, so this one test replaces
    ``async_connect`` with a failing stand-in; closing stays real.
    """
    result = await manual_to_credentials(hass, scan, onvif_sim.host, onvif_sim.port)
    with patch.object(OnvifCamera, "async_connect", side_effect=RuntimeError("client bug")):
        result = await hass.config_entries.flow.async_configure(result["flow_id"], creds(onvif_sim))
    assert result["errors"] == {"base": "unknown"}
    assert any(
        r.levelno == logging.ERROR and "Unexpected error" in r.getMessage() and r.exc_info
        for r in caplog.records
    )
    result = await hass.config_entries.flow.async_configure(result["flow_id"], creds(onvif_sim))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == expected_data(onvif_sim)


async def test_camera_without_mac_is_keyed_by_serial(
    hass: HomeAssistant, scan: FakeScan, onvif_sim: OnvifSimulator
) -> None:
    """No network interface information: the serial number is the unique id."""
    onvif_sim.no_mac = True
    result = await manual_to_credentials(hass, scan, onvif_sim.host, onvif_sim.port)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], creds(onvif_sim))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id == "SIM-0001"
    assert result["data"] == expected_data(onvif_sim)


async def test_camera_without_identity_is_refused(
    hass: HomeAssistant, scan: FakeScan, onvif_sim: OnvifSimulator
) -> None:
    """Neither MAC nor serial: it could not be told from other cameras, so it is not onboarded."""
    onvif_sim.no_mac = True
    onvif_sim.config.serial = ""
    result = await manual_to_credentials(hass, scan, onvif_sim.host, onvif_sim.port)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], creds(onvif_sim))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "not_onvif"}
    assert hass.config_entries.async_entries(DOMAIN) == []


async def test_camera_without_model_is_titled_by_host(
    hass: HomeAssistant, scan: FakeScan, onvif_sim: OnvifSimulator
) -> None:
    """A typed-in camera that reports no model gets its address as title."""
    onvif_sim.config.model = ""
    result = await manual_to_credentials(hass, scan, onvif_sim.host, onvif_sim.port)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], creds(onvif_sim))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == f"127.0.0.1:{onvif_sim.port}"
    assert result["data"] == expected_data(onvif_sim)


@pytest.mark.parametrize("skew", [3600.0, -3600.0])
async def test_clock_skewed_camera_onboards(
    hass: HomeAssistant, scan: FakeScan, onvif_sim: OnvifSimulator, skew: float
) -> None:
    """A camera an hour off still accepts our WS-Security tokens: the client corrects for skew."""
    onvif_sim.clock_skew = skew
    result = await manual_to_credentials(hass, scan, onvif_sim.host, onvif_sim.port)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], creds(onvif_sim))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == expected_data(onvif_sim)
    assert result["result"].unique_id == SIM_MAC


def _events_operation(operation: str) -> bool:
    """An operation of a loaded camera's PullPoint subscription, not of a flow."""
    return operation in {
        "CreatePullPointSubscription",
        "PullMessages",
        "Renew",
        "Unsubscribe",
        "GetEventProperties",
        "SetSynchronizationPoint",
    }


async def test_configured_address_is_recognised_before_the_password(
    hass: HomeAssistant,
    scan: FakeScan,
    setup_integration: MockConfigEntry,
    onvif_sim: OnvifSimulator,
) -> None:
    """The same host and port as an entry: already configured, nothing is asked or sent."""
    onvif_sim.requests.clear()
    result = await start_user_flow(hass, scan)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: onvif_sim.host, CONF_PORT: onvif_sim.port}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    # The flow sent nothing (the loaded camera's own event subscription may be polling).
    assert [op for op in onvif_sim.requests if not _events_operation(op)] == []
    assert setup_integration.data == fixture_data(onvif_sim)
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1


@pytest.mark.parametrize("via", ["manual", "pick"])
async def test_configured_identity_is_recognised_before_the_password(
    hass: HomeAssistant,
    scan: FakeScan,
    config_entry: MockConfigEntry,
    onvif_sim: OnvifSimulator,
    moved_host_sim: OnvifSimulator,
    via: str,
) -> None:
    """A camera that tells its identity without credentials is recognised at another address.

    The entry is not re-pointed on the strength of an unauthenticated answer: the abort says
    which entry it is and how to change its address.
    """
    config_entry.add_to_hass(hass)
    moved_host_sim.preauth_operations.update({"GetDeviceInformation", "GetNetworkInterfaces"})
    if via == "pick":
        scan.cameras = [found(moved_host_sim)]
    result = await start_user_flow(hass, scan)
    if via == "pick":
        user_input = {config_flow.CONF_CAMERA: f"{NEW_HOST}:{moved_host_sim.port}"}
    else:
        user_input = {CONF_HOST: NEW_HOST, CONF_PORT: moved_host_sim.port}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], user_input)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured_as"
    assert result["description_placeholders"] == {"name": config_entry.title}
    assert config_entry.data == fixture_data(onvif_sim)


async def test_camera_moved_to_a_new_host_updates_entry(
    hass: HomeAssistant,
    scan: FakeScan,
    config_entry: MockConfigEntry,
    onvif_sim: OnvifSimulator,
    moved_host_sim: OnvifSimulator,
) -> None:
    """Same MAC, serial and port at a new host: the camera moved, its entry follows and loads."""
    config_entry.add_to_hass(hass)
    await onvif_sim.stop()  # the old address goes dark
    assert not await hass.config_entries.async_setup(config_entry.entry_id)
    assert state(config_entry) is ConfigEntryState.SETUP_RETRY

    scan.cameras = [found(moved_host_sim)]
    result = await start_user_flow(hass, scan)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {config_flow.CONF_CAMERA: f"{NEW_HOST}:{moved_host_sim.port}"}
    )
    assert result["step_id"] == "credentials"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], creds(moved_host_sim)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert config_entry.data == {**fixture_data(onvif_sim), CONF_HOST: NEW_HOST}
    await hass.async_block_till_done()
    assert state(config_entry) is ConfigEntryState.LOADED
    assert config_entry.runtime_data.info.host == NEW_HOST
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1


async def _onboard(hass: HomeAssistant, scan: FakeScan, sim: OnvifSimulator) -> ConfigFlowResult:
    scan.timeouts.clear()  # one scan per flow, answered when start_user_flow says so
    scan.answer = threading.Event()
    result = await manual_to_credentials(hass, scan, sim.host, sim.port)
    return await hass.config_entries.flow.async_configure(result["flow_id"], creds(sim))


async def test_devices_behind_one_mac_are_separate_cameras(
    hass: HomeAssistant,
    scan: FakeScan,
    setup_integration: MockConfigEntry,
    onvif_sim: OnvifSimulator,
) -> None:
    """An encoder's channels / an NVR's ports: one MAC, another port or serial each.

    None re-points the configured entry; each becomes a camera of its own, with its own device
    and entities.
    """
    channels = [
        OnvifSimulator(dataclasses.replace(onvif_sim.config)),  # same serial, another port
        OnvifSimulator(dataclasses.replace(onvif_sim.config, serial="SIM-0002")),
        OnvifSimulator(dataclasses.replace(onvif_sim.config)),  # same serial, a third port
        OnvifSimulator(dataclasses.replace(onvif_sim.config, serial="")),  # no serial at all
    ]
    for channel in channels:
        await channel.start()
    try:
        unique_ids = []
        for channel in channels:
            result = await _onboard(hass, scan, channel)
            assert result["type"] is FlowResultType.CREATE_ENTRY, result
            unique_ids.append(result["result"].unique_id)
        await hass.async_block_till_done()
        assert unique_ids == [
            f"{SIM_MAC}_SIM-0001",
            f"{SIM_MAC}_SIM-0002",
            f"{SIM_MAC}_SIM-0001_{channels[2].port}",
            f"{SIM_MAC}_{channels[3].port}",
        ]
        assert setup_integration.data == fixture_data(onvif_sim)
        entries = [e for e in hass.config_entries.async_entries(DOMAIN) if is_camera_entry(e)]
        assert [state(e) for e in entries] == [ConfigEntryState.LOADED] * 5
        devices = [
            device
            for device in dr.async_get(hass).devices
            if any(entry.entry_id == device.config_entry_id for entry in entries)
        ]
        assert {(DOMAIN, e.unique_id) for e in entries} == {
            identifier for device in devices for identifier in device.identifiers
        }
        cameras = [s.entity_id for s in hass.states.async_all("camera")]
        assert len(cameras) == 5

        # The same channel again is recognised as configured before the password.
        scan.timeouts.clear()
        scan.answer = threading.Event()
        result = await start_user_flow(hass, scan)
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_HOST: channels[1].host, CONF_PORT: channels[1].port}
        )
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "already_configured"

        # DHCP: the box behind the MAC moved; every channel's entry follows.
        result = await hass.config_entries.flow.async_init(
            DOMAIN,
            context={"source": SOURCE_DHCP},
            data=DhcpServiceInfo(ip=NEW_HOST, hostname="nvr", macaddress="02005e100001"),
        )
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "already_configured"
        assert {
            e.data[CONF_HOST]
            for e in hass.config_entries.async_entries(DOMAIN)
            if is_camera_entry(e)
        } == {NEW_HOST}
        await hass.async_block_till_done()
    finally:
        for channel in channels:
            await channel.stop()


async def test_reauth_and_reconfigure_refuse_another_device_behind_the_mac(
    hass: HomeAssistant, setup_integration: MockConfigEntry, onvif_sim: OnvifSimulator
) -> None:
    """The entry's camera answers with another serial: another channel, not this camera."""
    other = OnvifSimulator(dataclasses.replace(onvif_sim.config, serial="SIM-0002"))
    await other.start()
    try:
        result = await setup_integration.start_reconfigure_flow(hass)
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_HOST: other.host, CONF_PORT: other.port, **creds(other)}
        )
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "unique_id_mismatch"

        hass.config_entries.async_update_entry(
            setup_integration, data={**setup_integration.data, CONF_PORT: other.port}
        )
        result = await setup_integration.start_reauth_flow(hass)
        result = await hass.config_entries.flow.async_configure(result["flow_id"], creds(other))
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "unique_id_mismatch"
    finally:
        await other.stop()


# -------------------------------------------------------------------------- address checks


@pytest.mark.parametrize(
    "host",
    [
        "8897",
        "http://127.0.0.1",
        "127.0.0.1/onvif/device_service",
        "127.0.0.1:8080",
        "cam lan",
        "-cam.lan",
        "cam_1.lan",
        "10.0.0.256",
        "[127.0.0.1",
    ],
)
async def test_manual_malformed_host_is_refused_on_the_address_form(
    hass: HomeAssistant, scan: FakeScan, onvif_sim: OnvifSimulator, host: str
) -> None:
    """A host that is no address is named on the form that has the host field; nothing is sent."""
    result = await start_user_flow(hass, scan)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: host, CONF_PORT: onvif_sim.port}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "manual"
    assert result["errors"] == {CONF_HOST: "invalid_host"}
    assert suggested(result, CONF_HOST) == host  # the user's text, to correct
    assert onvif_sim.requests == []

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: onvif_sim.host, CONF_PORT: onvif_sim.port}
    )
    assert result["step_id"] == "credentials"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], creds(onvif_sim))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == expected_data(onvif_sim)


LONGEST_NAME = ".".join(["abcdefghi"] * 25) + ".lan"  # 253 characters, the most DNS allows


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("192.168.1.20", "192.168.1.20"),
        (" 192.168.1.20 ", "192.168.1.20"),
        ("::1", "::1"),
        ("[fe80:0::1]", "fe80::1"),
        ("cam.lan", "cam.lan"),
        ("Front-Door-1.example.com.", "Front-Door-1.example.com."),
        ("1cam", "1cam"),
        ("a" * 63 + ".lan", "a" * 63 + ".lan"),
        ("8897", None),
        ("1.2.3.4.5", None),
        ("a" * 64 + ".lan", None),
        pytest.param(".".join(["abcdefghi"] * 25) + ".lan", LONGEST_NAME, id="253-chars"),
        pytest.param(".".join(["abcdefghi"] * 25) + ".lan0", None, id="254-chars"),
        ("cam..lan", None),
        ("cam-.lan", None),
        ("", None),
        ("http://cam.lan", None),
        ("cam.lan:80", None),
        ("[::1]:80", None),
        ("k\N{KELVIN SIGN}am.lan", None),
    ],
)
def test_normalize_host(text: str, stored: str | None) -> None:
    """IP literals (IPv6 without brackets) and RFC 1123 names pass; everything else is refused."""
    assert config_flow.normalize_host(text) == stored


@pytest.mark.parametrize(
    ("fault", "error"), [("offline", "cannot_connect"), ("not_onvif", "not_onvif")]
)
async def test_manual_address_is_probed_before_credentials(
    hass: HomeAssistant, scan: FakeScan, onvif_sim: OnvifSimulator, fault: str, error: str
) -> None:
    """An address where no ONVIF camera answers is reported where it can be corrected."""
    result = await start_user_flow(hass, scan)
    setattr(onvif_sim, fault, True)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: onvif_sim.host, CONF_PORT: onvif_sim.port}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "manual"
    assert result["errors"] == {"base": error}
    assert suggested(result, CONF_HOST) == onvif_sim.host
    assert suggested_default(result, CONF_PORT) == onvif_sim.port

    setattr(onvif_sim, fault, False)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: onvif_sim.host, CONF_PORT: onvif_sim.port}
    )
    assert result["step_id"] == "credentials"


async def test_manual_dead_address_then_the_right_one(
    hass: HomeAssistant, scan: FakeScan, onvif_sim: OnvifSimulator
) -> None:
    """Nothing listening at the typed address: cannot_connect on the address form."""
    result = await start_user_flow(hass, scan)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: DEAD_HOST, CONF_PORT: onvif_sim.port}
    )
    assert result["step_id"] == "manual"
    assert result["errors"] == {"base": "cannot_connect"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: onvif_sim.host, CONF_PORT: onvif_sim.port}
    )
    result = await hass.config_entries.flow.async_configure(result["flow_id"], creds(onvif_sim))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == expected_data(onvif_sim)


async def test_manual_probe_of_camera_that_locks_its_clock(
    hass: HomeAssistant, scan: FakeScan, onvif_sim: OnvifSimulator
) -> None:
    """A camera that wants credentials even for its clock is ONVIF: on to the credentials."""
    onvif_sim.preauth_operations.discard("GetSystemDateAndTime")
    result = await manual_to_credentials(hass, scan, onvif_sim.host, onvif_sim.port)
    assert result["errors"] == {}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], creds(onvif_sim))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == expected_data(onvif_sim)


async def test_manual_probe_unexpected_error_is_unknown(
    hass: HomeAssistant, scan: FakeScan, onvif_sim: OnvifSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug in the probe gives "unknown" on the address form and a logged trace.

    No camera makes the probe raise something unexpected, so ``async_probe`` is replaced here.
    """
    result = await start_user_flow(hass, scan)
    with patch.object(OnvifCamera, "async_probe", side_effect=RuntimeError("probe bug")):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_HOST: onvif_sim.host, CONF_PORT: onvif_sim.port}
        )
    assert result["step_id"] == "manual"
    assert result["errors"] == {"base": "unknown"}
    assert any(
        r.levelno == logging.ERROR and "Unexpected error while probing" in r.getMessage()
        for r in caplog.records
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: onvif_sim.host, CONF_PORT: onvif_sim.port}
    )
    assert result["step_id"] == "credentials"


# ----------------------------------------------------------------------------------------- DHCP


async def test_dhcp_known_camera_at_new_ip_updates_entry(
    hass: HomeAssistant, config_entry: MockConfigEntry, onvif_sim: OnvifSimulator
) -> None:
    """DHCP reports the camera's MAC at a new IP: the entry's host follows and it loads there."""
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        config_entry, data={**config_entry.data, CONF_HOST: DEAD_HOST}
    )
    assert not await hass.config_entries.async_setup(config_entry.entry_id)
    assert state(config_entry) is ConfigEntryState.SETUP_RETRY

    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_DHCP},
        data=DhcpServiceInfo(ip="127.0.0.1", hostname="simcam", macaddress="02005e100001"),
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert config_entry.data == fixture_data(onvif_sim)
    await hass.async_block_till_done()
    assert state(config_entry) is ConfigEntryState.LOADED


async def test_dhcp_unknown_mac_aborts(
    hass: HomeAssistant, config_entry: MockConfigEntry, onvif_sim: OnvifSimulator
) -> None:
    """A MAC that no entry is keyed by is not ours to update."""
    config_entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_DHCP},
        data=DhcpServiceInfo(ip="192.0.2.9", hostname="other", macaddress="02005e100099"),
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "no_devices_found"
    assert config_entry.data == fixture_data(onvif_sim)
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1


# --------------------------------------------------------------------------------------- reauth


async def test_reauth_with_new_password(
    hass: HomeAssistant, setup_integration: MockConfigEntry, onvif_sim: OnvifSimulator
) -> None:
    """The camera's password changed: a wrong guess is refused, the right one is stored and used."""
    onvif_sim.config.password = NEW_PASSWORD
    result = await setup_integration.start_reauth_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reauth_confirm"
    assert suggested(result, CONF_USERNAME) == "admin"
    assert result["description_placeholders"] == {
        "name": "SimCam 4K",
        "host": f"127.0.0.1:{onvif_sim.port}",
    }

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_USERNAME: "admin", CONF_PASSWORD: "still-wrong"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}
    assert setup_integration.data[CONF_PASSWORD] != NEW_PASSWORD

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_USERNAME: "admin", CONF_PASSWORD: NEW_PASSWORD}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert setup_integration.data == expected_data(onvif_sim)
    assert setup_integration.unique_id == SIM_MAC
    await hass.async_block_till_done()
    assert state(setup_integration) is ConfigEntryState.LOADED


async def test_reauth_against_a_different_camera_aborts(
    hass: HomeAssistant, config_entry: MockConfigEntry, other_sim: OnvifSimulator
) -> None:
    """The entry's address now answers as another camera: refuse rather than mix them up."""
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        config_entry, data={**config_entry.data, CONF_PORT: other_sim.port}
    )
    before = dict(config_entry.data)
    result = await config_entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], creds(other_sim))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "unique_id_mismatch"
    assert config_entry.data == before
    assert config_entry.unique_id == SIM_MAC


# ----------------------------------------------------------------------------------- reconfigure


async def test_reconfigure_to_new_address(
    hass: HomeAssistant,
    setup_integration: MockConfigEntry,
    onvif_sim: OnvifSimulator,
    moved_sim: OnvifSimulator,
) -> None:
    """Point the entry at the camera's new port; a dead address first shows cannot_connect."""
    result = await setup_integration.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"
    assert suggested(result, CONF_HOST) == "127.0.0.1"
    assert suggested(result, CONF_USERNAME) == "admin"
    assert result["description_placeholders"] == {"name": "SimCam 4K"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: DEAD_HOST, CONF_PORT: moved_sim.port, **creds(moved_sim)}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}
    assert suggested(result, CONF_HOST) == DEAD_HOST
    assert setup_integration.data == fixture_data(onvif_sim)

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_HOST: " 127.0.0.1 ", CONF_PORT: float(moved_sim.port), **creds(moved_sim)},
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert setup_integration.data == expected_data(moved_sim)
    await onvif_sim.stop()  # prove the reloaded entry now lives on the new address alone
    await hass.async_block_till_done()
    assert state(setup_integration) is ConfigEntryState.LOADED
    assert setup_integration.runtime_data.info.port == moved_sim.port


async def test_reconfigure_to_a_different_camera_aborts(
    hass: HomeAssistant,
    setup_integration: MockConfigEntry,
    onvif_sim: OnvifSimulator,
    other_sim: OnvifSimulator,
) -> None:
    """The new address belongs to another camera: unique_id_mismatch, the entry is unchanged."""
    result = await setup_integration.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_HOST: other_sim.host, CONF_PORT: other_sim.port, **creds(other_sim)},
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "unique_id_mismatch"
    assert setup_integration.data == fixture_data(onvif_sim)
    assert setup_integration.unique_id == SIM_MAC


async def test_reconfigure_port_only_keeps_the_stored_password(
    hass: HomeAssistant,
    setup_integration: MockConfigEntry,
    onvif_sim: OnvifSimulator,
    moved_sim: OnvifSimulator,
) -> None:
    """An empty password keeps the stored one, which the camera must still accept."""
    result = await setup_integration.start_reconfigure_flow(hass)
    assert_password_optional_and_blank(result)
    # The frontend leaves an empty optional field out; an API client may send "".
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_HOST: moved_sim.host, CONF_PORT: moved_sim.port, CONF_USERNAME: "admin"},
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert setup_integration.data == expected_data(moved_sim)
    await hass.async_block_till_done()
    assert state(setup_integration) is ConfigEntryState.LOADED

    result = await setup_integration.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_HOST: onvif_sim.host, CONF_PORT: onvif_sim.port, **creds(onvif_sim, "")},
    )
    assert result["reason"] == "reconfigure_successful"
    assert setup_integration.data == expected_data(onvif_sim)
    await hass.async_block_till_done()  # the reload finishes within the test


async def test_reconfigure_still_checks_the_password(
    hass: HomeAssistant, setup_integration: MockConfigEntry, onvif_sim: OnvifSimulator
) -> None:
    """A stored password the camera no longer accepts, or a wrong new one: invalid_auth."""
    stored = setup_integration.data[CONF_PASSWORD]
    onvif_sim.config.password = NEW_PASSWORD
    result = await setup_integration.start_reconfigure_flow(hass)
    address = {CONF_HOST: onvif_sim.host, CONF_PORT: onvif_sim.port}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**address, CONF_USERNAME: "admin"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}
    assert_password_optional_and_blank(result)

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**address, **creds(onvif_sim, "still-wrong")}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    assert setup_integration.data[CONF_PASSWORD] == stored

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**address, **creds(onvif_sim, NEW_PASSWORD)}
    )
    assert result["reason"] == "reconfigure_successful"
    assert setup_integration.data[CONF_PASSWORD] == NEW_PASSWORD
    await hass.async_block_till_done()  # the reload finishes within the test


@pytest.mark.parametrize("host", ["8897", "http://127.0.0.1", "127.0.0.1:8080"])
async def test_reconfigure_malformed_host(
    hass: HomeAssistant, setup_integration: MockConfigEntry, onvif_sim: OnvifSimulator, host: str
) -> None:
    """A host that is no address is named on the field; the camera is not asked, nothing saved."""
    onvif_sim.requests.clear()
    result = await setup_integration.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: host, CONF_PORT: onvif_sim.port, **creds(onvif_sim)}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_HOST: "invalid_host"}
    assert suggested(result, CONF_HOST) == host
    assert "GetNetworkInterfaces" not in onvif_sim.requests  # asked only when connecting
    assert setup_integration.data == fixture_data(onvif_sim)


# -------------------------------------------------------------------------------------- options

# What the options form shows for a camera that never changed its detection options.
DETECTION_DEFAULTS: dict[str, Any] = {
    CONF_DETECTION_PROFILE: DETECTION_PROFILE_AUTO,
    CONF_FPS: 1.0,
    CONF_MOTION_FPS: 5.0,
    CONF_GROUPS: ["person", "vehicle", "animal"],
    CONF_MIN_SCORE: 0.5,
    CONF_CONFIRM_THRESHOLD: 0.7,
    CONF_MIN_AREA: 0.0,
    CONF_MAX_AREA: 1.0,
    CONF_OFF_DELAY: 5.0,
}
ZONES_DEFAULTS: dict[str, Any] = {CONF_ZONES: "", CONF_MASKS: ""}
ZONES = "Driveway: 0.1,0.55 0.95,0.55 0.95,1 0.1,1 | vehicle, person\nPorch: 0,0.5 0.3,0.5 0.3,1"
MASKS = "0,0 0.3,0 0.3,0.2 0,0.2"


def options_input(
    profiles: list[str] | None = None,
    frame_source: str = FRAME_SOURCE_SNAPSHOT,
    detector: str = DETECTOR_NONE,
    detection: dict[str, Any] | None = None,
    zones: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What the frontend sends: top-level fields and one nested dict per section."""
    return {
        CONF_DETECTOR: detector,
        CONF_FRAME_SOURCE: frame_source,
        **({} if profiles is None else {CONF_PROFILES: profiles}),
        config_flow.SECTION_DETECTION: {**DETECTION_DEFAULTS, **(detection or {})},
        config_flow.SECTION_ZONES: ZONES_DEFAULTS if zones is None else zones,
    }


def section_suggestions(result: ConfigFlowResult, name: str) -> dict[str, Any]:
    """The values a form's section suggests, by field."""
    schema = result["data_schema"]
    assert schema is not None
    (found_section,) = (value for key, value in schema.schema.items() if key == name)
    assert isinstance(found_section, section)
    return {
        str(marker): (marker.description or {}).get("suggested_value")
        for marker in found_section.schema.schema
    }


async def test_options_choose_profiles_and_frame_source(
    hass: HomeAssistant, setup_integration: MockConfigEntry
) -> None:
    """Profiles come from the live camera; none chosen is refused; saving keeps unknown options."""
    hass.config_entries.async_update_entry(
        setup_integration, options={**setup_integration.options, "future_option": 7}
    )
    await hass.async_block_till_done()
    result = await hass.config_entries.options.async_init(setup_integration.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "init"
    assert select_options(result, CONF_PROFILES) == [
        {"value": "profile_main", "label": "MainStream \N{EN DASH} 1920x1080 H264"},
        {"value": "profile_sub", "label": "SubStream \N{EN DASH} 640x360 H264"},
    ]
    assert suggested(result, CONF_PROFILES) == ["profile_main"]
    assert suggested(result, CONF_FRAME_SOURCE) == FRAME_SOURCE_SNAPSHOT

    result = await hass.config_entries.options.async_configure(
        result["flow_id"], options_input([], FRAME_SOURCE_RTSP)
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_PROFILES: "no_profiles"}
    assert suggested(result, CONF_FRAME_SOURCE) == FRAME_SOURCE_RTSP
    # The user's own (empty) choice comes back, not a re-checked profile beside the error.
    assert suggested(result, CONF_PROFILES) == []
    assert STRINGS["options"]["error"]["no_profiles"] == "Choose at least one camera entity."
    assert STRINGS["options"]["step"]["init"]["data"][CONF_PROFILES] == "Camera entities"

    # A form that leaves the empty optional field out entirely is refused the same way.
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], options_input(None, FRAME_SOURCE_RTSP)
    )
    assert result["errors"] == {CONF_PROFILES: "no_profiles"}
    assert suggested(result, CONF_PROFILES) == []

    result = await hass.config_entries.options.async_configure(
        result["flow_id"], options_input(["profile_main", "profile_sub"], FRAME_SOURCE_RTSP)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert setup_integration.options == {
        CONF_DETECTOR: DETECTOR_NONE,
        CONF_FRAME_SOURCE: FRAME_SOURCE_RTSP,
        CONF_PROFILES: ["profile_main", "profile_sub"],
        **DETECTION_DEFAULTS,
        **ZONES_DEFAULTS,
        "future_option": 7,
    }
    await hass.async_block_till_done()
    assert state(setup_integration) is ConfigEntryState.LOADED


async def test_options_drop_profiles_the_camera_no_longer_has(
    hass: HomeAssistant, config_entry: MockConfigEntry, onvif_sim: OnvifSimulator
) -> None:
    """A stored token the camera no longer reports is not suggested; the first profile stands in."""
    await setup_entry(
        hass, config_entry, options={CONF_PROFILES: ["gone"], CONF_DETECTOR: DETECTOR_NONE}
    )
    result = await hass.config_entries.options.async_init(config_entry.entry_id)
    assert suggested(result, CONF_PROFILES) == ["profile_main"]
    assert suggested(result, CONF_FRAME_SOURCE) == FRAME_SOURCE_SNAPSHOT
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], options_input(["profile_sub"])
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert config_entry.options == {
        CONF_DETECTOR: DETECTOR_NONE,
        CONF_FRAME_SOURCE: FRAME_SOURCE_SNAPSHOT,
        CONF_PROFILES: ["profile_sub"],
        **DETECTION_DEFAULTS,
        **ZONES_DEFAULTS,
    }
    await hass.async_block_till_done()  # the reload finishes within the test


async def test_options_show_the_defaults(
    hass: HomeAssistant, setup_integration: MockConfigEntry
) -> None:
    """A camera that never saved detection options is shown the defaults the pipeline uses."""
    result = await hass.config_entries.options.async_init(setup_integration.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert suggested(result, CONF_DETECTOR) == DETECTOR_NONE
    assert section_suggestions(result, config_flow.SECTION_DETECTION) == DETECTION_DEFAULTS
    assert section_suggestions(result, config_flow.SECTION_ZONES) == ZONES_DEFAULTS
    assert result["description_placeholders"] == {"problem": ""}
    assert result["errors"] == {}
    schema = result["data_schema"]
    assert schema is not None
    sections = {str(k): v for k, v in schema.schema.items() if isinstance(v, section)}
    # Detection is what most users change; zones and masks are folded away until wanted.
    assert sections[config_flow.SECTION_DETECTION].options == {"collapsed": False}
    assert sections[config_flow.SECTION_ZONES].options == {"collapsed": True}


async def test_options_without_a_detector_choice_suggest_auto(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> None:
    """No detector stored, or one whose entry is gone: "auto" is suggested, not a dead id."""
    await setup_entry(hass, config_entry, options={CONF_PROFILES: ["profile_main"]})
    result = await hass.config_entries.options.async_init(config_entry.entry_id)
    assert suggested(result, CONF_DETECTOR) == DETECTOR_AUTO
    assert [o["value"] for o in select_options(result, CONF_DETECTOR)] == [
        DETECTOR_AUTO,
        DETECTOR_NONE,
    ]
    hass.config_entries.async_update_entry(
        config_entry, options={**config_entry.options, CONF_DETECTOR: "removed_entry_id"}
    )
    result = await hass.config_entries.options.async_init(config_entry.entry_id)
    assert suggested(result, CONF_DETECTOR) == DETECTOR_AUTO


async def test_options_are_stored_flat_and_merged(
    hass: HomeAssistant, setup_integration: MockConfigEntry
) -> None:
    """Section values land at the top level of the options, beside what was there; shown again."""
    hass.config_entries.async_update_entry(
        setup_integration, options={**setup_integration.options, "future_option": 7}
    )
    detection = {
        CONF_DETECTION_PROFILE: "profile_sub",
        CONF_FPS: 0.0,
        CONF_MOTION_FPS: 4.0,
        CONF_GROUPS: ["person", "vehicle"],
        CONF_MIN_SCORE: 0.4,
        CONF_CONFIRM_THRESHOLD: 0.8,
        CONF_MIN_AREA: 0.01,
        CONF_MAX_AREA: 0.6,
        CONF_OFF_DELAY: 30.0,
    }
    zones = {CONF_ZONES: ZONES, CONF_MASKS: MASKS}
    result = await hass.config_entries.options.async_init(setup_integration.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        options_input(["profile_sub"], detector=DETECTOR_AUTO, detection=detection, zones=zones),
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    expected = {
        CONF_DETECTOR: DETECTOR_AUTO,
        CONF_FRAME_SOURCE: FRAME_SOURCE_SNAPSHOT,
        CONF_PROFILES: ["profile_sub"],
        **detection,
        **zones,
        "future_option": 7,
    }
    assert setup_integration.options == expected
    assert config_flow.SECTION_DETECTION not in setup_integration.options
    assert config_flow.SECTION_ZONES not in setup_integration.options
    await hass.async_block_till_done()
    assert state(setup_integration) is ConfigEntryState.LOADED

    result = await hass.config_entries.options.async_init(setup_integration.entry_id)
    assert suggested(result, CONF_DETECTOR) == DETECTOR_AUTO
    assert section_suggestions(result, config_flow.SECTION_DETECTION) == detection
    assert section_suggestions(result, config_flow.SECTION_ZONES) == zones

    # Emptied text fields are left out by the frontend: zones and masks are cleared, not kept.
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        options_input(["profile_sub"], detector=DETECTOR_AUTO, detection=detection, zones={}),
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert setup_integration.options == {**expected, **ZONES_DEFAULTS}
    await hass.async_block_till_done()


@pytest.mark.parametrize(
    ("detection", "zones", "error", "problem"),
    [
        ({CONF_GROUPS: []}, None, "no_groups", ""),
        ({CONF_MIN_AREA: 0.5, CONF_MAX_AREA: 0.5}, None, "invalid_area", ""),
        ({CONF_MIN_AREA: 0.6, CONF_MAX_AREA: 0.2}, None, "invalid_area", ""),
        (
            None,
            {CONF_ZONES: "Driveway: 0.1,0.5 1.5,0.5 0.9,1"},
            "invalid_zones",
            "line 1 (Driveway), point 2: 1.5 is outside 0..1",
        ),
        (
            None,
            {CONF_ZONES: "Gate: 0,0 1,0 1,1\n0.1,0.1 0.2,0.2 0.1,0.3"},
            "invalid_zones",
            "line 2: missing name (write 'Name: x,y x,y x,y')",
        ),
        (
            None,
            {CONF_MASKS: "0,0 0.3,0 0.3,0.2\n0,0 0.3,0 nope"},
            "invalid_masks",
            "line 2, point 3: 'nope' is not x,y",
        ),
    ],
)
async def test_options_validation_errors(
    hass: HomeAssistant,
    setup_integration: MockConfigEntry,
    detection: dict[str, Any] | None,
    zones: dict[str, Any] | None,
    error: str,
    problem: str,
) -> None:
    """Each bad detection option is refused with its error; zones and masks name the bad point.

    The user's own values come back for correcting; nothing is saved until they are right.
    """
    before = dict(setup_integration.options)
    result = await hass.config_entries.options.async_init(setup_integration.entry_id)
    sent = options_input(["profile_main"], detection=detection, zones=zones)
    result = await hass.config_entries.options.async_configure(result["flow_id"], sent)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}
    assert result["description_placeholders"] == {"problem": problem}
    shown = section_suggestions(result, config_flow.SECTION_DETECTION)
    assert shown == sent[config_flow.SECTION_DETECTION]
    assert section_suggestions(result, config_flow.SECTION_ZONES) == {
        **ZONES_DEFAULTS,
        **sent[config_flow.SECTION_ZONES],
    }
    if problem:
        # The message is shown inside the error's own text, which names the field.
        assert STRINGS["options"]["error"][error].endswith("{problem}")
    assert setup_integration.options == before

    result = await hass.config_entries.options.async_configure(
        result["flow_id"], options_input(["profile_main"])
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()  # the reload the new options start ends with the test
    assert setup_integration.options == {
        **before,
        **DETECTION_DEFAULTS,
        **ZONES_DEFAULTS,
    }


async def test_options_report_every_error_at_once(
    hass: HomeAssistant, setup_integration: MockConfigEntry
) -> None:
    """No profile and no group: both are named, each where it belongs."""
    result = await hass.config_entries.options.async_init(setup_integration.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], options_input([], detection={CONF_GROUPS: []})
    )
    assert result["errors"] == {"base": "no_groups", CONF_PROFILES: "no_profiles"}


async def test_options_need_a_loaded_camera(
    hass: HomeAssistant, config_entry: MockConfigEntry, onvif_sim: OnvifSimulator
) -> None:
    """Without a connected camera there are no true profiles to offer: abort, options unchanged."""
    config_entry.add_to_hass(hass)
    before = dict(config_entry.options)
    result = await hass.config_entries.options.async_init(config_entry.entry_id)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "not_loaded"
    assert config_entry.options == before


def test_labels() -> None:
    """Label helpers, for the record of their exact format."""
    camera = DiscoveredCamera("10.0.0.5", 80, "Porch", "", "http://10.0.0.5/onvif/device", ())
    assert config_flow.camera_label(camera) == "Porch \N{EN DASH} 10.0.0.5"
    profile = VideoProfile("t", "Main", "H265", 2560, 1440, 20.0, None, None)
    assert config_flow.profile_label(profile) == "Main \N{EN DASH} 2560x1440 H265"
    # NVR-style profiles: no encoder (no encoding), maybe not even a size. Never "0x0".
    nvr = VideoProfile("t", "Channel 1", "", 1920, 1080, None, None, None)
    assert config_flow.profile_label(nvr) == "Channel 1 \N{EN DASH} 1920x1080"
    bare = VideoProfile("t", "Channel 2", "", 0, 0, None, None, None)
    assert config_flow.profile_label(bare) == "Channel 2"
    assert config_flow.default_title("10.0.0.5", 80, "IPC-1") == "IPC-1 (10.0.0.5)"
    assert config_flow.default_title("fd00::5", 8080, "") == "[fd00::5]:8080"


@pytest.mark.parametrize(
    ("value", "port"),
    [
        (80, 80),
        (80.0, 80),
        ("8080", 8080),
        (65535, 65535),
        (0, None),
        (70000, None),
        (1.5, None),
        (-1, None),
        ("http", None),
        (None, None),
    ],
)
def test_parse_port(value: Any, port: int | None) -> None:
    assert config_flow.parse_port(value) == port


async def test_port_errors_are_plain_and_no_stale_error_stays(
    hass: HomeAssistant, scan: FakeScan, onvif_sim: OnvifSimulator
) -> None:
    """A bad port is named on its field in words (not "Value 70000.0 is too large"), and each
    answer of the address form carries the errors of that submission only."""
    result = await start_user_flow(hass, scan)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: DEAD_HOST, CONF_PORT: onvif_sim.port}
    )
    assert result["errors"] == {"base": "cannot_connect"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: onvif_sim.host, CONF_PORT: 70000}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_PORT: "invalid_port"}
    assert suggested_default(result, CONF_PORT) == 70000
    assert "1 to 65535" in STRINGS["config"]["error"]["invalid_port"]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: "cam lan", CONF_PORT: 2.5}
    )
    assert result["errors"] == {CONF_HOST: "invalid_host", CONF_PORT: "invalid_port"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: onvif_sim.host, CONF_PORT: onvif_sim.port}
    )
    assert result["step_id"] == "credentials"


async def test_reconfigure_bad_port(
    hass: HomeAssistant, setup_integration: MockConfigEntry, onvif_sim: OnvifSimulator
) -> None:
    result = await setup_integration.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: onvif_sim.host, CONF_PORT: 0, **creds(onvif_sim)}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_PORT: "invalid_port"}
    assert setup_integration.data == fixture_data(onvif_sim)


async def test_two_cameras_of_one_model_get_distinct_names(
    hass: HomeAssistant, scan: FakeScan, onvif_sim: OnvifSimulator, moved_sim: OnvifSimulator
) -> None:
    """The name field: suggested from the model the camera tells without credentials and the
    address; left empty, model and address again; typed, the user's."""
    second = OnvifSimulator(dataclasses.replace(onvif_sim.config, mac=OTHER_MAC, serial="S-2"))
    await second.start()
    try:
        second.preauth_operations.add("GetDeviceInformation")
        result = await manual_to_credentials(hass, scan, second.host, second.port)
        assert suggested(result, CONF_NAME) == f"SimCam 4K (127.0.0.1:{second.port})"
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {**creds(second), CONF_NAME: "  "}
        )
        assert result["title"] == f"SimCam 4K (127.0.0.1:{second.port})"

        scan.timeouts.clear()
        scan.answer = threading.Event()
        result = await manual_to_credentials(hass, scan, onvif_sim.host, onvif_sim.port)
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {**creds(onvif_sim), CONF_NAME: " Porch "}
        )
        assert result["title"] == "Porch"
        await hass.async_block_till_done()
    finally:
        await second.stop()


@pytest.mark.parametrize(
    ("setup", "error"),
    [
        ({"soap_faults": {"GetProfiles": "ter:ActionNotSupported"}}, "camera_fault"),
        ({"clock": True}, "clock_refused"),
    ],
    ids=["fault", "clock"],
)
async def test_camera_fault_and_clock_errors_are_named(
    hass: HomeAssistant,
    scan: FakeScan,
    onvif_sim: OnvifSimulator,
    setup: dict[str, Any],
    error: str,
) -> None:
    """Neither ends as "unknown" (with a traceback) nor as "wrong password"."""
    result = await manual_to_credentials(hass, scan, onvif_sim.host, onvif_sim.port)
    if "clock" in setup:
        onvif_sim.preauth_operations.discard("GetSystemDateAndTime")
        onvif_sim.clock_skew = 3600.0
    else:
        onvif_sim.soap_faults.update(setup["soap_faults"])
    result = await hass.config_entries.flow.async_configure(result["flow_id"], creds(onvif_sim))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}


async def test_manual_probe_answered_with_any_fault_is_onvif(
    hass: HomeAssistant, scan: FakeScan, onvif_sim: OnvifSimulator
) -> None:
    onvif_sim.soap_faults["GetSystemDateAndTime"] = "ter:ActionNotSupported"
    result = await manual_to_credentials(hass, scan, onvif_sim.host, onvif_sim.port)
    assert result["errors"] == {}


@pytest.mark.parametrize("cameras", [0, 1], ids=["to-manual", "to-pick"])
async def test_input_sent_while_the_scan_runs_is_ignored(
    hass: HomeAssistant, scan: FakeScan, onvif_sim: OnvifSimulator, cameras: int
) -> None:
    """Input for the scan step (a double click, a stale tab) never raises, during or after it.

    Once the scan is done Home Assistant hands the input it was given on, unvalidated, to the
    step after the progress: here the menu's choice, when the scan finishes at once.
    """
    scan.cameras = [found(onvif_sim)][:cameras]
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    flow_id = result["flow_id"]
    result = await hass.config_entries.flow.async_configure(flow_id, {"next_step_id": "camera"})
    assert result["type"] is FlowResultType.SHOW_PROGRESS
    result = await hass.config_entries.flow.async_configure(flow_id, {CONF_HOST: "10.0.0.9"})
    assert result["type"] is FlowResultType.SHOW_PROGRESS
    assert result["step_id"] == "camera"
    scan.answer.set()
    await hass.async_block_till_done()
    assert hass.config_entries.flow.async_get(flow_id)["step_id"] == (
        "pick" if cameras else "manual"
    )

    # A scan that is over at once: the menu's input reaches the next step.
    scan.timeouts.clear()
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "camera"}
    )
    assert result["type"] in (FlowResultType.FORM, FlowResultType.SHOW_PROGRESS)
    if result["type"] is FlowResultType.FORM:
        assert result["step_id"] == ("pick" if cameras else "manual")
        assert not result["errors"]


async def test_camera_without_mac_is_recognised_by_serial(
    hass: HomeAssistant,
    scan: FakeScan,
    config_entry: MockConfigEntry,
    onvif_sim: OnvifSimulator,
    moved_host_sim: OnvifSimulator,
) -> None:
    """Without a MAC the serial number tells cameras apart, and tells a moved one."""
    config_entry.add_to_hass(hass)  # a camera with a MAC, elsewhere: not this one
    hass.config_entries.async_update_entry(
        config_entry, data={**config_entry.data, CONF_HOST: DEAD_HOST}
    )
    onvif_sim.no_mac = moved_host_sim.no_mac = True
    onvif_sim.config.serial = "SIM-NOMAC"
    result = await _onboard(hass, scan, onvif_sim)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = result["result"]
    assert entry.unique_id == "SIM-NOMAC"

    result = await _onboard(hass, scan, moved_host_sim)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert entry.data[CONF_HOST] == NEW_HOST
    await hass.async_block_till_done()


async def test_dhcp_at_the_same_address_changes_nothing(
    hass: HomeAssistant, setup_integration: MockConfigEntry, onvif_sim: OnvifSimulator
) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_DHCP},
        data=DhcpServiceInfo(ip=onvif_sim.host, hostname="simcam", macaddress="02005e100001"),
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert setup_integration.data == fixture_data(onvif_sim)
    assert state(setup_integration) is ConfigEntryState.LOADED


def _quirk(sim: OnvifSimulator, quirk: str) -> None:
    match quirk:
        case "clock-401-empty":
            sim.preauth_operations.discard("GetSystemDateAndTime")
            sim.auth_fault_empty = True
        case "clock-digest-far-off":
            sim.http_digest_operations.add("GetSystemDateAndTime")
            sim.clock_skew = 3600.0
        case "interfaces-500":
            sim.http_failures["GetNetworkInterfaces"] = "500"
        case "services-empty":
            sim.http_failures["GetServices"] = "empty"
        case "snapshot-uri-fault":
            sim.soap_faults["GetSnapshotUri"] = "ter:ActionNotSupported"
        case "uris-0.0.0.0":
            sim.hostile_snapshot_uri = f"http://0.0.0.0:{sim.port}/snapshot/profile_main.jpg"
        case "nvr-profiles":
            sim.nvr_profiles = True


@pytest.mark.parametrize(
    "quirk",
    [
        "clock-401-empty",
        "clock-digest-far-off",
        "interfaces-500",
        "services-empty",
        "snapshot-uri-fault",
        "uris-0.0.0.0",
        "nvr-profiles",
    ],
)
async def test_cameras_with_firmware_quirks_onboard_and_load(
    hass: HomeAssistant, scan: FakeScan, onvif_sim: OnvifSimulator, quirk: str
) -> None:
    """Each compatibility behaviour, end to end: scan, address, credentials, a loaded entry."""
    _quirk(onvif_sim, quirk)
    result = await manual_to_credentials(hass, scan, onvif_sim.host, onvif_sim.port)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], creds(onvif_sim))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    entry = result["result"]
    assert state(entry) is ConfigEntryState.LOADED
    info = entry.runtime_data.info
    assert info.identity.serial_number == "SIM-0001"
    if quirk == "uris-0.0.0.0":
        assert info.profiles[0].snapshot_uri == (
            f"http://127.0.0.1:{onvif_sim.port}/snapshot/profile_main.jpg"
        )
    if quirk == "nvr-profiles":
        assert config_flow.profile_label(info.profiles[0]) == "MainStream \N{EN DASH} 1920x1080"


async def test_found_camera_without_a_name_gets_no_suggestion(
    hass: HomeAssistant, scan: FakeScan, onvif_sim: OnvifSimulator
) -> None:
    scan.cameras = [found(onvif_sim, name=onvif_sim.host)]
    result = await start_user_flow(hass, scan)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {config_flow.CONF_CAMERA: f"127.0.0.1:{onvif_sim.port}"}
    )
    assert suggested(result, CONF_NAME) is None
    result = await hass.config_entries.flow.async_configure(result["flow_id"], creds(onvif_sim))
    assert result["title"] == f"SimCam 4K (127.0.0.1:{onvif_sim.port})"


async def test_manual_step_ignores_the_scan_steps_input(hass: HomeAssistant) -> None:
    """What Home Assistant hands on after a scan that finished at once (the menu's choice, not an
    address) shows the address form afresh: no error, no KeyError. Driven on the flow itself,
    because whether the scan of a real flow is over by then is a race."""
    from custom_components.home_security_intel.config_flow import HsiConfigFlow

    flow = HsiConfigFlow()
    flow.hass = hass
    flow.context = {"source": SOURCE_USER}
    result = await flow.async_step_manual({"next_step_id": "camera"})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "manual"
    assert not result["errors"]


async def test_pick_step_ignores_the_scan_steps_input(
    hass: HomeAssistant, onvif_sim: OnvifSimulator
) -> None:
    """The same for the list of found cameras: the menu's choice is no camera, the list is shown."""
    from custom_components.home_security_intel.config_flow import HsiConfigFlow

    flow = HsiConfigFlow()
    flow.hass = hass
    flow.context = {"source": SOURCE_USER}
    camera = found(onvif_sim)
    flow._discovered = {f"{camera.host}:{camera.port}": camera}
    result = await flow.async_step_pick({"next_step_id": "camera"})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "pick"
    assert not result["errors"]
