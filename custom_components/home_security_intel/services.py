"""Service actions: ``home_security_intel.detect`` analyses one frame of each targeted camera now;
``analyze_event`` asks the camera's AI Task entity about one security event now.

It answers with the detector's raw detections and the pipeline's confirmed objects (response
data), so a script can ask "who is at the door right now" without waiting for the steady rate.
"""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.service import async_extract_entity_ids
from homeassistant.helpers.update_coordinator import UpdateFailed
import probatio

from .const import ATTR_EVENT_ID, DOMAIN, SERVICE_ANALYZE_EVENT
from .data import is_camera_entry
from .detection.model import Box, DetectorError
from .detection_coordinator import DetectionCoordinator
from .pipeline.state import FrameOutcome

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
        schema=probatio.Schema({probatio.Required(ATTR_EVENT_ID): str}),
        supports_response=SupportsResponse.OPTIONAL,
    )
