"""The security event calendar through Home Assistant's calendar REST API and service, for a
camera set up against the ONVIF simulator, and the home-wide variant of the same class."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.calendar import DOMAIN as CALENDAR_DOMAIN
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.home_security_intel.calendar import (
    MAX_EVENTS,
    SCAN_INTERVAL,
    SecurityEventCalendar,
    calendar_event,
)
from custom_components.home_security_intel.const import DOMAIN
from custom_components.home_security_intel.store import HsiStore, async_get_store
from tests.store.common import OTHER, make_event


def _calendar(hass: HomeAssistant, entry: MockConfigEntry) -> str:
    registry = er.async_get(hass)
    [entity] = [
        e
        for e in er.async_entries_for_config_entry(registry, entry.entry_id)
        if e.domain == CALENDAR_DOMAIN
    ]
    assert entity.translation_key == "security_events"
    return entity.entity_id


@pytest.fixture
def store(hass: HomeAssistant, setup_integration: MockConfigEntry) -> HsiStore:
    """The store the camera entry holds."""
    shared = async_get_store(hass)
    assert shared is not None
    return shared


async def test_calendar_lists_a_cameras_events(
    hass: HomeAssistant,
    setup_integration: MockConfigEntry,
    store: HsiStore,
    hass_client: ClientSessionGenerator,
) -> None:
    """The REST API shows the camera's events in the range (title, level, summary), oldest
    first, and not another camera's."""
    entry = setup_integration
    entity_id = _calendar(hass, entry)
    now = dt_util.utcnow()
    early = await store.async_record(
        make_event(now - timedelta(hours=3), camera_id=entry.entry_id, score=20)
    )
    late = await store.async_record(make_event(now - timedelta(hours=1), camera_id=entry.entry_id))
    await store.async_record(make_event(now - timedelta(hours=2), camera_id=OTHER))
    await store.async_record(make_event(now - timedelta(days=3), camera_id=entry.entry_id))
    client = await hass_client()
    start = (now - timedelta(hours=4)).isoformat()
    end = now.isoformat()
    response = await client.get(f"/api/calendars/{entity_id}", params={"start": start, "end": end})
    assert response.status == HTTPStatus.OK
    events = await response.json()
    assert [event["uid"] for event in events] == [early.event_id, late.event_id]
    assert events[1]["summary"] == "Front door: Person on the porch"
    assert events[1]["description"] == (
        "Level: high (score 70), alert.\nA person walked up to the door."
    )
    assert events[0]["description"].startswith("Level: low (score 20), detection.")


async def test_calendar_state_follows_an_open_event(
    hass: HomeAssistant,
    setup_integration: MockConfigEntry,
    store: HsiStore,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The entity is on while an event is open (recording it refreshes the entity) and off
    once it ended; the calendar service answers with the event."""
    entry = setup_integration
    entity_id = _calendar(hass, entry)
    assert hass.states.get(entity_id).state == STATE_OFF
    now = dt_util.utcnow()
    event = await store.async_record(
        make_event(now - timedelta(seconds=10), camera_id=entry.entry_id, length=None)
    )
    await hass.async_block_till_done()
    state = hass.states.get(entity_id)
    assert state.state == STATE_ON
    assert state.attributes["message"] == "Front door: Person on the porch"
    answer = await hass.services.async_call(
        CALENDAR_DOMAIN,
        "get_events",
        {"start_date_time": now - timedelta(minutes=1), "duration": {"hours": 1}},
        target={"entity_id": entity_id},
        blocking=True,
        return_response=True,
    )
    [found] = answer[entity_id]["events"]
    assert found["summary"] == "Front door: Person on the porch"
    await store.async_record(event.with_changes(end=now))
    await hass.async_block_till_done()
    assert hass.states.get(entity_id).state == STATE_OFF


async def test_calendar_event_shapes() -> None:
    """An open event lasts until the next refresh; an instant event lasts a second; no title:
    the labels."""
    event = make_event(length=None).with_changes(title="", camera_name="", summary="")
    shown = calendar_event(event, event.start + timedelta(minutes=2))
    assert shown.end - shown.start == timedelta(minutes=2) + SCAN_INTERVAL
    assert shown.summary == "1 person"
    assert shown.description == "Level: high (score 70), alert."
    instant = calendar_event(make_event(length=timedelta(0)))
    assert instant.end - instant.start == timedelta(seconds=1)


async def test_home_wide_calendar_caps_a_range(
    hass: HomeAssistant, setup_integration: MockConfigEntry, store: HsiStore
) -> None:
    """The same class for every camera (camera_id None) lists all cameras' events, the newest
    MAX_EVENTS of a range, across pages."""
    now = dt_util.utcnow()
    start = now - timedelta(days=1)
    await store.events.async_upsert_many(
        make_event(start + timedelta(seconds=10 * i), camera_id=(OTHER, "01JTHIRD")[i % 2])
        for i in range(MAX_EVENTS + 10)
    )
    # Not added to Home Assistant: the home entry (another workstream) adds it; its range
    # query is the same code path the camera's calendar takes through the REST API.
    home = SecurityEventCalendar(
        store, None, "home_events", DeviceInfo(identifiers={(DOMAIN, "home")})
    )
    found = await home.async_get_events(hass, start, now)
    assert len(found) == MAX_EVENTS
    assert found[0].start < found[-1].start  # oldest first
    assert {event.uid for event in found[-2:]} <= {
        e.event_id for e in (await store.events.async_query(limit=2)).events
    }
