"""Detector throughput benchmark: our batched server against a naive one-at-a-time server.

Both servers are started here as subprocesses on free loopback ports with a freshly generated API
key (passed through the environment, never on a command line), load the same model on the same
device, and are driven by the same client code with the same 1080p JPEG. For each level of
concurrent cameras (clients) the script sends a fixed number of requests and measures images per
second and the p50/p99 latency seen by the clients. Both servers stay up, but only one is measured
at a time (taking turns level by level), so they do not compete for the accelerator. Then, in the
same run with the servers stopped, ``model_time.py`` times our server's model alone (same flags, no
server around it) on the same frame: the limit the hardware sets, and the share of wall time our
server spends outside the model at each level. Output: one markdown table per server, the model
alone, then the ours/naive ratios last.

    .venv-detector/bin/python benchmarks/detector_throughput.py                 # CPU, a few minutes
    .venv-detector/bin/python benchmarks/detector_throughput.py --device cuda --requests 512

The default model ``yolo11n.yaml`` has random weights (nothing downloads weights here): the work
per image is the real one, the detections are not. Pass ``--model yolo11n.pt`` for real weights.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Sequence
import contextlib
from dataclasses import dataclass
import io
import json
import math
import os
from pathlib import Path
import platform
import re
import secrets
import shlex
import socket
import sys
import tempfile
import time
from typing import IO

import aiohttp
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent
NAIVE_SERVER = Path(__file__).resolve().parent / "naive_server.py"
MODEL_TIME = Path(__file__).resolve().parent / "model_time.py"
FRAME_SIZE = (1920, 1080)
OURS, NAIVE = "ours", "naive"


@dataclass(frozen=True, slots=True)
class LevelResult:
    """What the clients saw at one level of concurrency."""

    cameras: int
    requests: int
    errors: int
    wall_s: float
    latencies_ms: tuple[float, ...]
    mean_batch: float | None = None  # images per forward pass, from the server's /metrics

    @property
    def images_per_s(self) -> float:
        """Successful images per second of wall time for the whole level."""
        return len(self.latencies_ms) / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def p50_ms(self) -> float:
        """Median client latency of the successful requests."""
        return percentile(self.latencies_ms, 50)

    @property
    def p99_ms(self) -> float:
        """99th percentile client latency of the successful requests."""
        return percentile(self.latencies_ms, 99)


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation: every figure is a latency that happened)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def benchmark_frame(source: Path, size: tuple[int, int] = FRAME_SIZE) -> bytes:
    """The test frame: ``source`` scaled to a 1080p camera frame, as a JPEG like a camera sends."""
    with Image.open(source) as raw:
        frame = raw.convert("RGB").resize(size, Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    frame.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def default_image() -> Path:
    """ultralytics' bus.jpg (people and a bus), shipped inside the ultralytics package."""
    import ultralytics  # only to locate its assets; heavy, so imported late

    return Path(ultralytics.__file__).resolve().parent / "assets" / "bus.jpg"


def free_port() -> int:
    """A loopback port that was free a moment ago (the server binds it right after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_command(name: str, args: argparse.Namespace, port: int) -> list[str]:
    """The argv that starts server ``name`` with the benchmark's model, device and sizes."""
    if name == NAIVE:
        return [args.python, str(NAIVE_SERVER), *_common_flags(args, port)]
    return [args.python, "-m", "hsi_detector", *our_flags(args, port)]


def _common_flags(args: argparse.Namespace, port: int) -> list[str]:
    common = ["--host", "127.0.0.1", "--port", str(port), "--model", args.model]
    return [*common, "--device", args.device, "--half", args.half, "--imgsz", str(args.imgsz)]


def our_flags(args: argparse.Namespace, port: int) -> list[str]:
    """Our server's command line after ``python -m hsi_detector`` (also what model_time loads)."""
    biggest = max(args.levels)
    return [
        *_common_flags(args, port),
        "--engine",
        "ultralytics",
        "--runtime",
        args.runtime,
        *(["--export-dir", str(args.export_dir)] if args.export_dir else []),
        *(["--cpu-threads", str(args.cpu_threads)] if args.cpu_threads else []),
        *(["--decode-workers", str(args.decode_workers)] if args.decode_workers else []),
        "--max-batch-size",
        str(args.max_batch_size),
        "--max-batch-wait-ms",
        str(args.max_batch_wait_ms),
        # The benchmark measures throughput, not the server's overload protection: the queue holds
        # every camera, requests may wait as long as the client does, one client may send freely.
        "--max-queue",
        str(max(256, 2 * biggest)),
        "--request-timeout",
        str(args.timeout),
        "--rate-limit",
        "0",
        "--tls",
        "disabled",
        "--log-level",
        "warning",
    ]


@dataclass(slots=True)
class RunningServer:
    """A started server subprocess and where to reach it."""

    name: str
    process: asyncio.subprocess.Process
    url: str
    log: IO[bytes]

    def log_tail(self, lines: int = 30) -> str:
        """The last lines the server wrote, to explain a failed start."""
        self.log.flush()
        self.log.seek(0)
        return "\n".join(self.log.read().decode(errors="replace").splitlines()[-lines:])


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child process: this checkout's detector/ first on the import path."""
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT / "detector"), env.get("PYTHONPATH", "")) if p
    )
    return env


@dataclass(frozen=True, slots=True)
class ModelTime:
    """Our model alone (``model_time.py``): milliseconds per image, back to back."""

    runtime: str
    precision: str
    streams: int
    input: str
    model_ms: float
    engine_ms: float
    pass_ms: float

    def outside_share(self, images_per_s: float) -> float:
        """The share of wall time not spent in the model, at a server's images/s."""
        return 1 - images_per_s * self.model_ms / 1000


async def time_model(args: argparse.Namespace, frame: bytes) -> ModelTime:
    """Run ``model_time.py`` with our server's flags on ``frame``; parse its JSON line."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "frame.jpg"
        path.write_bytes(frame)
        command = [args.python, str(MODEL_TIME), "--frame", str(path)]
        command += ["--repeats", str(args.model_repeats), "--", *our_flags(args, 0)]
        print(f"timing the model alone: {shlex.join(command)}", file=sys.stderr)
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=child_env(),
        )  # fmt: skip
        out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"model_time failed:\n{err.decode(errors='replace')[-2000:]}")
    found = json.loads(out.decode().strip().splitlines()[-1])
    return ModelTime(
        found["runtime"], found["precision"], found["streams"], found["input"],
        found["model_ms"], found["engine_ms"], found["pass_ms"],
    )  # fmt: skip


def model_table(model: ModelTime, ours: Sequence[LevelResult]) -> str:
    """The model alone, and how much of our server's wall time went elsewhere at each level."""
    limit = 1000 / model.model_ms
    rows = [
        "### model alone (ours, same flags, no server)",
        "",
        f"{model.runtime} {model.precision}, input {model.input}, {model.streams} pass(es) at "
        f"once: the model takes {model.model_ms:.1f} ms per image (at most {limit:.1f} images/s), "
        f"{model.engine_ms:.1f} ms with NMS; one pass by itself {model.pass_ms:.1f} ms.",
        "",
        "| cameras | images/s ours | of the model's limit | wall time outside the model |",
        "| ---: | ---: | ---: | ---: |",
    ]
    rows += [
        f"| {r.cameras} | {r.images_per_s:.1f} | {r.images_per_s / limit:.0%} | "
        f"{model.outside_share(r.images_per_s):.0%} |"
        for r in ours
    ]
    return "\n".join(rows)


@contextlib.asynccontextmanager
async def started_server(
    name: str, args: argparse.Namespace, api_key: str
) -> AsyncIterator[RunningServer]:
    """Start server ``name`` on a free port; always stop it (SIGTERM, then SIGKILL) on exit."""
    port = free_port()
    env = child_env(HSI_API_KEY=api_key)
    command = server_command(name, args, port)
    print(f"starting {name}: {shlex.join(command)}", file=sys.stderr)
    with tempfile.TemporaryFile() as log:
        process = await asyncio.create_subprocess_exec(
            *command, stdout=log, stderr=asyncio.subprocess.STDOUT, env=env
        )
        server = RunningServer(name, process, f"http://127.0.0.1:{port}", log)
        try:
            yield server
        finally:
            await stop_process(process)


async def stop_process(process: asyncio.subprocess.Process, grace_s: float = 15) -> None:
    """SIGTERM, then SIGKILL if the process has not exited within ``grace_s``."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):  # it may exit between check and signal
            process.terminate()
    try:
        await asyncio.wait_for(process.wait(), grace_s)
    except TimeoutError:
        process.kill()
        await process.wait()


async def wait_healthy(server: RunningServer, api_key: str, timeout_s: float) -> None:
    """Poll GET /health until it answers 200; fail early if the process died."""
    deadline = time.monotonic() + timeout_s
    headers = {"X-API-Key": api_key}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        while time.monotonic() < deadline:
            if server.process.returncode is not None:
                raise RuntimeError(f"{server.name} exited during start:\n{server.log_tail()}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(f"{server.url}/health", headers=headers) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.5)
    raise RuntimeError(f"{server.name} not healthy after {timeout_s:.0f} s:\n{server.log_tail()}")


async def batch_totals(url: str, api_key: str) -> tuple[float, float] | None:
    """Sum and count of the server's ``hsi_batch_size`` histogram; None without one (naive)."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
            session.get(f"{url}/metrics", headers={"X-API-Key": api_key}) as response,
        ):
            text = await response.text() if response.status == 200 else ""
    except (aiohttp.ClientError, TimeoutError):
        return None
    found = dict(re.findall(r"^hsi_batch_size_(sum|count) (\S+)$", text, re.MULTILINE))
    if set(found) != {"sum", "count"}:
        return None
    return float(found["sum"]), float(found["count"])


def mean_batch(
    before: tuple[float, float] | None, after: tuple[float, float] | None
) -> float | None:
    """Mean images per forward pass between two ``batch_totals`` readings."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


async def run_level(
    url: str, api_key: str, frame: bytes, cameras: int, requests: int, timeout_s: float
) -> LevelResult:
    """``cameras`` clients share ``requests`` requests; each sends the next once one returns."""
    headers = {"X-API-Key": api_key, "Content-Type": "image/jpeg"}
    latencies: list[float] = []
    errors = 0
    remaining = requests

    async def camera(session: aiohttp.ClientSession) -> None:
        nonlocal remaining, errors
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            try:
                async with session.post(f"{url}/v1/detect", data=frame, headers=headers) as resp:
                    payload = await resp.json() if resp.status == 200 else None
            except (aiohttp.ClientError, TimeoutError):
                errors += 1
                continue
            if payload is None or "detections" not in payload:
                errors += 1
                continue
            latencies.append((time.perf_counter() - started) * 1000)

    connector = aiohttp.TCPConnector(limit=cameras)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        await asyncio.gather(*(camera(session) for _ in range(cameras)))
        wall = time.perf_counter() - started
    return LevelResult(cameras, requests, errors, wall, tuple(latencies))


async def benchmark_servers(
    names: Sequence[str], args: argparse.Namespace, frame: bytes, api_key: str
) -> dict[str, list[LevelResult]]:
    """Start every server, warm each up, then measure level by level, one server at a time.

    Each level is split into rounds (``--rounds``, as long as every camera still sends at least one
    request per round) and the servers take turns round by round, the order alternating, rather than
    one whole server after the other: slow drifts of the machine (thermal, other load) then touch
    both alike. An idle server does no work while the other one is measured.
    """
    results: dict[str, list[LevelResult]] = {name: [] for name in names}
    async with contextlib.AsyncExitStack() as stack:
        servers = [
            await stack.enter_async_context(started_server(name, args, api_key)) for name in names
        ]
        for server in servers:
            await wait_healthy(server, api_key, args.start_timeout)
        warm = min(max(args.levels), 16)
        for server in servers:
            await run_level(server.url, api_key, frame, warm, max(args.warmup, warm), args.timeout)
        for cameras in args.levels:
            requests = max(args.requests, cameras)
            rounds = max(1, min(args.rounds, requests // cameras))
            before = {s.name: await batch_totals(s.url, api_key) for s in servers}
            parts: dict[str, list[LevelResult]] = {s.name: [] for s in servers}
            for turn in range(rounds):
                share = requests // rounds + (1 if turn < requests % rounds else 0)
                for server in servers if turn % 2 == 0 else servers[::-1]:
                    part = await run_level(server.url, api_key, frame, cameras, share, args.timeout)
                    parts[server.name].append(part)
            for server in servers:
                batches = mean_batch(before[server.name], await batch_totals(server.url, api_key))
                result = combine(parts[server.name], batches)
                print(
                    f"  {server.name:>5}: {cameras:>3} cameras  {result.images_per_s:7.1f} img/s"
                    f"  p99 {result.p99_ms:8.1f} ms  errors {result.errors}",
                    file=sys.stderr,
                )
                results[server.name].append(result)
    return results


def combine(parts: Sequence[LevelResult], batches: float | None) -> LevelResult:
    """One level's result from its rounds: requests, errors, wall time and latencies added up."""
    return LevelResult(
        cameras=parts[0].cameras,
        requests=sum(p.requests for p in parts),
        errors=sum(p.errors for p in parts),
        wall_s=sum(p.wall_s for p in parts),
        latencies_ms=tuple(ms for p in parts for ms in p.latencies_ms),
        mean_batch=batches,
    )


def server_table(name: str, results: Sequence[LevelResult]) -> str:
    """One markdown table: a row per level."""
    rows = [
        f"### {name}",
        "",
        "| cameras | requests | images/s | p50 ms | p99 ms | errors | mean batch |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    rows += [
        f"| {r.cameras} | {r.requests} | {r.images_per_s:.1f} | {r.p50_ms:.1f} | "
        f"{r.p99_ms:.1f} | {r.errors} | "
        f"{'-' if r.mean_batch is None else f'{r.mean_batch:.1f}'} |"
        for r in results
    ]
    return "\n".join(rows)


def _ratio(numerator: float, denominator: float) -> str:
    if denominator == 0 or math.isnan(numerator) or math.isnan(denominator):
        return "n/a"
    return f"{numerator / denominator:.2f}x"


def ratio_table(ours: Sequence[LevelResult], naive: Sequence[LevelResult]) -> str:
    """ours / naive per level: images/s (higher is better) and p99 latency (lower is better)."""
    rows = [
        "### ours / naive",
        "",
        "| cameras | images/s ours / naive | p99 ours / naive |",
        "| ---: | ---: | ---: |",
    ]
    rows += [
        f"| {o.cameras} | {_ratio(o.images_per_s, n.images_per_s)} | {_ratio(o.p99_ms, n.p99_ms)} |"
        for o, n in zip(ours, naive, strict=True)
    ]
    return "\n".join(rows)


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name (what `lscpu` shows as Model name)."""
    with contextlib.suppress(OSError):
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    return platform.processor() or platform.machine()


def describe_machine(args: argparse.Namespace) -> str:
    """One line naming what the figures were measured on."""
    import torch  # heavy; only for the description line

    if args.device != "cpu" and torch.cuda.is_available():
        accel = torch.cuda.get_device_name(0)
    else:
        accel = "no GPU"
    return (
        f"model {args.model}, imgsz {args.imgsz}, device {args.device}, half {args.half}, "
        f"runtime {args.runtime}, cpu threads {args.cpu_threads or 'default'}, "
        f"max batch {args.max_batch_size}; {accel}; {os.cpu_count()} CPUs ({cpu_model()}); "
        f"Python {platform.python_version()}, torch {torch.__version__}"
    )


def _levels(text: str) -> list[int]:
    levels = [int(part) for part in text.split(",") if part.strip()]
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError("levels are positive integers, e.g. 1,4,16,64")
    return levels


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command line of the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="yolo11n.yaml", help="ultralytics model (.yaml or .pt)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--half", choices=("auto", "on", "off"), default="auto")
    parser.add_argument(
        "--runtime",
        choices=("torch", "openvino", "onnx", "auto"),
        default="auto",
        help="our server's runtime, default its own (the naive one is always ultralytics on torch)",
    )
    parser.add_argument(
        "--cpu-threads", type=int, default=0, help="our server's --cpu-threads (0: its default)"
    )
    parser.add_argument(
        "--decode-workers", type=int, default=0, help="our server's --decode-workers (0: default)"
    )
    parser.add_argument(
        "--model-repeats", type=int, default=50, help="passes of the model alone (0: not timed)"
    )
    parser.add_argument(
        "--export-dir", type=Path, default=None, help="our server's export cache (its default)"
    )
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--levels", type=_levels, default=[1, 4, 16, 64], help="e.g. 1,4,16,64")
    parser.add_argument(
        "--requests", type=int, default=64, help="requests per level (at least one per camera)"
    )
    parser.add_argument("--warmup", type=int, default=16, help="unmeasured requests per server")
    parser.add_argument(
        "--rounds", type=int, default=4, help="turns the servers take per level (fairness)"
    )
    parser.add_argument(
        "--max-batch-size",
        type=_batch_size,
        default="auto",
        help="our server's batch limit: auto (1 on CPU, 16 on CUDA) or a number",
    )
    parser.add_argument("--max-batch-wait-ms", type=float, default=4)
    parser.add_argument("--image", type=Path, default=None, help="default: ultralytics bus.jpg")
    parser.add_argument("--servers", default=f"{OURS},{NAIVE}", help="which servers to run")
    parser.add_argument("--timeout", type=float, default=300, help="per-request timeout, s")
    parser.add_argument("--start-timeout", type=float, default=180, help="server start, s")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the servers")
    return parser.parse_args(argv)


def _batch_size(text: str) -> str:
    """``auto`` or a positive integer, passed to the server as it is."""
    if text != "auto" and not (text.isdigit() and int(text) > 0):
        raise argparse.ArgumentTypeError(f"expected auto or a positive integer, got {text!r}")
    return text


async def run(args: argparse.Namespace) -> str:
    """Run every selected server and return the report (tables, ratios last)."""
    frame = benchmark_frame(args.image or default_image())
    api_key = secrets.token_urlsafe(32)
    selected = [name.strip() for name in args.servers.split(",") if name.strip()]
    for name in selected:
        if name not in (OURS, NAIVE):
            raise SystemExit(f"unknown server {name!r}: choose from {OURS}, {NAIVE}")
    results = await benchmark_servers(selected, args, frame, api_key)
    parts = [
        f"Frame: {FRAME_SIZE[0]}x{FRAME_SIZE[1]} JPEG, {len(frame) // 1024} KiB. "
        + describe_machine(args),
        *(server_table(name, found) for name, found in results.items()),
    ]
    if OURS in results and args.model_repeats > 0:
        parts.append(model_table(await time_model(args, frame), results[OURS]))
    if OURS in results and NAIVE in results:
        parts.append(ratio_table(results[OURS], results[NAIVE]))
    return "\n\n".join(parts)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: print the report to stdout (progress goes to stderr)."""
    print(asyncio.run(run(parse_args(argv))))


if __name__ == "__main__":
    main()
