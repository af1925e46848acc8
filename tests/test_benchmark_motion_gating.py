"""benchmarks/motion_gating.py: frames analysed per day with and without motion gating.

In the integration's suite because it uses the integration's own rate rule (it needs Home
Assistant, which only .venv has). The figures are counts from a schedule, not timings, so they
are exact.
"""

from __future__ import annotations

from pathlib import Path
import sys

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import motion_gating as bench  # noqa: E402 - a script folder, not a package


def test_quiet_day_figures(capsys: pytest.CaptureFixture[str]) -> None:
    """40 visits of 50 s: 2,000 s of motion. Steady 1/s is a day of seconds; only on motion is
    the motion seconds at 5/s; the ratios come last."""
    assert bench.main([]) == 0
    out = capsys.readouterr().out
    assert "86,400 frames/day" in out
    assert "94,400 frames/day" in out  # 84,400 idle seconds at 1/s + 2,000 s at 5/s
    assert "10,000 frames/day" in out  # 2,000 s at 5/s, nothing while quiet
    ratios = out.split("ratios against the steady rate:")[1]
    assert "0.116x" in ratios
    assert out.rstrip().endswith("saved)")


def test_other_schedules(capsys: pytest.CaptureFixture[str]) -> None:
    """The schedule and rates are arguments: 10 visits of 30 s gated to motion only are
    300 s at 5/s."""
    assert bench.main(["--visits", "10", "--visit", "30"]) == 0
    out = capsys.readouterr().out
    assert "1,500 frames/day" in out.split("only on motion")[1].splitlines()[0]
