"""Helpers shared by the integration's tests."""

from __future__ import annotations

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
