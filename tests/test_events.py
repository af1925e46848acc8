"""ONVIF events inside Home Assistant: the motion and camera-detection sensors, their availability
while the subscription is down, the subscription's end at unload, and cameras without events.

The camera is the ONVIF simulator, whose event service behaves like firmware (see
tests/support/onvif_sim/events.py); nothing of the integration is mocked.
"""

from __future__ import annotations

from datetime import timedelta
import json

from homeassistant.const import (
    EVENT_HOMEASSISTANT_STOP,
    STATE_OFF,
    STATE_ON,
    STATE_UNAVAILABLE,
    Platform,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.home_security_intel.const import DOMAIN
from custom_components.home_security_intel.onvif.events import PULSE_S, EventKind, StreamState
from tests.common import setup_entry, wait_until
from tests.support.onvif_sim import OnvifSimulator
from tests.support.onvif_sim.events import LINE_CROSSED_TOPIC, PERSON_TOPIC, VEHICLE_TOPIC


def _entity_id(hass: HomeAssistant, sim: OnvifSimulator, key: str) -> str | None:
    unique_id = f"{sim.config.mac}_{key}"
    return er.async_get(hass).async_get_entity_id(Platform.BINARY_SENSOR, DOMAIN, unique_id)


def _state(hass: HomeAssistant, entity_id: str | None) -> str | None:
    assert entity_id is not None
    state = hass.states.get(entity_id)
    return state.state if state else None


async def _subscribed(entry: MockConfigEntry, count: int = 1) -> None:
    stream = entry.runtime_data.events.stream
    await wait_until(
        lambda: stream.subscribed and stream.status.subscriptions >= count, "subscribed"
    )


async def test_motion_sensor_follows_the_camera(
    hass: HomeAssistant, config_entry: MockConfigEntry, onvif_sim: OnvifSimulator
) -> None:
    """The motion sensor is on exactly while the camera reports motion."""
    await setup_entry(hass, config_entry)
    motion = _entity_id(hass, onvif_sim, "motion")
    state = hass.states.get(motion or "")
    assert state is not None
    assert state.attributes["device_class"] == "motion"
    await wait_until(lambda: _state(hass, motion) == STATE_OFF, "known and off")
    onvif_sim.set_motion(True)
    await wait_until(lambda: _state(hass, motion) == STATE_ON, "on")
    onvif_sim.set_motion(False)
    await wait_until(lambda: _state(hass, motion) == STATE_OFF, "off again")


async def test_camera_detections_are_added_disabled(
    hass: HomeAssistant, config_entry: MockConfigEntry, onvif_sim: OnvifSimulator
) -> None:
    """A camera's own person detection gets a sensor when first reported, disabled by default;
    enabled, it follows the camera, and comes back at once after a reload."""
    await setup_entry(hass, config_entry)
    await _subscribed(config_entry)
    assert _entity_id(hass, onvif_sim, "camera_person") is None
    onvif_sim.events.publish_detection(PERSON_TOPIC, True, onvif_sim.camera_now())
    await wait_until(lambda: _entity_id(hass, onvif_sim, "camera_person") is not None)
    registry = er.async_get(hass)
    person = _entity_id(hass, onvif_sim, "camera_person")
    assert person is not None
    entry = registry.async_get(person)
    assert entry is not None
    assert entry.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    assert hass.states.get(person) is None

    registry.async_update_entity(person, disabled_by=None)
    assert await hass.config_entries.async_reload(config_entry.entry_id)
    await hass.async_block_till_done()
    # Registered before: added at setup, known (off) as soon as the subscription is live.
    await wait_until(lambda: _state(hass, person) == STATE_OFF, "person sensor back, off")
    onvif_sim.events.publish_detection(PERSON_TOPIC, True, onvif_sim.camera_now())
    await wait_until(lambda: _state(hass, person) == STATE_ON, "person on")
    # Another kind the camera reports appears (disabled) next to it.
    onvif_sim.events.publish_detection(VEHICLE_TOPIC, True, onvif_sim.camera_now())
    await wait_until(lambda: _entity_id(hass, onvif_sim, "camera_vehicle") is not None)


async def test_line_crossing_is_on_for_a_moment(
    hass: HomeAssistant, config_entry: MockConfigEntry, onvif_sim: OnvifSimulator
) -> None:
    """A crossed line (an event without an end) turns its sensor on, then off PULSE_S later."""
    config_entry.add_to_hass(hass)
    registry = er.async_get(hass)
    registry.async_get_or_create(
        Platform.BINARY_SENSOR,
        DOMAIN,
        f"{onvif_sim.config.mac}_camera_line_crossing",
        config_entry=config_entry,
    )
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    line = _entity_id(hass, onvif_sim, "camera_line_crossing")
    await wait_until(lambda: _state(hass, line) == STATE_OFF, "known and off")
    onvif_sim.events.publish_detection(LINE_CROSSED_TOPIC, True, onvif_sim.camera_now())
    await wait_until(lambda: _state(hass, line) == STATE_ON, "crossed")
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=PULSE_S + 1))
    await hass.async_block_till_done()
    assert _state(hass, line) == STATE_OFF


async def test_sensors_unavailable_while_the_subscription_is_down(
    hass: HomeAssistant, config_entry: MockConfigEntry, onvif_sim: OnvifSimulator
) -> None:
    """A reboot after which the camera refuses subscriptions: unavailable (not a stale "on")
    until it accepts one again; then the states are known again."""
    await setup_entry(hass, config_entry)
    motion = _entity_id(hass, onvif_sim, "motion")
    await _subscribed(config_entry)
    onvif_sim.set_motion(True)
    await wait_until(lambda: _state(hass, motion) == STATE_ON, "on")
    onvif_sim.events.refuse_subscriptions = True
    onvif_sim.reboot()
    await wait_until(lambda: _state(hass, motion) == STATE_UNAVAILABLE, "unavailable")
    events = config_entry.runtime_data.events
    assert events.motion is None
    assert events.stream.status.state is StreamState.RETRYING
    onvif_sim.events.refuse_subscriptions = False
    await _subscribed(config_entry, 2)  # after the first back-off (two seconds)
    await wait_until(lambda: _state(hass, motion) == STATE_OFF, "known again")


async def test_unload_ends_the_subscription(
    hass: HomeAssistant, config_entry: MockConfigEntry, onvif_sim: OnvifSimulator
) -> None:
    """Unloading sends Unsubscribe, once, and leaves nothing of the stream running."""
    await setup_entry(hass, config_entry)
    await _subscribed(config_entry)
    events = config_entry.runtime_data.events
    assert "Unsubscribe" not in onvif_sim.requests
    assert await hass.config_entries.async_unload(config_entry.entry_id)
    await hass.async_block_till_done()
    assert onvif_sim.requests.count("Unsubscribe") == 1
    assert onvif_sim.events.subscriptions == {}
    assert events.stream.status.state is StreamState.STOPPED
    assert events._task is None
    assert events._listeners == []


async def test_stopping_home_assistant_ends_the_stream(
    hass: HomeAssistant, config_entry: MockConfigEntry, onvif_sim: OnvifSimulator
) -> None:
    """Home Assistant stopping cancels the stream's task (it is not a background task)."""
    await setup_entry(hass, config_entry)
    await _subscribed(config_entry)
    task = config_entry.runtime_data.events._task
    assert task is not None
    hass.bus.async_fire(EVENT_HOMEASSISTANT_STOP)
    await wait_until(task.done, "the stream's task ended")
    assert task.cancelled()


async def test_camera_without_events(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    config_entry: MockConfigEntry,
    onvif_sim: OnvifSimulator,
) -> None:
    """A camera that offers no events service works without a motion sensor, and says so."""
    onvif_sim.events.advertised = False
    await setup_entry(hass, config_entry)
    assert config_entry.runtime_data.info.supports_events is False
    assert config_entry.runtime_data.events is None
    assert _entity_id(hass, onvif_sim, "motion") is None
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, config_entry)
    assert diagnostics["events"]["supported"] is False
    assert "steady rate" in diagnostics["events"]["note"]
    assert "CreatePullPointSubscription" not in onvif_sim.requests


async def test_event_sensors_removed_when_the_camera_loses_its_events(
    hass: HomeAssistant, config_entry: MockConfigEntry, onvif_sim: OnvifSimulator
) -> None:
    """After a firmware change without events, the motion sensor does not linger unavailable."""
    await setup_entry(hass, config_entry)
    assert _entity_id(hass, onvif_sim, "motion") is not None
    onvif_sim.events.advertised = False
    assert await hass.config_entries.async_reload(config_entry.entry_id)
    await hass.async_block_till_done()
    assert _entity_id(hass, onvif_sim, "motion") is None


async def test_diagnostics_show_the_subscription(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    config_entry: MockConfigEntry,
    onvif_sim: OnvifSimulator,
) -> None:
    """Diagnostics tell the subscription's state, what the camera declares and reports."""
    await setup_entry(hass, config_entry)
    await _subscribed(config_entry)
    onvif_sim.set_motion(True)
    events = config_entry.runtime_data.events
    await wait_until(lambda: events.active(EventKind.MOTION), "motion")
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, config_entry)
    section = diagnostics["events"]
    assert section["supported"] is True
    assert section["state"] == "subscribed"
    assert section["active"] == ["motion"]
    assert section["reported"] == ["motion"]
    assert section["detection_rate"] is None  # this camera has no detection
    assert onvif_sim.config.password not in json.dumps(diagnostics)
