"""The event history's service actions (get_events, export_events) and the snapshot disk usage
sensor, for a camera set up against the ONVIF simulator."""

from __future__ import annotations

from datetime import timedelta
import json
from pathlib import Path
from typing import Any
import zipfile

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.helpers.entity_component import async_update_entity
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.home_security_intel.const import (
    CONF_ENTRY_TYPE,
    DOMAIN,
    ENTRY_TYPE_DETECTOR,
)
from custom_components.home_security_intel.store import HsiStore, async_get_store, media_root
from tests.store.common import JPEG, OTHER, make_event


@pytest.fixture
def store(hass: HomeAssistant, setup_integration: MockConfigEntry) -> HsiStore:
    """The store the camera entry holds."""
    shared = async_get_store(hass)
    assert shared is not None
    return shared


def _camera_entity(hass: HomeAssistant, entry: MockConfigEntry) -> str:
    registry = er.async_get(hass)
    return next(
        e.entity_id
        for e in er.async_entries_for_config_entry(registry, entry.entry_id)
        if e.domain == "camera"
    )


async def _call(hass: HomeAssistant, service: str, **data: Any) -> dict[str, Any]:
    answer = await hass.services.async_call(
        DOMAIN, service, data, blocking=True, return_response=True
    )
    assert isinstance(answer, dict)
    return answer


async def test_get_events_by_entity_device_or_entry(
    hass: HomeAssistant, setup_integration: MockConfigEntry, store: HsiStore
) -> None:
    """The camera may be named by its entity, its device or its entry; none names all."""
    entry = setup_integration
    now = dt_util.utcnow()
    mine = await store.async_record(make_event(now, camera_id=entry.entry_id), JPEG)
    other = await store.async_record(make_event(now - timedelta(minutes=1), camera_id=OTHER))
    device = next(iter(dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)))
    for data in (
        {"entity_id": _camera_entity(hass, entry)},
        {"device_id": device.id},
        {"config_entry_id": entry.entry_id},
        {"config_entry_id": entry.entry_id, "device_id": device.id},
    ):
        answer = await _call(hass, "get_events", **data)
        assert [e["event_id"] for e in answer["events"]] == [mine.event_id], data
    [shown] = answer["events"]
    assert shown["snapshot"] == store.snapshot_media_id(mine)
    assert "?authSig=" in shown["snapshot_url"]
    assert shown["level"] == "high"
    everything = await _call(hass, "get_events")
    assert [e["event_id"] for e in everything["events"]] == [mine.event_id, other.event_id]
    assert "snapshot" not in everything["events"][1]


async def test_get_events_filters_and_pages(
    hass: HomeAssistant, setup_integration: MockConfigEntry, store: HsiStore
) -> None:
    """Time range, minimum level, severity and limit apply; the cursor continues a page."""
    camera = setup_integration.entry_id
    now = dt_util.utcnow()
    events = [
        make_event(now - timedelta(minutes=i), camera_id=camera, score=(10, 40, 70, 90)[i % 4])
        for i in range(20)
    ]
    await store.events.async_upsert_many(events)
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        data: dict[str, Any] = {"config_entry_id": camera, "limit": 6, "min_level": "high"}
        if cursor:
            data["cursor"] = cursor
        answer = await _call(hass, "get_events", **data)
        pages.append([e["event_id"] for e in answer["events"]])
        if (cursor := answer["next_cursor"]) is None:
            break
    assert [len(page) for page in pages] == [6, 4]
    assert [event_id for page in pages for event_id in page] == [
        e.event_id for e in events if e.score >= 60
    ]
    alerts = await _call(hass, "get_events", severity="alert", limit=500)
    assert len(alerts["events"]) == 10
    recent = await _call(
        hass,
        "get_events",
        start=(now - timedelta(minutes=4, seconds=10)).isoformat(),
        end=(now + timedelta(minutes=1)).isoformat(),
    )
    assert [e["event_id"] for e in recent["events"]] == [e.event_id for e in events[:5]]


async def test_get_events_errors_are_translated(
    hass: HomeAssistant, setup_integration: MockConfigEntry, store: HsiStore
) -> None:
    """A foreign cursor, two cameras, or something that is no camera: translated errors."""
    detector = MockConfigEntry(domain=DOMAIN, data={CONF_ENTRY_TYPE: ENTRY_TYPE_DETECTOR})
    detector.add_to_hass(hass)
    other_camera = MockConfigEntry(domain=DOMAIN, title="Other")
    other_camera.add_to_hass(hass)
    device = dr.async_get(hass).async_get_or_create(
        config_entry_id=detector.entry_id, identifiers={(DOMAIN, "detector")}
    )
    cases: list[tuple[dict[str, Any], str]] = [
        ({"cursor": "WzEsMl0"}, "invalid_cursor"),
        (
            {"config_entry_id": setup_integration.entry_id, "entity_id": "camera.nothing"},
            "unknown_camera",
        ),
        ({"config_entry_id": detector.entry_id}, "unknown_camera"),
        ({"config_entry_id": "nonexistent"}, "unknown_camera"),
        ({"device_id": device.id}, "unknown_camera"),
        ({"device_id": "nonexistent"}, "unknown_camera"),
        (
            {"config_entry_id": setup_integration.entry_id, "device_id": "x"},
            "unknown_camera",
        ),
        (
            {
                "config_entry_id": other_camera.entry_id,
                "entity_id": _camera_entity(hass, setup_integration),
            },
            "one_camera",
        ),
    ]
    for data, key in cases:
        with pytest.raises(ServiceValidationError) as err:
            await _call(hass, "get_events", **data)
        assert err.value.translation_key == key, data
        assert err.value.translation_domain == DOMAIN


async def test_without_store(hass: HomeAssistant) -> None:
    """No camera loaded: the history is not open, and the services say so."""
    assert await async_setup_component(hass, DOMAIN, {})
    for service in ("get_events", "export_events"):
        with pytest.raises(ServiceValidationError) as err:
            await _call(hass, service)
        assert err.value.translation_key == "no_store"


async def test_export_events(
    hass: HomeAssistant, setup_integration: MockConfigEntry, store: HsiStore, media_dir: Path
) -> None:
    """One zip of the camera's events and frames under the media folder, reachable through the
    local media source; another camera's events are not in it."""
    camera = setup_integration.entry_id
    now = dt_util.utcnow()
    framed = [
        await store.async_record(make_event(now - timedelta(minutes=i), camera_id=camera), JPEG)
        for i in range(3)
    ]
    plain = await store.async_record(make_event(now - timedelta(hours=1), camera_id=camera))
    await store.async_record(make_event(now, camera_id=OTHER), JPEG)
    answer = await _call(hass, "export_events", config_entry_id=camera)
    assert answer["events"] == 4
    assert answer["snapshots"] == 6
    path = Path(answer["path"])
    assert path.is_relative_to(media_dir / "home_security_intel" / "exports" / camera)
    assert answer["media_content_id"] == (
        f"media-source://media_source/local/{path.relative_to(media_dir).as_posix()}"
    )
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        exported = json.loads(archive.read("events.json"))
        assert archive.read(f"snapshots/{framed[0].start.date()}/{framed[0].event_id}.jpg") == JPEG
    assert [e["event_id"] for e in exported] == [
        plain.event_id,
        *(e.event_id for e in reversed(framed)),
    ]  # oldest first
    assert len([n for n in names if n.startswith("snapshots/")]) == 6
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    ranged = await _call(
        hass,
        "export_events",
        config_entry_id=camera,
        start=(now - timedelta(minutes=30)).isoformat(),
    )
    assert ranged["events"] == 3


async def test_export_errors(
    hass: HomeAssistant, setup_integration: MockConfigEntry, store: HsiStore
) -> None:
    """Export needs one camera; a folder that cannot be written gives a translated error and
    leaves no partial archive."""
    with pytest.raises(ServiceValidationError) as err:
        await _call(hass, "export_events")
    assert err.value.translation_key == "one_camera"
    camera = setup_integration.entry_id
    await store.async_record(make_event(camera_id=camera), JPEG)
    exports = media_root(hass) / "exports"
    exports.mkdir(parents=True)
    (exports / camera).write_bytes(b"a file where the folder goes")
    with pytest.raises(HomeAssistantError) as failed:
        await _call(hass, "export_events", config_entry_id=camera)
    assert failed.value.translation_key == "export_failed"


async def test_export_outside_local_media(
    hass: HomeAssistant, setup_integration: MockConfigEntry, store: HsiStore
) -> None:
    """Without a local media folder (configured away after the store opened) the archive has
    no media-source id, only its path."""
    hass.config.media_dirs = {}
    await store.async_record(make_event(camera_id=setup_integration.entry_id), JPEG)
    answer = await _call(hass, "export_events", config_entry_id=setup_integration.entry_id)
    assert "media_content_id" not in answer
    assert Path(answer["path"]).is_file()
    assert answer["snapshots"] == 2


async def test_disk_usage_sensor(
    hass: HomeAssistant, setup_integration: MockConfigEntry, store: HsiStore
) -> None:
    """The diagnostic sensor (disabled by default) shows the bytes of the camera's frames."""
    entry = setup_integration
    registry = er.async_get(hass)
    [entity] = [
        e
        for e in er.async_entries_for_config_entry(registry, entry.entry_id)
        if e.translation_key == "snapshot_disk_usage"
    ]
    assert entity.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    registry.async_update_entity(entity.entity_id, disabled_by=None)
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    store = async_get_store(hass)
    assert store is not None
    await store.async_record(make_event(camera_id=entry.entry_id), JPEG, JPEG + JPEG)
    await async_update_entity(hass, entity.entity_id)
    state = hass.states.get(entity.entity_id)
    assert state is not None
    assert float(state.state) == pytest.approx(3 * len(JPEG) / 1e6, abs=1e-3)
    assert state.attributes["unit_of_measurement"] == "MB"


async def test_service_descriptions(hass: HomeAssistant) -> None:
    """services.yaml describes both actions with their fields (shared anchors included)."""
    from homeassistant.helpers.service import async_get_all_descriptions

    assert await async_setup_component(hass, DOMAIN, {})
    descriptions = (await async_get_all_descriptions(hass))[DOMAIN]
    assert set(descriptions["get_events"]["fields"]) == {
        "entity_id",
        "device_id",
        "config_entry_id",
        "start",
        "end",
        "min_level",
        "severity",
        "limit",
        "cursor",
    }
    export = descriptions["export_events"]["fields"]
    assert set(export) == {"entity_id", "device_id", "config_entry_id", "start", "end"}
    assert export["entity_id"]["selector"]["entity"]["integration"] == DOMAIN
    assert "datetime" in export["start"]["selector"]
