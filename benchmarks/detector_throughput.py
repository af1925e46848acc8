"""Detector throughput benchmark: our batched server against a naive one-at-a-time server.

Both servers are started here as subprocesses on free loopback ports with a freshly generated API
key (passed through the environment, never on a command line), load the same model on the same
device, and are driven by the same client code with the same JPEGs: by default a 1920x1080 main
stream frame and a 640x360 substream frame (what the integration sends by default: the smallest
profile whose long side is at least 640 px). For each frame and level of concurrent cameras
(clients) the script sends a fixed number of requests and measures images per second and the
p50/p99 latency seen by the clients. The client is a few lines of HTTP/1.1 over keep-alive sockets,
so that it takes little of the CPU the servers share with it. Both servers stay up, but only one is
measured at a time (taking turns), so they do not compete for the accelerator. Our server's threads
are read from /proc as it runs: where its CPU time goes per image (decoding, the runtime's threads,
the inference threads' NMS, the event loop), and the client's. Then, in the same run with the
servers stopped, ``model_time.py`` times our server's model alone (same flags, no server around
it) on each frame: the limit the hardware sets, and the share of wall time our server spends
outside the model at each level. Output: per frame one markdown table per server, where the CPU
went and the model alone; then the ours/naive ratios last.

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
import dataclasses
from dataclasses import dataclass
import io
import json
import math
import os
from pathlib import Path
import platform
import re
import resource
import secrets
import shlex
import socket
import ssl
import sys
import tempfile
import time
from typing import IO

import aiohttp
from PIL import Image
import yaml  # type: ignore[import-untyped]  # no types-PyYAML in the detector venv

from hsi_detector.tls import CERT_FILE

REPO_ROOT = Path(__file__).resolve().parent.parent
NAIVE_SERVER = Path(__file__).resolve().parent / "naive_server.py"
MODEL_TIME = Path(__file__).resolve().parent / "model_time.py"
FRAME_SIZE = (1920, 1080)
FRAME_SIZES = ((1920, 1080), (640, 360))
"""A camera's main stream, and the substream the integration detects on by default."""
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
    cpu_ms: dict[str, float] | None = None  # CPU per image by thread group (ours), and the client

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


def server_command(
    name: str, args: argparse.Namespace, port: int, tls_dir: Path | None = None
) -> list[str]:
    """The argv that starts server ``name`` with the benchmark's model, device and sizes."""
    if name == NAIVE:
        return [args.python, str(NAIVE_SERVER), *_common_flags(args, port)]
    if args.addon_defaults:
        return [args.python, "-m", "hsi_detector", *addon_flags(args, port, tls_dir)]
    return [args.python, "-m", "hsi_detector", *our_flags(args, port)]


ADDON_CONFIG = REPO_ROOT / "addon" / "hsi_detector" / "config.yaml"
ADDON_OVERRIDES = ("host", "port", "tls_dir", "export_dir", "model", "log_level")
"""What `--addon-defaults` sets otherwise than the add-on: loopback and a free port, a temporary
certificate folder, the benchmark's export cache and model (yolo11n.yaml: the network of the
add-on's yolo11n.pt, with no download), and quiet logs."""


def addon_flags(args: argparse.Namespace, port: int, tls_dir: Path | None) -> list[str]:
    """Our server's command line as the add-on's run.sh makes it from the add-on's default
    options (addon/hsi_detector/config.yaml), but for `ADDON_OVERRIDES`."""
    options = yaml.safe_load(ADDON_CONFIG.read_text(encoding="utf-8"))["options"]
    flags = ["--host", "127.0.0.1", "--port", str(port), "--network-mode", "addon"]
    flags += ["--tls-dir", str(tls_dir or Path(tempfile.gettempdir()) / "hsi-benchmark-tls")]
    flags += ["--model", args.model, "--log-level", "warning"]
    if args.export_dir:
        flags += ["--export-dir", str(args.export_dir)]
    for name, value in options.items():
        if name in ("model", "log_level", "certfile", "keyfile"):  # overridden; tls "provided" only
            continue
        if name == "warmup":
            flags.append("--warmup" if value else "--no-warmup")
        elif isinstance(value, list):
            if value:
                flags += [f"--{name.replace('_', '-')}", ",".join(map(str, value))]
        else:
            flags += [f"--{name.replace('_', '-')}", str(value)]
    return flags


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
    tls_dir: Path | None = None
    """Where a TLS server (the add-on's defaults: self-signed) keeps its certificate."""
    _context: ssl.SSLContext | None = None

    def ssl_context(self) -> ssl.SSLContext | None:
        """None for plain HTTP; else a context that trusts exactly the server's own self-signed
        certificate (verified, host name included), once the server has made it."""
        if self.tls_dir is None or self._context is not None:
            return self._context
        cert = self.tls_dir / CERT_FILE
        if not cert.is_file():
            raise ConnectionError("the server has not made its certificate yet")
        self._context = ssl.create_default_context(cafile=str(cert))
        return self._context

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
        flags = addon_flags(args, 0, None) if args.addon_defaults else our_flags(args, 0)
        command += ["--repeats", str(args.model_repeats), "--", *flags]
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
        "### model alone (ours, same flags, no server, this frame)",
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
    tls = name == OURS and args.addon_defaults
    with tempfile.TemporaryFile() as log, tempfile.TemporaryDirectory() as folder:
        tls_dir = Path(folder) / "tls" if tls else None
        command = server_command(name, args, port, tls_dir)
        print(f"starting {name}: {shlex.join(command)}", file=sys.stderr)
        process = await asyncio.create_subprocess_exec(
            *command, stdout=log, stderr=asyncio.subprocess.STDOUT, env=env
        )
        url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        server = RunningServer(name, process, url, log, tls_dir)
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
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, ConnectionError):
                context = server.ssl_context() or True  # True: aiohttp's default (plain HTTP here)
                async with session.get(
                    f"{server.url}/health", headers=headers, ssl=context
                ) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.5)
    raise RuntimeError(f"{server.name} not healthy after {timeout_s:.0f} s:\n{server.log_tail()}")


async def batch_totals(server: RunningServer, api_key: str) -> tuple[float, float] | None:
    """Sum and count of the server's ``hsi_batch_size`` histogram; None without one (naive)."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
            session.get(
                f"{server.url}/metrics",
                headers={"X-API-Key": api_key},
                ssl=server.ssl_context() or True,
            ) as response,
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


def _request_bytes(url: str, api_key: str, frame: bytes) -> tuple[str, int, bytes]:
    """Host, port and the whole keep-alive POST /v1/detect request, built once per level."""
    authority = url.partition("://")[2].rstrip("/")
    host, _, port = authority.rpartition(":")
    head = (
        f"POST /v1/detect HTTP/1.1\r\nHost: {authority}\r\nX-API-Key: {api_key}\r\n"
        f"Content-Type: image/jpeg\r\nContent-Length: {len(frame)}\r\n\r\n"
    )
    return host, int(port), head.encode() + frame


class _Connection(asyncio.Protocol):
    """One keep-alive client connection: a request written whole, its answer parsed from the
    buffer (status, Content-Length, Connection), no stream reader in between."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        try:
            answer = self._answer()
        except ConnectionError as err:
            waiter.set_exception(err)
            return
        if answer is not None:
            waiter.set_result(answer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("the server closed the connection"))

    def _answer(self) -> tuple[int, bytes, bool] | None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if not self.buffer.startswith(b"HTTP/"[: len(self.buffer)]):
                raise ConnectionError("no HTTP answer")
            return None
        status_line, *lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        parts = status_line.split()
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise ConnectionError("no HTTP answer")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if not headers.get("content-length", "").isdigit():
            raise ConnectionError("an answer without Content-Length")
        total = end + 4 + int(headers["content-length"])
        if len(self.buffer) < total:
            return None
        body = bytes(self.buffer[end + 4 : total])
        del self.buffer[:total]
        return int(parts[1]), body, headers.get("connection", "").lower() != "close"

    async def exchange(self, request: bytes) -> tuple[int, bytes, bool]:
        """Send one request, wait for its answer: (status, body, whether the socket stays)."""
        if self.lost or self.transport is None:
            raise ConnectionError("the connection is closed")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def run_level(
    url: str,
    api_key: str,
    frame: bytes,
    cameras: int,
    requests: int,
    timeout_s: float,
    context: ssl.SSLContext | None = None,
) -> LevelResult:
    """``cameras`` clients share ``requests`` requests; each sends the next once one returns, on
    its own keep-alive connection (opened again after an error), TLS with a ``context``."""
    host, port, request = _request_bytes(url, api_key, frame)
    latencies: list[float] = []
    errors = 0
    remaining = requests

    async def camera() -> None:
        nonlocal remaining, errors
        connection: _Connection | None = None
        loop = asyncio.get_running_loop()
        try:
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                try:
                    async with asyncio.timeout(timeout_s):
                        if connection is None:
                            _, connection = await loop.create_connection(
                                _Connection, host, port, ssl=context
                            )
                        status, body, keep = await connection.exchange(request)
                except (OSError, EOFError, TimeoutError, ValueError):
                    errors += 1
                    _closed(connection)
                    connection = None
                    continue
                if not keep:
                    _closed(connection)
                    connection = None
                if status != 200 or b'"detections"' not in body:
                    errors += 1
                    continue
                latencies.append((time.perf_counter() - started) * 1000)
        finally:
            _closed(connection)

    started = time.perf_counter()
    await asyncio.gather(*(camera() for _ in range(cameras)))
    wall = time.perf_counter() - started
    return LevelResult(cameras, requests, errors, wall, tuple(latencies))


def _closed(connection: _Connection | None) -> None:
    """Close a client connection, if there is one."""
    if connection is not None:
        connection.close()


TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def thread_cpu(pid: int, proc: Path = Path("/proc")) -> dict[str, float] | None:
    """CPU seconds so far of process ``pid``'s threads, by group (see `cpu_group`); None where
    there is no /proc to read (not Linux)."""
    groups: dict[str, float] = {}
    try:
        tids = [entry.name for entry in (proc / str(pid) / "task").iterdir()]
    except OSError:
        return None
    for tid in tids:
        task = proc / str(pid) / "task" / tid
        try:
            stat = (task / "stat").read_text()
            name = (task / "comm").read_text().strip()
        except OSError:  # the thread ended meanwhile
            continue
        fields = stat.rsplit(")", 1)[1].split()
        seconds = (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime
        group = cpu_group(name, main=tid == str(pid))
        groups[group] = groups.get(group, 0.0) + seconds
    return groups


CPU_GROUPS = ("model", "decode", "inference", "loop", "client")


def cpu_group(thread_name: str, *, main: bool) -> str:
    """Our server's threads by what they do: the event loop is the main thread; the decode pool and
    the inference threads (NMS, hand-offs) are named by us; the rest are the runtime's (OpenVINO's,
    ONNX Runtime's or torch's workers: the model)."""
    if main:
        return "loop"
    if thread_name.startswith("hsi-decode"):
        return "decode"
    if thread_name.startswith("hsi-inference"):
        return "inference"
    return "model"


def cpu_spent(
    before: dict[str, float] | None, after: dict[str, float] | None, client_s: float
) -> dict[str, float] | None:
    """CPU seconds by group between two `thread_cpu` readings, and the client's; None without
    readings."""
    if before is None or after is None:
        return None
    found = {g: after.get(g, 0.0) - before.get(g, 0.0) for g in CPU_GROUPS}
    found["client"] = client_s
    return found


def cpu_per_image(spent: dict[str, float], images: int) -> dict[str, float] | None:
    """CPU milliseconds per image by group, from the seconds `cpu_spent` added up."""
    if not spent or images <= 0:
        return None
    return {group: seconds * 1000 / images for group, seconds in spent.items()}


def client_cpu_s() -> float:
    """CPU seconds this process (the benchmark's client) has used."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def benchmark_servers(
    names: Sequence[str], args: argparse.Namespace, frames: Sequence[bytes], api_key: str
) -> list[dict[str, list[LevelResult]]]:
    """Start every server, then per frame warm each up and measure level by level, one server at a
    time; the results per frame, in order.

    Each level is split into rounds (``--rounds``, as long as every camera still sends at least one
    request per round) and the servers take turns round by round, the order alternating, rather than
    one whole server after the other: slow drifts of the machine (thermal, other load) then touch
    both alike. An idle server does no work while the other one is measured.
    """
    async with contextlib.AsyncExitStack() as stack:
        servers = [
            await stack.enter_async_context(started_server(name, args, api_key)) for name in names
        ]
        for server in servers:
            await wait_healthy(server, api_key, args.start_timeout)
        return [await _measure_frame(servers, args, frame, api_key) for frame in frames]


async def _measure_frame(
    servers: Sequence[RunningServer], args: argparse.Namespace, frame: bytes, api_key: str
) -> dict[str, list[LevelResult]]:
    results: dict[str, list[LevelResult]] = {s.name: [] for s in servers}
    warm = min(max(args.levels), 16)
    for server in servers:
        await run_level(
            server.url, api_key, frame, warm, max(args.warmup, warm), args.timeout,
            server.ssl_context(),
        )  # fmt: skip
    for cameras in args.levels:
        requests = max(args.requests, cameras)
        rounds = max(1, min(args.rounds, requests // cameras))
        before = {s.name: await batch_totals(s, api_key) for s in servers}
        parts: dict[str, list[LevelResult]] = {s.name: [] for s in servers}
        ours_cpu: dict[str, float] = {}  # seconds by thread group, our server's parts only
        for turn in range(rounds):
            share = requests // rounds + (1 if turn < requests % rounds else 0)
            for server in servers if turn % 2 == 0 else servers[::-1]:
                pid = server.process.pid
                threads = thread_cpu(pid) if server.name == OURS else None
                client = client_cpu_s()
                part = await run_level(
                    server.url, api_key, frame, cameras, share, args.timeout,
                    server.ssl_context(),
                )  # fmt: skip
                if threads is not None:
                    spent = cpu_spent(threads, thread_cpu(pid), client_cpu_s() - client)
                    for group, seconds in (spent or {}).items():
                        ours_cpu[group] = ours_cpu.get(group, 0.0) + seconds
                parts[server.name].append(part)
        for server in servers:
            batches = mean_batch(before[server.name], await batch_totals(server, api_key))
            result = combine(parts[server.name], batches)
            if server.name == OURS:
                per_image = cpu_per_image(ours_cpu, len(result.latencies_ms))
                result = dataclasses.replace(result, cpu_ms=per_image)
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


def cpu_table(name: str, results: Sequence[LevelResult]) -> str:
    """Where the CPU went per image, by thread group (see `cpu_group`), at each level."""
    rows = [
        f"### where the CPU went ({name}, ms of CPU per image)",
        "",
        "| cameras | " + " | ".join(CPU_GROUPS) + " | not in the model's threads |",
        "| ---: | " + " | ".join("---:" for _ in CPU_GROUPS) + " | ---: |",
    ]
    for r in results:
        if r.cpu_ms is None:
            continue
        total = sum(r.cpu_ms.get(g, 0.0) for g in CPU_GROUPS)
        outside = 1 - r.cpu_ms.get("model", 0.0) / total if total > 0 else math.nan
        cells = " | ".join(f"{r.cpu_ms.get(g, 0.0):.2f}" for g in CPU_GROUPS)
        rows.append(f"| {r.cameras} | {cells} | {outside:.0%} |")
    return "\n".join(rows)


def _ratio(numerator: float, denominator: float) -> str:
    if denominator == 0 or math.isnan(numerator) or math.isnan(denominator):
        return "n/a"
    return f"{numerator / denominator:.2f}x"


def ratio_table(ours: Sequence[LevelResult], naive: Sequence[LevelResult], frame: str = "") -> str:
    """ours / naive per level: images/s (higher is better) and p99 latency (lower is better)."""
    rows = [
        f"### ours / naive{f', {frame} frame' if frame else ''}",
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
        f"Frames from {(args.image or default_image()).name}; "
        f"model {args.model}, imgsz {args.imgsz}, device {args.device}, half {args.half}, "
        f"{'the add-on defaults (TLS self-signed), ' if args.addon_defaults else ''}"
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
        "--model-repeats", type=int, default=100, help="passes of the model alone (0: not timed)"
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
    parser.add_argument(
        "--addon-defaults",
        action="store_true",
        help="run ours with the add-on's default options (TLS self-signed, its limits)",
    )
    parser.add_argument("--image", type=Path, default=None, help="default: ultralytics bus.jpg")
    parser.add_argument(
        "--frames",
        type=_sizes,
        default=list(FRAME_SIZES),
        help="frame sizes, WxH, comma-separated (default: 1920x1080,640x360)",
    )
    parser.add_argument("--servers", default=f"{OURS},{NAIVE}", help="which servers to run")
    parser.add_argument("--timeout", type=float, default=300, help="per-request timeout, s")
    parser.add_argument("--start-timeout", type=float, default=180, help="server start, s")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the servers")
    return parser.parse_args(argv)


def _sizes(text: str) -> list[tuple[int, int]]:
    sizes: list[tuple[int, int]] = []
    for part in text.split(","):
        width, _, height = part.strip().partition("x")
        if not (width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0):
            raise argparse.ArgumentTypeError(f"frame sizes are WxH, e.g. 1920x1080; got {part!r}")
        sizes.append((int(width), int(height)))
    return sizes


def _batch_size(text: str) -> str:
    """``auto`` or a positive integer, passed to the server as it is."""
    if text != "auto" and not (text.isdigit() and int(text) > 0):
        raise argparse.ArgumentTypeError(f"expected auto or a positive integer, got {text!r}")
    return text


async def run(args: argparse.Namespace) -> str:
    """Run every selected server on every frame and return the report (ratios last)."""
    source = args.image or default_image()
    frames = [benchmark_frame(source, size) for size in args.frames]
    api_key = secrets.token_urlsafe(32)
    selected = [name.strip() for name in args.servers.split(",") if name.strip()]
    for name in selected:
        if name not in (OURS, NAIVE):
            raise SystemExit(f"unknown server {name!r}: choose from {OURS}, {NAIVE}")
    measured = await benchmark_servers(selected, args, frames, api_key)
    parts = [describe_machine(args)]
    ratios: list[str] = []
    for (width, height), frame, results in zip(args.frames, frames, measured, strict=True):
        label = f"{width}x{height}"
        parts.append(f"## {label} frame: JPEG, {len(frame) // 1024} KiB")
        parts += [server_table(name, found) for name, found in results.items()]
        if OURS in results and any(r.cpu_ms for r in results[OURS]):
            parts.append(cpu_table(OURS, results[OURS]))
        if OURS in results and args.model_repeats > 0:
            parts.append(model_table(await time_model(args, frame), results[OURS]))
        if OURS in results and NAIVE in results:
            ratios.append(ratio_table(results[OURS], results[NAIVE], label))
    return "\n\n".join(parts + ratios)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: print the report to stdout (progress goes to stderr)."""
    print(asyncio.run(run(parse_args(argv))))


if __name__ == "__main__":
    main()
