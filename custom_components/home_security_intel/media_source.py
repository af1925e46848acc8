"""Media source: browse each camera's security events by day and view their snapshots.

Identifiers (everything after ``media-source://home_security_intel/``):

* ``<camera_id>``: the camera's days with events, newest first
* ``<camera_id>/day/<YYYY-MM-DD>[/<cursor>]``: that day's events, newest first, a page at a time
  (a last "older events" folder continues it), so a camera with 10,000 events opens fast
* ``<camera_id>/<event_id>``: one event: its annotated and its original frame
* ``<camera_id>/<event_id>/annotated|original``: the frame itself

Every identifier is matched whole against strict patterns (entry ids, ISO days, 32-hex event ids,
cursors the database handed out); anything else (``..``, encoded separators, absolute paths, NUL)
is refused and logged. Frames are served only by `SnapshotView`, which requires Home Assistant's
auth (or a signed path, see store.async_signed_snapshot_url) and serves only regular files whose
real path stays inside the snapshot folder (no symlinks).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from http import HTTPStatus
import logging
import re
from typing import Final

from aiohttp import web
from homeassistant.components.media_player.const import MediaClass, MediaType
from homeassistant.components.media_player.errors import BrowseError
from homeassistant.components.media_source import (
    BrowseMediaSource,
    MediaSource,
    MediaSourceItem,
    PlayMedia,
    Unresolvable,
)
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers.http import KEY_HASS, HomeAssistantView
from homeassistant.util import dt as dt_util

from .const import DOMAIN
from .data import is_camera_entry
from .intelligence.model import SecurityEvent
from .store import KIND_ANNOTATED, KINDS, HsiStore, async_get_store, snapshot_url
from .store.database import is_cursor
from .store.snapshots import parse_day, valid_camera_id, valid_event_id

_LOGGER = logging.getLogger(__name__)

EVENTS_PAGE: Final = 100
_CAMERA: Final = r"(?P<camera>[0-9A-Za-z]{1,64})"
_PATTERNS: Final = (
    ("days", re.compile(rf"^{_CAMERA}$")),
    (
        "day",
        re.compile(
            rf"^{_CAMERA}/day/(?P<day>\d{{4}}-\d{{2}}-\d{{2}})(?:/(?P<cursor>[A-Za-z0-9_-]{{1,200}}))?$"
        ),
    ),
    ("event", re.compile(rf"^{_CAMERA}/(?P<event>[0-9a-f]{{32}})$")),
    ("image", re.compile(rf"^{_CAMERA}/(?P<event>[0-9a-f]{{32}})/(?P<kind>annotated|original)$")),
)


@dataclass(frozen=True, slots=True)
class Identifier:
    """A parsed, validated identifier (see the module docstring)."""

    node: str
    """"root", "days", "day", "event" or "image"."""
    camera_id: str = ""
    day: date | None = None
    cursor: str | None = None
    event_id: str = ""
    kind: str = KIND_ANNOTATED


def parse_identifier(identifier: str | None) -> Identifier:
    """The node an identifier names; ValueError (logged) for anything that is not one of ours."""
    if not identifier:
        return Identifier("root")
    for node, pattern in _PATTERNS:
        if (match := pattern.match(identifier)) is None:
            continue
        found = match.groupdict()
        camera = found["camera"]
        day = parse_day(found["day"]) if found.get("day") else None
        cursor = found.get("cursor")
        if (
            valid_camera_id(camera)
            and (node != "day" or day is not None)
            and (cursor is None or is_cursor(cursor))
            and (not found.get("event") or valid_event_id(found["event"]))
        ):
            return Identifier(
                node,
                camera_id=camera,
                day=day,
                cursor=cursor,
                event_id=found.get("event") or "",
                kind=found.get("kind") or KIND_ANNOTATED,
            )
        break
    _LOGGER.warning("Refused media identifier %r: not a camera, day, event or frame", identifier)
    raise ValueError(f"invalid identifier {identifier!r}")


def day_identifier(camera_id: str, day: date, cursor: str | None = None) -> str:
    """The identifier of a day's events (a page of them)."""
    base = f"{camera_id}/day/{day.isoformat()}"
    return f"{base}/{cursor}" if cursor else base


async def async_get_media_source(hass: HomeAssistant) -> MediaSource:
    """The integration's media source."""
    return HsiMediaSource(hass)


def _camera_entries(hass: HomeAssistant) -> list[ConfigEntry]:
    return [entry for entry in hass.config_entries.async_entries(DOMAIN) if is_camera_entry(entry)]


def _event_title(event: SecurityEvent) -> str:
    when = dt_util.as_local(event.start).strftime("%H:%M:%S")
    what = event.title or ", ".join(f"{n} {label}" for label, n in sorted(event.labels.items()))
    return f"{when} {what or 'event'} ({event.level})"


class HsiMediaSource(MediaSource):
    """Security events' snapshots, per camera, per day, per event."""

    name = "Home Security Intelligence"

    def __init__(self, hass: HomeAssistant) -> None:
        """Serve the shared store's events."""
        super().__init__(DOMAIN)
        self.hass = hass

    def _store(self) -> HsiStore:
        if (store := async_get_store(self.hass)) is None:
            raise BrowseError("No camera of Home Security Intelligence is loaded")
        return store

    async def async_resolve_media(self, item: MediaSourceItem) -> PlayMedia:
        """A frame's authenticated URL."""
        try:
            ident = parse_identifier(item.identifier)
        except ValueError as err:
            raise Unresolvable(f"Unknown media item: {item.identifier}") from err
        if ident.node != "image":
            raise Unresolvable(f"Not a frame: {item.identifier}")
        annotated = ident.kind == KIND_ANNOTATED
        if (store := async_get_store(self.hass)) is None or (
            path := await store.async_snapshot_file(
                ident.camera_id, ident.event_id, annotated=annotated
            )
        ) is None:
            raise Unresolvable(f"No such frame: {item.identifier}")
        # The local path too: Home Assistant's AI Task attaches only local files.
        return PlayMedia(
            snapshot_url(ident.camera_id, ident.event_id, annotated=annotated),
            "image/jpeg",
            path=path,
        )

    async def async_browse_media(self, item: MediaSourceItem) -> BrowseMediaSource:
        """Cameras, a camera's days, a day's events (paged), an event's frames."""
        try:
            ident = parse_identifier(item.identifier)
        except ValueError as err:
            raise BrowseError(f"Unknown media item: {item.identifier}") from err
        if ident.node == "root":
            return self._root()
        store = self._store()
        if ident.node == "days":
            return await self._days(store, ident.camera_id)
        if ident.node == "day":
            assert ident.day is not None
            return await self._day(store, ident.camera_id, ident.day, ident.cursor)
        event = await store.events.async_get(ident.event_id)
        if event is None or event.camera_id != ident.camera_id:
            raise BrowseError(f"No such event: {item.identifier}")
        if ident.node == "event":
            return self._event(event)
        return self._image(event, ident.kind)

    def _camera_title(self, camera_id: str) -> str:
        entry = self.hass.config_entries.async_get_entry(camera_id)
        return entry.title if entry is not None else camera_id

    def _root(self) -> BrowseMediaSource:
        return BrowseMediaSource(
            domain=DOMAIN,
            identifier=None,
            media_class=MediaClass.DIRECTORY,
            media_content_type=MediaType.IMAGE,
            title=self.name or DOMAIN,
            can_play=False,
            can_expand=True,
            children_media_class=MediaClass.DIRECTORY,
            children=[
                self._folder(entry.entry_id, entry.title)
                for entry in sorted(_camera_entries(self.hass), key=lambda e: e.title)
            ],
        )

    def _folder(self, identifier: str, title: str) -> BrowseMediaSource:
        return BrowseMediaSource(
            domain=DOMAIN,
            identifier=identifier,
            media_class=MediaClass.DIRECTORY,
            media_content_type=MediaType.IMAGE,
            title=title,
            can_play=False,
            can_expand=True,
            children_media_class=MediaClass.IMAGE,
        )

    async def _days(self, store: HsiStore, camera_id: str) -> BrowseMediaSource:
        days = await store.events.async_days(camera_id)
        node = self._folder(camera_id, self._camera_title(camera_id))
        node.children_media_class = MediaClass.DIRECTORY
        node.children = [
            self._folder(day_identifier(camera_id, day), f"{day.isoformat()} ({count})")
            for day, count in days
        ]
        return node

    async def _day(
        self, store: HsiStore, camera_id: str, day: date, cursor: str | None
    ) -> BrowseMediaSource:
        page = await store.events.async_query(
            camera_id=camera_id, day=day, limit=EVENTS_PAGE, cursor=cursor
        )
        node = self._folder(
            day_identifier(camera_id, day, cursor),
            f"{self._camera_title(camera_id)} {day.isoformat()}",
        )
        children = [self._event(event) for event in page.events]
        if page.next_cursor is not None:
            children.append(
                self._folder(day_identifier(camera_id, day, page.next_cursor), "Older events")
            )
        node.children = children
        return node

    def _event(self, event: SecurityEvent) -> BrowseMediaSource:
        node = self._folder(f"{event.camera_id}/{event.event_id}", _event_title(event))
        if event.has_snapshot:
            node.thumbnail = snapshot_url(event.camera_id, event.event_id)
            node.children = [self._image(event, kind) for kind in KINDS]
        else:
            node.children = []
        return node

    def _image(self, event: SecurityEvent, kind: str) -> BrowseMediaSource:
        return BrowseMediaSource(
            domain=DOMAIN,
            identifier=f"{event.camera_id}/{event.event_id}/{kind}",
            media_class=MediaClass.IMAGE,
            media_content_type="image/jpeg",
            title=f"{_event_title(event)} {kind}",
            can_play=True,
            can_expand=False,
            thumbnail=snapshot_url(
                event.camera_id, event.event_id, annotated=kind == KIND_ANNOTATED
            ),
        )


class SnapshotView(HomeAssistantView):
    """Serves an event's frame to authenticated users (or a signed, expiring path)."""

    url = "/api/home_security_intel/snapshot/{camera_id}/{event_id}/{kind}"
    name = "api:home_security_intel:snapshot"
    requires_auth = True

    async def get(
        self, request: web.Request, camera_id: str, event_id: str, kind: str
    ) -> web.StreamResponse:
        """The JPEG, or 404 for anything that is not a stored frame inside the folder."""
        if not (valid_camera_id(camera_id) and valid_event_id(event_id) and kind in KINDS):
            _LOGGER.warning(
                "Refused snapshot request %r from %s: not a camera, event and frame kind",
                f"{camera_id}/{event_id}/{kind}",
                request.remote,
            )
            return web.Response(status=HTTPStatus.NOT_FOUND)
        hass = request.app[KEY_HASS]
        if (store := async_get_store(hass)) is None:
            return web.Response(status=HTTPStatus.NOT_FOUND)
        path = await store.async_snapshot_file(
            camera_id, event_id, annotated=kind == KIND_ANNOTATED
        )
        if path is None:
            return web.Response(status=HTTPStatus.NOT_FOUND)
        return web.FileResponse(
            path, headers={"Content-Type": "image/jpeg", "Cache-Control": "private, max-age=3600"}
        )
