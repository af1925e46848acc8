"""The RTSP frame source against the simulator's real RTSP server on 127.0.0.1 (PyAV decoding).

Nothing is mocked: the server encodes H.264 with libx264, the source demuxes and decodes it with
FFmpeg as it would a camera's stream. Waits are bounded by counts, not by measured times.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import io
import logging
import threading

import av
import av.logging
from PIL import Image
import pytest

from custom_components.home_security_intel.pipeline.frames import FrameSource
from custom_components.home_security_intel.pipeline.rtsp import (
    RtspAuthError,
    RtspError,
    RtspSettings,
    RtspSource,
    RtspUnavailable,
)
from tests.support.onvif_sim.config import SimConfig
from tests.support.onvif_sim.rtsp import RtspServer
from tests.support.onvif_sim.scene import Scene, SceneStep

pytestmark = pytest.mark.usefixtures("socket_enabled")

FAST = RtspSettings(retry_min=0.05, retry_max=0.2, frame_timeout=20.0)
PASSWORD = "correct-horse-battery"


def _solid(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 360), colour).save(out, format="JPEG")
    return out.getvalue()


class _Clock:
    """The scene's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> _Clock:
    return _Clock()


@pytest.fixture
async def server(clock: _Clock) -> AsyncIterator[RtspServer]:
    """A red-then-blue scene: 10 s of each on the test's clock."""
    steps = [SceneStep(_solid((220, 20, 20)), 10.0, "red"), SceneStep(_solid((20, 20, 220)), 10.0)]
    config = SimConfig(scene=Scene(steps, clock))
    rtsp = RtspServer(config)
    await rtsp.start()
    try:
        yield rtsp
    finally:
        await rtsp.stop()


def _source(server: RtspServer, password: str = PASSWORD, **settings: float) -> RtspSource:
    base = FAST if not settings else RtspSettings(**{**FAST.__dict__, **settings})  # type: ignore[arg-type]
    port = server.port
    return RtspSource(
        lambda: f"rtsp://admin:{password}@127.0.0.1:{port}/profile_sub", "Front door", base
    )


def _colour(jpeg: bytes) -> tuple[int, int, int]:
    with Image.open(io.BytesIO(jpeg)) as image:
        return image.convert("RGB").resize((1, 1)).getpixel((0, 0))  # type: ignore[return-value]


def _rtsp_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("hsi-rtsp-")]


async def test_frames_are_jpegs_of_the_stream_and_follow_the_scene(
    server: RtspServer, clock: _Clock
) -> None:
    """The source hands out the stream's pictures as JPEG, the scene's current one."""
    source: FrameSource = _source(server)
    assert isinstance(source, RtspSource)
    try:
        assert source.name == "rtsp"
        frame = await source.async_get_frame()
        with Image.open(io.BytesIO(frame)) as image:
            assert (image.format, image.size) == ("JPEG", (640, 360))
        red, _green, blue = _colour(frame)
        assert red > 150 > blue
        clock.now = 12.0  # the scene's second step: blue
        for _ in range(200):
            red, _green, blue = _colour(await source.async_get_frame())
            if blue > 150 > red:
                break
            await asyncio.sleep(0.05)
        assert blue > 150 > red
        # One session for all those frames, and one RTSP connection on the server.
        assert source.stats.opens == 1
        assert server.plays == 1
        assert source.stats.decoded >= 1
    finally:
        await source.async_close()
    assert not _rtsp_threads()


async def test_the_same_picture_is_encoded_once(server: RtspServer) -> None:
    """Two requests for one decoded picture (detection and a still) share one JPEG encode."""
    source = _source(server)
    try:
        await source.async_get_frame()
        encoded = source.stats.encoded
        with source._lock:
            picture, seq = source._frame, source._frame_seq
        assert picture is not None
        first = source._encode(picture, seq)
        again = source._encode(picture, seq)
        assert first is again
        assert source.stats.encoded <= encoded + 1
    finally:
        await source.async_close()


async def test_reconnects_after_the_server_restarts(server: RtspServer) -> None:
    """A server that goes away and comes back on the same port gets a new session."""
    source = _source(server)
    try:
        await source.async_get_frame()
        port = server.port
        await server.stop()
        # While it is away the source fails with a clear error (once the last frame is stale).
        failed: RtspError | None = None
        for _ in range(400):
            try:
                await source.async_get_frame()
            except RtspUnavailable as err:
                failed = err
                break
            await asyncio.sleep(0.05)
        assert failed is not None
        assert "Front door" in str(failed)
        await server.start(port=port)
        frame = b""
        for _ in range(400):
            try:
                frame = await source.async_get_frame()
                break
            except RtspUnavailable:
                await asyncio.sleep(0.05)
        assert frame.startswith(b"\xff\xd8")
        assert source.stats.opens >= 2
        assert source.last_error is None
    finally:
        await source.async_close()
    assert not _rtsp_threads()


async def test_backs_off_while_nothing_answers() -> None:
    """Refused connections are retried at doubling delays up to the ceiling."""
    free = RtspServer(SimConfig())
    await free.start()
    port = free.port
    await free.stop()  # nothing listens there now
    source = RtspSource(lambda: f"rtsp://127.0.0.1:{port}/profile_sub", "Garage", FAST)
    try:
        with pytest.raises(RtspUnavailable, match="Garage: the camera refused the RTSP connection"):
            await source.async_get_frame()
        for _ in range(400):
            if len(source.retry_delays) >= 5:
                break
            await asyncio.sleep(0.05)
        assert list(source.retry_delays)[:5] == [0.05, 0.1, 0.2, 0.2, 0.2]
        # While it backs off, a request fails at once with the same clear error.
        with pytest.raises(RtspUnavailable, match="refused the RTSP connection"):
            await source.async_get_frame()
    finally:
        await source.async_close()
    assert not _rtsp_threads()


async def test_close_leaves_no_thread_and_no_connection(server: RtspServer) -> None:
    """Closing ends the reader thread and the RTSP connection; the source can start again."""
    source = _source(server)
    await source.async_get_frame()
    assert source.running
    assert len(_rtsp_threads()) == 1
    await source.async_close()
    assert not source.running
    assert not _rtsp_threads()
    for _ in range(200):
        if server.open_connections == 0:
            break
        await asyncio.sleep(0.05)
    assert server.open_connections == 0
    # Started again by the next request.
    assert (await source.async_get_frame()).startswith(b"\xff\xd8")
    await source.async_close()
    assert not _rtsp_threads()


async def test_wrong_credentials_give_a_clear_error_without_them(
    server: RtspServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A refused password says so; neither password appears in errors, logs or repr."""
    caplog.set_level(logging.DEBUG)
    av.logging.set_level(
        av.logging.DEBUG
    )  # FFmpeg's own lines too, as Home Assistant's stream does
    wrong = "wr0ng-Secret-9"
    source = _source(server, password=wrong)
    try:
        with pytest.raises(RtspAuthError) as failed:
            await source.async_get_frame()
        assert (
            str(failed.value) == "Front door: the camera refused the stream's username or password"
        )
        assert failed.value.__cause__ is None
        assert server.auth_failures >= 1
        good = _source(server)
        assert (await good.async_get_frame()).startswith(b"\xff\xd8")
        texts = [str(failed.value), repr(source), repr(good), repr(source.last_error), caplog.text]
        await good.async_close()
    finally:
        av.logging.set_level(None)
        await source.async_close()
    for text in texts:
        assert wrong not in text
        assert PASSWORD not in text


async def test_rare_requests_decode_keyframes_only(server: RtspServer) -> None:
    """Asked for frames far apart, the reader decodes keyframes only (a fraction of packets)."""
    source = _source(server)
    try:
        await source.async_get_frame()
        # Wait without asking: the gap grows past 1.5 keyframe intervals (2 s at 5 fps).
        for _ in range(400):
            if source.stats.keyframes_only and source.stats.packets > 40:
                break
            await asyncio.sleep(0.05)
        assert source.stats.keyframes_only
        decoded, packets = source.stats.decoded, source.stats.packets
        for _ in range(400):
            if source.stats.packets >= packets + 30:
                break
            await asyncio.sleep(0.05)
        # 30 packets at a keyframe every 10: at most 4 decoded (1 in 10), not 30.
        assert source.stats.decoded - decoded <= 4
        frame = await source.async_get_frame()
        assert frame.startswith(b"\xff\xd8")
    finally:
        await source.async_close()


async def test_no_uri_is_a_clear_error() -> None:
    """A profile that lost its stream URI fails with a message, not a crash."""
    source = RtspSource(lambda: None, "Porch", FAST)
    try:
        with pytest.raises(RtspUnavailable, match="Porch: the camera offers no stream URI"):
            await source.async_get_frame()
    finally:
        await source.async_close()


async def test_unknown_path_is_a_clear_error(server: RtspServer) -> None:
    """A stream URI the camera does not serve (404) says so."""
    port = server.port
    source = RtspSource(lambda: f"rtsp://127.0.0.1:{port}/nope", "Shed", FAST)
    server.auth = "none"
    try:
        with pytest.raises(
            RtspUnavailable, match=r"Shed: the camera has no stream at this address"
        ):
            await source.async_get_frame()
    finally:
        await source.async_close()


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A TCP port that accepts connections and never answers (a hung camera)."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    silent = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield silent.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        silent.close()
        await silent.wait_closed()


async def test_a_silent_camera_times_out_and_close_wakes_waiters(silent_port: int) -> None:
    """No answer: the request gives up after frame_timeout; closing fails a waiting request."""
    settings = RtspSettings(open_timeout=2.0, read_timeout=2.0, frame_timeout=0.3, retry_min=0.05)
    source = RtspSource(lambda: f"rtsp://127.0.0.1:{silent_port}/live", "Attic", settings)
    try:
        with pytest.raises(RtspUnavailable, match="Attic: no frame from the stream in"):
            await source.async_get_frame()
    finally:
        await source.async_close()
    waiting = RtspSource(
        lambda: f"rtsp://127.0.0.1:{silent_port}/live",
        "Attic",
        RtspSettings(open_timeout=2.0, read_timeout=2.0, frame_timeout=60.0),
    )
    request = asyncio.create_task(waiting.async_get_frame())
    for _ in range(100):
        if waiting._waiters:
            break
        await asyncio.sleep(0.01)
    await waiting.async_close()
    with pytest.raises(RtspUnavailable, match="Attic: the stream was closed"):
        await request
    assert not _rtsp_threads()


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (TimeoutError(), "Cam: the stream timed out"),
        (OSError(113, "No route to host"), "Cam: stream error: No route to host"),
        (ValueError("rtsp://u:secret@h/"), "Cam: stream error: ValueError"),
        (
            av.error.InvalidDataError(-1094995529, "Invalid data", "rtsp://u:secret@h/"),
            "Cam: stream error: Invalid data",
        ),
    ],
)
def test_errors_are_translated_without_the_url(error: BaseException, message: str) -> None:
    """PyAV's errors quote the URL (credentials included); the translated ones do not."""
    from custom_components.home_security_intel.pipeline.rtsp import _translate

    translated = _translate(error, "Cam")
    assert str(translated) == message
    assert "secret" not in repr(translated)
