"""Fixtures of the security layer's Home Assistant tests: the in-memory store stand-in, a real
AI Task entity from a test integration, and a hostile detector answering on command."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.ai_task import (
    DOMAIN as AI_TASK_DOMAIN,
    AITaskEntity,
    AITaskEntityFeature,
    GenDataTask,
    GenDataTaskResult,
)
from homeassistant.components.conversation import AssistantContent, ChatLog
from homeassistant.config_entries import ConfigEntry, ConfigFlow
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddEntitiesCallback
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockModule,
    MockPlatform,
    mock_config_flow,
    mock_integration,
    mock_platform,
)

from custom_components.home_security_intel import security
from tests.test_detection_common import HostileDetector, hostile_detector

from .store_view import event_store  # noqa: F401 - a fixture

AI_DOMAIN = "hsi_test_ai"
AI_ENTITY_ID = "ai_task.test_analyst"
TIMEOUT = "timeout"
"""An answer that makes the entity take longer than the integration waits."""


class Analyst(AITaskEntity):
    """A real AI Task entity whose answers the test sets (one per call, in order)."""

    _attr_name = "Test analyst"
    _attr_supported_features = (
        AITaskEntityFeature.GENERATE_DATA | AITaskEntityFeature.SUPPORT_ATTACHMENTS
    )

    def __init__(self, freezer: FrozenDateTimeFactory) -> None:
        super().__init__()
        self.freezer = freezer
        self.answers: list[Any] = []
        self.tasks: list[GenDataTask] = []
        self.attachment_bytes: list[bytes] = []

    async def _async_generate_data(self, task: GenDataTask, chat_log: ChatLog) -> GenDataTaskResult:
        self.tasks.append(task)
        for attachment in task.attachments or []:
            self.attachment_bytes.append(attachment.path.read_bytes())
        answer = self.answers.pop(0) if self.answers else TIMEOUT
        if answer == TIMEOUT:
            # Simulated time runs past the integration's limit; the answer never comes.
            self.freezer.tick(security.AI_TIMEOUT_S + 0.01)
            await asyncio.Event().wait()
        chat_log.async_add_assistant_content_without_tools(
            AssistantContent(self.entity_id or "", str(answer))
        )
        return GenDataTaskResult(conversation_id=chat_log.conversation_id, data=answer)


@pytest.fixture(autouse=True)
def short_ai_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """A timed-out AI call moves the frozen clock past the limit; with the limit shorter than a
    frame slot, that leap does not also age the camera's objects and events."""
    monkeypatch.setattr(security, "AI_TIMEOUT_S", 0.5)


@pytest.fixture
async def analyst(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> Analyst:
    """A loaded AI Task entity (ai_task.test_analyst) of a test integration."""
    assert await async_setup_component(hass, "homeassistant", {})
    entity = Analyst(freezer)

    async def setup_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
        await hass.config_entries.async_forward_entry_setups(entry, [Platform.AI_TASK])
        return True

    async def setup_platform(
        hass: HomeAssistant, entry: ConfigEntry, add: AddEntitiesCallback
    ) -> None:
        add([entity])

    mock_integration(hass, MockModule(AI_DOMAIN, async_setup_entry=setup_entry))
    mock_platform(
        hass, f"{AI_DOMAIN}.{AI_TASK_DOMAIN}", MockPlatform(async_setup_entry=setup_platform)
    )
    mock_platform(hass, f"{AI_DOMAIN}.config_flow")
    entry = MockConfigEntry(domain=AI_DOMAIN)
    entry.add_to_hass(hass)
    with mock_config_flow(AI_DOMAIN, ConfigFlow):
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
    assert entity.entity_id == AI_ENTITY_ID
    return entity


@pytest.fixture
async def hostile(freezer: FrozenDateTimeFactory) -> AsyncIterator[HostileDetector]:
    """A detector answering one confident person until told otherwise."""
    async with hostile_detector(freezer) as detector:
        yield detector
