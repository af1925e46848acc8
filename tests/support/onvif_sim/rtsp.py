"""The simulated camera's RTSP server: a live H.264 stream of its scene, one path per profile.

A small RTSP/1.0 server (RFC 2326) on asyncio: OPTIONS, DESCRIBE, SETUP, PLAY, GET_PARAMETER
and TEARDOWN, RTP over the RTSP connection (interleaved TCP, what Home Assistant and this
integration ask for; UDP is answered 461), HTTP Digest authentication with the camera's
credentials as cameras do it. The pictures are the scene's (see scene.py): what the snapshot URI
shows at a moment, the stream shows at the same moment, so detection over RTSP sees the person
during the same seconds of the loop. Frames are encoded with libx264 from PyAV (the same FFmpeg
build the client decodes with), only while somebody watches a path (without a scene: the first
sample picture), at the profile's resolution and at most ``max_fps`` frames a second, one
keyframe every two seconds as the profile reports.

Written here rather than borrowed (GStreamer's RTSP server, mediamtx) so the tests need nothing
but the Python packages the integration already requires, and so a test can restart the server,
change the password or count connections.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from dataclasses import dataclass, field
from fractions import Fraction
import io
import logging
import secrets
import threading
import time
from typing import TYPE_CHECKING

import av
from PIL import Image

from .config import SAMPLE_IMAGES
from .http_auth import DigestAuthenticator

if TYPE_CHECKING:
    from .config import SimConfig, SimProfile

_LOGGER = logging.getLogger(__name__)

_MAX_PAYLOAD = 1400
"""RTP payload per packet: a NAL unit larger than this travels in FU-A fragments (RFC 6184)."""
_CLOCK = 90_000
_QUEUE_FRAMES = 30
"""Access units kept per watcher; a watcher that falls further behind loses frames, never memory."""


def _nal_units(data: bytes) -> list[bytes]:
    """Split an Annex B byte stream (start codes) into NAL units."""
    chunks = data.replace(b"\x00\x00\x00\x01", b"\x00\x00\x01").split(b"\x00\x00\x01")
    return [c.rstrip(b"\x00") if c.endswith(b"\x00\x00") else c for c in chunks if c]


def rtp_packets(units: list[bytes], timestamp: int, seq: int, ssrc: int) -> list[bytes]:
    """RTP packets of one access unit (single NAL unit packets and FU-A fragments)."""
    payloads: list[bytes] = []
    for unit in units:
        if len(unit) <= _MAX_PAYLOAD:
            payloads.append(unit)
            continue
        header, body = unit[0], unit[1:]
        indicator = (header & 0xE0) | 28
        for start in range(0, len(body), _MAX_PAYLOAD):
            piece = body[start : start + _MAX_PAYLOAD]
            flags = (0x80 if start == 0 else 0) | (0x40 if start + _MAX_PAYLOAD >= len(body) else 0)
            payloads.append(bytes((indicator, flags | (header & 0x1F))) + piece)
    packets = []
    for index, payload in enumerate(payloads):
        marker = 0x80 if index == len(payloads) - 1 else 0
        header = (
            bytes((0x80, marker | 96))
            + ((seq + index) & 0xFFFF).to_bytes(2, "big")
            + (timestamp & 0xFFFFFFFF).to_bytes(4, "big")
            + ssrc.to_bytes(4, "big")
        )
        packets.append(header + payload)
    return packets


@dataclass
class _AccessUnit:
    units: list[bytes]
    pts: int
    key: bool


@dataclass
class _Channel:
    """One profile's live encoder and the watchers it feeds."""

    profile: SimProfile
    fps: int
    config: SimConfig
    watchers: set[asyncio.Queue[_AccessUnit]] = field(default_factory=set)
    sps_pps: list[bytes] = field(default_factory=list)
    loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _want_key: threading.Event = field(default_factory=threading.Event)
    _encoder: av.video.codeccontext.VideoCodecContext | None = None
    _pictures: dict[int, av.VideoFrame] = field(default_factory=dict)
    _index: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _running: threading.Lock = field(default_factory=threading.Lock)

    def _picture(self) -> av.VideoFrame:
        """The scene's current image at this profile's size (each distinct image converted once)."""
        scene = self.config.scene
        data = scene.current().image if scene is not None else None
        key = id(data)
        if key not in self._pictures:
            if data is not None:
                image = Image.open(io.BytesIO(data)).convert("RGB")
            else:
                # Not config.images: those are what the snapshot URI answers, faults included
                # (a login page); the sensor itself still sees the street.
                image = Image.open(SAMPLE_IMAGES[0]).convert("RGB")
            size = (self.profile.width, self.profile.height)
            frame = av.VideoFrame.from_image(image.resize(size)).reformat(format="yuv420p")
            if len(self._pictures) > 32:
                self._pictures.clear()
            self._pictures[key] = frame
        return self._pictures[key]

    def _encode(self, force_key: bool) -> list[_AccessUnit]:
        with self._lock:
            if self._encoder is None:
                encoder = av.CodecContext.create("libx264", "w")
                encoder.width, encoder.height = self.profile.width, self.profile.height
                encoder.pix_fmt = "yuv420p"
                encoder.time_base = Fraction(1, self.fps)
                encoder.framerate = Fraction(self.fps, 1)
                encoder.gop_size = self.fps * 2
                encoder.max_b_frames = 0
                encoder.options = {
                    "preset": "ultrafast",
                    "tune": "zerolatency",
                    "x264-params": f"repeat-headers=1:keyint={self.fps * 2}",
                }
                encoder.open()
                self._encoder = encoder
            source = self._picture()
            frame = av.VideoFrame.from_ndarray(source.to_ndarray(), format="yuv420p")
            frame.pts = self._index
            frame.time_base = Fraction(1, self.fps)
            if force_key:
                frame.pict_type = av.video.frame.PictureType.I
            self._index += 1
            found = []
            for packet in self._encoder.encode(frame):
                units = _nal_units(bytes(packet))
                if not self.sps_pps:
                    self.sps_pps = [u for u in units if u[0] & 0x1F in (7, 8)]
                pts = packet.pts if packet.pts is not None else self._index
                found.append(_AccessUnit(units, pts * _CLOCK // self.fps, packet.is_keyframe))
            return found

    def parameter_sets(self) -> list[bytes]:
        """SPS and PPS for the SDP (encodes the first frame if none was encoded yet)."""
        if not self.sps_pps:
            self._encode(force_key=True)
        return self.sps_pps

    def watch(self, queue: asyncio.Queue[_AccessUnit]) -> None:
        """Start feeding ``queue`` (from a keyframe); the encoder runs while anybody watches."""
        self.loop = asyncio.get_running_loop()
        self.watchers.add(queue)
        self._want_key.set()
        with self._running:
            # Under the lock the encoder thread decides to end: it either sees this watcher or
            # has already cleared _thread, never neither.
            self._stop.clear()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"sim-rtsp-{self.profile.token}", daemon=True
                )
                self._thread.start()

    def unwatch(self, queue: asyncio.Queue[_AccessUnit]) -> None:
        """Stop feeding ``queue``; the encoder stops with the last watcher."""
        self.watchers.discard(queue)
        if not self.watchers:
            self._stop.set()

    def stop(self) -> None:
        """Stop the encoder thread and wait for it."""
        with self._running:
            self._stop.set()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=10)

    def _run(self) -> None:
        interval = 1 / self.fps
        next_at = time.monotonic()
        while True:
            with self._running:
                if self._stop.is_set():
                    self._thread = None
                    return
            force = self._want_key.is_set()
            self._want_key.clear()
            for unit in self._encode(force):
                if self.loop is not None:
                    self.loop.call_soon_threadsafe(self._publish, unit)
            next_at += interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _publish(self, unit: _AccessUnit) -> None:
        for queue in list(self.watchers):
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(unit)


class RtspServer:
    """RTSP server for one simulated camera: ``rtsp://host:port/<profile token>``.

    Every public attribute may be changed while it runs. ``auth`` is "digest" (the camera's
    credentials, as read from the config at each request) or "none".
    """

    def __init__(self, config: SimConfig, *, max_fps: int = 5) -> None:
        self.config = config
        self.max_fps = max_fps
        self.auth = "digest"
        self.host = "127.0.0.1"
        self.port = 0
        # Observations for assertions.
        self.connections = 0
        self.auth_failures = 0
        self.plays = 0
        self._digest = DigestAuthenticator()
        self._server: asyncio.Server | None = None
        self._channels: dict[str, _Channel] = {}
        self._clients: set[asyncio.Task[None]] = set()

    @property
    def open_connections(self) -> int:
        """RTSP connections being served now."""
        return len(self._clients)

    @property
    def url(self) -> str:
        """rtsp://host:port (without a path)."""
        return f"rtsp://{self.host}:{self.port}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen; port 0 picks a free port (read it back from .port)."""
        if self._server is not None:
            raise RuntimeError("RTSP server already started")
        self._server = await asyncio.start_server(self._serve, host, port)
        self.host = host
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening, drop every connection and stop the encoders."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._clients):
            task.cancel()
        for task in list(self._clients):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        channels, self._channels = list(self._channels.values()), {}
        await asyncio.gather(*(asyncio.to_thread(ch.stop) for ch in channels))

    def _channel(self, token: str) -> _Channel | None:
        if token not in self._channels:
            profile = next((p for p in self.config.profiles if p.token == token), None)
            if profile is None:
                return None
            fps = max(1, min(profile.fps, self.max_fps))
            self._channels[token] = _Channel(profile, fps, self.config)
        return self._channels[token]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        self.connections += 1
        session = secrets.token_hex(8)
        queue: asyncio.Queue[_AccessUnit] = asyncio.Queue(_QUEUE_FRAMES)
        channel: _Channel | None = None
        sender: asyncio.Task[None] | None = None
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                method, url, headers = request
                cseq = headers.get("cseq", "0")
                if method not in ("OPTIONS",) and not self._authorized(method, url, headers):
                    self.auth_failures += 1
                    challenge = self._digest.challenge()
                    _write(writer, 401, cseq, {"WWW-Authenticate": challenge})
                    continue
                token = url.split("://", 1)[-1].split("/", 1)[-1].split("/")[0].split("?")[0]
                match method:
                    case "OPTIONS":
                        public = "OPTIONS, DESCRIBE, SETUP, PLAY, GET_PARAMETER, TEARDOWN"
                        _write(writer, 200, cseq, {"Public": public})
                    case "DESCRIBE":
                        channel = self._channel(token)
                        if channel is None:
                            _write(writer, 404, cseq)
                            continue
                        sdp = await asyncio.to_thread(_sdp, channel, url)
                        _write(
                            writer,
                            200,
                            cseq,
                            {"Content-Type": "application/sdp", "Content-Base": url + "/"},
                            sdp.encode(),
                        )
                    case "SETUP":
                        transport = headers.get("transport", "")
                        if "TCP" not in transport.upper():
                            _write(writer, 461, cseq)
                            continue
                        channel = channel or self._channel(token)
                        if channel is None:
                            _write(writer, 404, cseq)
                            continue
                        _write(
                            writer,
                            200,
                            cseq,
                            {
                                "Transport": "RTP/AVP/TCP;unicast;interleaved=0-1",
                                "Session": f"{session};timeout=60",
                            },
                        )
                    case "PLAY":
                        if channel is None or sender is not None:
                            _write(writer, 455 if channel is None else 200, cseq)
                            continue
                        _write(writer, 200, cseq, {"Session": session, "Range": "npt=0.000-"})
                        await writer.drain()
                        self.plays += 1
                        channel.watch(queue)
                        sender = asyncio.create_task(_send(queue, writer))
                    case "GET_PARAMETER":
                        _write(writer, 200, cseq, {"Session": session})
                    case "TEARDOWN":
                        _write(writer, 200, cseq, {"Session": session})
                        await writer.drain()
                        return
                    case _:
                        _write(writer, 405, cseq)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            if channel is not None:
                channel.unwatch(queue)
            if sender is not None:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                    await sender
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()
            self._clients.discard(task)

    def _authorized(self, method: str, url: str, headers: dict[str, str]) -> bool:
        if self.auth == "none":
            return True
        accepted, _stale = self._digest.verify(
            headers.get("authorization"),
            method=method,
            uri=url,
            username=self.config.username,
            password=self.config.password,
        )
        return accepted


async def _read_request(
    reader: asyncio.StreamReader,
) -> tuple[str, str, dict[str, str]] | None:
    """One RTSP request (interleaved data from the client, e.g. RTCP, is skipped)."""
    while True:
        first = await reader.read(1)
        if not first:
            return None
        if first == b"$":
            header = await reader.readexactly(3)
            await reader.readexactly(int.from_bytes(header[1:3], "big"))
            continue
        line = first + await reader.readline()
        if line.strip():
            break
    method, url, _version = line.decode("latin-1").split()
    headers: dict[str, str] = {}
    while (raw := await reader.readline()).strip():
        name, _, value = raw.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if length := int(headers.get("content-length", "0")):
        await reader.readexactly(length)
    return method, url, headers


_REASONS = {
    200: "OK",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    455: "Method Not Valid in This State",
    461: "Unsupported Transport",
}


def _write(
    writer: asyncio.StreamWriter,
    status: int,
    cseq: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> None:
    lines = [f"RTSP/1.0 {status} {_REASONS[status]}", f"CSeq: {cseq}", "Server: SimCam"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)


def _sdp(channel: _Channel, url: str) -> str:
    sets = ",".join(base64.b64encode(unit).decode() for unit in channel.parameter_sets())
    profile_level = channel.sps_pps[0][1:4].hex() if channel.sps_pps else "42001f"
    return (
        "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=SimCam\r\nt=0 0\r\n"
        "m=video 0 RTP/AVP 96\r\nc=IN IP4 0.0.0.0\r\n"
        f"a=rtpmap:96 H264/{_CLOCK}\r\n"
        f"a=fmtp:96 packetization-mode=1;profile-level-id={profile_level};"
        f"sprop-parameter-sets={sets}\r\n"
        f"a=framerate:{channel.fps}\r\na=control:trackID=0\r\n"
    )


async def _send(queue: asyncio.Queue[_AccessUnit], writer: asyncio.StreamWriter) -> None:
    """Write each access unit as interleaved RTP on channel 0, from the first keyframe on."""
    seq = secrets.randbelow(0xFFFF)
    ssrc = secrets.randbelow(0xFFFFFFFF)
    base = secrets.randbelow(0xFFFFFFFF)
    started = False
    while True:
        unit = await queue.get()
        started = started or unit.key
        if not started:
            continue
        packets = rtp_packets(unit.units, base + unit.pts, seq, ssrc)
        seq += len(packets)
        for packet in packets:
            writer.write(b"$\x00" + len(packet).to_bytes(2, "big") + packet)
        await writer.drain()
