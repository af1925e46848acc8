"""Tests of the throughput benchmark and its naive baseline server, with real servers on loopback.

Run with the detector's environment:  .venv-detector/bin/python -m pytest benchmarks/tests
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
    assert bench.parse_args([]).frames == [(1920, 1080), (640, 360)]  # main stream, substream
    assert bench.parse_args(["--frames", "1280x720"]).frames == [(1280, 720)]
    for wrong in ("1280", "0x10", "axb"):
        with pytest.raises(SystemExit):
            bench.parse_args(["--frames", wrong])


def test_threads_are_grouped_by_what_they_do(tmp_path: Path) -> None:
    assert bench.cpu_group("python", main=True) == "loop"
    assert bench.cpu_group("hsi-decode_0", main=False) == "decode"
    assert bench.cpu_group("hsi-inference-1", main=False) == "inference"
    assert bench.cpu_group("python", main=False) == "model"  # the runtime's own workers
    # This process has a main thread at least; a /proc without the process gives None.
    found = bench.thread_cpu(os.getpid())
    assert found is not None
    assert found["loop"] > 0
    assert bench.thread_cpu(os.getpid(), proc=tmp_path) is None
    task = tmp_path / "7" / "task"
    for tid, name, ticks in (("7", "python", (5, 1)), ("8", "hsi-decode_0", (30, 10))):
        (task / tid).mkdir(parents=True)
        (task / tid / "comm").write_text(name + "\n")
        fields = ["S"] + ["0"] * 10 + [str(ticks[0]), str(ticks[1])] + ["0"] * 5
        (task / tid / "stat").write_text(f"{tid} (odd) name) " + " ".join(fields))
    (task / "9").mkdir()  # a thread that ended while being read
    tick = 1 / bench.TICKS
    assert bench.thread_cpu(7, proc=tmp_path) == pytest.approx(
        {"loop": 6 * tick, "decode": 40 * tick}
    )


def test_cpu_per_image_and_its_table() -> None:
    before = {"model": 1.0, "decode": 0.5}
    after = {"model": 3.0, "decode": 1.0, "inference": 0.1, "loop": 0.2}
    spent = bench.cpu_spent(before, after, 0.1)
    assert spent is not None
    per = bench.cpu_per_image(spent, 100)
    assert per == pytest.approx(
        {"model": 20.0, "decode": 5.0, "inference": 1.0, "loop": 2.0, "client": 1.0}
    )
    assert bench.cpu_spent(None, after, 0.0) is None
    assert bench.cpu_per_image(spent, 0) is None
    assert bench.cpu_per_image({}, 10) is None
    rows = [bench.LevelResult(16, 1, 0, 1.0, (1.0,), cpu_ms=per), _result(1, [1.0])]
    table = bench.cpu_table("ours", rows)
    assert "| 16 | 20.00 | 5.00 | 1.00 | 2.00 | 1.00 | 31% |" in table  # 9 of 29 ms
    assert "| 1 |" not in table  # a level without readings has no row


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
    main, sub = report.index("## 1920x1080 frame"), report.index("## 640x360 frame")
    first = report[main:sub]
    assert first.index("### ours") < first.index("### naive") < first.index("### where the CPU")
    assert first.index("### where the CPU") < first.index("### model alone")
    assert report.index("### model alone", sub) < report.index("### ours / naive, 1920x1080")
    assert report.index("### ours / naive, 1920x1080") < report.index("### ours / naive, 640x360")
    assert re.search(r"openvino bf16|openvino fp32", report)  # auto picked OpenVINO on this CPU
    assert len(re.findall(r"^\| 2 \| \d+\.\d \| \d+% \| -?\d+% \|$", report, re.MULTILINE)) == 2
    assert len(re.findall(r"^\| 2 \| \d+\.\d\dx \| \d+\.\d\dx \|$", report, re.MULTILINE)) == 2
    naive_rows = first.split("### naive")[1].split("###")[0]
    assert naive_rows.count("| 0 | - |") == 2  # no errors; no batch metric from the naive server
    ours_rows = first.split("### ours")[1].split("###")[0]
    assert re.search(r"\| 0 \| \d+\.\d \|$", ours_rows, re.MULTILINE)  # batches were measured
    # Our server's CPU by thread group, from /proc (in 10 ms ticks: coarse for 2 requests).
    cells = r" \| ".join([r"([\d.]+)"] * 5)
    cpu_section = first.split("### where the CPU")[1].split("###")[0]
    cpu_rows = re.findall(rf"^\| (\d) \| {cells} \| \d+% \|$", cpu_section, re.MULTILINE)
    assert [row[0] for row in cpu_rows] == ["1", "2"]
    for row in cpu_rows:
        assert sum(float(cell) for cell in row[1:]) > 0


async def test_ours_with_the_addon_defaults_over_tls(tmp_path: Path) -> None:
    args = bench.parse_args(
        ["--addon-defaults", "--servers", "ours", "--frames", "640x360", "--levels", "2",
         "--requests", "4", "--warmup", "1", "--export-dir", str(tmp_path), "--model-repeats", "2"]
    )  # fmt: skip
    report = await bench.run(args)
    assert "the add-on defaults (TLS self-signed)" in report
    assert re.search(r"^\| 2 \| 4 \| \d+\.\d \| [\d.]+ \| [\d.]+ \| 0 \|", report, re.MULTILINE)
    assert "### model alone" in report
    assert "### ours / naive" not in report  # no naive server in this run


def test_a_tls_server_is_trusted_only_once_it_has_its_certificate(tmp_path: Path) -> None:
    server = bench.RunningServer("ours", None, "https://127.0.0.1:1", io.BytesIO(), tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ConnectionError):
        server.ssl_context()
    plain = bench.RunningServer("naive", None, "http://127.0.0.1:1", io.BytesIO())  # type: ignore[arg-type]
    assert plain.ssl_context() is None


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


async def test_answers_the_client_cannot_use_are_errors() -> None:
    """A server that answers without Content-Length, with Connection: close, or not HTTP at all."""
    answers = iter(
        [
            b'HTTP/1.1 200 OK\r\nContent-Length: 17\r\nConnection: close\r\n\r\n{"detections":[]}',
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"SSH-2.0-OpenSSH\r\n",
        ]
    )

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(next(answers, b""))
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        level = await bench.run_level(f"http://127.0.0.1:{port}", "key", b"x" * 10, 1, 3, 5)
    assert (level.errors, len(level.latencies_ms)) == (2, 1)  # the first one, then reconnected


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
