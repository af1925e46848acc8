"""The shared event store: history database and evidence files, one per Home Assistant.

Every camera entry (and the home entry) holds the store while it is loaded: the first
`async_acquire_store` opens the database, the last `async_release_store` closes it. The store
purges what is older than each camera's retention once an hour, off the event loop. It is the
one shared resource kept in ``hass.data`` (under a typed key): entries come and go, the file
stays open once.

`async_signed_snapshot_url` gives a notification an image path that works without a login for a
limited time (Home Assistant's signed paths); everything else reaches the files only through the
authenticated view in media_source.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
import logging
from pathlib import Path
import sqlite3
from typing import Final

from homeassistant.components.http.auth import async_sign_path
from homeassistant.const import EVENT_HOMEASSISTANT_CLOSE, EVENT_HOMEASSISTANT_FINAL_WRITE
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.util import dt as dt_util
from homeassistant.util.hass_dict import HassKey

from ..const import DEFAULT_RETENTION_DAYS, DOMAIN, MEDIA_DIR, STORE_DIR
from ..intelligence.model import SecurityEvent
from .database import DB_FILE, EventDatabase, StoreError
from .snapshots import SnapshotStore, UnsafePathError, valid_camera_id

_LOGGER = logging.getLogger(__name__)

PURGE_INTERVAL: Final = timedelta(hours=1)
SIGNED_URL_VALIDITY: Final = timedelta(hours=24)
SNAPSHOT_URL: Final = "/api/home_security_intel/snapshot/{camera_id}/{event_id}/{kind}"
KIND_ANNOTATED: Final = "annotated"
KIND_ORIGINAL: Final = "original"
KINDS: Final = (KIND_ANNOTATED, KIND_ORIGINAL)

type EventListener = Callable[[SecurityEvent], None]


@dataclass
class _Holder:
    store: HsiStore
    unsub_purge: CALLBACK_TYPE
    unsub_stop: dict[str, CALLBACK_TYPE] = field(default_factory=dict)
    """The stop listeners still registered, by event type."""
    holders: int = 0


@dataclass
class _Shared:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    holder: _Holder | None = None


DATA_STORE: HassKey[_Shared] = HassKey(f"{DOMAIN}_store")


def media_root(hass: HomeAssistant) -> Path:
    """<media>/home_security_intel: Home Assistant's local media folder, or config/media."""
    media = hass.config.media_dirs.get("local") or hass.config.path("media")
    return Path(media) / MEDIA_DIR


def snapshot_url(camera_id: str, event_id: str, *, annotated: bool = True) -> str:
    """The authenticated view's path of an event's frame."""
    kind = KIND_ANNOTATED if annotated else KIND_ORIGINAL
    return SNAPSHOT_URL.format(camera_id=camera_id, event_id=event_id, kind=kind)


class HsiStore:
    """The history database and the snapshot files, shared by every entry."""

    def __init__(
        self, hass: HomeAssistant, events: EventDatabase, snapshots: SnapshotStore
    ) -> None:
        """Wrap an opened database and the snapshot folder."""
        self.hass = hass
        self.events = events
        self.snapshots = snapshots
        self._retention: dict[str, int] = {}
        self._listeners: list[EventListener] = []

    @callback
    def async_set_retention(self, camera_id: str, days: int) -> None:
        """Keep a camera's events and snapshots this many days (its entry's option)."""
        self._retention[camera_id] = days

    @callback
    def async_add_listener(self, listener: EventListener) -> CALLBACK_TYPE:
        """Call `listener` with every event recorded (the calendars refresh); returns the
        function that stops it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    async def async_record(
        self, event: SecurityEvent, frame: bytes | None = None, annotated: bytes | None = None
    ) -> SecurityEvent:
        """Upsert the event, with its best frame when one is given (then has_snapshot=True).

        Never raises for disk or database errors: they are logged and the event comes back as
        it was given (detection and alerts go on without the evidence).
        """
        if frame is not None:
            try:
                await self.snapshots.async_save(
                    event.camera_id, event.event_id, event.start, frame, annotated
                )
            except (OSError, UnsafePathError) as err:
                _LOGGER.error(  # noqa: TRY400 - expected disk trouble, no traceback
                    "Cannot save the snapshot of event %s: %s", event.event_id, err
                )
            else:
                event = event.with_changes(has_snapshot=True)
        try:
            if not event.has_snapshot and (stored := await self.events.async_get(event.event_id)):
                # An update without a frame keeps the frame saved before.
                event = event.with_changes(has_snapshot=stored.has_snapshot)
            await self.events.async_upsert(event)
        except (sqlite3.Error, StoreError, OSError) as err:
            _LOGGER.error("Cannot store event %s: %s", event.event_id, err)  # noqa: TRY400
            return event
        for listener in list(self._listeners):
            listener(event)
        return event

    def snapshot_media_id(self, event: SecurityEvent, annotated: bool = True) -> str:
        """The media-source id of an event's frame."""
        kind = KIND_ANNOTATED if annotated else KIND_ORIGINAL
        return f"media-source://{DOMAIN}/{event.camera_id}/{event.event_id}/{kind}"

    async def async_snapshot_file(
        self, camera_id: str, event_id: str, *, annotated: bool
    ) -> Path | None:
        """The file of an event's frame when the event is this camera's and the file is a
        regular file inside the snapshot folder; None otherwise."""
        event = await self.events.async_get(event_id)
        if event is None or event.camera_id != camera_id or not event.has_snapshot:
            return None
        path = self.snapshots.path(camera_id, event_id, event.start, annotated=annotated)
        return await self.hass.async_add_executor_job(self.snapshots.safe_existing, path)

    async def async_delete_camera(self, camera_id: str) -> None:
        """Delete every event and snapshot of a camera (its entry was removed)."""
        removed = await self.events.async_delete_camera(camera_id)
        await self.snapshots.async_delete_camera(camera_id)
        self._retention.pop(camera_id, None)
        _LOGGER.info("Deleted %s events and the snapshots of camera %s", len(removed), camera_id)

    async def async_purge_expired(self, now: datetime | None = None) -> list[tuple[str, str]]:
        """Delete what is older than each camera's retention; returns the events removed."""
        now = now or dt_util.utcnow()
        removed: list[tuple[str, str]] = []
        for camera_id in await self.events.async_cameras():
            days = self._retention.get(camera_id, DEFAULT_RETENTION_DAYS)
            before = now - timedelta(days=days)
            gone = await self.events.async_purge_events(before, camera_id=camera_id)
            removed.extend((camera, event) for camera, event, _ in gone)
            if not valid_camera_id(camera_id):
                continue  # no folder can be named by it: its rows had no files
            await self.snapshots.async_delete_events(gone)
            # Day folders wholly older than the retention hold nothing a row still names
            # (files a crash left behind); one day of margin for events across midnight.
            await self.snapshots.async_cleanup((before - timedelta(days=1)).date(), camera_id)
            # Exports copy the evidence: they do not outlive it.
            await self.snapshots.async_cleanup_exports(camera_id, before)
        if removed:
            _LOGGER.debug("Retention removed %s events", len(removed))
        return removed


async def async_acquire_store(hass: HomeAssistant) -> HsiStore:
    """The shared store, opened by the first caller; every caller releases it once."""
    shared = hass.data.setdefault(DATA_STORE, _Shared())
    async with shared.lock:
        if shared.holder is None:
            database = EventDatabase(
                Path(hass.config.path(STORE_DIR, DB_FILE)), dt_util.get_default_time_zone()
            )
            await database.async_open()
            store = HsiStore(hass, database, SnapshotStore(media_root(hass)))

            async def _async_purge(now: datetime) -> None:
                try:
                    await store.async_purge_expired()
                except (sqlite3.Error, StoreError, OSError) as err:
                    _LOGGER.error("Retention purge failed: %s", err)  # noqa: TRY400

            holder = _Holder(
                store,
                async_track_time_interval(
                    hass,
                    _async_purge,
                    PURGE_INTERVAL,
                    name=f"{DOMAIN} retention purge",
                    cancel_on_shutdown=True,
                ),
            )

            async def _async_final_write(event: Event) -> None:
                # Home Assistant stops without unloading entries: close the file (and its
                # thread) as its last write, whoever still holds the store. A store opened
                # after that (a camera still setting up while Home Assistant stops) closes at
                # the close event that follows.
                holder.unsub_stop.pop(str(event.event_type), None)  # a once-listener is gone
                async with shared.lock:
                    if shared.holder is holder:
                        await _async_close(shared, holder)

            holder.unsub_stop = {
                str(event): hass.bus.async_listen_once(event, _async_final_write)
                for event in (EVENT_HOMEASSISTANT_FINAL_WRITE, EVENT_HOMEASSISTANT_CLOSE)
            }
            shared.holder = holder
        shared.holder.holders += 1
        return shared.holder.store


async def async_release_store(hass: HomeAssistant) -> None:
    """Give the store back; the last holder closes it."""
    if (shared := hass.data.get(DATA_STORE)) is None:
        return
    async with shared.lock:
        if (holder := shared.holder) is None:
            return
        holder.holders -= 1
        if holder.holders > 0:
            return
        await _async_close(shared, holder)


async def _async_close(shared: _Shared, holder: _Holder) -> None:
    shared.holder = None
    holder.unsub_purge()
    for unsub in holder.unsub_stop.values():
        unsub()
    holder.unsub_stop.clear()
    await holder.store.events.async_close()


@callback
def async_get_store(hass: HomeAssistant) -> HsiStore | None:
    """The store while some entry holds it."""
    if (shared := hass.data.get(DATA_STORE)) is None or shared.holder is None:
        return None
    return shared.holder.store


@callback
def async_signed_snapshot_url(
    hass: HomeAssistant, event: SecurityEvent, annotated: bool = True
) -> str:
    """A path to the event's frame that works without a login for 24 hours (notifications);
    relative to Home Assistant's URL."""
    return async_sign_path(
        hass,
        snapshot_url(event.camera_id, event.event_id, annotated=annotated),
        SIGNED_URL_VALIDITY,
    )
