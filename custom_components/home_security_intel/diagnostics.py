"""Diagnostics for one camera entry, safe to paste into a public bug report.

Redacted: every credential, the MAC and serial number (they identify the unit and are its
unique id), and every host name or address. Hosts go too because diagnostics end up in public
issues and a camera is often reached through a DDNS name or public address that locates the
user's home; the port, scheme and path of each URI stay, which is what debugging needs. URIs also
lose their userinfo and their query values, since cheap cameras put ``user=`` and ``pwd=`` in
snapshot URI queries.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import REDACTED, async_redact_data
from homeassistant.core import HomeAssistant
from yarl import URL

from .const import CONF_HOST, CONF_PASSWORD, CONF_USERNAME
from .data import HsiConfigEntry

TO_REDACT = {
    CONF_HOST,
    CONF_USERNAME,
    CONF_PASSWORD,
    "mac",
    "serial_number",
    "unique_id",
    "configuration_url",
    "uri_host",
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


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: HsiConfigEntry
) -> dict[str, Any]:
    """Return the entry's settings, what the camera reported and the coordinator's state."""
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
            "entry": {
                "title": entry.title,
                "version": entry.version,
                "data": dict(entry.data),
                "options": dict(entry.options),
            },
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
        },
        TO_REDACT,
    )
