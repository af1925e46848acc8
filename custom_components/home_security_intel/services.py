"""Service actions: ``detect`` analyses one frame of each targeted camera now; ``get_events``
pages through the stored security events; ``export_events`` writes one archive of a camera's;
``analyze_event`` asks the camera's AI Task entity about one security event now.

``detect`` answers with the detector's raw detections and the pipeline's confirmed objects (response
data), so a script can ask "who is at the door right now" without waiting for the steady rate.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
import json
from pathlib import Path
from typing import Any
import zipfile

from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import (
    config_validation as cv,
    device_registry as dr,
    entity_registry as er,
)
from homeassistant.helpers.service import async_extract_entity_ids
from homeassistant.helpers.update_coordinator import UpdateFailed
from homeassistant.util import dt as dt_util
import probatio as vol

from .const import ATTR_EVENT_ID, DOMAIN, SERVICE_ANALYZE_EVENT
from .data import is_camera_entry
from .detection.model import Box, DetectorError
from .detection_coordinator import DetectionCoordinator
from .intelligence.model import RISK_LEVELS, SEVERITY_ALERT, SEVERITY_DETECTION, SecurityEvent
from .pipeline.state import FrameOutcome
from .store import HsiStore, async_get_store, async_signed_snapshot_url
from .store.database import MAX_PAGE, InvalidCursorError
from .store.snapshots import EXPORTS_DIR, SnapshotStore

SERVICE_DETECT = "detect"


def _box(box: Box) -> list[float]:
    return [round(v, 4) for v in (box.x_min, box.y_min, box.x_max, box.y_max)]


async def async_analyse(coordinator: DetectionCoordinator) -> dict[str, Any]:
    """Analyse one frame of a camera now; translated errors when that cannot be done."""
    name = coordinator.config_entry.title
    if not coordinator.enabled:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="detection_off",
            translation_placeholders={"camera_name": name},
        )
    try:
        result, outcome = await coordinator.async_analyse_now()
    except (DetectorError, UpdateFailed) as err:
        # UpdateFailed: the camera gave no frame, or no detector is set up.
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="detect_failed",
            translation_placeholders={"camera_name": name, "error": str(err)},
        ) from err
    return _response(result.detections, result.width, result.height, outcome)


def _response(detections: Any, width: int, height: int, outcome: FrameOutcome) -> dict[str, Any]:
    return {
        "width": width,
        "height": height,
        "detections": [
            {"label": d.label, "score": round(d.score, 3), "box": _box(d.box)} for d in detections
        ],
        "objects": [
            {
                "object_id": obj.object_id,
                "label": obj.label,
                "group": obj.group,
                "score": round(obj.score, 3),
                "box": _box(obj.box),
                "zones": sorted(obj.zones),
                "stationary": obj.stationary,
            }
            for obj in outcome.objects
        ],
        "counts": dict(outcome.counts),
    }


async def _coordinators(hass: HomeAssistant, call: ServiceCall) -> dict[str, DetectionCoordinator]:
    """The detection loops of the targeted camera entities, by entity id."""
    registry = er.async_get(hass)
    found: dict[str, DetectionCoordinator] = {}
    for entity_id in sorted(await async_extract_entity_ids(call)):
        registered = registry.async_get(entity_id)
        if (
            registered is None
            or registered.platform != DOMAIN
            or registered.domain != Platform.CAMERA
            or registered.config_entry_id is None
        ):
            continue
        # A camera entity always belongs to a camera entry (detectors have no camera entities).
        entry = hass.config_entries.async_get_entry(registered.config_entry_id)
        if entry is None or entry.state is not ConfigEntryState.LOADED:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="camera_not_loaded",
                translation_placeholders={"camera_name": entry.title if entry else entity_id},
            )
        if entry.runtime_data.detection is None:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="no_detection",
                translation_placeholders={"camera_name": entry.title},
            )
        found[entity_id] = entry.runtime_data.detection
    if not found:
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="no_camera")
    return found


def async_setup_services(hass: HomeAssistant) -> None:
    """Register the integration's service actions."""

    async def async_detect(call: ServiceCall) -> ServiceResponse:
        results: dict[str, Any] = {}
        for entity_id, coordinator in (await _coordinators(hass, call)).items():
            results[entity_id] = await async_analyse(coordinator)
        return results

    hass.services.async_register(
        DOMAIN, SERVICE_DETECT, async_detect, supports_response=SupportsResponse.ONLY
    )

    async def _get_events(call: ServiceCall) -> ServiceResponse:
        return await async_get_events(hass, call)

    async def _export_events(call: ServiceCall) -> ServiceResponse:
        return await async_export_events(hass, call)

    hass.services.async_register(
        DOMAIN,
        SERVICE_GET_EVENTS,
        _get_events,
        schema=GET_EVENTS_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_EXPORT_EVENTS,
        _export_events,
        schema=EXPORT_EVENTS_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )

    async def async_analyze_event(call: ServiceCall) -> ServiceResponse:
        event_id: str = call.data[ATTR_EVENT_ID]
        for entry in hass.config_entries.async_loaded_entries(DOMAIN):
            if not is_camera_entry(entry) or (monitor := entry.runtime_data.security) is None:
                continue
            if await monitor.async_knows(event_id):
                return {"event": (await monitor.async_analyze(event_id)).to_dict()}
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="event_not_found",
            translation_placeholders={"event_id": event_id},
        )

    hass.services.async_register(
        DOMAIN,
        SERVICE_ANALYZE_EVENT,
        async_analyze_event,
        schema=vol.Schema({vol.Required(ATTR_EVENT_ID): str}),
        supports_response=SupportsResponse.OPTIONAL,
    )


# --- the event history: get_events and export_events ------------------------------------------

SERVICE_GET_EVENTS = "get_events"
SERVICE_EXPORT_EVENTS = "export_events"
ATTR_ENTITY_ID = "entity_id"
ATTR_DEVICE_ID = "device_id"
ATTR_CONFIG_ENTRY_ID = "config_entry_id"
ATTR_START = "start"
ATTR_END = "end"
ATTR_MIN_LEVEL = "min_level"
ATTR_SEVERITY = "severity"
ATTR_LIMIT = "limit"
ATTR_CURSOR = "cursor"

_CAMERA_FIELDS = {
    vol.Optional(ATTR_ENTITY_ID): cv.entity_id,
    vol.Optional(ATTR_DEVICE_ID): cv.string,
    vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
}
_RANGE_FIELDS = {
    vol.Optional(ATTR_START): cv.datetime,
    vol.Optional(ATTR_END): cv.datetime,
}
GET_EVENTS_SCHEMA = vol.Schema(
    {
        **_CAMERA_FIELDS,
        **_RANGE_FIELDS,
        vol.Optional(ATTR_MIN_LEVEL): vol.In(RISK_LEVELS),
        vol.Optional(ATTR_SEVERITY): vol.In((SEVERITY_ALERT, SEVERITY_DETECTION)),
        vol.Optional(ATTR_LIMIT, default=50): vol.All(vol.Coerce(int), vol.Range(1, MAX_PAGE)),
        vol.Optional(ATTR_CURSOR): cv.string,
    }
)
EXPORT_EVENTS_SCHEMA = vol.Schema({**_CAMERA_FIELDS, **_RANGE_FIELDS})


def _is_camera_entry(entry: ConfigEntry | None) -> bool:
    return entry is not None and entry.domain == DOMAIN and is_camera_entry(entry)


def _camera_id(hass: HomeAssistant, data: Mapping[str, Any]) -> str | None:
    """The camera entry that the call's entity, device or config entry names (one at most);
    None when it names none (every camera)."""
    found: set[str] = set()
    if entity_id := data.get(ATTR_ENTITY_ID):
        registered = er.async_get(hass).async_get(entity_id)
        entry_id = registered.config_entry_id if registered else None
        if entry_id is None or not _is_camera_entry(hass.config_entries.async_get_entry(entry_id)):
            raise _unknown_camera(entity_id)
        found.add(entry_id)
    if device_id := data.get(ATTR_DEVICE_ID):
        device = dr.async_get(hass).async_get(device_id)
        owner = device.config_entry_id if device else None
        if owner is None or not _is_camera_entry(hass.config_entries.async_get_entry(owner)):
            raise _unknown_camera(device_id)
        found.add(owner)
    if entry_id := data.get(ATTR_CONFIG_ENTRY_ID):
        if not _is_camera_entry(hass.config_entries.async_get_entry(entry_id)):
            raise _unknown_camera(entry_id)
        found.add(entry_id)
    if len(found) > 1:
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="one_camera")
    return found.pop() if found else None


def _unknown_camera(name: str) -> ServiceValidationError:
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key="unknown_camera",
        translation_placeholders={"camera": name},
    )


def _store(hass: HomeAssistant) -> HsiStore:
    if (store := async_get_store(hass)) is None:
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="no_store")
    return store


def _aware(moment: datetime | None) -> datetime | None:
    return dt_util.as_utc(moment) if moment is not None else None


async def async_event_dict(
    hass: HomeAssistant, store: HsiStore, event: SecurityEvent
) -> dict[str, Any]:
    """An event as a service answers it: its dict, plus its snapshot's media id and a signed
    path (24 h) when it has one."""
    answer = event.to_dict()
    if event.has_snapshot:
        answer["snapshot"] = store.snapshot_media_id(event)
        answer["snapshot_url"] = async_signed_snapshot_url(hass, event)
    return answer


async def async_get_events(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    """One page of stored events, newest first."""
    store = _store(hass)
    data = call.data
    camera_id = _camera_id(hass, data)
    try:
        page = await store.events.async_query(
            camera_id=camera_id,
            start=_aware(data.get(ATTR_START)),
            end=_aware(data.get(ATTR_END)),
            min_level=data.get(ATTR_MIN_LEVEL),
            severity=data.get(ATTR_SEVERITY),
            limit=data[ATTR_LIMIT],
            cursor=data.get(ATTR_CURSOR),
        )
    except InvalidCursorError as err:
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="invalid_cursor"
        ) from err
    return {
        "events": [await async_event_dict(hass, store, event) for event in page.events],
        "next_cursor": page.next_cursor,
    }


async def async_export_events(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    """One zip of a camera's events (JSON) and snapshots, under the media folder."""
    store = _store(hass)
    camera_id = _camera_id(hass, call.data)
    if camera_id is None:
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="one_camera")
    events: list[SecurityEvent] = []
    cursor: str | None = None
    while True:
        page = await store.events.async_query(
            camera_id=camera_id,
            start=_aware(call.data.get(ATTR_START)),
            end=_aware(call.data.get(ATTR_END)),
            limit=MAX_PAGE,
            cursor=cursor,
        )
        events.extend(page.events)
        if (cursor := page.next_cursor) is None:
            break
    stamp = dt_util.utcnow().strftime("%Y%m%dT%H%M%SZ")
    target = store.snapshots.root / EXPORTS_DIR / camera_id / f"events_{stamp}.zip"
    try:
        snapshots = await hass.async_add_executor_job(
            _write_export, store.snapshots, target, list(reversed(events))
        )
    except OSError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="export_failed",
            translation_placeholders={"error": str(err)},
        ) from err
    answer: dict[str, Any] = {
        "path": str(target),
        "events": len(events),
        "snapshots": snapshots,
    }
    local = hass.config.media_dirs.get("local")
    if local is not None and target.is_relative_to(local):
        relative = target.relative_to(local).as_posix()
        answer["media_content_id"] = f"media-source://media_source/local/{relative}"
    return answer


def _write_export(snapshots: SnapshotStore, target: Path, events: list[SecurityEvent]) -> int:
    """Write the archive atomically (a temporary file, then rename); returns frames included."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".tmp-{target.name}")
    included = 0
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(
                "events.json", json.dumps([event.to_dict() for event in events], indent=1)
            )
            for event in events:
                if not event.has_snapshot:
                    continue
                for annotated in (False, True):
                    path = snapshots.path(
                        event.camera_id, event.event_id, event.start, annotated=annotated
                    )
                    if (found := snapshots.safe_existing(path)) is not None:
                        # JPEG does not deflate: store it.
                        archive.write(
                            found, f"snapshots/{path.parent.name}/{path.name}", zipfile.ZIP_STORED
                        )
                        included += 1
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return included
