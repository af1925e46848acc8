"""Calendar: security events on Home Assistant's calendar, so the timeline shows there.

One entity class serves one camera (its `camera_id`) or the whole home (None): the camera entry
adds its own here; the home entry adds the home-wide one with the same class. Events come from
the store's database by time range (off the event loop); the entity is on while an event is in
progress and refreshes whenever the store records one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from homeassistant.components.calendar import CalendarEntity, CalendarEvent
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from .const import HOME_UNIQUE_ID
from .data import HsiConfigEntry, is_home_entry
from .entity import camera_device_id, camera_device_info, entity_unique_id, home_device_info
from .intelligence.model import SecurityEvent
from .store import HsiStore
from .store.database import MAX_PAGE

PARALLEL_UPDATES = 0
SCAN_INTERVAL = timedelta(minutes=1)
MAX_EVENTS: Final = 2000
"""At most this many events in one calendar range (the newest): a month view of a busy camera
stays readable and cheap; get_events and the media browser page through all of them."""
MIN_LENGTH: Final = timedelta(seconds=1)


def calendar_event(event: SecurityEvent, now: datetime | None = None) -> CalendarEvent:
    """The calendar's view of a security event (an open one lasts until the next refresh, so
    the entity is on while it is open)."""
    end = event.end or max(now or dt_util.utcnow(), event.start) + SCAN_INTERVAL
    what = event.title or ", ".join(f"{n} {label}" for label, n in sorted(event.labels.items()))
    description = f"Level: {event.level} (score {event.score}), {event.severity}."
    if event.summary:
        description += f"\n{event.summary}"
    return CalendarEvent(
        start=dt_util.as_local(event.start),
        end=dt_util.as_local(max(end, event.start + MIN_LENGTH)),
        summary=f"{event.camera_name}: {what}" if event.camera_name else what,
        description=description,
        uid=event.event_id,
    )


async def async_setup_entry(
    hass: HomeAssistant,
    entry: ConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """A camera's security event calendar; the home entry's lists every camera's events."""
    if is_home_entry(entry):
        store: HsiStore = entry.runtime_data
        async_add_entities(
            [
                SecurityEventCalendar(
                    store, None, f"{HOME_UNIQUE_ID}_security_events", home_device_info()
                )
            ]
        )
        return
    camera: HsiConfigEntry = entry
    data = camera.runtime_data
    assert data.store is not None  # a loaded camera always holds the store
    device_uid = camera_device_id(entry, data.info)
    async_add_entities(
        [
            SecurityEventCalendar(
                data.store,
                entry.entry_id,
                entity_unique_id(device_uid, "security_events"),
                camera_device_info(entry, data.info),
            )
        ]
    )


class SecurityEventCalendar(CalendarEntity):
    """Security events of one camera, or of every camera (`camera_id` None)."""

    _attr_has_entity_name = True
    _attr_translation_key = "security_events"

    def __init__(
        self,
        store: HsiStore,
        camera_id: str | None,
        unique_id: str,
        device_info: DeviceInfo,
    ) -> None:
        """Show `camera_id`'s events (None: all) from `store`."""
        self._store = store
        self._camera_id = camera_id
        self._attr_unique_id = unique_id
        self._attr_device_info = device_info
        self._current: CalendarEvent | None = None
        self._removed = False

    async def async_will_remove_from_hass(self) -> None:
        """No state (nor alarm) after removal: an update scheduled just before may still run."""
        self._removed = True
        await super().async_will_remove_from_hass()

    @callback
    def _async_write_ha_state(self) -> None:
        if self._removed:
            return
        super()._async_write_ha_state()

    @property
    def event(self) -> CalendarEvent | None:
        """The event in progress (security events are never in the future)."""
        return self._current

    async def async_added_to_hass(self) -> None:
        """Refresh whenever the store records one of our events."""
        await super().async_added_to_hass()
        self.async_on_remove(self._store.async_add_listener(self._on_recorded))

    @callback
    def _on_recorded(self, event: SecurityEvent) -> None:
        if self._camera_id in (None, event.camera_id):
            self.async_schedule_update_ha_state(force_refresh=True)

    async def async_update(self) -> None:
        """Look up the event in progress."""
        if self._removed:
            return
        now = dt_util.utcnow()
        page = await self._store.events.async_query(
            camera_id=self._camera_id, start=now, end=now + MIN_LENGTH, limit=1
        )
        self._current = calendar_event(page.events[0], now) if page.events else None

    async def async_get_events(
        self, hass: HomeAssistant, start_date: datetime, end_date: datetime
    ) -> list[CalendarEvent]:
        """The events overlapping the range, oldest first (the newest MAX_EVENTS)."""
        found: list[SecurityEvent] = []
        cursor: str | None = None
        while len(found) < MAX_EVENTS:
            page = await self._store.events.async_query(
                camera_id=self._camera_id,
                start=start_date,
                end=end_date,
                limit=min(MAX_PAGE, MAX_EVENTS - len(found)),
                cursor=cursor,
            )
            found.extend(page.events)
            if (cursor := page.next_cursor) is None:
                break
        now = dt_util.utcnow()
        return [calendar_event(event, now) for event in reversed(found)]
