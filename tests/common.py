"""Helpers shared by the integration's tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
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


async def wait_until(predicate: Callable[[], bool], what: str = "the condition") -> None:
    """Let the loop run until ``predicate()`` holds: for what a real camera delivers in its own
    time (an event, a subscription). Yields with sleep(0), so it works under frozen time too; the
    iteration ceiling (far beyond any real wait) only stops a broken test from hanging."""
    for _ in range(5_000_000):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"never happened: {what}")
