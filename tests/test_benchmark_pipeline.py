"""benchmarks/pipeline_overhead.py: its report, and a tiny real run of the whole benchmark.

It lives in the integration's suite, not in benchmarks/tests, because it needs Home Assistant,
which only this environment (.venv) has. The real run is a subprocess (its own Home Assistant,
cameras and detector, all on 127.0.0.1) and checks the report's shape, never its timings.
"""

from __future__ import annotations

import math
from pathlib import Path
import re
import subprocess
import sys

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import pipeline_overhead as bench  # noqa: E402 - a script folder, not a package


def _result(detector: str, cameras: int, **changes: object) -> bench.LevelResult:
    fields: dict[str, object] = {
        "detector": detector,
        "cameras": cameras,
        "frames": 10 * cameras,
        "window_s": 10.0,
        "bare_model_ms": 20.0,
        "stage_ms": {
            "model": 21.0,
            "decode": 0.4,
            "post": 0.1,
            "pipeline": 0.2,
            "events": 0.0,
            "entities": 0.1,
            "draw": 0.2,
            "snapshot": 3.0,
            "wait": 1.0,
        },
        "overhead_cpu_ms": 0.9,
        "process_cpu_ms": 40.0,
        "loop_worst_ms": 4.0,
        "loop_p99_ms": 1.0,
        "loop_blocks_over_target": 0,
        "setup_worst_ms": 30.0,
        "worst_callbacks": [(4.0, "(CPU 3.9 ms) <TimerHandle refresh>")],
        "blocked_stacks": [(2, "client.py:1 fetch")],
        "loop_cpu_ms": [(1.5, "task Cam  detection")],
        "gc_worst_ms": 2.5,
        "gc_count": 3,
        "rss_base_mib": 200.0,
        "rss_start_mib": 200.0 + 3 * cameras,
        "rss_end_mib": 200.0 + 3 * cameras,
        "objects_start": 1000,
        "objects_end": 1000,
        "warnings": [],
        "complete": True,
    }
    fields.update(changes)
    return bench.LevelResult(**fields)  # type: ignore[arg-type]


def test_percentile_is_nearest_rank() -> None:
    assert bench.percentile([float(v) for v in range(1, 101)], 99) == 99.0
    assert bench.percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert math.isnan(bench.percentile([], 50))


def test_figures_derive_from_the_measurements() -> None:
    result = _result(bench.TFLITE, 2, rss_end_mib=210.0)
    assert result.overhead_ms == pytest.approx(1.0)  # decode + post + pipeline + entities + draw
    assert result.ratio == pytest.approx(0.05)
    assert result.memory_per_camera_mib == pytest.approx(3.0)
    assert result.growth_per_camera_mib == pytest.approx(2.0)
    assert result.objects_growth_per_frame == 0.0
    assert math.isnan(_result(bench.TFLITE, 1, bare_model_ms=0.0).ratio)
    assert bench.LevelResult.from_json(result.to_json()) == result


def test_report_has_a_table_per_detector_and_the_ratios_last() -> None:
    results = [
        _result(bench.TFLITE, 1),
        _result(bench.TFLITE, 8, loop_worst_ms=9.0, complete=False),
        _result(bench.STAND_IN, 1, warnings=["ERROR x: boom"]),
    ]
    text = bench.report(results, "header line")
    assert text.startswith("header line")
    assert text.index("### tflite") < text.index("### stand-in") < text.index("### slowest")
    last = text.split("### ")[-1]
    assert last.startswith("overhead / bare model time")
    assert (
        "| tflite | 1 | 1.00 | 20.00 | 5.0% | 4.00 | +0.00 | overhead meets, loop meets |" in last
    )
    assert "| 9.00 | +0.00 | overhead meets, loop misses |" in last
    assert "| 8 (timed out) |" in text
    assert "- ERROR x: boom" in text
    assert "2 ms sampled at client.py:1 fetch" in text
    assert "garbage collections: 3, the longest 2.5 ms" in text


def test_arguments_are_validated() -> None:
    args = bench.parse_args(["--cameras", "1", "4", "--model", "m.tflite"])
    assert args.cameras == [1, 4]
    assert args.detectors == list(bench.DETECTORS)
    with pytest.raises(SystemExit):
        bench.parse_args(["--cameras", "0", "--model", "m.tflite"])


@pytest.mark.skipif(bench.default_model() is None, reason="fhempy's TFLite model is not installed")
def test_a_tiny_real_run_reports_every_level() -> None:
    # Two cameras, one frame each, both detectors: a real Home Assistant per level (~30 s).
    command = [sys.executable, str(BENCHMARKS / "pipeline_overhead.py"), "--cameras", "2"]
    command += ["--frames", "1", "--warmup", "1", "--calibration", "2", "--timeout", "120"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    report = run.stdout
    assert report.index("### tflite") < report.index("### stand-in")
    ratios = report.split("### overhead / bare model time")[1]
    for detector in bench.DETECTORS:
        row = rf"^\| {detector} \| 2 \| \d+\.\d\d \| \d+\.\d\d \| \d+\.\d% \| \d+\.\d\d \| [+-]\d"
        assert re.search(row, ratios, re.MULTILINE), ratios
    assert "(timed out)" not in report
    assert "Traceback" not in run.stderr
