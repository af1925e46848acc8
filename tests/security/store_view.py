"""The security layer's tests read what the real shared store (store/) recorded.

`event_store` is a small view on the store the camera entries hold: the stored events by id and
the bytes of an event's saved frames, as the tests assert them.
"""

from __future__ import annotations

from pathlib import Path

import aiofiles
from homeassistant.core import HomeAssistant
import pytest

from custom_components.home_security_intel.intelligence.model import SecurityEvent
from custom_components.home_security_intel.store import (
    HsiStore,
    async_acquire_store,
    async_release_store,
)


class StoreView:
    """The shared store as the tests read it."""

    def __init__(self, hass: HomeAssistant) -> None:
        self.hass = hass
        self._store: HsiStore | None = None

    @property
    def store(self) -> HsiStore:
        assert self._store is not None
        return self._store

    async def get(self, event_id: str) -> SecurityEvent:
        event = await self.store.events.async_get(event_id)
        assert event is not None, event_id
        return event

    async def async_record(self, event: SecurityEvent) -> SecurityEvent:
        return await self.store.async_record(event)

    async def frames(self, event_id: str) -> tuple[bytes, bytes]:
        """The original and annotated frame saved for the event."""
        event = await self.get(event_id)
        found: list[bytes] = []
        for annotated in (False, True):
            path: Path | None = await self.store.async_snapshot_file(
                event.camera_id, event_id, annotated=annotated
            )
            assert path is not None
            async with aiofiles.open(path, "rb") as file:
                found.append(await file.read())
        return found[0], found[1]


@pytest.fixture
async def event_store(hass: HomeAssistant):  # type: ignore[no-untyped-def]
    """The real shared store, held by the test for its whole length."""
    view = StoreView(hass)
    view._store = await async_acquire_store(hass)
    yield view
    await async_release_store(hass)
