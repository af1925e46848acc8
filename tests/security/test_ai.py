"""AI enrichment through a real AI Task entity (a test integration's `Analyst`).

The answers are the test's; everything else is Home Assistant's ai_task: the entity lookup,
the structured task, the attachment resolved through the media source to the snapshot file.
Good answers refine the event (security_event_updated); malformed JSON, wrong types and
timeouts keep the rules score; the daily cap stops calls; analyze_event runs one on demand.
"""

from __future__ import annotations

from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import entity_registry as er
import pytest

from custom_components.home_security_intel.const import (
    CONF_AI_DAILY_CAP,
    CONF_AI_INTERVAL,
    CONF_AI_MIN_AREA,
    CONF_AI_MIN_LEVEL,
    CONF_AI_TASK,
    DOMAIN,
    SERVICE_ANALYZE_EVENT,
)
from custom_components.home_security_intel.security import SecurityMonitor
from tests.support.onvif_sim import OnvifSimulator
from tests.test_detection_common import (
    HostileDetector,
    StateRecorder,
    add,
    camera_entry,
    camera_unique_id,
    entity_id,
    frames,
    server_entry,
    state,
)

from .conftest import AI_ENTITY_ID, TIMEOUT, Analyst
from .store_view import StoreView
from .test_security import night_and_nobody_home, nobody

GOOD = {
    "risk_score": 92,
    "level": "critical",
    "title": "Stranger at the back door",
    "summary": "An unknown person  tries the back door at night.",
    "reasoning": "Nobody is home and the person is trying the handle.",
}


async def start(
    hass: HomeAssistant, sim: OnvifSimulator, hostile: HostileDetector, **options: Any
) -> tuple[SecurityMonitor, StateRecorder]:
    night_and_nobody_home(hass)
    await add(hass, server_entry(hostile.url))
    entry = await add(hass, camera_entry(sim, **{CONF_AI_TASK: AI_ENTITY_ID, **options}))
    monitor = entry.runtime_data.security
    assert monitor is not None
    return monitor, StateRecorder(hass, entity_id(hass, sim, "event", "security_event"))


async def visit(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, hostile: HostileDetector
) -> None:
    """A person comes (confirmed), then leaves and the event ends."""
    hostile.behaviour = HostileDetector.good.__get__(hostile)
    await frames(hass, freezer, 3)
    hostile.behaviour = nobody
    await frames(hass, freezer, 32)


async def test_a_good_answer_refines_the_event(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    onvif_sim: OnvifSimulator,
    hostile: HostileDetector,
    event_store: StoreView,
    analyst: Analyst,
) -> None:
    analyst.answers = [GOOD]
    monitor, fired = await start(hass, onvif_sim, hostile)
    await frames(hass, freezer, 3)
    started, updated = fired.fired()
    assert started["event_type"] == "security_event_started"
    assert updated["event_type"] == "security_event_updated"
    assert updated["event_id"] == started["event_id"]
    assert updated["title"] == "Stranger at the back door"
    assert updated["summary"] == "An unknown person tries the back door at night."
    assert updated["score"] == 92
    assert updated["level"] == "critical"
    assert updated["ai"] is True
    assert updated["snapshot"] == started["snapshot"]
    # What the AI was given: the rules' view in the prompt, the annotated snapshot attached.
    (task,) = analyst.tasks
    assert "Camera: Cam. Time: night." in task.instructions
    assert "person at night; nobody home" in task.instructions
    assert task.structure is not None
    assert analyst.attachment_bytes == [(await event_store.frames(started["event_id"]))[1]]
    stored = await event_store.get(started["event_id"])
    assert stored.ai is not None
    assert stored.ai.reasoning.startswith("Nobody is home")
    assert stored.risk.score == 70  # the rules' peak is kept beside the verdict
    assert monitor.budget.calls == 1
    assert monitor.budget.failures == 0
    # The event ends with the AI's verdict still on it; nobody asks the AI twice.
    hostile.behaviour = nobody
    await frames(hass, freezer, 32)
    ended = fired.fired()[-1]
    assert ended["event_type"] == "security_event_ended"
    assert ended["title"] == "Stranger at the back door"
    assert (await event_store.get(started["event_id"])).ai is not None
    assert len(analyst.tasks) == 1


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        pytest.param("{'risk_score': 90, 'title': 'not json", "invalid_answer", id="malformed"),
        pytest.param({**GOOD, "risk_score": "high"}, "invalid_answer", id="score-not-a-number"),
        pytest.param({**GOOD, "risk_score": 250}, "invalid_answer", id="score-out-of-range"),
        pytest.param({**GOOD, "risk_score": True}, "invalid_answer", id="score-a-boolean"),
        pytest.param({**GOOD, "title": 5}, "invalid_answer", id="title-not-text"),
        pytest.param({**GOOD, "summary": "   "}, "invalid_answer", id="summary-empty"),
        pytest.param({**GOOD, "level": "apocalyptic"}, "invalid_answer", id="unknown-level"),
        pytest.param(TIMEOUT, "timeout", id="timeout"),
    ],
)
async def test_a_bad_answer_keeps_the_rules_score(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    onvif_sim: OnvifSimulator,
    hostile: HostileDetector,
    event_store: StoreView,
    analyst: Analyst,
    answer: Any,
    reason: str,
) -> None:
    analyst.answers = [answer]
    monitor, fired = await start(hass, onvif_sim, hostile)
    await frames(hass, freezer, 3)
    (started,) = fired.fired()
    assert started["event_type"] == "security_event_started"
    assert len(analyst.tasks) == 1
    assert monitor.budget.failures == 1
    assert monitor.budget.last_error == reason
    stored = await event_store.get(started["event_id"])
    assert stored.ai is None
    assert stored.score == 70
    # Detection went on meanwhile and the event ends as usual.
    hostile.behaviour = nobody
    await frames(hass, freezer, 32)
    assert [f["event_type"] for f in fired.fired()] == [
        "security_event_started",
        "security_event_ended",
    ]
    assert fired.fired()[-1]["score"] == 70


async def test_the_daily_cap_and_the_interval_bound_the_calls(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    onvif_sim: OnvifSimulator,
    hostile: HostileDetector,
    event_store: StoreView,
    analyst: Analyst,
) -> None:
    analyst.answers = [GOOD, GOOD, GOOD]
    monitor, fired = await start(
        hass, onvif_sim, hostile, **{CONF_AI_DAILY_CAP: 2, CONF_AI_INTERVAL: 3600}
    )
    await visit(hass, freezer, hostile)
    assert len(analyst.tasks) == 1
    # A second visit within the interval: not sent.
    await visit(hass, freezer, hostile)
    assert len(analyst.tasks) == 1
    assert monitor.budget.skipped >= 1
    second = fired.fired()[-1]["event_id"]
    # On demand the interval does not apply ...
    response = await hass.services.async_call(
        DOMAIN, SERVICE_ANALYZE_EVENT, {"event_id": second}, blocking=True, return_response=True
    )
    assert response is not None
    answered = response["event"]
    assert isinstance(answered, dict)
    assert answered["title"] == "Stranger at the back door"
    assert answered["event_id"] == second
    assert len(analyst.tasks) == 2
    # The refined event is recorded and announced by the camera's background worker.
    await hass.async_block_till_done(wait_background_tasks=True)
    assert fired.fired()[-1]["event_type"] == "security_event_updated"
    assert (await event_store.get(second)).ai is not None
    # ... the daily cap does.
    with pytest.raises(HomeAssistantError) as raised:
        await hass.services.async_call(
            DOMAIN, SERVICE_ANALYZE_EVENT, {"event_id": second}, blocking=True, return_response=True
        )
    assert raised.value.translation_key == "ai_cap_reached"
    await visit(hass, freezer, hostile)
    assert len(analyst.tasks) == 2
    ai_calls = entity_id(hass, onvif_sim, "sensor", "ai_calls")
    assert hass.states.get(ai_calls) is None  # diagnostic, disabled by default


async def test_analyze_event_errors_are_translated(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    onvif_sim: OnvifSimulator,
    hostile: HostileDetector,
    event_store: StoreView,
    analyst: Analyst,
) -> None:
    analyst.answers = [TIMEOUT, TIMEOUT]
    monitor, fired = await start(hass, onvif_sim, hostile, **{CONF_AI_INTERVAL: 0})
    await frames(hass, freezer, 3)
    event_id = fired.fired()[0]["event_id"]
    with pytest.raises(ServiceValidationError) as unknown:
        await hass.services.async_call(
            DOMAIN,
            SERVICE_ANALYZE_EVENT,
            {"event_id": "f" * 32},
            blocking=True,
            return_response=True,
        )
    assert unknown.value.translation_key == "event_not_found"
    with pytest.raises(HomeAssistantError) as failed:
        await hass.services.async_call(
            DOMAIN,
            SERVICE_ANALYZE_EVENT,
            {"event_id": event_id},
            blocking=True,
            return_response=True,
        )
    assert failed.value.translation_key == "ai_failed"
    assert failed.value.translation_placeholders == {"camera_name": "Cam", "error": "timeout"}
    assert monitor.budget.failures == 2
    # Found in the store after the camera forgot it (a restart, or many events since).
    monitor._recent.clear()
    monitor.settings = type(monitor.settings)(grouping=monitor.settings.grouping)
    with pytest.raises(HomeAssistantError) as no_ai:
        await monitor.async_analyze(event_id)
    assert no_ai.value.translation_key == "no_ai_task"
    with pytest.raises(HomeAssistantError) as other:
        await monitor.async_analyze("e" * 32)
    assert other.value.translation_key == "event_not_found"


async def test_the_filter_decides_what_is_sent(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    onvif_sim: OnvifSimulator,
    hostile: HostileDetector,
    event_store: StoreView,
    analyst: Analyst,
) -> None:
    analyst.answers = [GOOD]
    # The person (about a tenth of the frame) is smaller than asked for.
    monitor, fired = await start(
        hass, onvif_sim, hostile, **{CONF_AI_MIN_AREA: 0.5, CONF_AI_MIN_LEVEL: "high"}
    )
    await visit(hass, freezer, hostile)
    assert analyst.tasks == []
    assert monitor.budget.calls == 0
    assert [f["event_type"] for f in fired.fired()] == [
        "security_event_started",
        "security_event_ended",
    ]
    assert state(hass, entity_id(hass, onvif_sim, "sensor", "risk_level")).state == "low"


async def test_the_diagnostic_sensor_counts_the_calls(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    onvif_sim: OnvifSimulator,
    hostile: HostileDetector,
    event_store: StoreView,
    analyst: Analyst,
) -> None:
    analyst.answers = ["not an answer"]
    hostile.behaviour = nobody
    # Enabled by the user before the camera loads (it is disabled by default).
    er.async_get(hass).async_get_or_create(
        "sensor", DOMAIN, camera_unique_id(onvif_sim, "ai_calls"), disabled_by=None
    )
    await start(hass, onvif_sim, hostile)
    ai_calls = entity_id(hass, onvif_sim, "sensor", "ai_calls")
    assert state(hass, ai_calls).state == "0"
    await visit(hass, freezer, hostile)
    counted = state(hass, ai_calls)
    assert counted.state == "1"
    assert counted.attributes["calls_today"] == 1
    assert counted.attributes["daily_cap"] == 50
    assert counted.attributes["failures"] == 1
    assert counted.attributes["last_error"] == "invalid_answer"
    alert = entity_id(hass, onvif_sim, "binary_sensor", "alert_active")
    assert state(hass, alert).attributes == {
        "event_id": None,
        "device_class": "safety",
        "friendly_name": "Cam Alert active",
    }
