"""Camera entities against the simulator: stills over digest/basic auth, streams, refused URIs."""

from __future__ import annotations

import logging
from typing import Any, Literal

from homeassistant.components.camera import async_get_image, async_get_stream_source
from homeassistant.components.camera.const import CameraEntityFeature
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_SUPPORTED_FEATURES, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.home_security_intel.const import (
    CONF_CONFIRM_THRESHOLD,
    CONF_DETECTOR,
    CONF_FPS,
    CONF_FRAME_SOURCE,
    CONF_GROUPS,
    CONF_MAX_AREA,
    CONF_MIN_AREA,
    CONF_MIN_SCORE,
    CONF_OFF_DELAY,
    CONF_PROFILES,
    DETECTOR_NONE,
    DOMAIN,
    FRAME_SOURCE_SNAPSHOT,
)
from custom_components.home_security_intel.detection_coordinator import DetectionSettings
from custom_components.home_security_intel.onvif import normalize_mac
from tests.common import setup_entry
from tests.support.onvif_sim import OnvifSimulator

CAMERA_LOGGER = "custom_components.home_security_intel.camera"


def _entity_id(hass: HomeAssistant, sim: OnvifSimulator, profile_index: int = 0) -> str:
    token = sim.config.profiles[profile_index].token
    unique_id = f"{normalize_mac(sim.config.mac)}_camera_{token}"
    entity_id = er.async_get(hass).async_get_entity_id("camera", DOMAIN, unique_id)
    assert entity_id is not None
    return entity_id


def _options_input(tokens: list[str]) -> dict[str, Any]:
    """What the options form sends: these profiles, no detection, the default detection settings."""
    settings = DetectionSettings()
    return {
        CONF_DETECTOR: DETECTOR_NONE,
        CONF_FRAME_SOURCE: FRAME_SOURCE_SNAPSHOT,
        CONF_PROFILES: tokens,
        "detection": {
            CONF_FPS: settings.fps,
            CONF_GROUPS: list(settings.groups),
            CONF_MIN_SCORE: settings.min_score,
            CONF_CONFIRM_THRESHOLD: settings.confirm_threshold,
            CONF_MIN_AREA: settings.min_area,
            CONF_MAX_AREA: settings.max_area,
            CONF_OFF_DELAY: settings.off_delay,
        },
        "zones_and_masks": {},
    }


def _next_image(sim: OnvifSimulator) -> bytes:
    """The JPEG the simulator will serve for its next snapshot request."""
    images = sim.config.images
    return images[sim.snapshot_requests % len(images)].read_bytes()


@pytest.mark.parametrize("auth", ["digest", "basic", "none"])
async def test_camera_image_is_the_cameras_jpeg(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    onvif_sim: OnvifSimulator,
    auth: Literal["digest", "basic", "none"],
) -> None:
    """The still image is exactly the simulator's JPEG, whatever HTTP auth the camera wants."""
    onvif_sim.snapshot_auth = auth
    await setup_entry(hass, config_entry)
    entity_id = _entity_id(hass, onvif_sim)

    for _ in range(2):  # the simulator alternates between its two sample images
        expected = _next_image(onvif_sim)
        image = await async_get_image(hass, entity_id)
        assert image.content == expected
    assert onvif_sim.snapshot_requests == 2


async def test_entity_attributes(
    hass: HomeAssistant, setup_integration: MockConfigEntry, onvif_sim: OnvifSimulator
) -> None:
    """Brand, model, stream support and a translated name with the profile as placeholder."""
    entity_id = _entity_id(hass, onvif_sim)
    state = hass.states.get(entity_id)
    assert state is not None
    assert state.attributes["brand"] == onvif_sim.config.manufacturer
    assert state.attributes["model_name"] == onvif_sim.config.model
    assert state.attributes[ATTR_SUPPORTED_FEATURES] == CameraEntityFeature.STREAM
    entry = er.async_get(hass).async_get(entity_id)
    assert entry is not None
    assert entry.translation_key == "profile"
    assert entry.has_entity_name


async def test_stream_source_has_credentials_that_are_not_logged(
    hass: HomeAssistant,
    setup_integration: MockConfigEntry,
    onvif_sim: OnvifSimulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The RTSP URI carries the credentials for the stream worker, and never reaches the log."""
    caplog.set_level(logging.DEBUG)
    source = await async_get_stream_source(hass, _entity_id(hass, onvif_sim))
    config = onvif_sim.config
    assert source is not None
    assert source.startswith(f"rtsp://{config.username}:{config.password}@127.0.0.1")
    assert source.endswith(f"/{config.profiles[0].token}")
    assert config.password not in caplog.text


async def test_camera_embedded_credentials_give_way_to_the_entrys(
    hass: HomeAssistant, config_entry: MockConfigEntry, onvif_sim: OnvifSimulator
) -> None:
    """A camera that puts its own credentials in its URIs works, with the entry's credentials."""
    onvif_sim.hostile_stream_uri = "rtsp://viewer:camera-secret@127.0.0.1:8554/live?ch=1"
    onvif_sim.hostile_snapshot_uri = (
        f"http://viewer:camera-secret@127.0.0.1:{onvif_sim.port}/snapshot/profile_main.jpg"
    )
    await setup_entry(hass, config_entry)
    assert config_entry.runtime_data.info.refused_uris == ()
    entity_id = _entity_id(hass, onvif_sim)
    config = onvif_sim.config
    source = await async_get_stream_source(hass, entity_id)
    assert source == f"rtsp://{config.username}:{config.password}@127.0.0.1:8554/live?ch=1"
    expected = _next_image(onvif_sim)
    assert (await async_get_image(hass, entity_id)).content == expected
    assert "camera-secret" not in repr(config_entry.runtime_data.info)


async def test_profiles_from_options(
    hass: HomeAssistant, config_entry: MockConfigEntry, onvif_sim: OnvifSimulator
) -> None:
    """Every profile chosen in the options gets its own camera entity."""
    tokens = [profile.token for profile in onvif_sim.config.profiles]
    await setup_entry(hass, config_entry, options={CONF_PROFILES: tokens})
    entity_ids = {_entity_id(hass, onvif_sim, index) for index in range(len(tokens))}
    assert len(entity_ids) == len(tokens)
    second = await async_get_image(hass, _entity_id(hass, onvif_sim, 1))
    assert second.content[:2] == b"\xff\xd8"  # a JPEG


async def test_unknown_profile_falls_back_to_first(
    hass: HomeAssistant, config_entry: MockConfigEntry, onvif_sim: OnvifSimulator
) -> None:
    """Options naming no existing profile still give the camera's first profile an entity."""
    await setup_entry(hass, config_entry, options={**config_entry.options, CONF_PROFILES: ["gone"]})
    _entity_id(hass, onvif_sim, 0)
    entries = er.async_entries_for_config_entry(er.async_get(hass), config_entry.entry_id)
    # One camera entity, besides the motion sensor of the camera's ONVIF events.
    assert sorted(e.domain for e in entries if e.domain in ("camera", "binary_sensor")) == [
        "binary_sensor",
        "camera",
    ]


async def test_refused_snapshot_uri_is_never_fetched(
    hass: HomeAssistant, config_entry: MockConfigEntry, onvif_sim: OnvifSimulator
) -> None:
    """A snapshot URI pointing elsewhere is refused: no request is made, no image is returned."""
    # The hostile URI points back at the simulator itself, so a fetch would show in its counter.
    onvif_sim.hostile_snapshot_uri = f"http://localhost:{onvif_sim.port}/snapshot/profile_main.jpg"
    await setup_entry(hass, config_entry)
    assert config_entry.runtime_data.info.profiles[0].snapshot_uri is None
    assert config_entry.runtime_data.info.refused_uris
    with pytest.raises(HomeAssistantError):
        await async_get_image(hass, _entity_id(hass, onvif_sim))
    assert onvif_sim.snapshot_requests == 0


async def test_refused_stream_uri_means_no_stream(
    hass: HomeAssistant, config_entry: MockConfigEntry, onvif_sim: OnvifSimulator
) -> None:
    """Without an accepted stream URI the entity offers stills only and no stream source."""
    onvif_sim.hostile_stream_uri = "rtsp://192.0.2.50:554/elsewhere"
    await setup_entry(hass, config_entry)
    entity_id = _entity_id(hass, onvif_sim)
    state = hass.states.get(entity_id)
    assert state is not None
    assert state.attributes[ATTR_SUPPORTED_FEATURES] == 0
    assert await async_get_stream_source(hass, entity_id) is None
    expected = _next_image(onvif_sim)
    assert (await async_get_image(hass, entity_id)).content == expected


async def test_snapshot_outage_logs_once(
    hass: HomeAssistant,
    setup_integration: MockConfigEntry,
    onvif_sim: OnvifSimulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Failing snapshots log one warning per outage, not per frame, and one line on recovery."""
    caplog.set_level(logging.INFO, logger=CAMERA_LOGGER)
    entity_id = _entity_id(hass, onvif_sim)
    images = onvif_sim.config.images
    onvif_sim.config.images = []  # the simulator answers 503 without an image
    for _ in range(3):
        with pytest.raises(HomeAssistantError):
            await async_get_image(hass, entity_id)
    logs = [r for r in caplog.records if r.name == CAMERA_LOGGER]
    assert [r.levelno for r in logs] == [logging.WARNING]

    onvif_sim.config.images = images
    expected = _next_image(onvif_sim)
    assert (await async_get_image(hass, entity_id)).content == expected
    await async_get_image(hass, entity_id)
    logs = [r for r in caplog.records if r.name == CAMERA_LOGGER]
    assert [r.levelno for r in logs] == [logging.WARNING, logging.INFO]
    assert setup_integration.data["password"] not in caplog.text


async def test_deselected_profile_entity_is_removed_on_reload(
    hass: HomeAssistant, config_entry: MockConfigEntry, onvif_sim: OnvifSimulator
) -> None:
    """Deselecting a profile in the options removes its camera entity; nothing else goes.

    Entities of other platforms (even with a camera-kind unique id), camera entities of another
    kind and another entry's camera entities are registered by hand: they stand for future
    platforms and entries and must survive the clean-up.
    """
    registry = er.async_get(hass)
    mac = normalize_mac(onvif_sim.config.mac)
    tokens = [profile.token for profile in onvif_sim.config.profiles]
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(config_entry, options={CONF_PROFILES: tokens})
    other_entry = MockConfigEntry(domain=DOMAIN, unique_id="02:00:5e:10:00:99")
    other_entry.add_to_hass(hass)
    bystanders = [
        registry.async_get_or_create(
            "binary_sensor", DOMAIN, f"{mac}_camera_{tokens[1]}", config_entry=config_entry
        ),
        registry.async_get_or_create(
            "camera", DOMAIN, f"{mac}_detections", config_entry=config_entry
        ),
        registry.async_get_or_create(
            "camera", DOMAIN, f"02:00:5e:10:00:99_camera_{tokens[1]}", config_entry=other_entry
        ),
    ]
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    main_id, sub_id = _entity_id(hass, onvif_sim, 0), _entity_id(hass, onvif_sim, 1)

    result = await hass.config_entries.options.async_init(config_entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], _options_input([tokens[0]])
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()  # the options flow reloads the entry

    assert config_entry.state is ConfigEntryState.LOADED
    assert registry.async_get(sub_id) is None
    assert hass.states.get(sub_id) is None
    assert _entity_id(hass, onvif_sim, 0) == main_id
    state = hass.states.get(main_id)
    assert state is not None
    assert state.state != STATE_UNAVAILABLE
    for bystander in bystanders:
        assert registry.async_get(bystander.entity_id) == bystander

    # Selecting it again brings the entity back.
    result = await hass.config_entries.options.async_init(config_entry.entry_id)
    await hass.config_entries.options.async_configure(result["flow_id"], _options_input(tokens))
    await hass.async_block_till_done()
    assert hass.states.get(_entity_id(hass, onvif_sim, 1)) is not None


async def test_selected_profile_the_camera_lost_keeps_its_entity(
    hass: HomeAssistant, config_entry: MockConfigEntry, onvif_sim: OnvifSimulator
) -> None:
    """A profile still chosen but not reported now (a camera hiccup) is not deselected."""
    registry = er.async_get(hass)
    mac = normalize_mac(onvif_sim.config.mac)
    config_entry.add_to_hass(hass)
    kept = registry.async_get_or_create(
        "camera", DOMAIN, f"{mac}_camera_gone", config_entry=config_entry
    )
    dropped = registry.async_get_or_create(
        "camera", DOMAIN, f"{mac}_camera_old", config_entry=config_entry
    )
    hass.config_entries.async_update_entry(config_entry, options={CONF_PROFILES: ["gone"]})
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()

    assert registry.async_get(kept.entity_id) == kept
    assert registry.async_get(dropped.entity_id) is None
    _entity_id(hass, onvif_sim, 0)  # the first profile stands in


@pytest.mark.parametrize(
    "service", ["turn_on", "turn_off", "enable_motion_detection", "disable_motion_detection"]
)
async def test_unsupported_camera_actions_raise_a_translated_error(
    hass: HomeAssistant, setup_integration: MockConfigEntry, onvif_sim: OnvifSimulator, service: str
) -> None:
    """No HTTP 500 with a traceback: a translated Home Assistant error naming the camera."""
    entity_id = _entity_id(hass, onvif_sim)
    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call("camera", service, {"entity_id": entity_id}, blocking=True)
    assert caught.value.translation_domain == DOMAIN
    assert caught.value.translation_key == "camera_action_unsupported"
    assert caught.value.translation_placeholders == {"camera_name": setup_integration.title}
    assert str(caught.value).startswith(f"Camera {setup_integration.title} cannot be turned on")
    assert hass.states.get(entity_id) is not None
