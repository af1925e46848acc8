"""Where a camera's frames come from: the first stage of a frame's way through the pipeline.

A frame source hands out one encoded frame (JPEG) when asked; the detection loop asks at its own
rate and never holds more than one frame, so nothing is queued. Frames come from the ONVIF
snapshot URI (``SnapshotSource``, here) or from a kept-open RTSP session (``RtspSource`` in
rtsp.py); the loop does not know the difference.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol


class FrameSource(Protocol):
    """Anything that gives the latest frame of one camera."""

    @property
    def name(self) -> str:
        """What the source is, for diagnostics ("snapshot", "rtsp")."""

    async def async_get_frame(self) -> bytes:
        """The camera's current frame, encoded; raises the source's own error when it has none."""


@dataclass(frozen=True, slots=True)
class SnapshotSource:
    """Frames from a still-image URL: one request per frame, nothing kept between frames."""

    fetch: Callable[[], Awaitable[bytes]]
    """Takes one snapshot (the ONVIF client's, with the camera's credentials added at use)."""
    name: str = "snapshot"

    async def async_get_frame(self) -> bytes:
        """One fresh snapshot."""
        return await self.fetch()
