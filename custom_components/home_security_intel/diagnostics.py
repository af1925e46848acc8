"""Diagnostics for one camera or detector entry, safe to paste into a public bug report.

Redacted: every credential, the MAC and serial number (they identify the unit and are its
unique id), and every host name or address. Hosts go too because diagnostics end up in public
issues and a camera is often reached through a DDNS name or public address that locates the
user's home; the port, scheme and path of each URI stay, which is what debugging needs. URIs also
lose their userinfo and their query values, since cheap cameras put ``user=`` and ``pwd=`` in
snapshot URI queries. A detector's API key and certificate fingerprint are redacted, and so is
its URL's host.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import REDACTED, async_redact_data
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from yarl import URL

from .const import (
    CONF_API_KEY,
    CONF_FINGERPRINT,
    CONF_HOST,
    CONF_PASSWORD,
    CONF_URL,
    CONF_USERNAME,
)
from .data import DetectorConfigEntry, HsiConfigEntry, is_detector_entry, is_home_entry
from .security import SecurityMonitor
from .store import HsiStore

TO_REDACT = {
    CONF_HOST,
    CONF_USERNAME,
    CONF_PASSWORD,
    "mac",
    "serial_number",
    "unique_id",
    "configuration_url",
    "uri_host",
    CONF_API_KEY,
    CONF_FINGERPRINT,
}


def redact_uri(uri: str | None) -> str | None:
    """A camera URI with host, userinfo and query values replaced, keeping scheme, port and path."""
    if uri is None:
        return None
    try:
        url = URL(uri)
    except ValueError:
        return REDACTED
    if not url.absolute:
        return REDACTED
    safe = URL.build(
        scheme=url.scheme,
        host="redacted",
        port=url.explicit_port,
        path=url.raw_path,
        encoded=True,
    )
    if url.query:
        safe = safe.with_query(dict.fromkeys(url.query, REDACTED))
    return str(safe)


def _entry(entry: ConfigEntry) -> dict[str, Any]:
    data = dict(entry.data)
    if CONF_URL in data:
        data[CONF_URL] = redact_uri(data[CONF_URL])
    title = entry.title
    if host := data.get(CONF_HOST):
        # Camera titles name the address by default ("Model (host)"): redacted like the host.
        title = title.replace(str(host), REDACTED)
    return {
        "title": title,
        "version": entry.version,
        "data": data,
        "options": dict(entry.options),
    }


def _detector_diagnostics(entry: DetectorConfigEntry) -> dict[str, Any]:
    hub = entry.runtime_data
    status = hub.data
    return {
        "entry": _entry(entry),
        "detector": {
            "reachable": hub.reachable,
            "retry_in_s": round(hub.retry_in, 1),
            "info": asdict(status.info) if status.info else None,
            "latency_p50_ms": status.latency_p50_ms,
            "queue_depth": status.queue_depth,
            "last_error": status.last_error,
            "calls": status.calls,
            "failures": status.failures,
        },
    }


def _detection_diagnostics(entry: HsiConfigEntry) -> dict[str, Any] | None:
    detection = entry.runtime_data.detection
    if detection is None:
        return None
    data = detection.data
    outcome = data.outcome
    hub = detection.async_resolve_hub()
    return {
        "enabled": detection.enabled,
        "online": detection.last_update_success,
        "detector": hub.entry.title if hub else None,
        "profile": detection.profile.token,
        "frame_source": detection.frames.name,
        "rtsp_sessions": entry.runtime_data.streams.diagnostics(),
        "settings": {
            **asdict(detection.settings),
            "zones": [zone.name for zone in detection.settings.zones],
            "masks": len(detection.settings.masks),
        },
        "latency_ms": data.latency_ms,
        "frames_per_minute": data.frames_per_minute,
        "frames_dropped": data.frames_dropped,
        "frames_invalid": data.frames_invalid,
        "last_error": data.last_error,
        "occupied": sorted(data.occupied),
        "objects": [
            {
                "object_id": obj.object_id,
                "label": obj.label,
                "score": round(obj.score, 3),
                "zones": sorted(obj.zones),
                "stationary": obj.stationary,
            }
            for obj in (outcome.objects if outcome else ())
        ],
        "tracks": len(outcome.tracks) if outcome else 0,
    }


def _events_diagnostics(entry: HsiConfigEntry) -> dict[str, Any]:
    events = entry.runtime_data.events
    detection = entry.runtime_data.detection
    rate = (
        {"motion": detection.motion, "target_fps": detection.target_fps}
        if detection is not None
        else None
    )
    if events is None:
        return {
            "supported": False,
            "note": "the camera offers no ONVIF events service: detection runs at the steady rate",
            "detection_rate": rate,
        }
    status = events.stream.status
    return {
        "supported": True,
        **asdict(status),
        "reported": sorted(events.reported_kinds()),
        "active": sorted(kind for kind in events.reported_kinds() if events.active(kind)),
        "detection_rate": rate,
    }


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: ConfigEntry
) -> dict[str, Any]:
    """Return the entry's settings and its state: a camera's, or a detector's."""
    if is_detector_entry(entry):
        return async_redact_data(_detector_diagnostics(entry), TO_REDACT)
    if is_home_entry(entry):
        return {"entry": _entry(entry), "store": await _store_diagnostics(entry.runtime_data)}
    data = entry.runtime_data
    info = data.info
    coordinator = data.coordinator
    status = coordinator.data
    profiles = [
        {
            **asdict(profile),
            "snapshot_uri": redact_uri(profile.snapshot_uri),
            "stream_uri": redact_uri(profile.stream_uri),
        }
        for profile in info.profiles
    ]
    return async_redact_data(
        {
            "entry": _entry(entry),
            "camera": {
                "host": info.host,
                "port": info.port,
                "configuration_url": info.configuration_url,
                "identity": asdict(info.identity),
                "clock_skew_s": info.clock_skew,
                "supports_events": info.supports_events,
                "profiles": profiles,
                "refused_uris": [asdict(refused) for refused in info.refused_uris],
            },
            "coordinator": {
                "online": coordinator.last_update_success,
                "consecutive_failures": coordinator.consecutive_failures,
                "last_error": type(coordinator.last_exception).__name__
                if coordinator.last_exception
                else None,
                "last_seen": status.last_seen.isoformat(),
                "clock_skew_s": status.clock_skew,
            },
            "detection": _detection_diagnostics(entry),
            "security": _security_diagnostics(data.security),
            "events": _events_diagnostics(entry),
        },
        TO_REDACT,
    )


def _security_diagnostics(monitor: SecurityMonitor | None) -> dict[str, Any] | None:
    """The camera's current risk, its open event and its AI budget (no titles or summaries:
    they may describe people)."""
    if monitor is None:
        return None
    event = monitor.event
    budget = monitor.budget
    return {
        "settings": {
            "alert_level": monitor.settings.grouping.alert_level,
            "ai_task": monitor.settings.ai_task is not None,
            "alarm_panel": monitor.settings.alarm_panel is not None,
        },
        "risk": {"score": monitor.risk.score, "reasons": [r.key for r in monitor.risk.reasons]},
        "alert_active": monitor.alert_active,
        "open_event": {
            "event_id": event.event_id,
            "start": event.start.isoformat(),
            "level": event.level,
            "severity": event.severity,
            "objects": len(event.objects),
        }
        if event is not None
        else None,
        "ai": {
            "calls": budget.calls,
            "failures": budget.failures,
            "skipped": budget.skipped,
            "last_error": budget.last_error,
        },
    }


async def _store_diagnostics(store: HsiStore) -> dict[str, Any]:
    """How much history the store keeps: events and days per camera (entry ids only)."""
    cameras: dict[str, dict[str, int]] = {}
    for camera in await store.events.async_cameras():
        days = await store.events.async_days(camera)
        cameras[camera] = {"events": sum(count for _, count in days), "days": len(days)}
    return {"cameras": cameras}
