"""Motion drives detection: the frame rate rises while the camera reports motion and falls back
without it; cameras without (working) events keep the steady rate.

The camera is the ONVIF simulator (motion on the test's command); where frames are counted the
detector is a small real server on 127.0.0.1 and time is simulated (freezer). Nothing of the
integration is mocked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
import pytest

from custom_components.home_security_intel.const import CONF_FPS, CONF_MOTION_FPS
from custom_components.home_security_intel.detection_coordinator import (
    DetectionSettings,
    target_fps,
)
from tests.common import wait_until
from tests.support.onvif_sim import OnvifSimulator

from .test_detection_common import (
    HostileDetector,
    add,
    camera_entry,
    frames,
    hostile_detector,
    server_entry,
)


@pytest.fixture
async def detector(freezer: FrozenDateTimeFactory) -> AsyncIterator[HostileDetector]:
    """A detector that sees one person in every frame (and counts them)."""
    async with hostile_detector(freezer) as server:
        yield server


def test_target_rate() -> None:
    """With events: motion rate or idle rate; without: the steady rate, never zero."""
    settings = DetectionSettings(fps=0.0, motion_fps=5.0)
    assert target_fps(settings, True) == 5.0
    assert target_fps(settings, False) == 0.0
    assert target_fps(settings, None) == 1.0  # no events: 0 cannot mean "never"
    steady = DetectionSettings(fps=0.5, motion_fps=4.0)
    assert target_fps(steady, None) == 0.5
    assert target_fps(steady, False) == 0.5


async def test_motion_reaches_the_detection_loop(
    hass: HomeAssistant, onvif_sim: OnvifSimulator
) -> None:
    """The camera's motion events set the loop's motion (real time, real subscription); while
    the events are down the loop is told "unknown" and runs at its steady rate."""
    # A camera with detection whose detector is not loaded: the loop exists, waiting.
    entry = camera_entry(onvif_sim, **{CONF_FPS: 0.0, CONF_MOTION_FPS: 5.0})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    detection = entry.runtime_data.detection
    assert detection is not None
    await wait_until(lambda: detection.motion is False, "quiet known")
    assert detection.target_fps == 0.0
    onvif_sim.set_motion(True)
    await wait_until(lambda: detection.motion is True, "motion")
    assert detection.target_fps == 5.0
    onvif_sim.events.refuse_subscriptions = True
    onvif_sim.reboot()
    await wait_until(lambda: detection.motion is None, "events down")
    assert detection.target_fps == 1.0


async def test_camera_without_events_keeps_the_steady_rate(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    onvif_sim: OnvifSimulator,
    detector: HostileDetector,
) -> None:
    """No events service: frames at the steady rate, as before events existed."""
    onvif_sim.events.advertised = False
    await add(hass, server_entry(detector.url))
    # The steady rate at the frame slot the simulated clock steps by (at other rates the frozen
    # clock can leave a refresh due forever, which real time never does).
    entry = await add(hass, camera_entry(onvif_sim, **{CONF_FPS: 1.0, CONF_MOTION_FPS: 5.0}))
    detection = entry.runtime_data.detection
    assert detection is not None
    assert entry.runtime_data.events is None
    assert detection.motion is None
    assert detection.target_fps == 1.0
    before = detector.requests
    await frames(hass, freezer, 4)
    assert detector.requests >= before + 3
