"""Constants of the Home Security Intelligence integration: domain, option keys, defaults."""

from __future__ import annotations

from typing import Final

DOMAIN: Final = "home_security_intel"
MANUFACTURER_FALLBACK: Final = "ONVIF"

# Config entry data keys (credentials live only in the config entry).
CONF_HOST: Final = "host"
CONF_PORT: Final = "port"
CONF_USERNAME: Final = "username"
CONF_PASSWORD: Final = "password"  # noqa: S105 - a key name, not a secret

DEFAULT_PORT: Final = 80

# Options.
CONF_FRAME_SOURCE: Final = "frame_source"
FRAME_SOURCE_SNAPSHOT: Final = "snapshot"
FRAME_SOURCE_RTSP: Final = "rtsp"
FRAME_SOURCES: Final = (FRAME_SOURCE_SNAPSHOT, FRAME_SOURCE_RTSP)
DEFAULT_FRAME_SOURCE: Final = FRAME_SOURCE_SNAPSHOT
CONF_PROFILES: Final = "profiles"  # list of ONVIF media profile tokens that get a camera entity

# How long one WS-Discovery scan listens for answers, in seconds.
DISCOVERY_TIMEOUT: Final = 4

# runtime
# How often the coordinator checks that a camera still answers, and the ceiling of the doubling
# back-off used while it does not (seconds).
HEALTH_CHECK_INTERVAL_S: Final = 30
MAX_RETRY_DELAY_S: Final = 300
