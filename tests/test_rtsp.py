"""RTSP frames inside Home Assistant: the simulator's real RTSP stream, the real detector server.

A camera whose frame source is ``rtsp`` is analysed from its stream (the substream, chosen
automatically) and sees the demo scene's person only while the scene shows him; a camera whose
snapshot URI answers with a web page, or has none, shows and analyses frames from its stream; a
refused RTSP password is a clear error that names neither password; unloading leaves no reader
thread. Nothing is mocked: the frames travel as H.264 over RTSP on 127.0.0.1 and PyAV decodes
them as it would a camera's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
import dataclasses
import io
import logging
from pathlib import Path
import threading

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.camera import async_get_image
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from PIL import Image
import pytest

from custom_components.home_security_intel.const import (
    CONF_DETECTION_PROFILE,
    CONF_DETECTOR,
    CONF_FRAME_SOURCE,
    CONF_PROFILES,
    FRAME_SOURCE_RTSP,
    FRAME_SOURCE_SNAPSHOT,
)
from custom_components.home_security_intel.diagnostics import (
    async_get_config_entry_diagnostics,
)
from custom_components.home_security_intel.frame_sources import (
    FallbackSource,
    StreamSessions,
    detection_profile,
)
from custom_components.home_security_intel.onvif import NotAnImage, OnvifCamera, VideoProfile
from custom_components.home_security_intel.pipeline.frames import SnapshotSource
from custom_components.home_security_intel.pipeline.rtsp import RtspSettings, RtspSource
from tests.detection.support import DetectorServer, needs_detector_venv
from tests.support.onvif_sim import OnvifSimulator
from tests.support.onvif_sim.rtsp import RtspServer
from tests.support.onvif_sim.scene import demo_scene

from .test_detection_common import (
    add,
    camera_entry,
    detector_server,
    entity_id,
    frames,
    server_entry,
    state,
)

_HTML = b"<!DOCTYPE html><html><body>Please log in</body></html>"


class _SceneClock:
    """The demo scene's clock, set by the test (seconds into the 100 s loop)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DetectorServer]:
    """One real detector server (TFLite SSD MobileNet) for the module."""
    yield from detector_server(tmp_path_factory.mktemp("rtsp"))


@pytest.fixture
def scene_clock(onvif_sim: OnvifSimulator) -> _SceneClock:
    """The simulator plays the demo scene on a clock the test moves."""
    clock = _SceneClock()
    onvif_sim.config.scene = demo_scene(clock)
    return clock


@pytest.fixture
async def rtsp_sim(onvif_sim: OnvifSimulator) -> AsyncIterator[RtspServer]:
    """The simulator's RTSP server; GetStreamUri points at it."""
    rtsp = RtspServer(onvif_sim.config)
    await rtsp.start()
    onvif_sim.rtsp_port = rtsp.port
    try:
        yield rtsp
    finally:
        await rtsp.stop()


def _rtsp_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("hsi-rtsp-")]


def _size(jpeg: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(jpeg)) as image:
        assert image.format == "JPEG"
        return image.size


@needs_detector_venv
async def test_rtsp_frame_source_detects_the_scene_from_the_substream(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    onvif_sim: OnvifSimulator,
    rtsp_sim: RtspServer,
    scene_clock: _SceneClock,
    server: DetectorServer,
) -> None:
    """Frame source rtsp: frames come from the substream's RTSP session (no snapshot taken),
    the empty street gives nobody, the person standing in the scene is detected."""
    await add(hass, server_entry(server.url))
    scene_clock.now = 5.0  # the empty street
    camera = await add(hass, camera_entry(onvif_sim, **{CONF_FRAME_SOURCE: FRAME_SOURCE_RTSP}))
    detection = camera.runtime_data.detection
    assert detection is not None
    # Auto: the smallest profile covering the model's input, not the 1920x1080 main stream.
    assert detection.profile.token == "profile_sub"
    assert isinstance(detection.frames, RtspSource)
    person = entity_id(hass, onvif_sim, "binary_sensor", "person")
    await frames(hass, freezer, 3)
    assert state(hass, person).state == STATE_OFF

    scene_clock.now = 40.0  # the person stands in the street
    for _ in range(30):
        await frames(hass, freezer, 1)
        if state(hass, person).state == STATE_ON:
            break
    assert state(hass, person).state == STATE_ON
    assert onvif_sim.snapshot_requests == 0
    # One session for every frame: opened once, kept open.
    assert rtsp_sim.plays == 1
    assert detection.frames.stats.opens == 1
    # Diagnostics show the session's figures, and nothing of its URL or credentials.
    report = await async_get_config_entry_diagnostics(hass, camera)
    sessions = report["detection"]["rtsp_sessions"]
    assert sessions["profile_sub"]["opens"] == 1
    assert sessions["profile_sub"]["decoded"] >= 1
    assert sessions["profile_sub"]["last_error"] is None
    assert onvif_sim.config.password not in str(report)
    assert "rtsp://" not in str(sessions)

    # Detection switched off: no session stays open; switched on, the next frame reopens it.
    switch = entity_id(hass, onvif_sim, "switch", "detection_switch")
    await hass.services.async_call("switch", "turn_off", {"entity_id": switch}, blocking=True)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert not _rtsp_threads()
    await hass.services.async_call("switch", "turn_on", {"entity_id": switch}, blocking=True)
    await frames(hass, freezer, 1)
    assert detection.frames.stats.opens == 2
    assert len(_rtsp_threads()) == 1

    assert await hass.config_entries.async_unload(camera.entry_id)
    assert not _rtsp_threads()
    for _ in range(200):
        if rtsp_sim.open_connections == 0:
            break
        await asyncio.sleep(0.05)
    assert rtsp_sim.open_connections == 0


async def test_html_snapshots_fall_back_to_the_stream(
    hass: HomeAssistant,
    onvif_sim: OnvifSimulator,
    rtsp_sim: RtspServer,
    tmp_path: Path,
) -> None:
    """A snapshot URI that answers with a login page: the camera entity shows a stream frame."""
    login = tmp_path / "login.jpg"
    login.write_bytes(_HTML)
    onvif_sim.config.images = [login]
    await add(
        hass, camera_entry(onvif_sim, **{CONF_PROFILES: ["profile_main"], CONF_DETECTOR: "none"})
    )
    camera = entity_id(hass, onvif_sim, "camera", "camera_profile_main")
    image = await async_get_image(hass, camera)
    assert image.content_type == "image/jpeg"
    # The main profile's own stream: its resolution, not the snapshot's page.
    assert _size(image.content) == (1920, 1080)
    assert rtsp_sim.plays == 1
    assert onvif_sim.snapshot_requests >= 1
    # The one-off session for the still is closed again.
    assert not _rtsp_threads()


@needs_detector_venv
async def test_camera_without_snapshot_uri_is_analysed_from_its_stream(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    onvif_sim: OnvifSimulator,
    rtsp_sim: RtspServer,
    scene_clock: _SceneClock,
    server: DetectorServer,
) -> None:
    """No usable snapshot URI (refused by the URI guard): detection and the still image both
    come from the stream, with the snapshot frame source still chosen in the options."""
    onvif_sim.hostile_snapshot_uri = "http://192.0.2.1/elsewhere.jpg"
    scene_clock.now = 40.0
    await add(hass, server_entry(server.url))
    camera = await add(hass, camera_entry(onvif_sim))
    detection = camera.runtime_data.detection
    assert detection is not None
    assert isinstance(detection.frames, FallbackSource)
    assert detection.frames.name == "rtsp"
    person = entity_id(hass, onvif_sim, "binary_sensor", "person")
    for _ in range(30):
        await frames(hass, freezer, 1)
        if state(hass, person).state == STATE_ON:
            break
    assert state(hass, person).state == STATE_ON
    entity = entity_id(hass, onvif_sim, "camera", "camera_profile_main")
    image = await async_get_image(hass, entity)
    assert _size(image.content) == (1920, 1080)
    assert onvif_sim.snapshot_requests == 0


async def test_refused_rtsp_password_is_a_clear_error_without_secrets(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    onvif_sim: OnvifSimulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A stream that refuses the camera's password: the detection entities go unavailable with
    the reason logged; neither the password sent nor the one expected is logged."""
    caplog.set_level(logging.DEBUG)
    expected = "the-streams-own-S3cret"
    rtsp = RtspServer(dataclasses.replace(onvif_sim.config, password=expected))
    await rtsp.start()
    onvif_sim.rtsp_port = rtsp.port
    try:
        detector = await add(hass, server_entry("http://127.0.0.1:9"))
        del detector
        camera = await add(hass, camera_entry(onvif_sim, **{CONF_FRAME_SOURCE: FRAME_SOURCE_RTSP}))
        detection = camera.runtime_data.detection
        assert detection is not None
        assert isinstance(detection.frames, RtspSource)
        # The detector is down, so no frame is asked for; ask the source itself.
        with pytest.raises(Exception, match="refused the stream's username or password"):
            await detection.frames.async_get_frame()
        assert rtsp.auth_failures >= 1
        await frames(hass, freezer, 1)
        assert await hass.config_entries.async_unload(camera.entry_id)
    finally:
        await rtsp.stop()
    assert "refused the stream's username or password" in caplog.text
    assert onvif_sim.config.password not in caplog.text
    assert expected not in caplog.text
    assert not _rtsp_threads()


async def test_detection_profile_option_and_its_fallback(
    hass: HomeAssistant, onvif_sim: OnvifSimulator
) -> None:
    """A profile named in the options is read; one the camera no longer has is shown as auto."""
    camera = await add(
        hass,
        camera_entry(
            onvif_sim,
            **{CONF_FRAME_SOURCE: FRAME_SOURCE_RTSP, CONF_DETECTION_PROFILE: "profile_main"},
        ),
    )
    detection = camera.runtime_data.detection
    assert detection is not None
    assert detection.profile.token == "profile_main"
    hass.config_entries.async_update_entry(
        camera, options={**camera.options, CONF_DETECTION_PROFILE: "gone"}
    )
    result = await hass.config_entries.options.async_init(camera.entry_id)
    schema = result["data_schema"]
    assert schema is not None
    for key, value in schema.schema.items():
        if str(key) == "detection":
            inner = {str(k): k for k in value.schema.schema}
            marker = inner[CONF_DETECTION_PROFILE]
            assert marker.description["suggested_value"] == "auto"
            options = value.schema.schema[marker].config["options"]
            assert [o["value"] for o in options] == ["auto", "profile_main", "profile_sub"]
            break
    else:
        pytest.fail("no detection section in the options form")
    assert camera.state is ConfigEntryState.LOADED


def _profile(
    token: str, width: int, height: int, *, still: bool = True, stream: bool = True
) -> VideoProfile:
    return VideoProfile(
        token,
        token,
        "H264",
        width,
        height,
        15.0,
        f"http://127.0.0.1/{token}.jpg" if still else None,
        f"rtsp://127.0.0.1/{token}" if stream else None,
    )


MAIN = _profile("main", 3840, 2160)
MID = _profile("mid", 1280, 720)
SUB = _profile("sub", 640, 360)
TINY = _profile("tiny", 352, 240)


@pytest.mark.parametrize(
    ("profiles", "wanted", "source", "expected"),
    [
        # The smallest profile whose long side covers the model's 640-pixel input.
        ((MAIN, MID, SUB, TINY), "auto", FRAME_SOURCE_RTSP, "sub"),
        ((MAIN, MID), "auto", FRAME_SOURCE_RTSP, "mid"),
        # None is big enough: the largest there is.
        ((TINY, _profile("qcif", 176, 144)), "auto", FRAME_SOURCE_RTSP, "tiny"),
        # A profile named in the options wins; one without any URI does not.
        ((MAIN, SUB), "main", FRAME_SOURCE_RTSP, "main"),
        ((MAIN, _profile("dead", 640, 360, still=False, stream=False)), "dead", "rtsp", "main"),
        # RTSP prefers profiles with a stream, snapshots those with a snapshot URI.
        ((_profile("s", 640, 360, stream=False), MAIN), "auto", FRAME_SOURCE_RTSP, "main"),
        ((_profile("r", 640, 360, still=False), MAIN), "auto", FRAME_SOURCE_SNAPSHOT, "main"),
        # Only streams: snapshots fall back to them.
        ((_profile("r", 640, 360, still=False),), "auto", FRAME_SOURCE_SNAPSHOT, "r"),
        ((_profile("none", 640, 360, still=False, stream=False),), "auto", "rtsp", None),
    ],
)
def test_detection_profile_choice(
    profiles: tuple[VideoProfile, ...], wanted: str, source: str, expected: str | None
) -> None:
    """Which profile detection reads, for the option and the frame source."""
    chosen = detection_profile(profiles, wanted, source)
    assert (chosen.token if chosen else None) == expected


async def test_fallback_source_without_stream_or_working_stream() -> None:
    """Snapshots that are no picture: without a stream, or with one that fails too, the
    snapshot's own error stands (the frame is skipped and counted by the coordinator)."""

    async def login_page() -> bytes:
        raise NotAnImage("127.0.0.1: the snapshot is text/html")

    alone = FallbackSource(SnapshotSource(login_page), None, "Cam")
    with pytest.raises(NotAnImage):
        await alone.async_get_frame()
    assert alone.name == "snapshot"
    dead = RtspSource(lambda: "rtsp://127.0.0.1:9/none", "Cam", RtspSettings(retry_min=0.05))
    both = FallbackSource(SnapshotSource(login_page), dead, "Cam")
    try:
        with pytest.raises(NotAnImage):
            await both.async_get_frame()
        assert both.name == "snapshot"
    finally:
        await dead.async_close()


async def test_sessions_of_profiles_without_stream() -> None:
    """A profile without a stream URI has no session and no stream still."""
    camera = OnvifCamera("127.0.0.1", 9, "admin", "pw")
    sessions = StreamSessions(camera, "Cam")
    no_stream = _profile("still", 640, 360, stream=False)
    assert sessions.session(no_stream) is None
    assert await sessions.async_still(no_stream) is None
    assert sessions.session(SUB) is sessions.session(SUB)
    await sessions.async_close()
    await camera.async_close()


@needs_detector_venv
async def test_html_snapshots_switch_detection_to_the_stream_and_stills_share_it(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    onvif_sim: OnvifSimulator,
    rtsp_sim: RtspServer,
    server: DetectorServer,
    tmp_path: Path,
) -> None:
    """Snapshots turn into a login page: detection continues from the stream (the same session
    then serves the camera entity's still of that profile)."""
    await add(hass, server_entry(server.url))
    camera = await add(hass, camera_entry(onvif_sim, **{CONF_DETECTION_PROFILE: "profile_main"}))
    detection = camera.runtime_data.detection
    assert detection is not None
    assert detection.frames.name == "snapshot"
    await frames(hass, freezer, 1)
    login = tmp_path / "login.jpg"
    login.write_bytes(_HTML)
    onvif_sim.config.images = [login]
    await frames(hass, freezer, 2)
    assert detection.frames.name == "rtsp"
    assert detection.data.frames_invalid == 0
    person = entity_id(hass, onvif_sim, "binary_sensor", "person")
    assert state(hass, person).state == STATE_ON  # bus.jpg's man, now from the stream
    entity = entity_id(hass, onvif_sim, "camera", "camera_profile_main")
    image = await async_get_image(hass, entity)
    assert _size(image.content) == (1920, 1080)
    assert rtsp_sim.plays == 1  # the still came from detection's open session


async def test_html_snapshots_without_a_stream_show_no_still(
    hass: HomeAssistant, onvif_sim: OnvifSimulator, tmp_path: Path
) -> None:
    """A login page for a snapshot and no usable stream URI: no still (not the page)."""
    login = tmp_path / "login.jpg"
    login.write_bytes(_HTML)
    onvif_sim.config.images = [login]
    onvif_sim.hostile_stream_uri = "rtsp://192.0.2.50:554/elsewhere"
    await add(
        hass, camera_entry(onvif_sim, **{CONF_PROFILES: ["profile_main"], CONF_DETECTOR: "none"})
    )
    camera = entity_id(hass, onvif_sim, "camera", "camera_profile_main")
    with pytest.raises(HomeAssistantError):
        await async_get_image(hass, camera)
