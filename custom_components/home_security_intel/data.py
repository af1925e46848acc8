"""Runtime data kept on a config entry while it is loaded (nothing lives in ``hass.data``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from homeassistant.config_entries import ConfigEntry

from .const import CONF_ENTRY_TYPE, ENTRY_TYPE_DETECTOR, ENTRY_TYPE_HOME
from .frame_sources import StreamSessions
from .onvif import CameraInfo, OnvifCamera

if TYPE_CHECKING:
    from .camera_events import CameraEvents
    from .coordinator import CameraCoordinator
    from .detection_coordinator import DetectionCoordinator
    from .detector_hub import DetectorHub
    from .security import SecurityMonitor
    from .store import HsiStore


@dataclass
class HsiData:
    """A camera entry's connected ONVIF client, what it learned, and its coordinators."""

    camera: OnvifCamera
    info: CameraInfo
    coordinator: CameraCoordinator
    streams: StreamSessions
    """The camera's RTSP sessions (detection over RTSP, stills of profiles without snapshots)."""
    detection: DetectionCoordinator | None = None
    """None when the camera's options say it has no detector."""
    store: HsiStore | None = None
    """The shared event store, held while the entry is loaded."""
    security: SecurityMonitor | None = None
    """The camera's risk, security events and alerts; present whenever detection is."""
    events: CameraEvents | None = None
    """The camera's ONVIF event subscription; None when it offers no events service."""


def is_detector_entry(entry: ConfigEntry) -> bool:
    """Whether an entry of this integration is a detector (else it is a camera)."""
    return entry.data.get(CONF_ENTRY_TYPE) == ENTRY_TYPE_DETECTOR


def is_home_entry(entry: ConfigEntry) -> bool:
    """Whether an entry of this integration is the home-wide one (alerts of every camera)."""
    return entry.data.get(CONF_ENTRY_TYPE) == ENTRY_TYPE_HOME


def is_camera_entry(entry: ConfigEntry) -> bool:
    """Whether an entry of this integration is a camera."""
    return not is_detector_entry(entry) and not is_home_entry(entry)


type HsiConfigEntry = ConfigEntry[HsiData]
"""A camera's entry."""
type HomeConfigEntry = ConfigEntry[HsiStore]
"""The home entry: it holds the shared store (its calendar lists every camera's events)."""
type DetectorConfigEntry = ConfigEntry[DetectorHub]
"""A detector's entry: the hub that every camera using it goes through."""
