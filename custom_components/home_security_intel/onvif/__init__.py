"""ONVIF camera client library: connect, identify, profiles, snapshots, URI guard, WS-Discovery.

Free of Home Assistant imports so it can be tested (and reused) on its own.
"""

from __future__ import annotations

from .client import OnvifCamera
from .discovery import discover_cameras
from .errors import (
    CameraFault,
    CannotConnect,
    ClockRefused,
    InvalidAuth,
    NotAnImage,
    NotOnvif,
    NoVideoProfile,
    OnvifError,
    SnapshotError,
    UnsafeUri,
)
from .models import (
    CameraInfo,
    DeviceIdentity,
    DiscoveredCamera,
    RefusedUri,
    VideoProfile,
    normalize_mac,
)
from .uri_guard import check_camera_uri

__all__ = [
    "CameraFault",
    "CameraInfo",
    "CannotConnect",
    "ClockRefused",
    "DeviceIdentity",
    "DiscoveredCamera",
    "InvalidAuth",
    "NoVideoProfile",
    "NotAnImage",
    "NotOnvif",
    "OnvifCamera",
    "OnvifError",
    "RefusedUri",
    "SnapshotError",
    "UnsafeUri",
    "VideoProfile",
    "check_camera_uri",
    "discover_cameras",
    "normalize_mac",
]
