"""The media source through Home Assistant's media_source integration and the snapshot view:
browsing by camera, day and event with paging, resolving, and every traversal attempt."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
import logging
from pathlib import Path
import uuid

from homeassistant.components.media_player.errors import BrowseError
from homeassistant.components.media_source import (
    Unresolvable,
    async_browse_media,
    async_resolve_media,
)
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.home_security_intel.const import (
    CONF_ENTRY_TYPE,
    DOMAIN,
    ENTRY_TYPE_DETECTOR,
    ENTRY_TYPE_HOME,
)
from custom_components.home_security_intel.media_source import (
    EVENTS_PAGE,
    Identifier,
    parse_identifier,
)
from custom_components.home_security_intel.store import (
    HsiStore,
    async_acquire_store,
    async_release_store,
    snapshot_url,
)
from tests.store.common import JPEG, make_event

PREFIX = f"media-source://{DOMAIN}"
DAY_START = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)


@pytest.fixture
async def integration(hass: HomeAssistant) -> None:
    """The integration and media_source set up (days counted in UTC)."""
    await hass.config.async_set_time_zone("UTC")
    assert await async_setup_component(hass, "media_source", {})
    assert await async_setup_component(hass, DOMAIN, {})


@pytest.fixture
def cameras(hass: HomeAssistant, integration: None) -> list[MockConfigEntry]:
    """Two camera entries (not set up: the media source lists entries), a detector, the home."""
    entries = [
        MockConfigEntry(domain=DOMAIN, title="Garden"),
        MockConfigEntry(domain=DOMAIN, title="Driveway"),
        MockConfigEntry(
            domain=DOMAIN, title="Detector", data={CONF_ENTRY_TYPE: ENTRY_TYPE_DETECTOR}
        ),
        MockConfigEntry(domain=DOMAIN, title="Home", data={CONF_ENTRY_TYPE: ENTRY_TYPE_HOME}),
    ]
    for entry in entries:
        entry.add_to_hass(hass)
    return entries[:2]


@pytest.fixture
async def store(hass: HomeAssistant, cameras: list[MockConfigEntry]) -> AsyncIterator[HsiStore]:
    """The store open."""
    shared = await async_acquire_store(hass)
    yield shared
    await async_release_store(hass)


async def test_browse_cameras_days_events(
    hass: HomeAssistant, store: HsiStore, cameras: list[MockConfigEntry]
) -> None:
    """Root lists the cameras; a camera its days (newest first, with counts); a day its events;
    an event its two frames."""
    garden = cameras[0].entry_id
    first = await store.async_record(
        make_event(DAY_START + timedelta(hours=1), camera_id=garden), JPEG
    )
    second = await store.async_record(
        make_event(DAY_START + timedelta(hours=2), camera_id=garden, score=90), JPEG
    )
    no_frame = await store.async_record(
        make_event(DAY_START - timedelta(hours=2), camera_id=garden)
    )

    root = await async_browse_media(hass, PREFIX)
    assert [child.title for child in root.children] == ["Driveway", "Garden"]
    assert root.children[1].media_content_id == f"{PREFIX}/{garden}"

    days = await async_browse_media(hass, f"{PREFIX}/{garden}")
    assert days.title == "Garden"
    assert [child.title for child in days.children] == ["2026-11-30 (2)", "2026-11-29 (1)"]

    day = await async_browse_media(hass, days.children[0].media_content_id)
    assert [child.media_content_id for child in day.children] == [
        f"{PREFIX}/{garden}/{second.event_id}",
        f"{PREFIX}/{garden}/{first.event_id}",
    ]
    assert day.children[0].title == "02:00:00 Person on the porch (critical)"
    assert day.children[0].thumbnail == snapshot_url(garden, second.event_id)

    event = await async_browse_media(hass, day.children[0].media_content_id)
    assert [(c.media_content_id, c.can_play) for c in event.children] == [
        (f"{PREFIX}/{garden}/{second.event_id}/annotated", True),
        (f"{PREFIX}/{garden}/{second.event_id}/original", True),
    ]
    image = await async_browse_media(hass, event.children[1].media_content_id)
    assert image.can_play
    assert image.thumbnail == snapshot_url(garden, second.event_id, annotated=False)

    older = await async_browse_media(hass, days.children[1].media_content_id)
    assert older.children[0].media_content_id == f"{PREFIX}/{garden}/{no_frame.event_id}"
    assert older.children[0].children == []
    assert older.children[0].thumbnail is None

    resolved = await async_resolve_media(
        hass, f"{PREFIX}/{garden}/{second.event_id}/original", None
    )
    assert resolved.url == snapshot_url(garden, second.event_id, annotated=False)
    assert resolved.mime_type == "image/jpeg"


async def test_ten_thousand_events_browsed_a_page_at_a_time(
    hass: HomeAssistant, store: HsiStore, cameras: list[MockConfigEntry]
) -> None:
    """A camera with 10,000 events: its days open at once, each day's events come in pages of
    EVENTS_PAGE with an "older events" folder, and following them shows every event once."""
    garden = cameras[0].entry_id
    events = [
        make_event(DAY_START + timedelta(seconds=30 * i), camera_id=garden, has_snapshot=True)
        for i in range(10_000)
    ]  # 2,880 a day: four days, the last one partly
    await store.events.async_upsert_many(events)
    days = await async_browse_media(hass, f"{PREFIX}/{garden}")
    assert [child.title for child in days.children] == [
        "2026-12-03 (1360)",
        "2026-12-02 (2880)",
        "2026-12-01 (2880)",
        "2026-11-30 (2880)",
    ]
    seen: list[str] = []
    pages = 0
    for day in days.children:
        node_id: str | None = day.media_content_id
        while node_id is not None:
            node = await async_browse_media(hass, node_id)
            pages += 1
            assert len(node.children) <= EVENTS_PAGE + 1
            node_id = None
            for child in node.children:
                if child.title == "Older events":
                    node_id = child.media_content_id
                else:
                    seen.append(child.media_content_id.rsplit("/", 1)[1])
    assert pages == sum(-(-n // EVENTS_PAGE) for n in (1360, 2880, 2880, 2880))
    assert len(seen) == len(set(seen)) == 10_000
    assert set(seen) == {event.event_id for event in events}


TRAVERSALS = [
    "..",
    "../..",
    "../../etc/passwd",
    "{camera}/..",
    "{camera}/../{other}",
    "{camera}/day/../../etc",
    "{camera}/day/2026-11-30/../..",
    "{camera}%2F..%2F..%2Fetc",
    "{camera}/{event}%2F..%2Foriginal",
    "%2e%2e/%2e%2e/etc/passwd",
    "/etc/passwd",
    "{camera}//etc/passwd",
    "{camera}/{event}/annotated\x00.jpg",
    "{camera}\x00",
    "{camera}/{event}/../../../secret",
    "{camera}/{event}/thumbnail",
    "{camera}/{EVENT}/annotated",
    "{camera}/day/2026-13-45",
    "{camera}/day/2026-11-30/not*a*cursor",
    "{camera}/day/2026-11-30/WzEsMl0",
    "{camera}/day/2026-11-30/x/y",
    "{camera}/{event}/annotated/",
    "{camera}-x",
    "exports",
    "exports/{camera}",
    "~/secret",
    "C:\\Windows",
]


def _attempts(camera: str, other: str) -> list[str]:
    event = uuid.uuid4().hex
    return [
        attempt.format(camera=camera, other=other, event=event, EVENT=event.upper())
        for attempt in TRAVERSALS
    ]


async def test_every_traversal_attempt_is_refused_and_logged(
    hass: HomeAssistant,
    store: HsiStore,
    cameras: list[MockConfigEntry],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No identifier that is not exactly one of ours is browsed or resolved; each is logged."""
    camera, other = cameras[0].entry_id, cameras[1].entry_id
    for attempt in _attempts(camera, other):
        caplog.clear()
        # An identifier starting with "/" is refused by media_source's own URI check already.
        ours = not attempt.startswith("/")
        with caplog.at_level(logging.WARNING), pytest.raises(BrowseError):
            await async_browse_media(hass, f"{PREFIX}/{attempt}")
        assert ("Refused media identifier" in caplog.text) is ours, attempt
        caplog.clear()
        with caplog.at_level(logging.WARNING), pytest.raises(Unresolvable):
            await async_resolve_media(hass, f"{PREFIX}/{attempt}", None)
        assert ("Refused media identifier" in caplog.text) is ours, attempt


async def test_unknown_or_foreign_items(
    hass: HomeAssistant, store: HsiStore, cameras: list[MockConfigEntry]
) -> None:
    """Well-formed identifiers of nothing stored, or of another camera's event, find nothing;
    folders do not resolve."""
    garden, driveway = cameras[0].entry_id, cameras[1].entry_id
    event = await store.async_record(make_event(camera_id=garden), JPEG)
    missing = uuid.uuid4().hex
    for item in (
        f"{driveway}/{event.event_id}",
        f"{garden}/{missing}",
        f"{garden}/{missing}/original",
    ):
        with pytest.raises(BrowseError):
            await async_browse_media(hass, f"{PREFIX}/{item}")
    for item in (
        f"{driveway}/{event.event_id}/annotated",
        f"{garden}/{missing}/annotated",
        f"{garden}/{event.event_id}",
        garden,
    ):
        with pytest.raises(Unresolvable):
            await async_resolve_media(hass, f"{PREFIX}/{item}", None)
    # A camera that has no entry (its events stay until retention) browses by its id.
    stray = await store.async_record(make_event(camera_id="01JSTRAYCAMERA0000000000000"))
    days = await async_browse_media(hass, f"{PREFIX}/{stray.camera_id}")
    assert days.title == stray.camera_id


async def test_browse_without_store(hass: HomeAssistant, cameras: list[MockConfigEntry]) -> None:
    """Before any camera holds the store, the root lists cameras and deeper levels say why."""
    root = await async_browse_media(hass, PREFIX)
    assert len(root.children) == 2
    with pytest.raises(BrowseError, match="No camera"):
        await async_browse_media(hass, f"{PREFIX}/{cameras[0].entry_id}")
    with pytest.raises(Unresolvable):
        await async_resolve_media(
            hass, f"{PREFIX}/{cameras[0].entry_id}/{uuid.uuid4().hex}/annotated", None
        )


def test_parse_identifier() -> None:
    """The pure parser the browser and the benchmark use."""
    assert parse_identifier(None) == Identifier("root")
    assert parse_identifier("abc").node == "days"
    parsed = parse_identifier(f"abc/{'a' * 32}/original")
    assert (parsed.node, parsed.event_id, parsed.kind) == ("image", "a" * 32, "original")
    with pytest.raises(ValueError, match="invalid identifier"):
        parse_identifier("abc/day/2026-02-30")


async def test_view_serves_frames_to_authenticated_users_only(
    hass: HomeAssistant,
    store: HsiStore,
    cameras: list[MockConfigEntry],
    hass_client: ClientSessionGenerator,
    hass_client_no_auth: ClientSessionGenerator,
    caplog: pytest.LogCaptureFixture,
    media_dir: Path,
    tmp_path: Path,
) -> None:
    """The view answers a logged-in user with the frame, refuses anonymous requests, and gives
    404 (logged) for every traversal attempt, another camera's event, or a linked file."""
    garden, driveway = cameras[0].entry_id, cameras[1].entry_id
    event = await store.async_record(make_event(camera_id=garden), JPEG, b"annotated" + JPEG)
    client = await hass_client()
    response = await client.get(snapshot_url(garden, event.event_id))
    assert response.status == HTTPStatus.OK
    assert response.headers["Content-Type"] == "image/jpeg"
    assert await response.read() == b"annotated" + JPEG
    anonymous = await hass_client_no_auth()
    assert (await anonymous.get(snapshot_url(garden, event.event_id))).status == (
        HTTPStatus.UNAUTHORIZED
    )
    assert (await client.get(snapshot_url(driveway, event.event_id))).status == HTTPStatus.NOT_FOUND
    base = "/api/home_security_intel/snapshot"
    for path in (
        f"{base}/{garden}/{event.event_id}/thumbnail",
        f"{base}/{garden}/{event.event_id.upper()}/annotated",
        f"{base}/..%2F..%2F..%2Fetc/{event.event_id}/annotated",
        f"{base}/{garden}/..%2F{event.event_id}/annotated",
        f"{base}/{garden}/%2e%2e/annotated",
        f"{base}/{garden}/{event.event_id}%00/annotated",
        f"{base}/exports/{event.event_id}/annotated",
    ):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            answer = await client.get(path)
        assert answer.status in (HTTPStatus.NOT_FOUND, HTTPStatus.BAD_REQUEST), path
        if answer.status == HTTPStatus.NOT_FOUND and "%2e%2e" not in path:
            assert "Refused snapshot request" in caplog.text, path
    # The frame replaced by a link to a file outside: refused, logged.
    frame = store.snapshots.path(garden, event.event_id, event.start, annotated=True)
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"secret")
    frame.unlink()
    frame.symlink_to(secret)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        linked = await client.get(snapshot_url(garden, event.event_id))
    assert linked.status == HTTPStatus.NOT_FOUND
    assert "symbolic link" in caplog.text
    with pytest.raises(Unresolvable):
        await async_resolve_media(hass, f"{PREFIX}/{garden}/{event.event_id}/annotated", None)
    assert (await client.get(snapshot_url(garden, event.event_id, annotated=False))).status == (
        HTTPStatus.OK
    )


async def test_view_without_store(hass: HomeAssistant, hass_client: ClientSessionGenerator) -> None:
    """With no store open, the view finds nothing."""
    assert await async_setup_component(hass, DOMAIN, {})
    client = await hass_client()
    response = await client.get(snapshot_url("abc", uuid.uuid4().hex))
    assert response.status == HTTPStatus.NOT_FOUND
