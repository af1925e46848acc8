"""The security layer inside Home Assistant: a person at night becomes an alert with evidence.

Real all the way through: the ONVIF simulator serves frames, a small aiohttp detector on
127.0.0.1 answers (one person, or nothing), the pipeline confirms, the security monitor scores
and groups, the entities show it, the shared store (SQLite and snapshot files) keeps it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web
from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.home_security_intel.const import (
    CONF_ALARM_PANEL,
    CONF_EVENT_IDLE,
    DOMAIN,
    ENTRY_TYPE_HOME,
)
from custom_components.home_security_intel.data import is_home_entry
from custom_components.home_security_intel.intelligence.model import (
    EventObject,
    RiskAssessment,
    SecurityEvent,
)
from tests.support.onvif_sim import OnvifSimulator
from tests.test_detection_common import (
    HostileDetector,
    StateRecorder,
    add,
    answer,
    camera_entry,
    entity_id,
    frames,
    is_jpeg,
    server_entry,
    state,
)

from .store_view import StoreView


async def nobody(request: web.Request) -> web.StreamResponse:
    """The detector sees nothing."""
    return web.json_response(answer([]))


def night_and_nobody_home(hass: HomeAssistant) -> None:
    hass.states.async_set("sun.sun", "below_horizon")
    hass.states.async_set("zone.home", "0")


async def start(
    hass: HomeAssistant, sim: OnvifSimulator, hostile: HostileDetector, **options: Any
) -> dict[str, str]:
    """Detector and camera set up; the camera's security entity ids by key."""
    await add(hass, server_entry(hostile.url))
    await add(hass, camera_entry(sim, **options))
    keys = {
        "risk_level": "sensor",
        "risk_score": "sensor",
        "alert_active": "binary_sensor",
        "security_event": "event",
    }
    return {key: entity_id(hass, sim, domain, key) for key, domain in keys.items()}


def home_alert(hass: HomeAssistant) -> str:
    found = er.async_get(hass).async_get_entity_id("binary_sensor", DOMAIN, "home_alert_active")
    assert found is not None
    return found


async def test_a_person_at_night_is_an_alert_with_a_snapshot(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    onvif_sim: OnvifSimulator,
    hostile: HostileDetector,
    event_store: StoreView,
) -> None:
    night_and_nobody_home(hass)
    ids = await start(hass, onvif_sim, hostile)
    fired = StateRecorder(hass, ids["security_event"])
    home = StateRecorder(hass, home_alert(hass))
    await frames(hass, freezer, 3)

    risk = state(hass, ids["risk_level"])
    assert risk.state == "high"
    assert risk.attributes["score"] == 70
    assert risk.attributes["reasons"] == ["person in view", "person at night", "nobody home"]
    assert state(hass, ids["risk_score"]).state == "70"
    assert state(hass, ids["alert_active"]).state == STATE_ON
    assert state(hass, home_alert(hass)).state == STATE_ON
    assert state(hass, home_alert(hass)).attributes["cameras"] == ["Cam"]

    (started,) = fired.fired()
    assert started["event_type"] == "security_event_started"
    assert started["level"] == "high"
    assert started["severity"] == "alert"
    assert started["title"] == "Person in view"
    assert started["summary"] == "Person in view, person at night, nobody home"
    event_id = started["event_id"]
    camera_id = next(
        e for e in hass.config_entries.async_entries(DOMAIN) if e.title == "Cam"
    ).entry_id
    assert (
        started["snapshot"]
        == f"media-source://home_security_intel/{camera_id}/{event_id}/annotated"
    )
    assert started["snapshot_url"].startswith(
        f"/api/home_security_intel/snapshot/{camera_id}/{event_id}/annotated?authSig="
    )
    assert started["previous_alert"] is None
    frame, annotated = await event_store.frames(event_id)
    assert is_jpeg(frame)
    assert annotated is not None
    assert is_jpeg(annotated)
    assert annotated != frame  # the boxes are drawn on it

    # The person leaves: the event ends after the idle time, when the person was last seen.
    hostile.behaviour = nobody
    left = dt_util.utcnow()
    await frames(hass, freezer, 29)
    assert state(hass, ids["alert_active"]).state == STATE_ON
    await frames(hass, freezer, 3)
    assert state(hass, ids["alert_active"]).state == STATE_OFF
    assert state(hass, ids["risk_level"]).state == "low"
    assert home.transitions == [STATE_OFF, STATE_ON, STATE_OFF][-len(home.transitions) :]
    assert state(hass, home_alert(hass)).state == STATE_OFF
    kinds = [f["event_type"] for f in fired.fired()]
    assert kinds == ["security_event_started", "security_event_ended"]
    ended = await event_store.get(event_id)
    assert ended.end is not None
    assert ended.end <= left
    assert ended.has_snapshot  # the snapshot recorded at the start is not forgotten
    assert ended.labels == {"person": 1}


async def test_daytime_is_a_detection_until_the_alarm_is_armed(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    onvif_sim: OnvifSimulator,
    hostile: HostileDetector,
    event_store: StoreView,
) -> None:
    hass.states.async_set("sun.sun", "above_horizon")
    hass.states.async_set("zone.home", "0")
    hass.states.async_set("alarm_control_panel.house", "disarmed")
    ids = await start(hass, onvif_sim, hostile, **{CONF_ALARM_PANEL: "alarm_control_panel.house"})
    fired = StateRecorder(hass, ids["security_event"])
    await frames(hass, freezer, 3)
    assert state(hass, ids["risk_level"]).state == "medium"
    assert state(hass, ids["alert_active"]).state == STATE_OFF
    (started,) = fired.fired()
    assert started["severity"] == "detection"
    # Arming the panel raises the next frame's score to an alert: announced as an update.
    hass.states.async_set("alarm_control_panel.house", "armed_away")
    await frames(hass, freezer, 1)
    assert state(hass, ids["risk_level"]).state == "high"
    assert "alarm armed" in state(hass, ids["risk_level"]).attributes["reasons"]
    assert state(hass, ids["alert_active"]).state == STATE_ON
    updated = fired.fired()[-1]
    assert updated["event_type"] == "security_event_updated"
    assert updated["event_id"] == started["event_id"]
    assert updated["severity"] == "alert"


async def test_the_home_entry_is_created_once(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    onvif_sim: OnvifSimulator,
    hostile: HostileDetector,
    event_store: StoreView,
) -> None:
    await start(hass, onvif_sim, hostile)
    homes = [e for e in hass.config_entries.async_entries(DOMAIN) if is_home_entry(e)]
    assert len(homes) == 1
    assert homes[0].data == {"entry_type": ENTRY_TYPE_HOME}
    camera = next(e for e in hass.config_entries.async_entries(DOMAIN) if e.title == "Cam")
    await hass.config_entries.async_reload(camera.entry_id)
    await hass.async_block_till_done()
    assert len([e for e in hass.config_entries.async_entries(DOMAIN) if is_home_entry(e)]) == 1
    # The home entry unloads and loads like any other.
    assert await hass.config_entries.async_unload(homes[0].entry_id)
    assert await hass.config_entries.async_setup(homes[0].entry_id)
    assert state(hass, home_alert(hass)).state == STATE_OFF


async def test_restart_in_the_middle_of_an_event_closes_it(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    onvif_sim: OnvifSimulator,
    hostile: HostileDetector,
    event_store: StoreView,
) -> None:
    """The store holds an event the previous run left open: it is closed at its last sighting."""
    hostile.behaviour = nobody
    await add(hass, server_entry(hostile.url))
    entry = camera_entry(onvif_sim, **{CONF_EVENT_IDLE: 30})
    start_at = dt_util.utcnow() - timedelta(hours=1)
    seen = start_at + timedelta(seconds=42)
    stale = SecurityEvent(
        "a" * 32,
        entry.entry_id,
        "Cam",
        start_at,
        objects=(EventObject("p", "person", "person", start_at, seen, 0.9),),
        risk=RiskAssessment(70),
    )
    other = SecurityEvent("b" * 32, "another camera", "Other", start_at)
    await event_store.async_record(stale)
    await event_store.async_record(other)
    await add(hass, entry)
    closed = await event_store.get("a" * 32)
    assert closed.end == seen
    assert (await event_store.get("b" * 32)).is_open  # not this camera's


async def test_alert_sensors_carry_the_event_and_unloading_ends_it(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    onvif_sim: OnvifSimulator,
    hostile: HostileDetector,
) -> None:
    """The alert sensors name the event; unloading the camera ends it (announced)."""
    night_and_nobody_home(hass)
    ids = await start(hass, onvif_sim, hostile)
    fired = StateRecorder(hass, ids["security_event"])
    await frames(hass, freezer, 3)
    (started,) = fired.fired()
    assert started["snapshot"] is not None
    alert = state(hass, ids["alert_active"])
    assert alert.state == STATE_ON
    assert alert.attributes["event_id"] == started["event_id"]
    assert alert.attributes["level"] == "high"
    assert alert.attributes["title"] == "Person in view"
    assert state(hass, ids["risk_level"]).attributes["event_id"] == started["event_id"]
    camera = next(e for e in hass.config_entries.async_entries(DOMAIN) if e.title == "Cam")
    monitor = camera.runtime_data.security
    assert not await monitor.async_knows("f" * 32)
    # Unloading closes the open event (announced), and the alert ends with it.
    assert await hass.config_entries.async_unload(camera.entry_id)
    await hass.async_block_till_done()
    assert fired.fired()[-1]["event_type"] == "security_event_ended"
    assert not monitor.alert_active


async def test_diagnostics_show_the_alert_and_the_history(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    onvif_sim: OnvifSimulator,
    hostile: HostileDetector,
    event_store: StoreView,
    hass_client: ClientSessionGenerator,
) -> None:
    """The camera's diagnostics carry its risk, open event and AI budget (no titles); the home
    entry's, how much history each camera has."""
    night_and_nobody_home(hass)
    await start(hass, onvif_sim, hostile)
    await frames(hass, freezer, 3)
    camera = next(e for e in hass.config_entries.async_entries(DOMAIN) if e.title == "Cam")
    home = next(e for e in hass.config_entries.async_entries(DOMAIN) if is_home_entry(e))
    security = (await get_diagnostics_for_config_entry(hass, hass_client, camera))["security"]
    assert security["alert_active"] is True
    assert security["risk"] == {
        "score": 70,
        "reasons": ["person", "person_at_night", "nobody_home"],
    }
    assert security["open_event"]["level"] == "high"
    assert security["open_event"]["severity"] == "alert"
    assert security["ai"]["calls"] == 0
    assert "title" not in security["open_event"]
    history = await get_diagnostics_for_config_entry(hass, hass_client, home)
    assert history["store"]["cameras"] == {camera.entry_id: {"events": 1, "days": 1}}
