"""Detection's life inside Home Assistant: setup order, controls, restarts, unload, diagnostics.

The detector is a small well-behaved server on 127.0.0.1 speaking our `/v1/detect` API (the
hostile detector of tests/test_detection_common.py in its good mood: one confident person in
every frame), so these tests count exactly what reaches the detector. The camera is the ONVIF
simulator; nothing of the integration is mocked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
import logging

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
import pytest
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.home_security_intel.const import (
    CONF_API_KEY,
    CONF_CONFIRM_THRESHOLD,
    CONF_DETECTION_ENABLED,
    CONF_DETECTOR,
    CONF_FINGERPRINT,
    CONF_GROUPS,
    CONF_URL,
    CONF_ZONES,
    DETECTOR_NONE,
    DOMAIN,
)
from custom_components.home_security_intel.issues import async_sync_detector_plaintext_issue
from tests.detection.support import free_port
from tests.support.onvif_sim import OnvifSimulator

from .test_detection_common import (
    PACKAGE_LOGGER,
    HostileDetector,
    StateRecorder,
    add,
    advance,
    camera_entry,
    camera_unique_id,
    detector_entity_id,
    entity_id,
    frames,
    hostile_detector,
    local_entry,
    server_entry,
    state,
)

DETECTION_ENTITIES = (
    ("binary_sensor", "person"),
    ("sensor", "person_count"),
    ("event", "detection"),
    ("image", "detection_image"),
)
CONTROLS = (
    ("switch", "detection_switch"),
    ("number", "confirm_threshold"),
    ("button", "analyse_now"),
)


@pytest.fixture
async def detector(freezer: FrozenDateTimeFactory) -> AsyncIterator[HostileDetector]:
    """A detector that sees one person in every frame."""
    async with hostile_detector(freezer) as server:
        yield server


def _states(
    hass: HomeAssistant, sim: OnvifSimulator, keys: tuple[tuple[str, str], ...]
) -> set[str]:
    return {state(hass, entity_id(hass, sim, domain, key)).state for domain, key in keys}


def _camera(hass: HomeAssistant, sim: OnvifSimulator) -> str:
    return entity_id(hass, sim, "camera", f"camera_{sim.config.profiles[0].token}")


async def test_camera_before_its_detector(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    onvif_sim: OnvifSimulator,
    detector: HostileDetector,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Without a detector the camera waits quietly (one INFO line); adding one later starts
    detection without reloading the camera, and links the camera's device to the detector's."""
    caplog.set_level(logging.INFO, logger=PACKAGE_LOGGER)
    camera = await add(hass, camera_entry(onvif_sim))
    await frames(hass, freezer, 5)
    assert _states(hass, onvif_sim, DETECTION_ENTITIES) == {STATE_UNAVAILABLE}
    assert STATE_UNAVAILABLE not in _states(hass, onvif_sim, CONTROLS)
    assert state(hass, _camera(hass, onvif_sim)).state != STATE_UNAVAILABLE
    ours = [r for r in caplog.records if r.name.startswith(PACKAGE_LOGGER)]
    assert [r.levelno for r in ours if r.levelno >= logging.WARNING] == []
    waiting = [r for r in ours if "waits for a detector" in r.getMessage()]
    assert [r.levelno for r in waiting] == [logging.INFO]
    coordinator = camera.runtime_data.detection
    with pytest.raises(HomeAssistantError) as waiting_error:
        await hass.services.async_call(
            DOMAIN,
            "detect",
            target={"entity_id": _camera(hass, onvif_sim)},
            blocking=True,
            return_response=True,
        )
    assert waiting_error.value.translation_key == "detect_failed"

    det = await add(hass, server_entry(detector.url))
    await frames(hass, freezer, 3)
    assert camera.runtime_data.detection is coordinator  # not reloaded
    assert state(hass, entity_id(hass, onvif_sim, "binary_sensor", "person")).state == STATE_ON
    assert detector.requests >= 3
    devices = dr.async_get(hass)
    camera_device = devices.async_get_device_by_identifier(
        (DOMAIN, camera_unique_id(onvif_sim, "")[:-1]), camera.entry_id
    )
    detector_device = devices.async_get_device_by_identifier(
        (DOMAIN, f"detector_{det.entry_id}"), det.entry_id
    )
    assert camera_device is not None
    assert detector_device is not None
    assert camera_device.via_device_id == detector_device.id
    ours = [r for r in caplog.records if r.name.startswith(PACKAGE_LOGGER)]
    assert [r for r in ours if r.levelno >= logging.WARNING] == []
    using = [r for r in caplog.records if "uses detector" in r.getMessage()]
    assert [r.levelno for r in using] == [logging.INFO]


async def test_switch_stops_frames_and_survives_reload(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    onvif_sim: OnvifSimulator,
    detector: HostileDetector,
) -> None:
    """Off: detection entities unavailable, no frame taken, nothing sent; kept over a reload."""
    await add(hass, server_entry(detector.url))
    camera = await add(hass, camera_entry(onvif_sim))
    await frames(hass, freezer, 3)
    switch = entity_id(hass, onvif_sim, "switch", "detection_switch")
    assert state(hass, switch).state == STATE_ON

    await hass.services.async_call("switch", "turn_off", {"entity_id": switch}, blocking=True)
    requests, snapshots = detector.requests, onvif_sim.snapshot_requests
    await frames(hass, freezer, 20)
    assert state(hass, switch).state == STATE_OFF
    assert _states(hass, onvif_sim, DETECTION_ENTITIES) == {STATE_UNAVAILABLE}
    assert state(hass, _camera(hass, onvif_sim)).state != STATE_UNAVAILABLE
    assert (detector.requests, onvif_sim.snapshot_requests) == (requests, snapshots)
    assert camera.options[CONF_DETECTION_ENABLED] is False

    assert await hass.config_entries.async_reload(camera.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    await frames(hass, freezer, 5)
    assert state(hass, switch).state == STATE_OFF
    assert _states(hass, onvif_sim, DETECTION_ENTITIES) == {STATE_UNAVAILABLE}
    assert (detector.requests, onvif_sim.snapshot_requests) == (requests, snapshots)

    await hass.services.async_call("switch", "turn_on", {"entity_id": switch}, blocking=True)
    await frames(hass, freezer, 3)
    assert state(hass, switch).state == STATE_ON
    assert detector.requests > requests
    assert state(hass, entity_id(hass, onvif_sim, "binary_sensor", "person")).state == STATE_ON
    assert camera.options[CONF_DETECTION_ENABLED] is True


async def test_button_and_service_errors(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    onvif_sim: OnvifSimulator,
    detector: HostileDetector,
) -> None:
    """The button analyses a frame at once; the service says clearly why it cannot."""
    await add(hass, server_entry(detector.url))
    await add(hass, camera_entry(onvif_sim, **{CONF_CONFIRM_THRESHOLD: 0.8}))
    button = entity_id(hass, onvif_sim, "button", "analyse_now")
    camera = _camera(hass, onvif_sim)
    requests = detector.requests
    # The first frame ran at setup; the button's frame confirms the person (two frames).
    await hass.services.async_call("button", "press", {"entity_id": button}, blocking=True)
    assert detector.requests == requests + 1
    assert state(hass, entity_id(hass, onvif_sim, "binary_sensor", "person")).state == STATE_ON

    # The detector fails: the service raises a translated HomeAssistantError.
    detector.behaviour = detector.error_500
    with pytest.raises(HomeAssistantError) as failed:
        await hass.services.async_call(
            DOMAIN, "detect", target={"entity_id": camera}, blocking=True, return_response=True
        )
    assert failed.value.translation_key == "detect_failed"
    # Known down now: refused without sending anything.
    requests = detector.requests
    with pytest.raises(HomeAssistantError):
        await hass.services.async_call("button", "press", {"entity_id": button}, blocking=True)
    assert detector.requests == requests

    # Detection off: a validation error, nothing sent.
    detector.behaviour = detector.good
    switch = entity_id(hass, onvif_sim, "switch", "detection_switch")
    await hass.services.async_call("switch", "turn_off", {"entity_id": switch}, blocking=True)
    with pytest.raises(ServiceValidationError) as off:
        await hass.services.async_call(
            DOMAIN, "detect", target={"entity_id": camera}, blocking=True, return_response=True
        )
    assert off.value.translation_key == "detection_off"
    assert detector.requests == requests
    # The detector comes back (the hub's probe) while detection is off: still nothing sent
    # for this camera.
    await advance(hass, freezer, 6)
    assert detector.requests == requests + 1  # the probe itself
    await frames(hass, freezer, 5)
    assert detector.requests == requests + 1

    # Setting the threshold it already has changes nothing (and stores nothing new).
    number = entity_id(hass, onvif_sim, "number", "confirm_threshold")
    await hass.services.async_call(
        "number", "set_value", {"entity_id": number, "value": 0.8}, blocking=True
    )
    assert float(state(hass, number).state) == 0.8


async def test_service_on_a_camera_without_detection(
    hass: HomeAssistant, onvif_sim: OnvifSimulator
) -> None:
    """A camera whose options name no detector has no detection to run."""
    await add(hass, camera_entry(onvif_sim, **{CONF_DETECTOR: DETECTOR_NONE}))
    with pytest.raises(ServiceValidationError) as refused:
        await hass.services.async_call(
            DOMAIN,
            "detect",
            target={"entity_id": _camera(hass, onvif_sim)},
            blocking=True,
            return_response=True,
        )
    assert refused.value.translation_key == "no_detection"


async def test_restart_with_a_person_present_is_not_stale(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    onvif_sim: OnvifSimulator,
    detector: HostileDetector,
) -> None:
    """After a reload the sensors start off and turn on only once frames confirm again."""
    await add(hass, server_entry(detector.url))
    camera = await add(hass, camera_entry(onvif_sim))
    await frames(hass, freezer, 3)
    person = entity_id(hass, onvif_sim, "binary_sensor", "person")
    count = entity_id(hass, onvif_sim, "sensor", "person_count")
    assert state(hass, person).state == STATE_ON
    recorder = StateRecorder(hass, person)

    assert await hass.config_entries.async_unload(camera.entry_id)
    await hass.async_block_till_done()
    assert await hass.config_entries.async_setup(camera.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    # One frame ran at setup: seen once is not confirmed.
    assert state(hass, person).state == STATE_OFF
    assert state(hass, count).state == "0"
    assert STATE_ON not in recorder.transitions
    await frames(hass, freezer, 1)
    assert state(hass, person).state == STATE_ON
    assert recorder.transitions[-2:] == [STATE_OFF, STATE_ON]


async def test_unload_order(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    onvif_sim: OnvifSimulator,
    detector: HostileDetector,
) -> None:
    """Unloading the detector under a running camera makes the camera wait; unloading both
    stops every loop (the harness fails the test on a lingering task, timer or thread)."""
    det = await add(hass, server_entry(detector.url))
    camera = await add(hass, camera_entry(onvif_sim))
    await frames(hass, freezer, 3)
    hub = det.runtime_data

    assert await hass.config_entries.async_unload(det.entry_id)
    await hass.async_block_till_done()
    assert det.state is ConfigEntryState.NOT_LOADED
    assert hub.reachable  # shut down, not failed
    requests = detector.requests
    await frames(hass, freezer, 3)
    assert detector.requests == requests
    assert _states(hass, onvif_sim, DETECTION_ENTITIES) == {STATE_UNAVAILABLE}

    assert await hass.config_entries.async_setup(det.entry_id)
    await hass.async_block_till_done()
    await frames(hass, freezer, 3)
    assert state(hass, entity_id(hass, onvif_sim, "binary_sensor", "person")).state == STATE_ON

    assert await hass.config_entries.async_unload(camera.entry_id)
    assert await hass.config_entries.async_unload(det.entry_id)
    await hass.async_block_till_done()
    requests, snapshots = detector.requests, onvif_sim.snapshot_requests
    await advance(hass, freezer, 600)
    assert (detector.requests, onvif_sim.snapshot_requests) == (requests, snapshots)


async def test_diagnostics(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    hass_client: ClientSessionGenerator,
    onvif_sim: OnvifSimulator,
    detector: HostileDetector,
) -> None:
    """A detector's diagnostics lose its key, fingerprint and host; a camera's show detection."""
    det = server_entry(detector.url)
    key, fingerprint = "s3cret-api-key-0123456789abcdef", "AB" * 32
    det.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        det, data={**det.data, CONF_API_KEY: key, CONF_FINGERPRINT: fingerprint}
    )
    assert await hass.config_entries.async_setup(det.entry_id)
    await hass.async_block_till_done()
    camera = await add(hass, camera_entry(onvif_sim, zones="Door: 0,0 1,0 1,1 0,1"))
    await frames(hass, freezer, 3)

    found = await get_diagnostics_for_config_entry(hass, hass_client, det)
    dump = str(found)
    for secret in (key, fingerprint, "127.0.0.1"):
        assert secret not in dump
    assert found["entry"]["data"]["url"].startswith("http://redacted:")
    assert found["detector"]["reachable"] is True
    assert found["detector"]["calls"] >= 3

    found = await get_diagnostics_for_config_entry(hass, hass_client, camera)
    detection = found["detection"]
    assert detection["detector"] == det.title
    assert detection["enabled"] is True
    assert detection["settings"]["zones"] == ["Door"]
    assert detection["occupied"] == ["person", "zone:door:person"]
    [obj] = detection["objects"]
    assert obj["label"] == "person"
    assert obj["zones"] == ["Door"]
    assert "127.0.0.1" not in str(found)


async def test_detector_entries_that_cannot_work(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, onvif_sim: OnvifSimulator
) -> None:
    """A local model that is not there fails setup with a clear error; a server that is down
    at start still sets up (shown unreachable) and its cameras wait without errors; removing a
    detector entry removes its repair issues."""
    missing = local_entry("no-such-model.tflite")
    missing.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(missing.entry_id)
    assert missing.state is ConfigEntryState.SETUP_ERROR
    assert missing.reason is not None

    down = await add(hass, server_entry(f"http://127.0.0.1:{free_port()}"))
    assert down.state is ConfigEntryState.LOADED
    reachable = detector_entity_id(hass, down, "binary_sensor", "reachable")
    assert state(hass, reachable).state == STATE_OFF
    await add(hass, camera_entry(onvif_sim, **{CONF_DETECTOR: down.entry_id}))
    await frames(hass, freezer, 3)
    assert _states(hass, onvif_sim, DETECTION_ENTITIES) == {STATE_UNAVAILABLE}
    await advance(hass, freezer, 200)
    issue_id = f"detector_unreachable_{down.entry_id}"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None

    assert await hass.config_entries.async_remove(down.entry_id)
    await hass.async_block_till_done()
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None


async def test_refused_key_starts_reauthentication(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    onvif_sim: OnvifSimulator,
    detector: HostileDetector,
) -> None:
    """A detector that starts refusing the key: down at once, and the next probe asks the user
    for a new key instead of retrying forever."""
    det = await add(hass, server_entry(detector.url))
    await add(hass, camera_entry(onvif_sim))
    await frames(hass, freezer, 2)
    detector.behaviour = detector.unauthorized
    await frames(hass, freezer, 1)
    assert state(hass, entity_id(hass, onvif_sim, "binary_sensor", "person")).state == (
        STATE_UNAVAILABLE
    )
    await advance(hass, freezer, 6)  # the first probe
    flows = list(det.async_get_active_flows(hass, {SOURCE_REAUTH}))
    assert len(flows) == 1
    sensor = detector_entity_id(hass, det, "sensor", "last_error")
    assert state(hass, sensor).state == "invalid_key"


async def test_camera_without_snapshots_has_no_detection(
    hass: HomeAssistant, onvif_sim: OnvifSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    """A camera whose snapshot and stream URIs are both refused cannot be analysed: no detection
    entities. (Without a snapshot URI alone, frames come from the stream: tests/test_rtsp.py.)"""
    onvif_sim.hostile_snapshot_uri = f"http://localhost:{onvif_sim.port}/snapshot/profile_main.jpg"
    onvif_sim.hostile_stream_uri = "rtsp://192.0.2.50:554/elsewhere"
    camera = await add(hass, camera_entry(onvif_sim))
    assert camera.runtime_data.detection is None
    registry = er.async_get(hass)
    assert (
        registry.async_get_entity_id("binary_sensor", DOMAIN, camera_unique_id(onvif_sim, "person"))
        is None
    )
    assert "offers neither a snapshot nor a stream URI" in caplog.text


async def test_camera_snapshots_failing(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    onvif_sim: OnvifSimulator,
    detector: HostileDetector,
) -> None:
    """Snapshots failing (HTTP 503) make the detection entities unavailable, not the camera's
    health; they come back with the snapshots. A service call says why it failed."""
    await add(hass, server_entry(detector.url))
    camera = await add(hass, camera_entry(onvif_sim))
    await frames(hass, freezer, 2)
    images = onvif_sim.config.images
    onvif_sim.config.images = []
    requests = detector.requests
    await frames(hass, freezer, 3)
    assert _states(hass, onvif_sim, DETECTION_ENTITIES) == {STATE_UNAVAILABLE}
    assert detector.requests == requests
    assert camera.runtime_data.coordinator.last_update_success
    with pytest.raises(HomeAssistantError) as failed:
        await hass.services.async_call(
            DOMAIN,
            "detect",
            target={"entity_id": _camera(hass, onvif_sim)},
            blocking=True,
            return_response=True,
        )
    assert failed.value.translation_key == "detect_failed"

    onvif_sim.config.images = images
    await frames(hass, freezer, 2)
    assert state(hass, entity_id(hass, onvif_sim, "binary_sensor", "person")).state == STATE_ON


async def test_service_on_an_unloaded_camera(
    hass: HomeAssistant, onvif_sim: OnvifSimulator, detector: HostileDetector
) -> None:
    """An unloaded camera cannot be analysed; the error names it."""
    await add(hass, server_entry(detector.url))
    camera = await add(hass, camera_entry(onvif_sim))
    entity = _camera(hass, onvif_sim)
    assert await hass.config_entries.async_unload(camera.entry_id)
    with pytest.raises(ServiceValidationError) as refused:
        await hass.services.async_call(
            DOMAIN, "detect", target={"entity_id": entity}, blocking=True, return_response=True
        )
    assert refused.value.translation_key == "camera_not_loaded"


@pytest.mark.parametrize(
    ("url", "raised"),
    [
        ("http://192.168.1.5:8765", True),
        ("http://detector.local:8765", True),
        ("http://localhost:8765", False),
        ("http://[::1]:8765", False),
        ("https://detector.example:8765", False),
        (None, False),
    ],
)
async def test_plaintext_detector_issue(hass: HomeAssistant, url: str | None, raised: bool) -> None:
    """Frames sent unencrypted to another machine raise a repair issue; loopback, TLS and
    local models do not, and a fixed URL clears it."""
    entry = server_entry("http://192.168.1.5:8765")
    entry.add_to_hass(hass)
    issue_id = f"detector_plaintext_{entry.entry_id}"
    async_sync_detector_plaintext_issue(hass, entry)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None

    data = {**entry.data, CONF_URL: url} if url else dict(local_entry("ssd").data)
    hass.config_entries.async_update_entry(entry, data=data)
    async_sync_detector_plaintext_issue(hass, entry)
    assert (ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None) is raised


async def test_entities_the_options_no_longer_call_for_are_removed(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    onvif_sim: OnvifSimulator,
    detector: HostileDetector,
) -> None:
    """A removed zone or deselected group takes its entities with it at the reload, and a camera
    set to no detector keeps none of its detection entities: nothing lingers unavailable."""
    await add(hass, server_entry(detector.url))
    camera = await add(
        hass, camera_entry(onvif_sim, zones="Street: 0,0 1,0 1,1 0,1 | person, vehicle")
    )
    registry = er.async_get(hass)

    def keys() -> set[str]:
        prefix = camera_unique_id(onvif_sim, "")
        return {
            e.unique_id.removeprefix(prefix)
            for e in er.async_entries_for_config_entry(registry, camera.entry_id)
        }

    assert {"zone_street_person", "zone_street_vehicle", "vehicle", "vehicle_count"} <= keys()
    hass.config_entries.async_update_entry(
        camera,
        options={
            **camera.options,
            CONF_ZONES: "Street: 0,0 1,0 1,1 0,1 | person",
            CONF_GROUPS: ["person", "animal"],
        },
    )
    assert await hass.config_entries.async_reload(camera.entry_id)
    await hass.async_block_till_done()
    now = keys()
    assert "zone_street_person" in now
    assert not {"zone_street_vehicle", "vehicle", "vehicle_count"} & now

    hass.config_entries.async_update_entry(
        camera, options={**camera.options, CONF_DETECTOR: DETECTOR_NONE}
    )
    assert await hass.config_entries.async_reload(camera.entry_id)
    await hass.async_block_till_done()
    # What stays is not detection's: the camera, its history (calendar, snapshot disk usage) and
    # the motion sensor of its events.
    assert keys() == {
        f"camera_{onvif_sim.config.profiles[0].token}",
        "security_events",
        "snapshot_disk_usage",
        "motion",
    }
