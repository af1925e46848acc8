"""Helpers shared by the integration's tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import os
from typing import Any

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry


async def setup_entry(
    hass: HomeAssistant, entry: MockConfigEntry, *, options: dict[str, Any] | None = None
) -> None:
    """Add the entry (with these options, if given) and set it up, waiting until it settles."""
    entry.add_to_hass(hass)
    if options is not None:
        hass.config_entries.async_update_entry(entry, options=options)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


async def wait_until(
    predicate: Callable[[], bool], what: str = "the condition", *, frozen_time: bool = False
) -> None:
    """Let the loop run until ``predicate()`` holds: for what a real camera delivers in its own
    time (an event, a subscription). The ceiling, far beyond any real wait and read from a clock
    freezegun leaves alone, only stops a broken test from hanging. Under frozen time the loop's
    timers do not advance, so the wait yields with sleep(0) instead of sleeping."""
    give_up = os.times().elapsed + 60
    while not predicate():
        if os.times().elapsed > give_up:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0 if frozen_time else 0.005)
