"""Tests of the throughput benchmark and its naive baseline server, with real servers on loopback.

Run with the detector's environment:  .venv-detector/bin/python -m pytest benchmarks/tests
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
from pathlib import Path
import re
import secrets
import signal
import subprocess
import sys

from aiohttp.test_utils import TestClient, TestServer
from PIL import Image
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BENCHMARKS))

import detector_throughput as bench  # noqa: E402 - a script folder, not a package
import int8_check  # noqa: E402
import model_time  # noqa: E402
import naive_server  # noqa: E402


def _result(cameras: int, latencies: list[float], wall: float = 2.0) -> bench.LevelResult:
    return bench.LevelResult(cameras, len(latencies), 0, wall, tuple(latencies))


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert bench.percentile(values, 50) == 50.0
    assert bench.percentile(values, 99) == 99.0
    assert bench.percentile([3.0, 1.0, 2.0], 99) == 3.0
    assert bench.percentile([7.0], 1) == 7.0


def test_empty_level_reports_nan_not_a_crash() -> None:
    empty = bench.LevelResult(4, 4, 4, 0.0, ())
    assert empty.images_per_s == 0.0
    assert str(empty.p99_ms) == "nan"
    assert "| 4 | n/a | n/a |" in bench.ratio_table([empty], [empty])


def test_tables_put_ratios_last_and_right() -> None:
    ours = [_result(1, [10.0, 20.0], wall=1.0), _result(4, [40.0] * 8, wall=1.0)]
    naive = [_result(1, [10.0, 40.0], wall=2.0), _result(4, [80.0] * 8, wall=4.0)]
    table = bench.server_table("ours", ours)
    assert "| 1 | 2 | 2.0 | 10.0 | 20.0 | 0 | - |" in table
    batched = bench.server_table("ours", [bench.LevelResult(4, 1, 0, 1.0, (5.0,), 3.25)])
    assert "| 4 | 1 | 1.0 | 5.0 | 5.0 | 0 | 3.2 |" in batched
    ratios = bench.ratio_table(ours, naive)
    assert "| 1 | 2.00x | 0.50x |" in ratios
    assert "| 4 | 4.00x | 0.50x |" in ratios


def test_frame_is_a_1080p_jpeg() -> None:
    frame = bench.benchmark_frame(bench.default_image())
    with Image.open(io.BytesIO(frame)) as image:
        assert image.format == "JPEG"
        assert image.size == (1920, 1080)


def test_levels_are_validated() -> None:
    assert bench.parse_args(["--levels", "1,8"]).levels == [1, 8]
    with pytest.raises(SystemExit):
        bench.parse_args(["--levels", "0,4"])


def test_ours_command_uses_only_real_server_flags(tmp_path: Path) -> None:
    args = bench.parse_args(
        ["--device", "cpu", "--runtime", "openvino", "--export-dir", str(tmp_path)]
    )
    command = bench.server_command(bench.OURS, args, 1234)
    assert command[command.index("--runtime") + 1] == "openvino"
    assert command[command.index("--export-dir") + 1] == str(tmp_path)
    assert "--runtime" not in bench.server_command(bench.NAIVE, args, 1234)
    help_text = subprocess.run(
        [sys.executable, "-m", "hsi_detector", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, PYTHONPATH=str(bench.REPO_ROOT / "detector")),
        timeout=120,
    ).stdout
    accepted = set(re.findall(r"--[a-z0-9-]+", help_text))
    assert {arg for arg in command if arg.startswith("--")} <= accepted
    assert "--api-key" not in command  # the key travels in the environment


def test_naive_command_parses() -> None:
    args = bench.parse_args(["--device", "cpu", "--imgsz", "320"])
    command = bench.server_command(bench.NAIVE, args, 4321)
    parsed = naive_server._parse_args(command[2:])
    assert (parsed.port, parsed.device, parsed.imgsz) == (4321, "cpu", 320)


@pytest.fixture(scope="module")
def detector() -> naive_server.NaiveDetector:
    config = naive_server.NaiveConfig("yolo11n.yaml", "cpu", False, 320, 0.25, "k")
    return naive_server.NaiveDetector(config)


async def test_naive_server_answers_like_ours(detector: naive_server.NaiveDetector) -> None:
    key = secrets.token_urlsafe(32)
    frame = bench.benchmark_frame(bench.default_image())
    async with TestClient(TestServer(naive_server.build_app(detector, key))) as client:
        health = await client.get("/health")
        assert health.status == 200
        denied = await client.post("/v1/detect", data=frame, headers={"X-API-Key": "wrong"})
        assert denied.status == 401
        garbage = await client.post("/v1/detect", data=b"not an image", headers={"X-API-Key": key})
        assert garbage.status == 400
        bearer = {"Authorization": f"Bearer {key}"}
        answer = await client.post("/v1/detect", data=frame, headers=bearer)
        assert answer.status == 200
        payload = await answer.json()
    assert payload["image"] == {"width": 1920, "height": 1080}
    assert isinstance(payload["detections"], list)
    assert set(payload["timings_ms"]) == {"decode", "queue", "inference", "total"}


def test_naive_detections_have_the_hsi_shape(detector: naive_server.NaiveDetector) -> None:
    # Random weights rarely find anything above 0.25: ask for everything to exercise the mapping.
    loose = naive_server.NaiveDetector(
        naive_server.NaiveConfig("yolo11n.yaml", "cpu", False, 320, 0.0, "k")
    )
    payload = loose.detect(bench.benchmark_frame(bench.default_image()))
    assert payload["detections"], "confidence 0 keeps every candidate box"
    first = payload["detections"][0]
    assert set(first) == {"label", "class_id", "confidence", "box"}
    assert set(first["box"]) == {"x_min", "y_min", "x_max", "y_max"}
    assert detector is not loose


def test_naive_main_refuses_to_start_without_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HSI_API_KEY", raising=False)
    with pytest.raises(SystemExit, match="HSI_API_KEY"):
        naive_server.main(["--device", "cpu"])


def test_device_auto_resolves_to_something_torch_can_use() -> None:
    assert naive_server._resolve_device("cpu") == "cpu"
    assert naive_server._resolve_device("auto") in {"cpu", "cuda:0"}


async def test_whole_benchmark_against_both_real_servers(tmp_path: Path) -> None:
    args = bench.parse_args(
        ["--device", "cpu", "--imgsz", "320", "--levels", "1,2", "--requests", "2", "--warmup", "1",
         "--export-dir", str(tmp_path), "--model-repeats", "2"]
    )  # fmt: skip
    report = await bench.run(args)
    assert report.index("### ours") < report.index("### naive") < report.index("### model alone")
    assert report.index("### model alone") < report.index("### ours / naive")
    assert re.search(r"openvino bf16|openvino fp32", report)  # auto picked OpenVINO on this CPU
    assert re.search(r"^\| 2 \| \d+\.\d \| \d+% \| -?\d+% \|$", report, re.MULTILINE)
    assert re.search(r"^\| 2 \| \d+\.\d\dx \| \d+\.\d\dx \|$", report, re.MULTILINE)
    naive_rows = report.split("### naive")[1].split("###")[0]
    assert naive_rows.count("| 0 | - |") == 2  # no errors; no batch metric from the naive server
    ours_rows = report.split("### ours")[1]
    assert re.search(r"\| 0 \| \d+\.\d \|$", ours_rows, re.MULTILINE)  # batches were measured


async def test_a_server_that_cannot_start_is_reported() -> None:
    args = bench.parse_args(["--device", "cpu", "--model", "no-such-model.yaml"])
    with pytest.raises(RuntimeError, match="exited during start"):
        await bench.run(argparse.Namespace(**{**vars(args), "servers": "naive"}))


def test_unknown_server_name_is_refused() -> None:
    with pytest.raises(SystemExit, match="unknown server"):
        bench.main(["--servers", "fastest"])


async def test_refused_and_unreachable_requests_count_as_errors(
    detector: naive_server.NaiveDetector,
) -> None:
    frame = bench.benchmark_frame(bench.default_image())
    async with TestServer(naive_server.build_app(detector, secrets.token_urlsafe(32))) as server:
        url = str(server.make_url("")).rstrip("/")
        refused = await bench.run_level(url, "wrong-key", frame, 2, 3, 30)
    assert (refused.errors, refused.latencies_ms) == (3, ())
    # The server is gone now: connection errors are counted, not raised.
    unreachable = await bench.run_level(url, "wrong-key", frame, 1, 2, 5)
    assert (unreachable.errors, unreachable.latencies_ms) == (2, ())


async def test_a_server_that_never_answers_times_out() -> None:
    sleeper = "import time; time.sleep(60)"
    silent = await asyncio.create_subprocess_exec(sys.executable, "-c", sleeper)
    url = f"http://127.0.0.1:{bench.free_port()}"
    try:
        with io.BytesIO() as log:
            server = bench.RunningServer("silent", silent, url, log)
            with pytest.raises(RuntimeError, match="not healthy after 1 s"):
                await bench.wait_healthy(server, "key", 1.0)
    finally:
        await bench.stop_process(silent)
    assert silent.returncode == -signal.SIGTERM


async def test_a_server_ignoring_sigterm_is_killed() -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print(1, flush=True); time.sleep(60)"
    )
    stubborn = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE
    )
    assert stubborn.stdout is not None
    await stubborn.stdout.readline()  # SIGTERM is ignored from here on
    await bench.stop_process(stubborn, grace_s=0.5)
    assert stubborn.returncode == -signal.SIGKILL


def test_mean_batch_needs_two_readings_with_progress() -> None:
    assert bench.mean_batch((10.0, 4.0), (40.0, 10.0)) == 5.0
    assert bench.mean_batch(None, (1.0, 1.0)) is None
    assert bench.mean_batch((1.0, 1.0), (1.0, 1.0)) is None


def test_rounds_combine_into_one_level() -> None:
    parts = [
        bench.LevelResult(4, 8, 1, 1.0, (10.0,) * 7),
        bench.LevelResult(4, 8, 0, 3.0, (30.0,) * 8),
    ]
    level = bench.combine(parts, 2.5)
    assert (level.cameras, level.requests, level.errors, level.wall_s) == (4, 16, 1, 4.0)
    assert level.images_per_s == 15 / 4.0
    assert level.p50_ms == 30.0
    assert level.mean_batch == 2.5


def test_model_alone_and_the_share_outside_it() -> None:
    model = bench.ModelTime("openvino", "bf16", 2, "640x384", 10.0, 11.0, 20.0)
    assert model.outside_share(80.0) == pytest.approx(0.2)
    table = bench.model_table(model, [_result(16, [1.0] * 80, wall=1.0)])
    assert "at most 100.0 images/s" in table
    assert "| 16 | 80.0 | 80% | 20% |" in table


def test_cpu_model_from_cpuinfo(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Example CPU @ 2.0GHz\n", encoding="utf-8")
    assert bench.cpu_model(info) == "Example CPU @ 2.0GHz"
    assert bench.cpu_model(tmp_path / "missing")  # falls back to what platform knows


def test_our_thread_flags_reach_the_server() -> None:
    args = bench.parse_args(["--cpu-threads", "1", "--decode-workers", "3"])
    flags = bench.our_flags(args, 1)
    assert flags[flags.index("--cpu-threads") + 1] == "1"
    assert flags[flags.index("--decode-workers") + 1] == "3"
    assert "--cpu-threads" not in bench.our_flags(bench.parse_args([]), 1)


def test_model_time_runs_the_server_engine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = tmp_path / "frame.jpg"
    frame.write_bytes(bench.benchmark_frame(bench.default_image(), (320, 180)))
    model_time.main(
        ["--frame", str(frame), "--repeats", "2", "--", "--model", "yolo11n.yaml", "--imgsz", "64",
         "--runtime", "torch", "--device", "cpu"]
    )  # fmt: skip
    found = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (found["runtime"], found["input"], found["streams"]) == ("torch", "64x64", 2)
    # Figures only, no timing comparison: a loaded machine makes any ratio between them flaky.
    assert found["model_ms"] > 0
    assert found["engine_ms"] > 0
    assert found["pass_ms"] > 0


async def test_model_time_failure_is_reported() -> None:
    args = bench.parse_args(["--model", "no-such-model.yaml", "--model-repeats", "1"])
    with pytest.raises(RuntimeError, match="model_time failed"):
        await bench.time_model(args, b"not a frame")


def test_int8_check_compares_int8_with_fp32(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    image = bench.default_image()
    (frames / "bus.jpg").write_bytes(image.read_bytes())
    (frames / "zidane.jpg").write_bytes((image.parent / "zidane.jpg").read_bytes())
    int8_check.main(["--calibration", str(frames), "--imgsz", "64", "--repeats", "2"])
    report = capsys.readouterr().out
    rows = [line for line in report.splitlines() if line.startswith("| ") and "---" not in line]
    assert [row.split(" | ")[0] for row in rows[1:]] == [
        "| fp32",
        rows[2].split(" | ")[0],
        "| int8",
    ]
    assert rows[2].startswith("| default (")
    assert "| 1.00x | 0.0000 / 1.00000 |" in rows[1]  # fp32 against itself
    assert "2 frame(s))" in report
