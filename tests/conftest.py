"""Shared fixtures for the integration's tests.

pytest-homeassistant-custom-component puts its own ``testing_config`` first on ``sys.path``;
importing our package here, before Home Assistant's loader looks, makes ``custom_components``
resolve to ours.
"""

from __future__ import annotations

from pathlib import Path

from homeassistant.core import HomeAssistant
from homeassistant.helpers.device_registry import format_mac
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion

import custom_components.home_security_intel  # noqa: F401 - see module docstring
from custom_components.home_security_intel.const import (
    CONF_DETECTOR,
    CONF_FRAME_SOURCE,
    CONF_HOST,
    CONF_PASSWORD,
    CONF_PORT,
    CONF_PROFILES,
    CONF_USERNAME,
    DETECTOR_NONE,
    DOMAIN,
    FRAME_SOURCE_SNAPSHOT,
)
from tests.common import setup_entry
from tests.support.onvif_sim import OnvifSimulator

# The ONVIF camera simulator, and the real detector server processes (plain, keyed, TLS).
pytest_plugins = ["tests.support.onvif_sim.fixtures", "tests.detection.servers"]


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load custom integrations in every test."""


@pytest.fixture(autouse=True)
def allow_loopback_sockets(socket_enabled: None) -> None:
    """Let tests open real sockets: the ONVIF simulator serves on 127.0.0.1.

    pytest-homeassistant-custom-component still restricts connections to 127.0.0.1.
    """


@pytest.fixture
def hass_config_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A configuration folder of each test's own: the event database is written there (the
    default would be the plugin's shared testing_config). Not under tmp_path, which tests
    inspect."""
    return str(tmp_path_factory.mktemp("config"))


@pytest.fixture(autouse=True)
def media_dir(hass: HomeAssistant, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Home Assistant's local media folder, of each test's own (event snapshots go there)."""
    media = tmp_path_factory.mktemp("media")
    hass.config.media_dirs = {"local": str(media)}
    return media


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Home Assistant's snapshot extension: snapshots in tests/snapshots/, HA-aware serialiser."""
    return snapshot.use_extension(HomeAssistantSnapshotExtension)


@pytest.fixture
def config_entry(onvif_sim: OnvifSimulator) -> MockConfigEntry:
    """A config entry for the running simulator, not yet added to Home Assistant."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=onvif_sim.config.model,
        unique_id=format_mac(onvif_sim.config.mac or ""),
        data={
            CONF_HOST: onvif_sim.host,
            CONF_PORT: onvif_sim.port,
            CONF_USERNAME: onvif_sim.config.username,
            CONF_PASSWORD: onvif_sim.config.password,
        },
        # Camera-only tests run without detection; detection tests choose a detector.
        options={
            CONF_FRAME_SOURCE: FRAME_SOURCE_SNAPSHOT,
            CONF_PROFILES: [onvif_sim.config.profiles[0].token],
            CONF_DETECTOR: DETECTOR_NONE,
        },
    )


@pytest.fixture
async def setup_integration(hass: HomeAssistant, config_entry: MockConfigEntry) -> MockConfigEntry:
    """The config entry, added and set up against the running simulator."""
    await setup_entry(hass, config_entry)
    return config_entry
