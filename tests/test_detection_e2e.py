"""Detection end to end inside Home Assistant: simulator -> real detector -> pipeline -> entities.

Nothing is mocked: the ONVIF simulator serves `bus.jpg`, the real detector server process (TFLite
SSD MobileNet, our API and its DeepStack dialect) or the local TFLite model finds the people, and
the assertions read Home Assistant's states. On `bus.jpg` that model confirms one person (score
about 0.8; the others score below the 0.7 threshold) and the bus.
"""

from __future__ import annotations

from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import entity_registry as er
from PIL import Image
import pytest
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.home_security_intel.const import (
    API_DEEPSTACK,
    API_HSI,
    CONF_CONFIRM_THRESHOLD,
    CONF_OFF_DELAY,
    CONF_ZONES,
    DOMAIN,
)
from tests.detection.support import IMAGES, DetectorServer, needs_detector_venv
from tests.support.onvif_sim import OnvifSimulator

from .test_detection_common import (
    StateRecorder,
    add,
    advance,
    camera_entry,
    camera_unique_id,
    detector_server,
    entity_id,
    frames,
    install_local_model,
    is_jpeg,
    local_entry,
    needs_local_model,
    plain_jpeg,
    server_entry,
    state,
)

pytestmark = needs_detector_venv

OFF_DELAY = 5.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DetectorServer]:
    """One real detector server for the whole module (starting it takes a few seconds)."""
    yield from detector_server(tmp_path_factory.mktemp("e2e"))


async def _run_bus_then_empty(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    onvif_sim: OnvifSimulator,
    hass_client: ClientSessionGenerator,
    tmp_path: Path,
) -> None:
    """bus.jpg for 15 frames, then an empty frame: the whole story, asserted on HA's states."""
    person = entity_id(hass, onvif_sim, "binary_sensor", "person")
    count = entity_id(hass, onvif_sim, "sensor", "person_count")
    event = entity_id(hass, onvif_sim, "event", "detection")
    image = entity_id(hass, onvif_sim, "image", "detection_image")
    camera = entity_id(hass, onvif_sim, "camera", f"camera_{onvif_sim.config.profiles[0].token}")
    events = StateRecorder(hass, event)
    occupancy = StateRecorder(hass, person)

    await frames(hass, freezer, 15)

    assert state(hass, person).state == STATE_ON
    confirmed = int(state(hass, count).state)
    assert confirmed >= 1
    assert state(hass, person).attributes["object_ids"]
    assert len(state(hass, person).attributes["object_ids"]) == confirmed
    # One event per confirmed person over 15 frames, never a second for the same one.
    person_events = [e for e in events.fired() if e["event_type"] == "person_detected"]
    assert len(person_events) == confirmed
    ids = {e["object_id"] for e in person_events}
    assert ids == set(state(hass, person).attributes["object_ids"])
    first = person_events[0]
    assert first["label"] == "person"
    assert 0.7 <= first["score"] <= 1.0
    assert len(first["box"]) == 4
    assert all(0.0 <= v <= 1.0 for v in first["box"])
    assert first["zones"] == []
    vehicle = entity_id(hass, onvif_sim, "binary_sensor", "vehicle")
    assert state(hass, vehicle).state == STATE_ON  # the bus
    assert state(hass, camera).state != STATE_UNAVAILABLE

    # The image entity hands out the annotated frame: a JPEG, not the raw snapshot.
    client = await hass_client()
    response = await client.get(state(hass, image).attributes["entity_picture"])
    assert response.status == HTTPStatus.OK
    drawn = await response.read()
    assert is_jpeg(drawn)
    assert drawn != (IMAGES / "bus.jpg").read_bytes()

    # The street empties: on for the off delay still, then off, count 0.
    onvif_sim.config.images = [plain_jpeg(tmp_path / "empty.jpg")]
    await frames(hass, freezer, 1)
    assert state(hass, count).state == "0"
    assert state(hass, person).state == STATE_ON
    await frames(hass, freezer, int(OFF_DELAY) + 1)
    assert state(hass, person).state == STATE_OFF
    assert state(hass, count).state == "0"
    # It went on once and off once: no flapping in between.
    assert occupancy.transitions == [STATE_ON, STATE_OFF]
    assert len([e for e in events.fired() if e["event_type"] == "person_detected"]) == confirmed


@pytest.mark.parametrize("api", [API_HSI, API_DEEPSTACK])
async def test_bus_through_the_server(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    onvif_sim: OnvifSimulator,
    hass_client: ClientSessionGenerator,
    server: DetectorServer,
    tmp_path: Path,
    api: str,
) -> None:
    """Our API and the DeepStack dialect of the real server give the same story."""
    onvif_sim.config.images = [IMAGES / "bus.jpg"]
    await add(hass, server_entry(server.url, api))
    await add(hass, camera_entry(onvif_sim, **{CONF_OFF_DELAY: OFF_DELAY}))
    await _run_bus_then_empty(hass, freezer, onvif_sim, hass_client, tmp_path)


@needs_local_model
async def test_bus_through_the_local_model(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    onvif_sim: OnvifSimulator,
    hass_client: ClientSessionGenerator,
    tmp_path: Path,
) -> None:
    """The local TFLite detector (inside Home Assistant's Python) gives the same story."""
    onvif_sim.config.images = [IMAGES / "bus.jpg"]
    model = await hass.async_add_executor_job(install_local_model, hass)
    detector = await add(hass, local_entry(model))
    await add(hass, camera_entry(onvif_sim, **{CONF_OFF_DELAY: OFF_DELAY}))
    await _run_bus_then_empty(hass, freezer, onvif_sim, hass_client, tmp_path)
    # Unloading the detector stops its worker thread (the harness checks for lingering threads).
    assert await hass.config_entries.async_unload(detector.entry_id)
    await advance(hass, freezer, 1)


def _shifted_bus(path: Path, dx: int) -> Path:
    """bus.jpg moved ``dx`` pixels to the right (grey fills the gap): the people walked right."""
    with Image.open(IMAGES / "bus.jpg") as bus:
        canvas = Image.new("RGB", bus.size, (120, 120, 120))
        canvas.paste(bus.convert("RGB"), (dx, 0))
    canvas.save(path, format="JPEG", quality=90)
    return path


# The confirmed person's feet are at about (0.17, 0.83) in bus.jpg, (0.24, 0.83) moved 60 px.
ZONES = "Door: 0,0.7 0.35,0.7 0.35,1 0,1 | person\nPath: 0.2,0.7 0.45,0.7 0.45,1 0.2,1 | person"


async def test_zones(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    onvif_sim: OnvifSimulator,
    server: DetectorServer,
    tmp_path: Path,
) -> None:
    """The first event already names its zone; walking into a second zone is zone_entered only."""
    onvif_sim.config.images = [IMAGES / "bus.jpg"]
    await add(hass, server_entry(server.url))
    await add(hass, camera_entry(onvif_sim, **{CONF_ZONES: ZONES}))
    door = entity_id(hass, onvif_sim, "binary_sensor", "zone_door_person")
    path = entity_id(hass, onvif_sim, "binary_sensor", "zone_path_person")
    event = entity_id(hass, onvif_sim, "event", "detection")
    # Zones track persons only: no vehicle sensor per zone.
    registry = er.async_get(hass)
    assert (
        registry.async_get_entity_id(
            "binary_sensor", DOMAIN, camera_unique_id(onvif_sim, "zone_door_vehicle")
        )
        is None
    )
    assert "zone_entered" in state(hass, event).attributes["event_types"]
    events = StateRecorder(hass, event)

    await frames(hass, freezer, 5)
    assert state(hass, door).state == STATE_ON
    assert state(hass, door).attributes["object_ids"]
    assert state(hass, path).state == STATE_OFF
    # The bus is detected too (vehicle_detected, in no zone: zones track persons here).
    [detected] = events.fired("person")
    assert detected["event_type"] == "person_detected"
    assert detected["zones"] == ["Door"]
    assert "zone" not in detected

    onvif_sim.config.images = [_shifted_bus(tmp_path / "moved.jpg", 60)]
    await frames(hass, freezer, 3)
    assert state(hass, path).state == STATE_ON
    assert state(hass, door).state == STATE_ON
    kinds = [fired["event_type"] for fired in events.fired("person")]
    assert kinds == ["person_detected", "zone_entered"]
    entered = events.fired("person")[-1]
    assert entered["zone"] == "Path"
    assert entered["object_id"] == detected["object_id"]
    assert entered["zones"] == ["Door", "Path"]


async def test_unconfirmed_never_turns_anything_on(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    onvif_sim: OnvifSimulator,
    server: DetectorServer,
) -> None:
    """Above the model's score nothing confirms: no occupancy, no count, no event; lowering the
    threshold confirms at the next frame; the value is kept in the options over a reload."""
    onvif_sim.config.images = [IMAGES / "bus.jpg"]
    await add(hass, server_entry(server.url))
    camera = await add(hass, camera_entry(onvif_sim))
    number = entity_id(hass, onvif_sim, "number", "confirm_threshold")
    person = entity_id(hass, onvif_sim, "binary_sensor", "person")
    event = entity_id(hass, onvif_sim, "event", "detection")
    assert float(state(hass, number).state) == 0.7
    await hass.services.async_call(
        "number", "set_value", {"entity_id": number, "value": 0.9}, blocking=True
    )
    assert float(state(hass, number).state) == 0.9
    assert camera.options[CONF_CONFIRM_THRESHOLD] == 0.9
    occupancy = StateRecorder(hass, person)
    events = StateRecorder(hass, event)

    await frames(hass, freezer, 10)
    assert STATE_ON not in occupancy.states
    assert state(hass, person).state == STATE_OFF
    assert state(hass, entity_id(hass, onvif_sim, "sensor", "person_count")).state == "0"
    assert events.fired() == []

    assert await hass.config_entries.async_reload(camera.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert float(state(hass, number).state) == 0.9
    await frames(hass, freezer, 3)
    assert state(hass, person).state == STATE_OFF

    # At once: the tracks' score histories are kept, so the next frame confirms.
    await hass.services.async_call(
        "number", "set_value", {"entity_id": number, "value": 0.7}, blocking=True
    )
    await frames(hass, freezer, 1)
    assert state(hass, person).state == STATE_ON
    assert [fired["event_type"] for fired in events.fired("person")] == ["person_detected"]


async def test_frames_that_are_not_pictures_are_skipped_and_counted(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    onvif_sim: OnvifSimulator,
    server: DetectorServer,
    tmp_path: Path,
) -> None:
    """A truncated JPEG (the detector refuses it) and an HTML page (the camera client does):
    each frame is skipped and counted, the entities keep their state and stay available."""
    onvif_sim.config.images = [IMAGES / "bus.jpg"]
    await add(hass, server_entry(server.url))
    camera = camera_entry(onvif_sim)
    camera.add_to_hass(hass)
    # The figure is disabled by default: enabled in the registry, as a user would.
    registry = er.async_get(hass)
    dropped = registry.async_get_or_create(
        "sensor",
        DOMAIN,
        camera_unique_id(onvif_sim, "frames_dropped"),
        config_entry=camera,
        disabled_by=None,
    ).entity_id
    assert await hass.config_entries.async_setup(camera.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    person = entity_id(hass, onvif_sim, "binary_sensor", "person")
    count = entity_id(hass, onvif_sim, "sensor", "person_count")
    events = StateRecorder(hass, entity_id(hass, onvif_sim, "event", "detection"))
    await frames(hass, freezer, 2)
    assert state(hass, person).state == STATE_ON
    confirmed = state(hass, count).state
    assert state(hass, dropped).state == "0"

    truncated = tmp_path / "truncated.jpg"
    whole = (IMAGES / "bus.jpg").read_bytes()
    truncated.write_bytes(whole[: len(whole) // 3])
    html = tmp_path / "login.jpg"
    html.write_bytes(b"<!DOCTYPE html><html><body>Please log in</body></html>")
    onvif_sim.config.images = [truncated, html]
    await frames(hass, freezer, 4)  # shorter than the off delay: nothing may change
    assert state(hass, dropped).state == "4"
    # Asked now, the service says why (one call gets the truncated frame, one the HTML).
    camera_id = entity_id(hass, onvif_sim, "camera", f"camera_{onvif_sim.config.profiles[0].token}")
    for _ in range(2):
        with pytest.raises(HomeAssistantError) as failed:
            await hass.services.async_call(
                DOMAIN,
                "detect",
                target={"entity_id": camera_id},
                blocking=True,
                return_response=True,
            )
        assert failed.value.translation_key == "detect_failed"
    assert state(hass, person).state == STATE_ON
    assert state(hass, count).state == confirmed

    onvif_sim.config.images = [IMAGES / "bus.jpg"]
    await frames(hass, freezer, 2)
    assert state(hass, person).state == STATE_ON
    assert state(hass, dropped).state == "4"
    # Still the same people: nobody was announced twice because of the bad frames.
    ids = [fired["object_id"] for fired in events.fired()]
    assert len(ids) == len(set(ids))


async def test_detect_service(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    onvif_sim: OnvifSimulator,
    server: DetectorServer,
) -> None:
    """The service answers with the raw detections, the confirmed objects and the counts."""
    onvif_sim.config.images = [IMAGES / "bus.jpg"]
    await add(hass, server_entry(server.url))
    await add(hass, camera_entry(onvif_sim))
    await frames(hass, freezer, 3)
    camera = entity_id(hass, onvif_sim, "camera", f"camera_{onvif_sim.config.profiles[0].token}")
    response = await hass.services.async_call(
        DOMAIN, "detect", target={"entity_id": camera}, blocking=True, return_response=True
    )
    assert response is not None
    answer = response[camera]
    assert isinstance(answer, dict)
    assert (answer["width"], answer["height"]) == (810, 1080)
    labels = {d["label"] for d in answer["detections"]}
    assert {"person", "bus"} <= labels
    persons = [o for o in answer["objects"] if o["group"] == "person"]
    assert answer["counts"]["person"] == len(persons) >= 1
    assert answer["counts"]["vehicle"] == 1
    assert all(o["object_id"] and len(o["box"]) == 4 for o in answer["objects"])
    # The same objects as the entities show.
    person = state(hass, entity_id(hass, onvif_sim, "binary_sensor", "person"))
    assert {o["object_id"] for o in persons} == set(person.attributes["object_ids"])

    # Anything but one of our cameras is refused with a clear error.
    with pytest.raises(ServiceValidationError) as refused:
        await hass.services.async_call(
            DOMAIN,
            "detect",
            target={"entity_id": person.entity_id},
            blocking=True,
            return_response=True,
        )
    assert refused.value.translation_key == "no_camera"
