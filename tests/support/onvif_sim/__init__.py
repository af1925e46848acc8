"""A real ONVIF camera simulator (device, media, events, snapshots) for tests and demos.

`onvif.ONVIFCamera` (onvif-zeep-async) talks to it unmodified over HTTP on 127.0.0.1.
"""

from .config import SAMPLE_IMAGES, SimConfig, SimProfile
from .server import OnvifSimulator

__all__ = ["SAMPLE_IMAGES", "OnvifSimulator", "SimConfig", "SimProfile"]
