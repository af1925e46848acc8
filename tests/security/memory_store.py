"""TEST ONLY - an in-memory stand-in for helper E's shared store (store/__init__.py `HsiStore`).

It implements exactly the part of the store API the security layer calls (SPEC2.md):
`async_record`, `snapshot_media_id`, `events.async_get`, `events.async_query`. It exists only
until the real store is merged; the lead replaces its use with the real store then (see
`use_memory_store`). Snapshots are real files under Home Assistant's local media directory, so
an AI Task attachment resolves through the real media source ("media_source/local").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from homeassistant.core import HomeAssistant
import pytest

from custom_components.home_security_intel import security
from custom_components.home_security_intel.intelligence.model import SecurityEvent


@dataclass(frozen=True)
class Page:
    events: tuple[SecurityEvent, ...]
    next_cursor: str | None = None


class MemoryEvents:
    """Events by id, newest first on query."""

    def __init__(self) -> None:
        self.rows: dict[str, SecurityEvent] = {}

    async def async_get(self, event_id: str) -> SecurityEvent | None:
        return self.rows.get(event_id)

    async def async_query(self, *, camera_id: str | None = None, limit: int = 50) -> Page:
        rows = [e for e in self.rows.values() if camera_id in (None, e.camera_id)]
        rows.sort(key=lambda e: e.start, reverse=True)
        return Page(tuple(rows[:limit]))


class MemoryStore:
    """Keeps events in memory, snapshots as files under `media_dir`."""

    def __init__(self, media_dir: Path) -> None:
        self.events = MemoryEvents()
        self.media_dir = media_dir
        self.records: list[SecurityEvent] = []
        self.frames: dict[str, tuple[bytes, bytes | None]] = {}

    async def async_record(
        self, event: SecurityEvent, frame: bytes | None = None, annotated: bytes | None = None
    ) -> SecurityEvent:
        if frame is not None:
            self.frames[event.event_id] = (frame, annotated)
            path = self.media_dir / f"{event.event_id}.jpg"
            path.write_bytes(annotated or frame)  # small test files; the real store uses aiofiles
            event = event.with_changes(has_snapshot=True)
        self.events.rows[event.event_id] = event
        self.records.append(event)
        return event

    def snapshot_media_id(self, event: SecurityEvent, annotated: bool = True) -> str:
        return f"media-source://media_source/local/hsi/{event.event_id}.jpg"


@pytest.fixture
def memory_store(
    hass: HomeAssistant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> MemoryStore:
    """Route the security layer's recorder to a MemoryStore (TEST ONLY, until E's store)."""
    media = tmp_path / "media"
    (media / "hsi").mkdir(parents=True)
    hass.config.media_dirs = {"local": str(media)}
    store = MemoryStore(media / "hsi")

    async def acquire(hass: HomeAssistant) -> security.EventRecorder:
        return security.EventRecorder(store)

    monkeypatch.setattr(security, "async_acquire_recorder", acquire)
    return store
