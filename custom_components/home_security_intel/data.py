"""Runtime data kept on a config entry while it is loaded (nothing lives in ``hass.data``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from homeassistant.config_entries import ConfigEntry

from .const import CONF_ENTRY_TYPE, ENTRY_TYPE_DETECTOR
from .onvif import CameraInfo, OnvifCamera

if TYPE_CHECKING:
    from .camera_events import CameraEvents
    from .coordinator import CameraCoordinator
    from .detection_coordinator import DetectionCoordinator
    from .detector_hub import DetectorHub


@dataclass
class HsiData:
    """A camera entry's connected ONVIF client, what it learned, and its coordinators."""

    camera: OnvifCamera
    info: CameraInfo
    coordinator: CameraCoordinator
    detection: DetectionCoordinator | None = None
    """None when the camera's options say it has no detector."""
    events: CameraEvents | None = None
    """The camera's ONVIF event subscription; None when it offers no events service."""


def is_detector_entry(entry: ConfigEntry) -> bool:
    """Whether an entry of this integration is a detector (else it is a camera)."""
    return entry.data.get(CONF_ENTRY_TYPE) == ENTRY_TYPE_DETECTOR


type HsiConfigEntry = ConfigEntry[HsiData]
"""A camera's entry."""
type DetectorConfigEntry = ConfigEntry[DetectorHub]
"""A detector's entry: the hub that every camera using it goes through."""
