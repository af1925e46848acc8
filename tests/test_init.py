"""Setup, unload, reload, failure states, device registry and repair issues, on the simulator."""

from __future__ import annotations

import logging

from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.home_security_intel import async_migrate_entry
from custom_components.home_security_intel.const import CONF_PASSWORD, DOMAIN
from custom_components.home_security_intel.onvif import normalize_mac
from tests.support.onvif_sim import OnvifSimulator

ISSUES_LOGGER = "custom_components.home_security_intel.issues"


def _unsafe_uri_issues(hass: HomeAssistant) -> list[ir.IssueEntry]:
    return [
        issue
        for (domain, _), issue in ir.async_get(hass).issues.items()
        if domain == DOMAIN and issue.translation_key == "unsafe_camera_uri"
    ]


async def test_setup_unload_and_reload(
    hass: HomeAssistant, setup_integration: MockConfigEntry, onvif_sim: OnvifSimulator
) -> None:
    """A reachable camera loads with its runtime data; unload and reload work."""
    entry = setup_integration
    assert entry.state is ConfigEntryState.LOADED
    data = entry.runtime_data
    assert data.info.identity.serial_number == onvif_sim.config.serial
    assert data.coordinator.data is not None
    assert [p.token for p in data.info.profiles] == [p.token for p in onvif_sim.config.profiles]

    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    # Read the entry again: mypy would keep the LOADED state narrowed on ``entry``.
    unloaded = hass.config_entries.async_get_entry(entry.entry_id)
    assert unloaded is not None
    assert unloaded.state is ConfigEntryState.NOT_LOADED


async def test_unreachable_camera_retries_setup(
    hass: HomeAssistant, config_entry: MockConfigEntry, onvif_sim: OnvifSimulator
) -> None:
    """A camera that does not answer at start puts the entry in SETUP_RETRY."""
    onvif_sim.offline = True
    config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.SETUP_RETRY
    assert config_entry.reason is not None


async def test_not_onvif_retries_setup(
    hass: HomeAssistant, config_entry: MockConfigEntry, onvif_sim: OnvifSimulator
) -> None:
    """A web server that does not speak ONVIF (yet) is retried, not given up on."""
    onvif_sim.not_onvif = True
    config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.SETUP_RETRY


async def test_no_video_profile_is_a_setup_error(
    hass: HomeAssistant, config_entry: MockConfigEntry, onvif_sim: OnvifSimulator
) -> None:
    """A camera without a video profile needs the user; retrying forever would not help."""
    onvif_sim.no_video_profiles = True
    config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.SETUP_ERROR


async def test_wrong_password_starts_reauth(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    onvif_sim: OnvifSimulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Rejected credentials fail setup and open a reauth flow; the password is never logged."""
    onvif_sim.config.password = "a-different-password"
    config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.SETUP_ERROR
    flows = config_entry.async_get_active_flows(hass, {SOURCE_REAUTH})
    assert len(list(flows)) == 1
    assert config_entry.data[CONF_PASSWORD] not in caplog.text


async def test_device_registry(
    hass: HomeAssistant,
    setup_integration: MockConfigEntry,
    onvif_sim: OnvifSimulator,
    device_registry: dr.DeviceRegistry,
) -> None:
    """The camera is one device carrying its identity, MAC and web interface."""
    config = onvif_sim.config
    mac = normalize_mac(config.mac)
    assert mac is not None
    device = device_registry.async_get_device_by_identifier(
        (DOMAIN, mac), setup_integration.entry_id
    )
    assert device is not None
    assert device.connections == {(dr.CONNECTION_NETWORK_MAC, mac)}
    assert device.manufacturer == config.manufacturer
    assert device.model == config.model
    assert device.sw_version == config.firmware
    assert device.serial_number == config.serial
    assert device.hw_version == config.hardware_id
    assert device.configuration_url == f"http://127.0.0.1:{onvif_sim.port}/"
    assert device.name == setup_integration.title


async def test_device_without_mac_uses_serial(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    onvif_sim: OnvifSimulator,
    device_registry: dr.DeviceRegistry,
) -> None:
    """A camera that reports no MAC is identified by its serial and has no MAC connection.

    Onboarding keys such a camera's entry by its serial; the device follows the entry's unique
    id (so a camera whose interfaces stop answering for a while keeps its device and entities).
    """
    onvif_sim.no_mac = True
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(config_entry, unique_id=onvif_sim.config.serial)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    device = device_registry.async_get_device_by_identifier(
        (DOMAIN, onvif_sim.config.serial), config_entry.entry_id
    )
    assert device is not None
    assert device.connections == set()


async def test_refused_uri_becomes_repair_issue_and_goes_away(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    onvif_sim: OnvifSimulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A hostile snapshot URI raises one issue naming only its host; it is gone once fixed."""
    onvif_sim.hostile_snapshot_uri = "http://admin:topsecret@evil.example:8080/steal?token=abc"
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()

    issues = _unsafe_uri_issues(hass)
    # One refused snapshot URI per profile of the camera.
    assert len(issues) == len(onvif_sim.config.profiles)
    placeholders = issues[0].translation_placeholders
    assert placeholders is not None
    assert placeholders["uri_host"] == "evil.example"
    assert placeholders["kind"] == "snapshot"
    assert placeholders["camera_name"] == config_entry.title
    for issue in issues:
        assert "topsecret" not in str(issue.translation_placeholders)
        assert "/steal" not in str(issue.translation_placeholders)
    refusal_logs = [r for r in caplog.records if r.name == ISSUES_LOGGER]
    assert len(refusal_logs) == len(onvif_sim.config.profiles)
    # What users see by default (INFO and up) and anything our own code logs stays clean; the
    # onvif/zeep libraries dump raw SOAP only at DEBUG, which a user must switch on.
    assert not [
        record
        for record in caplog.records
        if "topsecret" in record.getMessage()
        and (record.levelno >= logging.INFO or record.name.startswith("custom_components"))
    ]

    # Reloading with the camera unchanged keeps the issues but does not log them again.
    caplog.clear()
    assert await hass.config_entries.async_reload(config_entry.entry_id)
    await hass.async_block_till_done()
    assert len(_unsafe_uri_issues(hass)) == len(onvif_sim.config.profiles)
    assert not [r for r in caplog.records if r.name == ISSUES_LOGGER]

    onvif_sim.hostile_snapshot_uri = None
    assert await hass.config_entries.async_reload(config_entry.entry_id)
    await hass.async_block_till_done()
    assert _unsafe_uri_issues(hass) == []


async def test_removing_entry_deletes_its_issues(
    hass: HomeAssistant, config_entry: MockConfigEntry, onvif_sim: OnvifSimulator
) -> None:
    """Removing the camera takes its repair issues with it."""
    onvif_sim.hostile_stream_uri = "rtsp://192.0.2.7:554/elsewhere"
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    issues = _unsafe_uri_issues(hass)
    assert issues
    assert {(issue.translation_placeholders or {}).get("kind") for issue in issues} == {"stream"}

    await hass.config_entries.async_remove(config_entry.entry_id)
    await hass.async_block_till_done()
    assert _unsafe_uri_issues(hass) == []


async def test_entry_from_newer_version_is_not_migrated(
    hass: HomeAssistant, config_entry: MockConfigEntry, onvif_sim: OnvifSimulator
) -> None:
    """An entry written by a newer release is refused instead of being misread."""
    newer = MockConfigEntry(
        domain=DOMAIN,
        title=config_entry.title,
        unique_id=config_entry.unique_id,
        data=dict(config_entry.data),
        options=dict(config_entry.options),
        version=2,
    )
    newer.add_to_hass(hass)
    await hass.config_entries.async_setup(newer.entry_id)
    await hass.async_block_till_done()
    assert newer.state is ConfigEntryState.MIGRATION_ERROR


async def test_setup_logs_no_credentials(
    hass: HomeAssistant, config_entry: MockConfigEntry, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing logged while setting up (at DEBUG) contains the password."""
    caplog.set_level(logging.DEBUG)
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert config_entry.data[CONF_PASSWORD] not in caplog.text


async def test_migrate_entry_accepts_current_version(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> None:
    """Version 1 entries need no migration and are accepted as they are."""
    assert await async_migrate_entry(hass, config_entry)
    assert config_entry.version == 1
