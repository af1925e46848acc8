"""The shared store inside Home Assistant: sharing, recording, retention, signed paths, and a
camera entry's removal taking its history and snapshots with it."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus
import logging
import os
from pathlib import Path

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.home_security_intel.const import CONF_RETENTION_DAYS, DOMAIN
from custom_components.home_security_intel.store import (
    DATA_STORE,
    PURGE_INTERVAL,
    async_acquire_store,
    async_get_store,
    async_release_store,
    async_signed_snapshot_url,
    media_root,
    snapshot_url,
)
from custom_components.home_security_intel.store.database import DB_FILE
from tests.store.common import CAMERA, JPEG, OTHER, make_event


async def test_shared_and_reference_counted(hass: HomeAssistant) -> None:
    """Every holder gets the same store; it closes when the last one releases it."""
    await async_release_store(hass)  # nothing held: harmless
    first = await async_acquire_store(hass)
    second = await async_acquire_store(hass)
    assert first is second is async_get_store(hass)
    assert Path(hass.config.path(DOMAIN, DB_FILE)).is_file()
    await async_release_store(hass)
    assert async_get_store(hass) is first
    await async_release_store(hass)
    assert async_get_store(hass) is None
    assert first.events._executor is None  # closed, its thread gone
    await async_release_store(hass)  # released once too often: harmless
    third = await async_acquire_store(hass)
    assert third is not first
    await async_release_store(hass)
    assert hass.data[DATA_STORE].holder is None


async def test_record_with_and_without_frame(hass: HomeAssistant, media_dir: Path) -> None:
    """A frame makes has_snapshot true and lands under the media folder; an update without a
    frame keeps it; listeners hear every recorded event."""
    store = await async_acquire_store(hass)
    heard: list[str] = []
    unsub = store.async_add_listener(lambda event: heard.append(event.event_id))
    event = make_event(length=None)
    recorded = await store.async_record(event, JPEG, b"annotated")
    assert recorded.has_snapshot
    assert media_root(hass) == media_dir / "home_security_intel"
    files = sorted(p.name for p in media_dir.rglob("*.jpg"))
    assert files == [f"{event.event_id}.jpg", f"{event.event_id}_annotated.jpg"]
    ended = await store.async_record(event.with_changes(end=event.start + timedelta(minutes=1)))
    assert ended.has_snapshot
    assert await store.events.async_get(event.event_id) == ended
    assert heard == [event.event_id] * 2
    unsub()
    await store.async_record(make_event())
    assert len(heard) == 2
    assert store.snapshot_media_id(event) == (
        f"media-source://home_security_intel/{CAMERA}/{event.event_id}/annotated"
    )
    assert store.snapshot_media_id(event, annotated=False).endswith("/original")
    await async_release_store(hass)


async def test_record_survives_disk_and_database_errors(
    hass: HomeAssistant, media_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A snapshot that cannot be written is logged and the event still stored; a database
    that fails is logged and the event handed back."""
    store = await async_acquire_store(hass)
    # The media folder's place taken by a file: every write fails.
    (media_dir / "home_security_intel").write_bytes(b"in the way")
    event = make_event()
    with caplog.at_level(logging.ERROR):
        recorded = await store.async_record(event, JPEG)
    assert not recorded.has_snapshot
    assert "Cannot save the snapshot" in caplog.text
    assert await store.events.async_get(event.event_id) == recorded
    await store.events.async_close()
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        assert await store.async_record(event) == event
    assert "Cannot store event" in caplog.text
    await async_release_store(hass)


async def test_retention_per_camera(hass: HomeAssistant, media_dir: Path) -> None:
    """Each camera keeps its own number of days; purged events take their files along."""
    store = await async_acquire_store(hass)
    now = dt_util.utcnow()
    store.async_set_retention(CAMERA, 3)
    old = await store.async_record(make_event(now - timedelta(days=5)), JPEG)
    kept_other = await store.async_record(
        make_event(now - timedelta(days=5), camera_id=OTHER), JPEG
    )
    ancient_other = await store.async_record(
        make_event(now - timedelta(days=20), camera_id=OTHER), JPEG
    )
    new = await store.async_record(make_event(now - timedelta(hours=1)), JPEG)
    odd = await store.async_record(make_event(now - timedelta(days=30), camera_id="not/a/camera"))
    exports = media_root(hass) / "exports" / CAMERA
    exports.mkdir(parents=True)
    old_export, new_export = exports / "events_old.zip", exports / "events_new.zip"
    for export in (old_export, new_export):
        export.write_bytes(b"zip")
    stale = (now - timedelta(days=4)).timestamp()
    os.utime(old_export, (stale, stale))
    removed = await store.async_purge_expired()
    assert not old_export.exists()
    assert new_export.exists()
    assert ("not/a/camera", odd.event_id) in removed
    removed.remove(("not/a/camera", odd.event_id))
    assert sorted(removed) == sorted(
        [(CAMERA, old.event_id), (OTHER, ancient_other.event_id)]
    )  # OTHER keeps the default 14 days
    names = {p.name.split("_")[0].removesuffix(".jpg") for p in media_dir.rglob("*.jpg")}
    assert names == {kept_other.event_id, new.event_id}
    await async_release_store(hass)


async def test_hourly_purge(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """The store purges by itself every hour, off the event loop; a failing purge is logged."""
    store = await async_acquire_store(hass)
    store.async_set_retention(CAMERA, 1)
    event = await store.async_record(make_event(dt_util.utcnow() - timedelta(hours=20)))
    freezer.tick(PURGE_INTERVAL)
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert await store.events.async_get(event.event_id) == event
    freezer.tick(timedelta(hours=5))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert await store.events.async_get(event.event_id) is None
    await store.events.async_close()
    freezer.tick(PURGE_INTERVAL)
    with caplog.at_level(logging.ERROR):
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)
    assert "Retention purge failed" in caplog.text
    await async_release_store(hass)


async def test_signed_snapshot_url(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A notification's signed path opens the frame without a login for 24 hours only; the
    same path unsigned is refused."""
    assert await async_setup_component(hass, DOMAIN, {})
    store = await async_acquire_store(hass)
    event = await store.async_record(make_event(), JPEG, b"annotated" + JPEG)
    signed = async_signed_snapshot_url(hass, event)
    assert signed.startswith(snapshot_url(event.camera_id, event.event_id) + "?authSig=")
    client = await hass_client_no_auth()
    response = await client.get(signed)
    assert response.status == HTTPStatus.OK
    assert response.content_type == "image/jpeg"
    assert await response.read() == b"annotated" + JPEG
    original = await client.get(async_signed_snapshot_url(hass, event, annotated=False))
    assert await original.read() == JPEG
    unsigned = await client.get(snapshot_url(event.camera_id, event.event_id))
    assert unsigned.status == HTTPStatus.UNAUTHORIZED
    freezer.tick(timedelta(hours=24, seconds=1))
    expired = await client.get(signed)
    assert expired.status == HTTPStatus.UNAUTHORIZED
    await async_release_store(hass)


async def test_removing_a_camera_entry_leaves_nothing(
    hass: HomeAssistant, setup_integration: MockConfigEntry, media_dir: Path
) -> None:
    """Removing a camera's entry deletes its events, snapshots and exports; another camera's
    stay."""
    entry = setup_integration
    store = async_get_store(hass)
    assert store is not None
    assert entry.runtime_data.store is store
    mine = [await store.async_record(make_event(camera_id=entry.entry_id), JPEG) for _ in range(3)]
    other = await store.async_record(make_event(camera_id=OTHER), JPEG)
    exports = media_root(hass) / "exports" / entry.entry_id
    exports.mkdir(parents=True)
    (exports / "events_20261130T220000Z.zip").write_bytes(b"zip")
    assert mine[0].has_snapshot
    await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert async_get_store(hass) is None  # the last holder went: closed
    store = await async_acquire_store(hass)
    assert (await store.events.async_query()).events == (other,)
    assert not (media_root(hass) / entry.entry_id).exists()
    assert not exports.exists()
    assert [p.name for p in media_dir.rglob("*.jpg")] != []
    assert all(OTHER in p.as_posix() for p in media_dir.rglob("*.jpg"))
    await async_release_store(hass)


async def test_camera_retention_option(hass: HomeAssistant, config_entry: MockConfigEntry) -> None:
    """A camera's retention option reaches the store; unloading releases it."""
    from tests.common import setup_entry

    await setup_entry(hass, config_entry, options={**config_entry.options, CONF_RETENTION_DAYS: 2})
    store = async_get_store(hass)
    assert store is not None
    assert store._retention[config_entry.entry_id] == 2
    assert await hass.config_entries.async_unload(config_entry.entry_id)
    assert async_get_store(hass) is None


async def test_media_root_falls_back_to_config_media(hass: HomeAssistant) -> None:
    """Without a local media folder, snapshots go to <config>/media/home_security_intel."""
    hass.config.media_dirs = {}
    assert media_root(hass) == Path(hass.config.path("media")) / "home_security_intel"


async def test_camera_setup_retries_when_the_store_cannot_open(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> None:
    """A store folder that cannot be made: the camera retries later (translated reason)."""
    from homeassistant.config_entries import ConfigEntryState

    Path(hass.config.path(DOMAIN)).write_bytes(b"a file where the folder goes")
    config_entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(config_entry.entry_id)
    assert config_entry.state is ConfigEntryState.SETUP_RETRY
    assert config_entry.reason is not None
    assert "event store cannot be opened" in config_entry.reason
    assert async_get_store(hass) is None


async def test_failed_setup_releases_the_store(
    hass: HomeAssistant, config_entry: MockConfigEntry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A setup that fails after the store was taken gives it back. (The failure is injected:
    forwarding platforms does not fail by itself here.)"""

    async def fail(*_: object) -> None:
        raise RuntimeError("injected")

    monkeypatch.setattr(hass.config_entries, "async_forward_entry_setups", fail)
    config_entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(config_entry.entry_id)
    assert async_get_store(hass) is None


async def test_removing_the_home_entry_keeps_the_history(hass: HomeAssistant) -> None:
    """The home entry has no events of its own: removing it touches no camera's."""
    from custom_components.home_security_intel.const import CONF_ENTRY_TYPE, ENTRY_TYPE_HOME

    store = await async_acquire_store(hass)
    event = await store.async_record(make_event())
    home = MockConfigEntry(domain=DOMAIN, data={CONF_ENTRY_TYPE: ENTRY_TYPE_HOME})
    home.add_to_hass(hass)
    await hass.config_entries.async_remove(home.entry_id)
    assert await store.events.async_get(event.event_id) == event
    await async_release_store(hass)


async def test_closed_when_home_assistant_stops(hass: HomeAssistant) -> None:
    """Home Assistant stops without unloading entries: the store closes as its last write."""
    from homeassistant.const import EVENT_HOMEASSISTANT_FINAL_WRITE

    store = await async_acquire_store(hass)
    hass.bus.async_fire(EVENT_HOMEASSISTANT_FINAL_WRITE)
    await hass.async_block_till_done()
    assert async_get_store(hass) is None
    assert store.events._executor is None
    await async_release_store(hass)  # the entry's unload afterwards: harmless
