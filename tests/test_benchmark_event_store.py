"""benchmarks/event_store.py: its figures, and a tiny real run of the whole benchmark.

In the integration's suite because it needs Home Assistant (only .venv has it). The run is a
subprocess (its own Home Assistant core and database) and checks the table's shape, never its
timings.
"""

from __future__ import annotations

from pathlib import Path
import re
import subprocess
import sys

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import event_store as bench  # noqa: E402 - a script folder, not a package


def test_figures() -> None:
    """Percentiles are nearest-rank; figures are milliseconds."""
    assert bench.percentile([3.0, 1.0, 2.0, 4.0], 50) == 2.0
    assert bench.percentile([3.0, 1.0, 2.0, 4.0], 95) == 4.0
    fig = bench.figure("op", [0.001, 0.003])
    assert (fig.pages, fig.median_ms, fig.max_ms) == (2, 1.0, 3.0)
    assert fig.row(10_000) == "| 10,000 | op | 2 | 1.00 | 3.00 | 3.00 |"


def test_events_spread_over_the_retention() -> None:
    """The benchmark's events cover the 14 days before its clock, every level."""
    events = bench.make_events("cam", 400)
    assert len({event.event_id for event in events}) == 400
    assert min(e.start for e in events) >= bench.NOW - bench.timedelta(days=bench.DAYS)
    assert {event.level for event in events} == {"low", "medium", "high", "critical"}


def test_a_tiny_real_run_prints_every_operation() -> None:
    """The whole benchmark at 300 events prints one row per operation."""
    command = [sys.executable, str(BENCHMARKS / "event_store.py"), "--events", "300"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = [line for line in run.stdout.splitlines() if re.match(r"^\| 300 \|", line)]
    operations = [row.split("|")[2].strip() for row in rows]
    assert operations == [
        "get_events: first page",
        "get_events: every page",
        "get_events: last page",
        "get_events: min level high",
        "get_events: alerts only",
        "get_events: all cameras",
        "calendar range: pages of 500",
        "browse: camera (days)",
        "browse: day, first page",
        "browse: day, every page",
        "browse: event",
    ]
    every_page = rows[1].split("|")[3].strip()
    assert every_page == "6"  # 300 events, 50 a page
