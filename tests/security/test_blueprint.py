"""The shipped blueprint (blueprints/automation/home_security_intel/notify_on_alert.yaml) for real.

Home Assistant's automation integration loads the blueprint from the config folder and runs it
on the camera's real security event entity: a person at night opens an alert (notified at once
with the signed snapshot path), the AI summary arrives (the same notification, same tag, is
updated), and a second alert of the same camera within the cooldown stays quiet. The notifier
is a test notify action that records its calls (a phone cannot run here).
"""

from __future__ import annotations

from pathlib import Path
import shutil
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import async_mock_service

from custom_components.home_security_intel.const import CONF_AI_INTERVAL, CONF_AI_TASK
from tests.support.onvif_sim import OnvifSimulator
from tests.test_detection_common import HostileDetector, frames

from .conftest import AI_ENTITY_ID, Analyst
from .store_view import StoreView
from .test_ai import GOOD
from .test_security import night_and_nobody_home, nobody, start

BLUEPRINT = (
    Path(__file__).parents[2]
    / "blueprints"
    / "automation"
    / "home_security_intel"
    / "notify_on_alert.yaml"
)


async def setup_blueprint(hass: HomeAssistant, event_entity: str, **inputs: Any) -> None:
    target = Path(hass.config.path("blueprints", "automation", "home_security_intel"))
    await hass.async_add_executor_job(lambda: target.mkdir(parents=True, exist_ok=True))
    await hass.async_add_executor_job(shutil.copy, BLUEPRINT, target / BLUEPRINT.name)
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": {
                "id": "hsi_alerts",
                "alias": "Security alerts",
                "use_blueprint": {
                    "path": f"home_security_intel/{BLUEPRINT.name}",
                    "input": {
                        "security_events": [event_entity],
                        "notify_actions": ["notify.test_phone"],
                        **inputs,
                    },
                },
            }
        },
    )
    await hass.async_block_till_done()
    assert hass.states.get("automation.security_alerts") is not None


@pytest.mark.parametrize(("cooldown", "second_alert_notified"), [(5, False), (0, True)])
async def test_alert_notifies_then_updates_the_same_notification(
    cooldown: int,
    second_alert_notified: bool,
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    onvif_sim: OnvifSimulator,
    hostile: HostileDetector,
    event_store: StoreView,
    analyst: Analyst,
) -> None:
    night_and_nobody_home(hass)
    analyst.answers = [GOOD, GOOD]
    sent: list[ServiceCall] = async_mock_service(hass, "notify", "test_phone")
    options = {CONF_AI_TASK: AI_ENTITY_ID, CONF_AI_INTERVAL: 0}
    event_entity = (await start(hass, onvif_sim, hostile, **options))["security_event"]
    await setup_blueprint(hass, event_entity, cooldown=cooldown)

    await frames(hass, freezer, 3)
    await hass.async_block_till_done()
    first, update = sent[:2]
    tag = first.data["data"]["tag"]
    assert tag.startswith("hsi-")
    assert first.data["title"] == "Person in view"
    assert first.data["message"] == "Person in view, person at night, nobody home"
    assert first.data["data"]["image"].startswith("/api/home_security_intel/snapshot/")
    assert "authSig=" in first.data["data"]["image"]
    # The AI's answer replaces the notification (same tag), with its title and summary.
    assert update.data["data"]["tag"] == tag
    assert update.data["title"] == GOOD["title"]
    assert update.data["message"] == "An unknown person tries the back door at night."
    assert update.data["data"]["level"] == "critical"

    # The person leaves (the event ends: no notification), then comes back a minute later: a
    # new alert, inside a five-minute cooldown of this camera, stays quiet; without one it is
    # notified (and updated) like the first.
    hostile.behaviour = nobody
    await frames(hass, freezer, 40)
    hostile.behaviour = HostileDetector.good.__get__(hostile)
    await frames(hass, freezer, 3)
    await hass.async_block_till_done()
    again = hass.states.get(event_entity)
    assert again is not None
    assert again.attributes["event_type"] in ("security_event_started", "security_event_updated")
    assert f"hsi-{again.attributes['event_id']}" != tag  # a new alert...
    assert again.attributes["severity"] == "alert"
    assert again.attributes["previous_alert"] is not None
    new_tag = f"hsi-{again.attributes['event_id']}"
    notified = [call for call in sent[2:] if call.data["data"]["tag"] == new_tag]
    assert bool(notified) is second_alert_notified  # ...that a cooldown keeps quiet
    assert len(sent) == 2 + len(notified)
    stored = await event_store.get(tag.removeprefix("hsi-"))
    assert stored.end is not None


async def test_below_the_minimum_level_nothing_is_sent(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    onvif_sim: OnvifSimulator,
    hostile: HostileDetector,
    event_store: StoreView,
) -> None:
    """A high alert does not reach a blueprint set to critical (the first test shows one set to
    high gets it)."""
    night_and_nobody_home(hass)
    sent: list[ServiceCall] = async_mock_service(hass, "notify", "test_phone")
    event_entity = (await start(hass, onvif_sim, hostile))["security_event"]
    await setup_blueprint(hass, event_entity, min_level="critical")
    await frames(hass, freezer, 3)
    await hass.async_block_till_done()
    assert hass.states.get(event_entity).attributes["level"] == "high"
    assert sent == []


async def test_quiet_hours_silence_alerts(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    onvif_sim: OnvifSimulator,
    hostile: HostileDetector,
    event_store: StoreView,
) -> None:
    """Quiet hours around the current time (across midnight) send nothing."""
    night_and_nobody_home(hass)
    sent: list[ServiceCall] = async_mock_service(hass, "notify", "test_phone")
    event_entity = (await start(hass, onvif_sim, hostile))["security_event"]
    now = dt_util.now()
    quiet_from = (now.hour - 1) % 24
    quiet_until = (now.hour + 2) % 24
    await setup_blueprint(
        hass,
        event_entity,
        quiet_start=f"{quiet_from:02d}:00:00",
        quiet_end=f"{quiet_until:02d}:00:00",
    )
    await frames(hass, freezer, 3)
    await hass.async_block_till_done()
    assert hass.states.get(event_entity).attributes["severity"] == "alert"
    assert sent == []
