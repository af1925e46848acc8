"""The camera coordinator against the simulator: health checks, outage logs, back-off, reauth."""

from __future__ import annotations

from datetime import timedelta
import logging

from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.home_security_intel.const import DOMAIN
from custom_components.home_security_intel.coordinator import retry_delay
from custom_components.home_security_intel.onvif import normalize_mac
from tests.support.onvif_sim import OnvifSimulator

COORDINATOR_LOGGER = "custom_components.home_security_intel.coordinator"


def _camera_entity_id(hass: HomeAssistant, sim: OnvifSimulator) -> str:
    unique_id = f"{normalize_mac(sim.config.mac)}_camera_{sim.config.profiles[0].token}"
    entity_id = er.async_get(hass).async_get_entity_id("camera", DOMAIN, unique_id)
    assert entity_id is not None
    return entity_id


def _state(hass: HomeAssistant, entity_id: str) -> str:
    state = hass.states.get(entity_id)
    assert state is not None
    return state.state


def _coordinator_logs(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == COORDINATOR_LOGGER and r.levelno >= logging.INFO]


async def _advance(hass: HomeAssistant, seconds: float) -> None:
    """Run what is due within ``seconds`` from now; the coordinator plans on the real loop clock."""
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=seconds))
    # Scheduled refreshes run as background tasks of the entry.
    await hass.async_block_till_done(wait_background_tasks=True)


def test_retry_delay_doubles_up_to_five_minutes() -> None:
    """30 s while healthy, then 30, 60, 120, 240 and at most 300 s between failing checks."""
    assert [retry_delay(n) for n in range(8)] == [30, 30, 60, 120, 240, 300, 300, 300]
    assert retry_delay(10_000) == 300


async def test_camera_lost_and_back_logs_once_each(
    hass: HomeAssistant,
    setup_integration: MockConfigEntry,
    onvif_sim: OnvifSimulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Entities go unavailable with one log line, stay quiet while down, and recover with one."""
    caplog.set_level(logging.INFO, logger=COORDINATOR_LOGGER)
    entity_id = _camera_entity_id(hass, onvif_sim)
    assert _state(hass, entity_id) != STATE_UNAVAILABLE
    coordinator = setup_integration.runtime_data.coordinator
    caplog.clear()

    onvif_sim.offline = True
    await _advance(hass, 30)
    assert _state(hass, entity_id) == STATE_UNAVAILABLE
    assert coordinator.consecutive_failures == 1
    lost = _coordinator_logs(caplog)
    assert len(lost) == 1
    assert lost[0].levelno == logging.ERROR

    # Further failed checks (30 s then 60 s later) add no log lines.
    await _advance(hass, 30)
    await _advance(hass, 60)
    assert coordinator.consecutive_failures == 3
    assert len(_coordinator_logs(caplog)) == 1

    onvif_sim.offline = False
    await _advance(hass, 120)
    assert _state(hass, entity_id) != STATE_UNAVAILABLE
    assert coordinator.consecutive_failures == 0
    logs = _coordinator_logs(caplog)
    assert len(logs) == 2
    assert logs[1].levelno == logging.INFO
    assert setup_integration.data["password"] not in caplog.text


async def test_backoff_grows_and_resets(
    hass: HomeAssistant, setup_integration: MockConfigEntry, onvif_sim: OnvifSimulator
) -> None:
    """While down, each check waits twice as long as the last; success restores 30 s."""
    coordinator = setup_integration.runtime_data.coordinator
    onvif_sim.offline = True

    await _advance(hass, 30)
    assert coordinator.consecutive_failures == 1
    await _advance(hass, 30)  # the first retry comes after 30 s
    assert coordinator.consecutive_failures == 2
    await _advance(hass, 30)  # the second after 60 s: not yet
    assert coordinator.consecutive_failures == 2
    await _advance(hass, 60)
    assert coordinator.consecutive_failures == 3
    await _advance(hass, 60)  # the third after 120 s: not yet
    assert coordinator.consecutive_failures == 3
    await _advance(hass, 120)
    assert coordinator.consecutive_failures == 4

    onvif_sim.offline = False
    await _advance(hass, 240)
    assert coordinator.consecutive_failures == 0
    assert coordinator.last_update_success

    # Back to the normal 30 s rhythm: a new outage is noticed after 30 s.
    onvif_sim.offline = True
    await _advance(hass, 30)
    assert coordinator.consecutive_failures == 1


async def test_password_changed_on_camera_starts_reauth(
    hass: HomeAssistant, setup_integration: MockConfigEntry, onvif_sim: OnvifSimulator
) -> None:
    """Credentials rejected by a running camera open a reauth flow and make entities unavailable."""
    entity_id = _camera_entity_id(hass, onvif_sim)
    onvif_sim.config.password = "changed-on-the-camera"

    await _advance(hass, 30)
    assert _state(hass, entity_id) == STATE_UNAVAILABLE
    flows = list(setup_integration.async_get_active_flows(hass, {SOURCE_REAUTH}))
    assert len(flows) == 1
    # An authentication failure is not an outage: no back-off counting.
    assert setup_integration.runtime_data.coordinator.consecutive_failures == 0


async def test_health_check_stops_after_unload(
    hass: HomeAssistant, setup_integration: MockConfigEntry, onvif_sim: OnvifSimulator
) -> None:
    """Once unloaded, the camera is not polled any more."""
    await _advance(hass, 30)
    assert "GetDeviceInformation" in onvif_sim.requests
    assert await hass.config_entries.async_unload(setup_integration.entry_id)
    await hass.async_block_till_done()
    assert setup_integration.state is ConfigEntryState.NOT_LOADED
    onvif_sim.requests.clear()
    await _advance(hass, 300)
    assert onvif_sim.requests == []


async def test_status_reports_clock_skew(
    hass: HomeAssistant, config_entry: MockConfigEntry, onvif_sim: OnvifSimulator
) -> None:
    """The coordinator's status carries the camera's clock skew measured at connect."""
    onvif_sim.clock_skew = 3600.0
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    status = config_entry.runtime_data.coordinator.data
    assert status.clock_skew == pytest.approx(3600.0, abs=5.0)
    assert status.last_seen <= dt_util.utcnow()
