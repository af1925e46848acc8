"""Identity, credentials, media profiles and images of the simulated ONVIF camera."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .scene import Scene

IMAGES_DIR = Path(__file__).parent / "images"
SAMPLE_IMAGES: tuple[Path, ...] = (IMAGES_DIR / "bus.jpg", IMAGES_DIR / "zidane.jpg")


@dataclass
class SimProfile:
    """One ONVIF media profile (a video encoder configuration with its resolution)."""

    token: str
    name: str
    width: int
    height: int
    encoding: str = "H264"
    fps: int = 15


def _default_profiles() -> list[SimProfile]:
    return [
        SimProfile(token="profile_main", name="MainStream", width=1920, height=1080),
        SimProfile(token="profile_sub", name="SubStream", width=640, height=360),
    ]


def _default_images() -> list[Path]:
    return list(SAMPLE_IMAGES)


@dataclass
class SimConfig:
    """What the simulated camera reports about itself; mutable while the simulator runs."""

    username: str = "admin"
    password: str = "correct-horse-battery"
    manufacturer: str = "HSI Labs"
    model: str = "SimCam 4K"
    firmware: str = "1.2.3"
    serial: str = "SIM-0001"
    hardware_id: str = "simcam-hw1"
    mac: str | None = "02:00:5e:10:00:01"
    profiles: list[SimProfile] = field(default_factory=_default_profiles)
    images: list[Path] = field(default_factory=_default_images)
    scene: Scene | None = None
    """When set, snapshots follow this timeline instead of rotating through `images`."""
