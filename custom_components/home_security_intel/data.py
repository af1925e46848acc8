"""Runtime data kept on a config entry while it is loaded (nothing lives in ``hass.data``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from homeassistant.config_entries import ConfigEntry

from .onvif import CameraInfo, OnvifCamera

if TYPE_CHECKING:
    from .coordinator import CameraCoordinator


@dataclass
class HsiData:
    """The connected ONVIF client, what it learned at connect time, and the camera's coordinator."""

    camera: OnvifCamera
    info: CameraInfo
    coordinator: CameraCoordinator


type HsiConfigEntry = ConfigEntry[HsiData]
