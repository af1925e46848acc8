"""Event store benchmark: get_events pages and media browsing at 10,000 and 100,000 events.

For each size a fresh database (in a temporary folder) gets that many security events of one
camera spread over 14 days (the default retention), plus a second camera with a tenth as many;
then, timed one page at a time:

* ``get_events``: the database query the service runs (newest first, 50 a page), walking every
  page of the camera with the cursor, and the first page with a minimum level, without a camera
  (all cameras) and for a time range (the calendar's month view: 2,000 events in pages of 500);
* browsing: the media source itself (``HsiMediaSource.async_browse_media`` in a real Home
  Assistant core: registries and config entries, no frontend) for the camera's days, and every
  page of its busiest day (100 events a page), and one event.

The figures are milliseconds per page (median, 95th percentile, worst): keyset paging means the
last page costs what the first does; OFFSET would grow with the depth.

    .venv/bin/python benchmarks/event_store.py                    # 10,000 and 100,000 events
    .venv/bin/python benchmarks/event_store.py --events 1000 --events 50000
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
import functools
import math
from pathlib import Path
import platform
import sqlite3
import sys
import tempfile
import time
from typing import Any
import uuid

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from custom_components.home_security_intel.intelligence.model import (  # noqa: E402
    SEVERITY_ALERT,
    SEVERITY_DETECTION,
    EventObject,
    Reason,
    RiskAssessment,
    SecurityEvent,
)
from custom_components.home_security_intel.store.database import EventDatabase  # noqa: E402

DEFAULT_SIZES = (10_000, 100_000)
DAYS = 14
PAGE = 50
RANGE_PAGE = 500
RANGE_EVENTS = 2000
NOW = datetime(2026, 12, 1, tzinfo=UTC)
CAMERA = "01JGARDENCAMERA00000000000"


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation: every figure is one that happened)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Figure:
    """Milliseconds per page of one operation."""

    operation: str
    pages: int
    median_ms: float
    p95_ms: float
    max_ms: float

    def row(self, events: int) -> str:
        """A markdown table row."""
        return (
            f"| {events:,} | {self.operation} | {self.pages} | {self.median_ms:.2f} | "
            f"{self.p95_ms:.2f} | {self.max_ms:.2f} |"
        )


def figure(operation: str, times_s: Sequence[float]) -> Figure:
    """Summarise page times (seconds) in milliseconds."""
    ms = [t * 1000 for t in times_s]
    return Figure(operation, len(ms), percentile(ms, 50), percentile(ms, 95), max(ms))


def make_events(camera_id: str, count: int) -> list[SecurityEvent]:
    """`count` events spread evenly over the DAYS before NOW, scores cycling through levels."""
    step = timedelta(days=DAYS) / count
    events = []
    for i in range(count):
        start = NOW - step * (i + 1)
        score = (12, 45, 70, 92)[i % 4]
        events.append(
            SecurityEvent(
                event_id=uuid.uuid4().hex,
                camera_id=camera_id,
                camera_name="Garden",
                start=start,
                end=start + timedelta(seconds=40),
                objects=(
                    EventObject(
                        object_id=f"person-{i}",
                        label="person",
                        group="person",
                        first_seen=start,
                        last_seen=start + timedelta(seconds=30),
                        best_score=0.9,
                        zones=frozenset({"Backyard"}),
                    ),
                ),
                risk=RiskAssessment(score, (Reason("person_in_zone", {"zone": "Backyard"}, 40),)),
                severity=SEVERITY_ALERT if score >= 60 else SEVERITY_DETECTION,
                title="Person in the backyard",
                summary="A person crossed the backyard.",
                has_snapshot=True,
            )
        )
    return events


async def timed(call: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    """Seconds one awaited call took, and its result."""
    start = time.perf_counter()
    result = await call()
    return time.perf_counter() - start, result


async def bench_database(db: EventDatabase, camera: str) -> list[Figure]:
    """get_events' query: every page of the camera, then filtered first pages."""
    times: list[float] = []
    cursor: str | None = None
    while True:
        elapsed, page = await timed(
            lambda: db.async_query(camera_id=camera, limit=PAGE, cursor=cursor)
        )
        times.append(elapsed)
        if (cursor := page.next_cursor) is None:
            break
    figures = [
        figure("get_events: first page", times[:1]),
        figure("get_events: every page", times),
        figure("get_events: last page", times[-1:]),
    ]
    for name, kwargs in (
        ("get_events: min level high", {"camera_id": camera, "min_level": "high"}),
        ("get_events: alerts only", {"camera_id": camera, "severity": SEVERITY_ALERT}),
        ("get_events: all cameras", {}),
    ):
        samples = []
        for _ in range(20):
            started = time.perf_counter()
            await db.async_query(limit=PAGE, **kwargs)  # type: ignore[arg-type]
            samples.append(time.perf_counter() - started)
        figures.append(figure(name, samples))
    # The calendar's month view: the newest RANGE_EVENTS of the range, in pages of 500.
    start, end = NOW - timedelta(days=30), NOW
    range_times: list[float] = []
    cursor = None
    fetched = 0
    while fetched < RANGE_EVENTS:
        elapsed, page = await timed(
            lambda: db.async_query(
                camera_id=camera, start=start, end=end, limit=RANGE_PAGE, cursor=cursor
            )
        )
        range_times.append(elapsed)
        fetched += len(page.events)
        if (cursor := page.next_cursor) is None:
            break
    figures.append(figure(f"calendar range: pages of {RANGE_PAGE}", range_times))
    return figures


async def start_home_assistant(config_dir: Path) -> Any:
    """A real Home Assistant core with its registries and config entries (no frontend, no
    integration set up: the store and the media source are used directly)."""
    from homeassistant import bootstrap, config_entries, loader
    from homeassistant.core import HomeAssistant

    hass = HomeAssistant(str(config_dir))
    loader.async_setup(hass)
    hass.config.skip_pip = True
    hass.config.media_dirs = {"local": str(config_dir / "media")}
    hass.config_entries = config_entries.ConfigEntries(hass, {})
    await loader.async_get_custom_components(hass)
    if not await bootstrap.async_load_base_functionality(hass):
        raise RuntimeError("Home Assistant's registries did not load")
    await hass.async_start()
    return hass


async def bench_browse(hass: Any, camera: str) -> list[Figure]:
    """The media source: the camera's days, every page of its busiest day, one event."""
    from homeassistant.components.media_source import MediaSourceItem

    from custom_components.home_security_intel.const import DOMAIN
    from custom_components.home_security_intel.media_source import HsiMediaSource

    source = HsiMediaSource(hass)

    async def browse(identifier: str) -> Any:
        return await source.async_browse_media(MediaSourceItem(hass, DOMAIN, identifier, None))

    days_times = []
    for _ in range(10):
        elapsed, days = await timed(lambda: browse(camera))
        days_times.append(elapsed)
    busiest = max(days.children, key=lambda child: int(child.title.split("(")[1].rstrip(")")))
    page_times: list[float] = []
    node_id: str | None = busiest.identifier
    event_id = ""
    while node_id is not None:
        elapsed, node = await timed(functools.partial(browse, node_id))
        page_times.append(elapsed)
        node_id = None
        for child in node.children:
            if child.title == "Older events":
                node_id = child.identifier
            else:
                event_id = child.identifier
    event_times = [(await timed(lambda: browse(event_id)))[0] for _ in range(20)]
    return [
        figure("browse: camera (days)", days_times),
        figure("browse: day, first page", page_times[:1]),
        figure("browse: day, every page", page_times),
        figure("browse: event", event_times),
    ]


async def run_size(count: int, folder: Path) -> tuple[float, list[Figure]]:
    """Fill a fresh store with `count` events and time it; returns insert seconds and figures."""
    from custom_components.home_security_intel.store import (
        async_acquire_store,
        async_release_store,
    )

    hass = await start_home_assistant(folder)
    try:
        # No config entry: setting one up would connect to a camera; the browser then titles
        # the camera by its id, which costs the same lookup.
        store = await async_acquire_store(hass)
        camera = CAMERA
        events = make_events(camera, count) + make_events("01JOTHERCAMERA000000000000", count // 10)
        start = time.perf_counter()
        for chunk in range(0, len(events), 10_000):
            await store.events.async_upsert_many(events[chunk : chunk + 10_000])
        inserted = time.perf_counter() - start
        figures = await bench_database(store.events, camera)
        figures += await bench_browse(hass, camera)
        await async_release_store(hass)
    finally:
        await hass.async_stop()
    return inserted, figures


async def main(argv: Sequence[str] | None = None) -> int:
    """Run every size and print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--events", type=int, action="append", help="events of the camera (repeatable)"
    )
    args = parser.parse_args(argv)
    sizes: list[int] = args.events or list(DEFAULT_SIZES)
    print(
        f"# Event store: {platform.processor() or platform.machine()}, Python "
        f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    )
    rows: list[str] = []
    for count in sizes:
        with tempfile.TemporaryDirectory(prefix="hsi-event-store-") as tmp:
            inserted, figures = await run_size(count, Path(tmp))
        print(
            f"{count:,} events (+{count // 10:,} of another camera) stored in {inserted:.1f} s",
            flush=True,
        )
        rows.extend(fig.row(count) for fig in figures)
    print()
    print("| events | operation | pages | median ms | p95 ms | max ms |")
    print("|---:|---|---:|---:|---:|---:|")
    for row in rows:
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
