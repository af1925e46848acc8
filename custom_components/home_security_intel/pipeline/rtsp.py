"""Frames from a camera's RTSP stream: one session kept open, only the latest frame kept.

``RtspSource`` is a ``FrameSource``: a reader thread (PyAV, the FFmpeg that Home Assistant core
pins) keeps one RTSP session (over TCP) open while detection runs, demuxes every packet and
decodes what the request rate needs, keeping only the newest decoded picture: nothing queues, a
slow consumer gets the latest frame and older ones are dropped. A frame is encoded to JPEG only
when somebody asks for it, off the event loop, once per decoded picture.

What the rate needs: H.264/H.265 predicted frames cannot be decoded without the ones before
them, so while frames are asked for often the reader decodes everything; when the requests are
further apart than one and a half keyframe intervals (a quiet camera analysed every few seconds,
or not at all until motion) it decodes keyframes only and drops the rest unparsed, which costs a
small fraction of decoding the whole stream (see README, "RTSP frames"). After a switch back it
waits for the next keyframe, so it never hands out a picture decoded without its references.

A lost session is reopened with a doubling back-off (``retry_min`` .. ``retry_max``; a refused
password backs off the same way, so a wrong password cannot lock the camera's account). The
credentials are added to the URL by ``open_url`` at each open and kept nowhere else: errors and
log lines name the camera (``label``), never the URL, and PyAV's own errors, which quote the URL,
are translated before they leave the reader thread.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
import io
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Final

import av
import av.error

if TYPE_CHECKING:
    from av.container import InputContainer
    from av.video.frame import VideoFrame

_LOGGER = logging.getLogger(__name__)

JPEG_QUALITY: Final = 85
KEYFRAMES_ONLY_FACTOR: Final = 1.5
"""Decode keyframes only while requests are this many keyframe intervals apart, or more."""
_OPTIONS: Final = {
    "rtsp_transport": "tcp",
    # Without these FFmpeg reads five seconds of stream before the first frame comes out.
    "analyzeduration": "1000000",
    "probesize": "500000",
    "fflags": "nobuffer",
}


class RtspError(Exception):
    """A stream gave no frame. The message names the camera, never its URL or credentials."""


class RtspAuthError(RtspError):
    """The camera refused the username or password for its stream."""


class RtspUnavailable(RtspError):  # noqa: N818 - names the state, as the ONVIF errors do
    """The stream could not be opened or read, or sent no frame in time."""


@dataclass(frozen=True, slots=True)
class RtspSettings:
    """Timeouts and back-off of one RTSP source (seconds)."""

    open_timeout: float = 10.0
    read_timeout: float = 10.0
    """A session that sends nothing this long is closed and reopened."""
    frame_timeout: float = 15.0
    """How long a request waits for a first (or a fresh) frame."""
    stale_after: float = 10.0
    """A frame older than this is not handed out: the request waits for a new one."""
    retry_min: float = 1.0
    retry_max: float = 60.0


@dataclass(slots=True)
class RtspStats:
    """Counters for diagnostics and tests."""

    opens: int = 0
    packets: int = 0
    decoded: int = 0
    encoded: int = 0
    keyframes_only: bool = False


def _translate(err: BaseException, label: str) -> RtspError:
    """A PyAV/OS error as an RtspError whose message carries no URL (PyAV's quote it)."""
    if isinstance(err, RtspError):
        return err
    if isinstance(err, av.error.HTTPUnauthorizedError | av.error.HTTPForbiddenError):
        return RtspAuthError(f"{label}: the camera refused the stream's username or password")
    if isinstance(err, av.error.HTTPNotFoundError):
        return RtspUnavailable(f"{label}: the camera has no stream at this address (404)")
    if isinstance(err, ConnectionRefusedError):
        return RtspUnavailable(f"{label}: the camera refused the RTSP connection")
    if isinstance(err, TimeoutError | av.error.ExitError):
        return RtspUnavailable(f"{label}: the stream timed out")
    if isinstance(err, av.error.FFmpegError):
        # strerror is FFmpeg's text for the error code; str(err) would add the URL.
        return RtspUnavailable(f"{label}: stream error: {err.strerror or type(err).__name__}")
    if isinstance(err, OSError):
        return RtspUnavailable(f"{label}: stream error: {err.strerror or type(err).__name__}")
    return RtspUnavailable(f"{label}: stream error: {type(err).__name__}")


def encode_jpeg(frame: VideoFrame, quality: int = JPEG_QUALITY) -> bytes:
    """A decoded picture as JPEG bytes (blocking: run it in an executor)."""
    out = io.BytesIO()
    image = frame.to_image()  # type: ignore[no-untyped-call]  # PyAV's stub leaves it untyped
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


class RtspSource:
    """The latest frame of one RTSP stream, as JPEG; see the module docstring."""

    name = "rtsp"

    def __init__(
        self,
        open_url: Callable[[], str | None],
        label: str,
        settings: RtspSettings | None = None,
    ) -> None:
        """``open_url`` gives the URL with credentials; it is called at each open, in the reader."""
        self._open_url = open_url
        self.label = label
        self.settings = settings or RtspSettings()
        self.stats = RtspStats()
        self.retry_delays: deque[float] = deque(maxlen=32)
        """The back-off delays planned so far (newest last), for diagnostics and tests."""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: list[asyncio.Future[None]] = []
        self._frame: VideoFrame | None = None
        self._frame_at = 0.0
        self._frame_seq = 0
        self._error: RtspError | None = None
        self._connected = False
        self._last_request: float | None = None
        self._request_gap: float | None = None
        self._key_interval: float | None = None
        self._jpeg: tuple[int, bytes] | None = None
        self._jpeg_lock = threading.Lock()

    def __repr__(self) -> str:
        """The camera's label only: the URL may carry credentials."""
        return f"<RtspSource {self.label}>"

    @property
    def running(self) -> bool:
        """Whether the reader thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def last_error(self) -> RtspError | None:
        """Why the last open or read failed (None while the session delivers)."""
        return self._error

    def diagnostics(self) -> dict[str, Any]:
        """Counters and state for diagnostics: nothing of the URL."""
        return {
            "running": self.running,
            "connected": self._connected,
            "opens": self.stats.opens,
            "packets": self.stats.packets,
            "decoded": self.stats.decoded,
            "encoded": self.stats.encoded,
            "keyframes_only": self.stats.keyframes_only,
            "keyframe_interval_s": self._key_interval,
            "last_error": str(self._error) if self._error else None,
            "retry_delays_s": list(self.retry_delays)[-5:],
        }

    # --- the event loop's side -------------------------------------------------------------------

    def start(self) -> None:
        """Open the session in the background (idempotent; async_get_frame calls it)."""
        if self.running:
            return
        self._loop = asyncio.get_running_loop()
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"hsi-rtsp-{self.label}", daemon=True
        )
        self._thread.start()

    async def async_get_frame(self) -> bytes:
        """The newest frame as JPEG; waits for one when there is none fresh yet."""
        self.start()
        now = time.monotonic()
        if self._last_request is not None:
            self._request_gap = now - self._last_request
        self._last_request = now
        waiter: asyncio.Future[None] | None = None
        with self._lock:
            frame, at, seq = self._frame, self._frame_at, self._frame_seq
            if frame is None or now - at > self.settings.stale_after:
                if self._error is not None and not self._connected:
                    raise _copy(self._error)
                assert self._loop is not None
                waiter = self._loop.create_future()
                self._waiters.append(waiter)
        if waiter is not None:
            try:
                async with asyncio.timeout(self.settings.frame_timeout):
                    await waiter
            except TimeoutError:
                raise (
                    _copy(self._error)
                    if self._error
                    else RtspUnavailable(
                        f"{self.label}: no frame from the stream in "
                        f"{self.settings.frame_timeout:.0f} s"
                    )
                ) from None
            finally:
                with self._lock:
                    if waiter in self._waiters:
                        self._waiters.remove(waiter)
            with self._lock:
                frame, seq = self._frame, self._frame_seq
        if frame is None:  # closed while waiting
            raise RtspUnavailable(f"{self.label}: the stream was closed")
        picture: VideoFrame = frame
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._encode, picture, seq)

    async def async_close(self) -> None:
        """End the session and wait for the reader thread; the source may start again later."""
        self._stop.set()
        with self._lock:
            waiters, self._waiters = self._waiters, []
        # Waiting requests learn first; whatever the reader hits while stopping is not news.
        _resolve(waiters, RtspUnavailable(f"{self.label}: the stream was closed"))
        thread, self._thread = self._thread, None
        if thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, thread.join)
        with self._lock:
            self._frame = None
            self._connected = False

    def _encode(self, frame: VideoFrame, seq: int) -> bytes:
        # The image entity and detection may ask for the same picture: encoded once.
        with self._jpeg_lock:
            if self._jpeg is not None and self._jpeg[0] == seq:
                return self._jpeg[1]
            data = encode_jpeg(frame)
            self._jpeg = (seq, data)
            self.stats.encoded += 1
            return data

    # --- the reader thread -----------------------------------------------------------------------

    def _wake(self, error: RtspError | None) -> None:
        """Tell the waiting requests (from the reader thread) that a frame or an error came."""
        with self._lock:
            waiters, self._waiters = self._waiters, []
        loop = self._loop
        if not waiters or loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(_resolve, waiters, error)

    def _run(self) -> None:
        delay = self.settings.retry_min
        while not self._stop.is_set():
            delivered = False
            try:
                delivered = self._session()
            except Exception as err:  # noqa: BLE001 - PyAV raises many types; all end the session
                if self._stop.is_set():
                    break
                error = _translate(err, self.label)
                if not isinstance(self._error, type(error)) or str(self._error) != str(error):
                    _LOGGER.warning("%s (retrying in %g s)", error, delay)
                self._error = error
                self._connected = False
                self._wake(error)
            if self._stop.is_set():
                break
            if delivered:
                delay = self.settings.retry_min
            self.retry_delays.append(delay)
            self._stop.wait(delay)
            delay = min(delay * 2, self.settings.retry_max)

    def _session(self) -> bool:
        """Open, read until stopped or failed; True when at least one frame was decoded."""
        url = self._open_url()
        if not url:
            raise RtspUnavailable(f"{self.label}: the camera offers no stream URI")
        settings = self.settings
        self.stats.opens += 1
        container: InputContainer = av.open(
            url,
            options=dict(_OPTIONS),
            timeout=(settings.open_timeout, settings.read_timeout),
        )
        del url
        delivered = False
        try:
            stream = container.streams.video[0]
            _LOGGER.debug(
                "%s: RTSP session open (%s %sx%s)",
                self.label,
                stream.codec_context.name,
                stream.codec_context.width,
                stream.codec_context.height,
            )
            skipping = False
            last_key: float | None = None
            for packet in container.demux(stream):
                if self._stop.is_set():
                    break
                if packet.size == 0:
                    continue
                self.stats.packets += 1
                now = time.monotonic()
                if packet.is_keyframe:
                    if last_key is not None:
                        self._key_interval = now - last_key
                    last_key = now
                keyframes_only = self._keyframes_only(now)
                self.stats.keyframes_only = keyframes_only
                if keyframes_only or skipping:
                    # A predicted frame without its references would decode to garbage.
                    skipping = not packet.is_keyframe
                    if skipping:
                        continue
                frames: list[Any] = list(stream.codec_context.decode(packet))
                for frame in frames:
                    self._publish(frame, now)
                    if not delivered:
                        delivered = True
                        if self._error is not None:
                            _LOGGER.info("%s: the stream works again", self.label)
                        self._error = None
            else:
                raise RtspUnavailable(f"{self.label}: the camera ended the stream")
        finally:
            container.close()
        return delivered

    def _keyframes_only(self, now: float) -> bool:
        key_interval, last = self._key_interval, self._last_request
        if key_interval is None or last is None:
            return False
        gap = max(self._request_gap or 0.0, now - last)
        return gap >= KEYFRAMES_ONLY_FACTOR * key_interval

    def _publish(self, frame: VideoFrame, now: float) -> None:
        self.stats.decoded += 1
        with self._lock:
            self._frame = frame
            self._frame_at = now
            self._frame_seq += 1
            self._connected = True
        self._wake(None)


def _resolve(waiters: list[asyncio.Future[None]], error: RtspError | None) -> None:
    for waiter in waiters:
        if waiter.done():
            continue
        if error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(_copy(error))


def _copy(error: RtspError) -> RtspError:
    """A fresh exception of the same kind and message (a stored one would collect tracebacks)."""
    return type(error)(str(error))
