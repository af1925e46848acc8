"""Which profile a camera's detection reads, and where its frames come from (snapshot or RTSP).

Detection reads the smallest profile that still covers the model's input (a substream, not the
4K main stream), unless the options name one. Frames come from the source the options choose;
a profile without a usable snapshot URI (none, refused, or answering with something that is not
a picture, such as a login page) falls back to a frame from its RTSP stream, for the detection
and for the camera entity's still image. The RTSP sessions of a camera live in one
``StreamSessions`` so detection and still images share an open session.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
import logging
from typing import Any, Final

from .const import DETECTION_PROFILE_AUTO, FRAME_SOURCE_RTSP
from .onvif import NotAnImage, OnvifCamera, VideoProfile
from .pipeline.frames import FrameSource, SnapshotSource
from .pipeline.rtsp import RtspError, RtspSettings, RtspSource

_LOGGER = logging.getLogger(__name__)

MODEL_INPUT_SIZE: Final = 640
"""The input size profiles are chosen for: the largest of the shipped models' (YOLO's 640; the
SSD MobileNet takes 300), so no model ever gets a picture smaller than it can use."""


def _pixels(profile: VideoProfile) -> int:
    return profile.width * profile.height


def detection_profile(
    profiles: Sequence[VideoProfile],
    wanted: str = DETECTION_PROFILE_AUTO,
    frame_source: str = FRAME_SOURCE_RTSP,
    input_size: int = MODEL_INPUT_SIZE,
) -> VideoProfile | None:
    """The profile detection reads: ``wanted`` if it has a usable URI, else the smallest whose
    long side is at least ``input_size`` (the largest when none is); None without any URI."""
    streams = [p for p in profiles if p.stream_uri]
    stills = [p for p in profiles if p.snapshot_uri]
    usable = (streams or stills) if frame_source == FRAME_SOURCE_RTSP else (stills or streams)
    if not usable:
        return None
    chosen = next((p for p in profiles if p.token == wanted), None)
    if chosen is not None and (chosen.stream_uri or chosen.snapshot_uri):
        return chosen
    big_enough = [p for p in usable if max(p.width, p.height) >= input_size]
    if big_enough:
        return min(big_enough, key=_pixels)
    return max(usable, key=_pixels)


class StreamSessions:
    """One camera's RTSP sessions, by profile token, shared by detection and still images."""

    def __init__(
        self, camera: OnvifCamera, label: str, settings: RtspSettings | None = None
    ) -> None:
        """Nothing is opened until a frame is asked for."""
        self._camera = camera
        self._label = label
        self._settings = settings
        self._sessions: dict[str, RtspSource] = {}
        self._still_lock = asyncio.Lock()

    def session(self, profile: VideoProfile) -> RtspSource | None:
        """The kept-open session of ``profile`` (created, not yet opened); None without a stream."""
        if not profile.stream_uri:
            return None
        if profile.token not in self._sessions:
            camera = self._camera
            self._sessions[profile.token] = RtspSource(
                lambda: camera.stream_source(profile),
                f"{self._label} ({profile.name})",
                self._settings,
            )
        return self._sessions[profile.token]

    async def async_still(self, profile: VideoProfile) -> bytes | None:
        """A frame of ``profile``'s stream: from its open session, else from a short one."""
        if not profile.stream_uri:
            return None
        open_session = self._sessions.get(profile.token)
        if open_session is not None and open_session.running:
            return await open_session.async_get_frame()
        async with self._still_lock:
            camera = self._camera
            once = RtspSource(
                lambda: camera.stream_source(profile),
                f"{self._label} ({profile.name})",
                self._settings,
            )
            try:
                return await once.async_get_frame()
            finally:
                await once.async_close()

    def diagnostics(self) -> dict[str, dict[str, Any]]:
        """Each kept-open session's counters, by profile token."""
        return {token: session.diagnostics() for token, session in self._sessions.items()}

    async def async_close(self) -> None:
        """Close every session (unload, Home Assistant stopping)."""
        sessions = list(self._sessions.values())
        await asyncio.gather(*(session.async_close() for session in sessions))


class FallbackSource:
    """Snapshots while they are pictures, the stream's frames once they are not (or there is
    no snapshot URI at all). A stream that fails too leaves the snapshot's own error standing."""

    def __init__(
        self,
        snapshot: SnapshotSource | None,
        stream: RtspSource | None,
        label: str,
    ) -> None:
        """At least one of the two must be given."""
        assert snapshot is not None or stream is not None
        self._snapshot = snapshot
        self._stream = stream
        self._label = label
        self._on_stream = snapshot is None

    @property
    def name(self) -> str:
        """The source frames come from now."""
        return "rtsp" if self._on_stream else "snapshot"

    async def async_get_frame(self) -> bytes:
        """A frame from the source in use; switches to the stream when snapshots are no pictures."""
        if self._on_stream or self._snapshot is None:
            assert self._stream is not None
            return await self._stream.async_get_frame()
        try:
            return await self._snapshot.async_get_frame()
        except NotAnImage as err:
            if self._stream is None:
                raise
            try:
                frame = await self._stream.async_get_frame()
            except RtspError as stream_err:
                _LOGGER.debug("%s: no stream frame either: %s", self._label, stream_err)
                raise err from None
            _LOGGER.info(
                "%s: the snapshot URI answers with something that is not a picture; "
                "frames now come from the RTSP stream",
                self._label,
            )
            self._on_stream = True
            return frame


def build_frame_source(
    frame_source: str,
    profile: VideoProfile,
    snapshot: Callable[[], SnapshotSource],
    sessions: StreamSessions,
    label: str,
) -> FrameSource:
    """The frame source the options ask for, with the stream as fallback for snapshots."""
    stream = sessions.session(profile)
    if frame_source == FRAME_SOURCE_RTSP and stream is not None:
        return stream
    return FallbackSource(snapshot() if profile.snapshot_uri else None, stream, label)
