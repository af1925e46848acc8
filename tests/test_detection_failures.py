"""A hostile detector inside Home Assistant: slow, failing, lying, flooding. Nothing crashes.

Small aiohttp servers on 127.0.0.1 speak our `/v1/detect` API and misbehave on command; the
camera is the ONVIF simulator and everything between them is the integration as it runs. When the
detector fails, the detection entities go unavailable with one log line (from the detector's hub,
not one per camera or per frame), the camera entity stays available, the hub backs off instead of
sending every frame, a repair issue appears after three minutes, and everything comes back with
one line when the detector does. A detector that answers odd but well-formed things (boxes outside
the frame, 10,000 boxes, "busy") keeps the entities available.

"Slow" needs simulated time to pass while the request is in flight: the server's handler moves
the frozen clock on by more than the client's timeout before it answers, so the client gives up
exactly as it would on a real slow detector, without any real waiting.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
import logging
from pathlib import Path

from aiohttp import web
from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
import pytest

from custom_components.home_security_intel.const import DOMAIN
from custom_components.home_security_intel.detection.parse import MAX_DETECTIONS
from tests.support.onvif_sim import OnvifSimulator
from tests.support.onvif_sim.config import SimConfig

from .test_detection_common import (
    PACKAGE_LOGGER,
    HostileDetector,
    StateRecorder,
    add,
    advance,
    answer,
    camera_entry,
    detector_entity_id,
    entity_id,
    frames,
    hostile_detector,
    server_entry,
    state,
)

HUB_LOGGER = f"{PACKAGE_LOGGER}.detector_hub"


@pytest.fixture
async def hostile(freezer: FrozenDateTimeFactory) -> AsyncIterator[HostileDetector]:
    """A hostile detector, answering well until told otherwise."""
    async with hostile_detector(freezer) as detector:
        yield detector


def _logs(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith(PACKAGE_LOGGER) and r.levelno == level]


async def _start(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sim: OnvifSimulator,
    hostile: HostileDetector,
) -> tuple[str, str, str]:
    """Detector and camera set up, the person confirmed; the person, count and camera ids."""
    detector = await add(hass, server_entry(hostile.url))
    await add(hass, camera_entry(sim))
    await frames(hass, freezer, 3)
    person = entity_id(hass, sim, "binary_sensor", "person")
    camera = entity_id(hass, sim, "camera", f"camera_{sim.config.profiles[0].token}")
    assert state(hass, person).state == STATE_ON
    reachable = detector_entity_id(hass, detector, "binary_sensor", "reachable")
    assert state(hass, reachable).state == STATE_ON
    return person, entity_id(hass, sim, "sensor", "person_count"), camera


@pytest.mark.parametrize(
    ("behaviour", "outage_s"),
    # The long outage (back-off, repair issue) for two kinds of failure; the hub handles every
    # kind alike, so the others go down and come back after a minute.
    [("slow", 600), ("error_500", 600), ("wrong_json", 60), ("not_json", 60), ("nan_scores", 60)],
)
async def test_failing_detector(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    onvif_sim: OnvifSimulator,
    hostile: HostileDetector,
    caplog: pytest.LogCaptureFixture,
    behaviour: str,
    outage_s: int,
) -> None:
    """Down: unavailable, one ERROR, back-off, repair issue after 3 minutes; back: one line."""
    caplog.set_level(logging.INFO, logger=PACKAGE_LOGGER)
    person, count, camera = await _start(hass, freezer, onvif_sim, hostile)
    issue_id = f"detector_unreachable_{hass.config_entries.async_entries(DOMAIN)[0].entry_id}"
    recorder = StateRecorder(hass, person)
    caplog.clear()

    hostile.behaviour = getattr(hostile, behaviour)
    hostile.requests = 0
    snapshots = onvif_sim.snapshot_requests
    went_down = dt_util.utcnow()
    await frames(hass, freezer, 1)
    assert state(hass, person).state == STATE_UNAVAILABLE
    assert state(hass, count).state == STATE_UNAVAILABLE
    assert state(hass, camera).state != STATE_UNAVAILABLE
    errors = _logs(caplog, logging.ERROR)
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert errors[0].name == HUB_LOGGER

    # Simulated minutes (in steps of 5 s: each step is due a frame): the hub probes on its
    # back-off (5 s doubling to 5 min); the cameras neither send frames nor take snapshots.
    issue_raised_after = None
    while (elapsed := (dt_util.utcnow() - went_down).total_seconds()) < outage_s:
        await advance(hass, freezer, 5)
        if issue_raised_after is None and ir.async_get(hass).async_get_issue(DOMAIN, issue_id):
            issue_raised_after = elapsed
    # Probes at about 5, 15, 35, 75, 155, 315 s... (and a slow one adds its 15 s each time).
    assert hostile.requests <= (10 if outage_s > 300 else 4)
    assert onvif_sim.snapshot_requests - snapshots <= 2
    if outage_s > 300:
        # Simulated seconds, measured on the frozen clock (a slow answer moves it on by itself).
        assert issue_raised_after is not None
        assert 175 <= issue_raised_after <= 200
    else:
        assert issue_raised_after is None
    assert len(_logs(caplog, logging.ERROR)) == 1
    assert _logs(caplog, logging.WARNING) == []
    assert state(hass, person).state == STATE_UNAVAILABLE
    assert state(hass, camera).state != STATE_UNAVAILABLE
    # Never "on" again while down (a slow answer let the off delay pass before it failed).
    assert recorder.transitions[-1] == STATE_UNAVAILABLE
    assert STATE_ON not in recorder.transitions

    # Back: the next probe (at most 5 minutes away) finds it, and frames flow again.
    hostile.behaviour = hostile.good
    caplog.clear()
    events = StateRecorder(hass, entity_id(hass, onvif_sim, "event", "detection"))
    back_from = dt_util.utcnow()
    for _ in range(70):
        await advance(hass, freezer, 5)
        if state(hass, person).state == STATE_ON:
            break
    assert state(hass, person).state == STATE_ON
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    assert _logs(caplog, logging.ERROR) == []
    # The person was forgotten during the outage: announced anew, by an available entity (the
    # event fires after the frame that brought the detector back is published). Becoming
    # available again re-shows the old event: only states newer than the recovery are firings.
    new = [
        s
        for s in events.events
        if (fired_at := dt_util.parse_datetime(s.state)) is not None and fired_at >= back_from
    ]
    assert [s.attributes["event_type"] for s in new] == ["person_detected"]
    back = [r for r in _logs(caplog, logging.INFO) if r.name == HUB_LOGGER]
    assert len(back) == 1, [r.getMessage() for r in back]


@pytest.mark.parametrize("behaviour", ["outside", "flood", "busy"])
async def test_odd_but_valid_answers(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    onvif_sim: OnvifSimulator,
    hostile: HostileDetector,
    caplog: pytest.LogCaptureFixture,
    behaviour: str,
) -> None:
    """Boxes outside the frame are clipped, 10,000 boxes are cut to the best, busy drops a
    frame: the entities stay available and nothing is logged above debug."""
    caplog.set_level(logging.INFO, logger=PACKAGE_LOGGER)
    person, count, camera = await _start(hass, freezer, onvif_sim, hostile)
    events = StateRecorder(hass, entity_id(hass, onvif_sim, "event", "detection"))
    caplog.clear()
    hostile.behaviour = getattr(hostile, behaviour)
    await frames(hass, freezer, 10)

    assert state(hass, camera).state != STATE_UNAVAILABLE
    assert state(hass, person).state != STATE_UNAVAILABLE
    assert _logs(caplog, logging.ERROR) == []
    assert _logs(caplog, logging.WARNING) == []
    counted = int(state(hass, count).state)
    assert 0 <= counted <= MAX_DETECTIONS
    ids = [fired["object_id"] for fired in events.fired()]
    assert len(ids) == len(set(ids))  # never twice for one object
    if behaviour == "busy":
        camera_entity = entity_id(hass, onvif_sim, "camera", "camera_profile_main")
        with pytest.raises(HomeAssistantError):
            await hass.services.async_call(
                DOMAIN,
                "detect",
                target={"entity_id": camera_entity},
                blocking=True,
                return_response=True,
            )
        # Every frame was dropped; the person is still known from before, so the count stands.
        dropped = entity_id(hass, onvif_sim, "sensor", "frames_dropped")
        assert hass.states.get(dropped) is None  # disabled by default
        coordinator = hass.config_entries.async_entries(DOMAIN)[1].runtime_data.detection
        assert coordinator.data.frames_dropped >= 10
        assert coordinator.data.last_error == "busy"
        # The hub's health check (every minute) finds it busy too: alive, not down.
        await frames(hass, freezer, 14, step=5)
        detector = hass.config_entries.async_entries(DOMAIN)[0]
        reachable = detector_entity_id(hass, detector, "binary_sensor", "reachable")
        assert state(hass, reachable).state == STATE_ON
        assert state(hass, person).state != STATE_UNAVAILABLE
    if behaviour == "outside":
        assert counted == 1
        assert len(state(hass, person).attributes["object_ids"]) == 1


async def test_person_leaves_while_detector_is_down_is_not_stale(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    onvif_sim: OnvifSimulator,
    hostile: HostileDetector,
) -> None:
    """After an outage the sensors show what the first new frame says, not the old picture."""
    person, count, _ = await _start(hass, freezer, onvif_sim, hostile)
    hostile.behaviour = hostile.error_500
    await frames(hass, freezer, 2)
    assert state(hass, person).state == STATE_UNAVAILABLE

    async def empty(request: web.Request) -> web.StreamResponse:
        return web.json_response(answer([]))

    hostile.behaviour = empty
    await frames(hass, freezer, 30, step=2)
    assert state(hass, person).state == STATE_OFF
    assert state(hass, count).state == "0"


async def test_detections_in_a_frame_that_cannot_be_drawn(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    onvif_sim: OnvifSimulator,
    hostile: HostileDetector,
    tmp_path: Path,
) -> None:
    """A detector that finds a person in a frame nobody can decode: counted as it says, the
    image entity keeps the last picture it could draw."""
    person, count, _ = await _start(hass, freezer, onvif_sim, hostile)
    image = entity_id(hass, onvif_sim, "image", "detection_image")
    drawn_at = state(hass, image).state
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 64)
    onvif_sim.config.images = [broken]
    await frames(hass, freezer, 3)
    assert state(hass, person).state == STATE_ON
    assert state(hass, count).state == "1"
    assert state(hass, image).state == drawn_at


async def test_unload_while_the_detector_is_down(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    onvif_sim: OnvifSimulator,
    hostile: HostileDetector,
) -> None:
    """Unloading a detector that is down cancels its probe and its repair-issue timer (the
    harness fails the test on a timer left behind); nothing is sent afterwards."""
    await _start(hass, freezer, onvif_sim, hostile)
    hostile.behaviour = hostile.error_500
    await frames(hass, freezer, 1)
    # The third entry is the home entry the camera created.
    detector, camera, _home = hass.config_entries.async_entries(DOMAIN)
    hub = detector.runtime_data
    assert not hub.reachable
    assert await hass.config_entries.async_unload(camera.entry_id)
    assert await hass.config_entries.async_unload(detector.entry_id)
    requests = hostile.requests
    await advance(hass, freezer, 600)
    assert hostile.requests == requests
    assert ir.async_get(hass).async_get_issue(DOMAIN, hub.issue_id) is None


async def test_two_cameras_one_detector_one_log_line(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    onvif_sim: OnvifSimulator,
    hostile: HostileDetector,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A detector shared by two cameras: its outage is one line, not one per camera."""
    caplog.set_level(logging.INFO, logger=PACKAGE_LOGGER)
    second = OnvifSimulator(SimConfig(mac="02:00:5e:10:00:02", serial="SIM-0002"))
    await second.start()
    try:
        await _start(hass, freezer, onvif_sim, hostile)
        await add(hass, camera_entry(second))
        await frames(hass, freezer, 3)
        people = [entity_id(hass, sim, "binary_sensor", "person") for sim in (onvif_sim, second)]
        assert {state(hass, person).state for person in people} == {STATE_ON}
        caplog.clear()
        hostile.behaviour = hostile.error_500
        await frames(hass, freezer, 3)
        assert {state(hass, person).state for person in people} == {STATE_UNAVAILABLE}
        assert len(_logs(caplog, logging.ERROR)) == 1
        hostile.behaviour = hostile.good
        await frames(hass, freezer, 8, step=2)
        assert {state(hass, person).state for person in people} == {STATE_ON}
        assert len(_logs(caplog, logging.ERROR)) == 1
        assert len([r for r in _logs(caplog, logging.INFO) if r.name == HUB_LOGGER]) == 1
        for entry in hass.config_entries.async_entries(DOMAIN):
            assert await hass.config_entries.async_unload(entry.entry_id)
    finally:
        await second.stop()
