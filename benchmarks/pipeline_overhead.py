"""Pipeline overhead benchmark: what our detection pipeline adds around the bare model call.

A real Home Assistant (``homeassistant.core.HomeAssistant`` on a temporary config directory, the
same event loop and executor Home Assistant's runner makes, no frontend) runs the integration with
N simulated ONVIF cameras (``tests/support/onvif_sim``, one port each, all served by one child
process so serving snapshots costs this loop nothing) and one local TFLite detector entry (the SSD
MobileNet that fhempy ships). Each level (cameras x detector) runs in a fresh process, so memory
figures start from the same base.

Two detectors, the same pipeline:

* ``tflite``: the real local model. Its bare model call (``engine.infer``) is also timed by itself
  before Home Assistant starts, in the same process: that is the model time the ratio divides by.
* ``stand-in``: the same local detector (decoding, worker thread, post-processing) whose model
  answers instantly with the detections the real model found on the frame, so the tracker, events,
  entities and drawing do the same work: our overhead without a model competing for the CPU.

Per analysed frame the script times, by wrapping functions (the integration is not modified):
JPEG decode for the model, detector post-processing, filters + tracker + state (``process``),
event entities, entity updates (camera and detector coordinators' listeners) and the annotated
image (drawn in the executor; amortised over all frames). Their sum is the overhead. Also shown,
not counted: the snapshot fetch (camera I/O) and the wait for the detector's worker (a queue when
the model is busy). An event-loop monitor sleeps 1 ms in a loop and records how late it wakes;
every callback the loop runs is timed as well, so the worst blocks are named. Memory: RSS after
Home Assistant and the detector are up, after the cameras are set up and warm (cost per camera),
and at the end of the measured frames (growth per camera: flat means ~0 in a long run).

    .venv/bin/python benchmarks/pipeline_overhead.py                          # 1, 8, 32 cameras
    .venv/bin/python benchmarks/pipeline_overhead.py --cameras 32 --frames 300 --detectors tflite

Output: one markdown table per detector, then the overhead ratios last.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
import contextlib
from dataclasses import asdict, dataclass, field
import gc
import importlib.util
import io
import json
import logging
import math
import os
from pathlib import Path
import platform
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
from types import FrameType
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
FRAME_SIZE = (1920, 1080)
TFLITE, STAND_IN = "tflite", "stand-in"
DETECTORS = (TFLITE, STAND_IN)
RESULT_PREFIX = "RESULT "
TARGET_OVERHEAD = 0.05  # of the model time
TARGET_BLOCK_MS = 5.0
MONITOR_SLEEP_S = 0.001
BLOCK_SAMPLE_AFTER_S = 0.003  # callbacks running longer than this get their stack sampled
# The stages whose time is our overhead, in table order; the others are shown, not counted.
OVERHEAD_STAGES = ("decode", "post", "pipeline", "events", "entities", "draw")
_LOGGER = logging.getLogger("pipeline_overhead")


# --- figures ---------------------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation: every figure is one that happened)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(slots=True)
class StageClock:
    """Time spent in one stage, from whichever thread runs it."""

    calls: int = 0
    total_s: float = 0.0
    cpu_s: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, wall_s: float, cpu_s: float) -> None:
        """One call of the stage: its wall time and its thread's CPU time."""
        with self._lock:
            self.calls += 1
            self.total_s += wall_s
            self.cpu_s += cpu_s

    def reset(self) -> None:
        """Forget everything (the measured window starts)."""
        with self._lock:
            self.calls, self.total_s, self.cpu_s = 0, 0.0, 0.0


@dataclass(frozen=True, slots=True)
class LevelResult:
    """One level (detector x cameras), as the worker process measured it."""

    detector: str
    cameras: int
    frames: int
    """Frames analysed in the measured window (all cameras)."""
    window_s: float
    bare_model_ms: float
    """Median of the bare ``engine.infer`` calls timed before Home Assistant started."""
    stage_ms: dict[str, float]
    """Mean wall time per analysed frame of every stage (model, overhead stages, others)."""
    overhead_cpu_ms: float
    """CPU time of the overhead stages per frame (the threads running them)."""
    process_cpu_ms: float
    """CPU time of the whole process per analysed frame (model and Home Assistant included)."""
    loop_worst_ms: float
    loop_p99_ms: float
    loop_blocks_over_target: int
    setup_worst_ms: float
    """Worst event-loop lateness while the cameras were being set up (not the steady state)."""
    worst_callbacks: list[tuple[float, str]]
    blocked_stacks: list[tuple[int, str]]
    loop_cpu_ms: list[tuple[float, str]]
    gc_worst_ms: float
    gc_count: int
    """The loop thread's CPU per analysed frame by callback kind, the biggest first."""
    """Where the loop thread was while a callback ran over 3 ms: (samples of 1 ms, stack)."""
    rss_base_mib: float
    rss_start_mib: float
    rss_end_mib: float
    objects_start: int
    objects_end: int
    warnings: list[str]
    complete: bool
    """False when the level ran out of time before every camera analysed its frames."""

    @property
    def overhead_ms(self) -> float:
        """Wall time our pipeline adds per frame (sum of the overhead stages)."""
        return sum(self.stage_ms.get(name, 0.0) for name in OVERHEAD_STAGES)

    @property
    def ratio(self) -> float:
        """Overhead as a fraction of the bare model time."""
        return self.overhead_ms / self.bare_model_ms if self.bare_model_ms > 0 else math.nan

    @property
    def memory_per_camera_mib(self) -> float:
        """RSS the cameras added (setup and first frames), per camera."""
        return (self.rss_start_mib - self.rss_base_mib) / self.cameras

    @property
    def growth_per_camera_mib(self) -> float:
        """RSS growth over the measured frames, per camera: flat is ~0."""
        return (self.rss_end_mib - self.rss_start_mib) / self.cameras

    @property
    def objects_growth_per_frame(self) -> float:
        """Python objects alive at the end minus at the start, per analysed frame."""
        return (self.objects_end - self.objects_start) / self.frames if self.frames else math.nan

    def to_json(self) -> str:
        """One line the orchestrator reads back."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> LevelResult:
        """The inverse of ``to_json``."""
        raw = json.loads(text)
        raw["worst_callbacks"] = [(float(ms), str(what)) for ms, what in raw["worst_callbacks"]]
        raw["loop_cpu_ms"] = [(float(ms), str(kind)) for ms, kind in raw["loop_cpu_ms"]]
        raw["blocked_stacks"] = [(int(n), str(where)) for n, where in raw["blocked_stacks"]]
        return cls(**raw)


def rss_mib() -> float:
    """Resident memory of this process now (Linux /proc; peak RSS elsewhere)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    import resource  # only where /proc is missing

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- the report --------------------------------------------------------------------------------


def _ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}"


def detector_table(name: str, results: Sequence[LevelResult]) -> str:
    """One markdown table per detector: a row per camera count."""
    rows = [
        f"### {name}",
        "",
        "Mean ms per analysed frame. Overhead = decode + post + pipeline + events + entities + "
        "draw; snapshot and detector wait are shown, not counted.",
        "",
        "| cameras | frames | model bare / in run | decode | post | pipeline | events "
        "| entities | draw | overhead (CPU) | snapshot | detector wait | process CPU "
        "| loop worst / p99 | blocks > 5 ms | setup worst | MiB per camera "
        "| MiB growth per camera | objects / frame |",
        "| ---: " * 19 + "|",
    ]
    for r in results:
        s = r.stage_ms
        rows.append(
            f"| {r.cameras}{'' if r.complete else ' (timed out)'} | {r.frames} "
            f"| {_ms(r.bare_model_ms)} / {_ms(s.get('model', math.nan))} "
            + "".join(f"| {_ms(s.get(stage, 0.0))} " for stage in OVERHEAD_STAGES)
            + f"| {_ms(r.overhead_ms)} ({_ms(r.overhead_cpu_ms)}) "
            f"| {_ms(s.get('snapshot', math.nan))} | {_ms(s.get('wait', math.nan))} "
            f"| {_ms(r.process_cpu_ms)} | {_ms(r.loop_worst_ms)} / {_ms(r.loop_p99_ms)} "
            f"| {r.loop_blocks_over_target} | {_ms(r.setup_worst_ms)} "
            f"| {r.memory_per_camera_mib:.1f} | {r.growth_per_camera_mib:+.2f} "
            f"| {r.objects_growth_per_frame:+.1f} |"
        )
    return "\n".join(rows)


def blockers(results: Sequence[LevelResult]) -> str:
    """The slowest event-loop callbacks of every level, named."""
    lines = ["### slowest event-loop callbacks (steady state)", ""]
    for r in results:
        worst = "; ".join(f"{ms:.1f} ms {what}" for ms, what in r.worst_callbacks[:3]) or "-"
        lines.append(f"- {r.detector}, {r.cameras} cameras: {worst}")
        lines += [f"  - {n} ms sampled at {where}" for n, where in r.blocked_stacks[:3]]
        spent = ", ".join(f"{kind} {ms:.2f}" for ms, kind in r.loop_cpu_ms)
        lines.append(f"  - loop CPU ms per frame: {spent}")
        lines.append(
            f"  - garbage collections: {r.gc_count}, the longest {r.gc_worst_ms:.1f} ms "
            "(every thread, the loop's included, waits for one)"
        )
    warned = sorted({w for r in results for w in r.warnings})
    if warned:
        lines += ["", "Warnings logged while measuring:", *(f"- {w}" for w in warned)]
    return "\n".join(lines)


def _verdict(ok: bool) -> str:
    return "meets" if ok else "misses"


def ratio_table(results: Sequence[LevelResult]) -> str:
    """The overhead ratio per level, against the issue's targets; printed last."""
    rows = [
        "### overhead / bare model time",
        "",
        f"Targets: overhead <= {TARGET_OVERHEAD:.0%} of the model time, no event-loop block over "
        f"{TARGET_BLOCK_MS:.0f} ms, memory per camera flat.",
        "",
        "| detector | cameras | overhead ms | model ms | overhead / model | worst loop block ms "
        "| MiB growth per camera | verdict |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        ratio = "n/a" if math.isnan(r.ratio) else f"{r.ratio:.1%}"
        verdict = (
            f"overhead {_verdict(r.ratio <= TARGET_OVERHEAD)}, "
            f"loop {_verdict(r.loop_worst_ms <= TARGET_BLOCK_MS)}"
        )
        rows.append(
            f"| {r.detector} | {r.cameras} | {_ms(r.overhead_ms)} | {_ms(r.bare_model_ms)} "
            f"| {ratio} | {_ms(r.loop_worst_ms)} | {r.growth_per_camera_mib:+.2f} | {verdict} |"
        )
    return "\n".join(rows)


def report(results: Sequence[LevelResult], header: str) -> str:
    """Every table, the ratios last."""
    parts = [header]
    for name in DETECTORS:
        found = [r for r in results if r.detector == name]
        if found:
            parts.append(detector_table(name, found))
    parts += [blockers(results), ratio_table(results)]
    return "\n\n".join(parts)


# --- inputs ------------------------------------------------------------------------------------


def benchmark_frame(source: Path, size: tuple[int, int] = FRAME_SIZE) -> bytes:
    """The test frame: ``source`` scaled to a 1080p camera frame, as a JPEG like a camera sends."""
    from PIL import Image  # heavy; the orchestrator never needs it

    with Image.open(source) as raw:
        frame = raw.convert("RGB").resize(size, Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    frame.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def default_image() -> Path:
    """The simulator's bus.jpg: people and a bus."""
    return REPO_ROOT / "tests" / "support" / "onvif_sim" / "images" / "bus.jpg"


def default_model() -> Path | None:
    """fhempy's SSD MobileNet COCO model in this environment, if installed (not imported)."""
    spec = importlib.util.find_spec("fhempy")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        model = Path(location) / "lib" / "object_detection" / "detect.tflite"
        if model.is_file():
            return model
    return None


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def child_env() -> dict[str, str]:
    """The environment for the child processes: the repository importable (tests.support...)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


# --- the cameras' process ------------------------------------------------------------------------


def camera_mac(index: int) -> str:
    """A distinct locally administered MAC per simulated camera (their unique ids)."""
    return f"02:00:5e:20:{index // 256:02x}:{index % 256:02x}"


async def serve_cameras(count: int, frame: Path) -> None:
    """N simulators on free loopback ports; prints their ports, serves until stdin closes."""
    from tests.support.onvif_sim import OnvifSimulator, SimConfig

    simulators = []
    for index in range(count):
        config = SimConfig(serial=f"BENCH-{index:04d}", mac=camera_mac(index), images=[frame])
        simulator = OnvifSimulator(config)
        await simulator.start("127.0.0.1", 0)
        simulators.append(simulator)
    print(json.dumps({"ports": [s.port for s in simulators]}), flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    # The parent closes our stdin when it is done (or dies): then we stop too.
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    eof = asyncio.ensure_future(reader.read())
    await asyncio.wait([eof, asyncio.ensure_future(stop.wait())], return_when="FIRST_COMPLETED")
    for simulator in simulators:
        await simulator.stop()


async def stop_process(process: asyncio.subprocess.Process, grace_s: float = 10) -> None:
    """SIGTERM, then SIGKILL if the process has not exited within ``grace_s``."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
    try:
        await asyncio.wait_for(process.wait(), grace_s)
    except TimeoutError:
        process.kill()
        await process.wait()


# --- inside the worker: timing wrappers ----------------------------------------------------------


class Clocks:
    """Every stage's clock, the analysed frames per camera, the loop's slowest callbacks."""

    def __init__(self) -> None:
        self.stages: dict[str, StageClock] = {}
        self.frames: dict[int, int] = {}
        self.measuring = False
        self.slow: list[tuple[float, str]] = []
        self.running_since: float | None = None
        """When the loop's current callback started (None between callbacks)."""
        self.stacks: Counter[str] = Counter()
        self.loop_cpu: defaultdict[str, float] = defaultdict(float)
        self.gc_pauses: list[float] = []
        """Every garbage collection while measuring, ms (it holds the GIL: every thread waits)."""
        self._gc_started = 0.0
        """The loop thread's CPU seconds by callback kind (task name or callback)."""
        """Where the loop thread was, sampled every millisecond while a callback ran long."""

    def stage(self, name: str) -> StageClock:
        """The clock of ``name`` (made on first use)."""
        return self.stages.setdefault(name, StageClock())

    def reset(self) -> None:
        """The measured window starts: every figure from zero."""
        for clock in self.stages.values():
            clock.reset()
        self.frames = dict.fromkeys(self.frames, 0)
        self.slow = []
        self.stacks.clear()
        self.loop_cpu.clear()
        self.gc_pauses = []

    def on_gc(self, phase: str, _info: dict[str, int]) -> None:
        """``gc.callbacks`` hook: the duration of each collection."""
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self.measuring and self._gc_started:
            self.gc_pauses.append((time.perf_counter() - self._gc_started) * 1000)

    def mean_ms(self, name: str, frames: int) -> float:
        """Wall time of a stage per analysed frame."""
        clock = self.stages.get(name)
        return clock.total_s * 1000 / frames if clock and frames else 0.0


def timed[**P, R](clock: StageClock, func: Callable[P, R]) -> Callable[P, R]:
    """``func`` with every call's wall and thread CPU time added to ``clock``."""

    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return func(*args, **kwargs)
        finally:
            clock.add(time.perf_counter() - wall, time.thread_time() - cpu)

    return wrapper


def timed_async[**P, R](
    clock: StageClock, func: Callable[P, Awaitable[R]]
) -> Callable[P, Awaitable[R]]:
    """An awaited call's wall time (waits included: I/O, queues) added to ``clock``."""

    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        wall = time.perf_counter()
        try:
            return await func(*args, **kwargs)
        finally:
            clock.add(time.perf_counter() - wall, 0.0)

    return wrapper


def patch(owner: object, name: str, make: Callable[[Any], Any]) -> None:
    """Replace ``owner.name`` by ``make(original)`` (this process only; it exits afterwards)."""
    setattr(owner, name, make(getattr(owner, name)))


class TimedEngine:
    """A loaded engine whose ``infer`` is timed, or answered instantly by the stand-in."""

    def __init__(self, engine: Any, clock: StageClock, state: WorkerState) -> None:
        self._engine = engine
        self._clock = clock
        self._state = state

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def infer(self, batch: list[Any], min_confidence: float) -> list[list[Any]]:
        """The model's answer (timed), or the stand-in's canned one."""
        canned = self._state.canned
        if canned is not None:
            start, cpu = time.perf_counter(), time.thread_time()
            answer = [list(canned) for _ in batch]
            self._clock.add(time.perf_counter() - start, time.thread_time() - cpu)
            return answer
        start, cpu = time.perf_counter(), time.thread_time()
        found: list[list[Any]] = self._engine.infer(batch, min_confidence)
        self._clock.add(time.perf_counter() - start, time.thread_time() - cpu)
        self._state.last_found = found[0] if found else []
        return found


@dataclass(slots=True)
class WorkerState:
    """What the wrappers share with the worker: the stand-in's answer, the last real one."""

    canned: list[Any] | None = None
    last_found: list[Any] = field(default_factory=list)


def install_clocks(clocks: Clocks, state: WorkerState) -> None:
    """Wrap the integration's stages (module globals and class attributes, this process only)."""
    from custom_components.home_security_intel import (
        detection_coordinator as dc,
        detector_hub as hub,
    )
    from custom_components.home_security_intel.detection import local
    from custom_components.home_security_intel.onvif import OnvifCamera
    from custom_components.home_security_intel.pipeline import state as pipeline

    stage = clocks.stage
    patch(local, "decode_image", lambda f: timed(stage("decode"), f))
    patch(local.LocalDetector, "_detect_sync", lambda f: timed(stage("detector_thread"), f))
    patch(local, "build_engine", lambda f: lambda s: TimedEngine(f(s), stage("model"), state))
    patch(pipeline.DetectionPipeline, "process", lambda f: timed(stage("pipeline"), f))
    patch(dc, "annotate", lambda f: timed(stage("draw"), f))
    patch(dc.DetectionCoordinator, "async_update_listeners", lambda f: timed(stage("entities"), f))
    patch(hub.DetectorHub, "async_update_listeners", lambda f: timed(stage("entities"), f))
    patch(OnvifCamera, "async_get_snapshot", lambda f: timed_async(stage("snapshot"), f))
    patch(hub.DetectorHub, "async_detect", lambda f: timed_async(stage("detect_call"), f))

    def add_event_listener(original: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(self: Any, listener: Callable[..., None]) -> Any:
            return original(self, timed(stage("events"), listener))

        return wrapper

    patch(dc.DetectionCoordinator, "async_add_event_listener", add_event_listener)

    def run_frame(original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def wrapper(self: Any, **kwargs: Any) -> Any:
            before = self.data.last_result if self.data is not None else None
            data = await original(self, **kwargs)
            if data.last_result is not None and data.last_result is not before:
                clocks.frames[id(self)] = clocks.frames.get(id(self), 0) + 1
            return data

        return wrapper

    patch(dc.DetectionCoordinator, "_async_run_frame", run_frame)


def watch_callbacks(clocks: Clocks, keep: int = 5) -> None:
    """Time every callback the event loop runs; keep the slowest ones, named, while measuring.

    A callback's thread CPU time is kept beside its wall time: much less CPU than wall means the
    loop thread was not running (waiting for the GIL held by a worker thread), not working.
    """
    base_events: Any = asyncio.base_events
    original = asyncio.Handle._run

    def run(handle: asyncio.Handle) -> None:
        measuring = clocks.measuring
        wall, cpu = time.perf_counter(), time.thread_time()
        clocks.running_since = wall
        try:
            original(handle)
        finally:
            clocks.running_since = None
        took = time.perf_counter() - wall
        if not (measuring and clocks.measuring):
            return
        clocks.loop_cpu[callback_kind(handle)] += time.thread_time() - cpu
        if took < 0.001:
            return
        if len(clocks.slow) < keep or took * 1000 > clocks.slow[-1][0]:
            spent = (time.thread_time() - cpu) * 1000
            what = f"(CPU {spent:.1f} ms) {base_events._format_handle(handle)[:160]}"
            clocks.slow.append((took * 1000, what))
            clocks.slow.sort(reverse=True)
            del clocks.slow[keep:]

    patch(asyncio.Handle, "_run", lambda _original: run)
    loop_thread = threading.get_ident()
    threading.Thread(
        target=sample_blocked_loop, args=(clocks, loop_thread), name="loop_sampler", daemon=True
    ).start()


_DIGITS = str.maketrans("", "", "0123456789")


def callback_kind(handle: asyncio.Handle) -> str:
    """What a loop callback is, without its instance numbers: a task's name or the function."""
    func: Any = getattr(handle, "_callback", None)
    owner = getattr(func, "__self__", None)
    if isinstance(owner, asyncio.Task):
        return "task " + owner.get_name().translate(_DIGITS)
    name = getattr(func, "__qualname__", None) or type(func).__name__
    return str(name).translate(_DIGITS)


_SKIP_FRAMES = ("/asyncio/", "/threading.py", Path(__file__).name)


def stack_summary(frame: FrameType, depth: int = 4) -> str:
    """The innermost frames of a stack that are not asyncio's or this benchmark's wrappers."""
    frames = [
        f for f in traceback.extract_stack(frame) if not any(k in f.filename for k in _SKIP_FRAMES)
    ]
    return " <- ".join(
        f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(frames[-depth:])
    )


def sample_blocked_loop(clocks: Clocks, loop_thread: int) -> None:
    """Every millisecond: if the loop's callback has run over BLOCK_SAMPLE_AFTER_S, note where."""
    while True:
        time.sleep(0.001)
        since = clocks.running_since
        if since is None or not clocks.measuring:
            continue
        if time.perf_counter() - since < BLOCK_SAMPLE_AFTER_S:
            continue
        frame = sys._current_frames().get(loop_thread)
        if frame is not None:
            clocks.stacks[stack_summary(frame)] += 1


async def loop_monitor(stop: asyncio.Event, lateness: list[float]) -> None:
    """Sleep 1 ms at a time; how late each wake-up comes is how long the loop was blocked."""
    while not stop.is_set():
        start = time.perf_counter()
        await asyncio.sleep(MONITOR_SLEEP_S)
        lateness.append(max(0.0, time.perf_counter() - start - MONITOR_SLEEP_S) * 1000)


class WarningCollector(logging.Handler):
    """Warnings and errors logged by Home Assistant and the integration (findings)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "has not been tested by Home Assistant" in record.getMessage():
            return  # every custom integration gets this one
        line = f"{record.levelname} {record.name}: {record.getMessage()[:300]}"
        if record.exc_info and record.exc_info[1] is not None:
            err = record.exc_info[1]
            where = traceback.extract_tb(err.__traceback__)[-1:]
            at = f" at {Path(where[0].filename).name}:{where[0].lineno}" if where else ""
            line += f" ({type(err).__name__}: {str(err)[:200]}{at})"
        self.seen.append(line)


# --- inside the worker: Home Assistant -----------------------------------------------------------


async def start_home_assistant(config_dir: Path) -> Any:
    """A real Home Assistant core with the registries, `homeassistant` and `http` (loopback)."""
    from homeassistant import block_async_io, bootstrap, config_entries, loader
    from homeassistant.core import HomeAssistant
    from homeassistant.core_config import async_process_ha_core_config
    from homeassistant.setup import async_setup_component

    hass = HomeAssistant(str(config_dir))
    loader.async_setup(hass)
    hass.config.skip_pip = True  # the requirements are installed; nothing is downloaded
    block_async_io.enable()  # as the runner does: blocking I/O on the loop is reported
    hass.config_entries = config_entries.ConfigEntries(hass, {})
    await loader.async_get_custom_components(hass)
    if not await bootstrap.async_load_base_functionality(hass):
        raise RuntimeError("Home Assistant's registries did not load")
    await async_process_ha_core_config(
        hass,
        {"name": "bench", "latitude": 0, "longitude": 0, "elevation": 0, "time_zone": "UTC"},
    )
    for domain, conf in (
        ("homeassistant", {}),
        ("http", {"http": {"server_host": ["127.0.0.1"], "server_port": free_port()}}),
    ):
        if not await async_setup_component(hass, domain, conf):
            raise RuntimeError(f"Home Assistant could not set up {domain}")
    # A server address given as configuration is a trial Home Assistant reverts (with a restart)
    # after five minutes unless confirmed: confirm it, as a user would.
    from homeassistant.components.http.config import DATA_STORE

    await hass.data[DATA_STORE].async_promote_pending()
    await hass.async_start()
    return hass


def config_entry(title: str, data: dict[str, Any], options: dict[str, Any], unique_id: str) -> Any:
    """A config entry as the config flow would store it."""
    from types import MappingProxyType

    from homeassistant.config_entries import SOURCE_USER, ConfigEntry

    from custom_components.home_security_intel.const import DOMAIN

    return ConfigEntry(
        data=data,
        discovery_keys=MappingProxyType({}),
        domain=DOMAIN,
        minor_version=1,
        options=options,
        source=SOURCE_USER,
        subentries_data=None,
        title=title,
        unique_id=unique_id,
        version=1,
    )


async def calibrate(
    model: Path, frame: bytes, clocks: Clocks, state: WorkerState, runs: int
) -> float:
    """The bare model call's median time on this frame; remembers what the model found."""
    from custom_components.home_security_intel.detection.local import (
        LocalDetector,
    )

    detector = LocalDetector("tflite", model)
    try:
        for _ in range(3):  # first calls load the model and warm its caches
            await detector.async_detect(frame)
        times = []
        clock = clocks.stage("model")
        for _ in range(runs):
            before = clock.total_s
            await detector.async_detect(frame)
            times.append((clock.total_s - before) * 1000)
    finally:
        await detector.async_close()
    return percentile(times, 50)


async def wait_for_frames(clocks: Clocks, cameras: int, frames: int, deadline: float) -> bool:
    """Until every camera analysed ``frames`` frames (True) or the deadline passed (False)."""
    while time.monotonic() < deadline:
        counts = list(clocks.frames.values())
        if len(counts) >= cameras and min(counts) >= frames:
            return True
        await asyncio.sleep(0.2)
    return False


async def run_level(args: argparse.Namespace) -> LevelResult:
    """One level in this process: calibrate, start HA and the cameras, warm up, measure."""
    from custom_components.home_security_intel import const

    clocks, state = Clocks(), WorkerState()
    install_clocks(clocks, state)
    watch_callbacks(clocks)
    gc.callbacks.append(clocks.on_gc)
    collector = WarningCollector()
    logging.getLogger().addHandler(collector)
    work = Path(tempfile.mkdtemp(prefix="hsi_bench_"))
    frame_path = work / "frame.jpg"
    frame = benchmark_frame(args.image)
    frame_path.write_bytes(frame)
    model: Path = args.model
    count: int = args.cameras[0]

    bare_ms = await calibrate(model, frame, clocks, state, args.calibration)
    if args.detector == STAND_IN:
        state.canned = list(state.last_found)
    print(f"  bare model call {bare_ms:.1f} ms; {len(state.last_found)} objects", file=sys.stderr)

    cameras = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--serve-cameras", str(count), "--image", str(frame_path),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=child_env(),
    )  # fmt: skip
    hass = None
    try:
        assert cameras.stdout is not None
        line = await asyncio.wait_for(cameras.stdout.readline(), 120)
        if not line:
            raise RuntimeError("the camera simulators did not start")
        ports: list[int] = json.loads(line)["ports"]
        config_dir = work / "config"
        config_dir.mkdir()
        hass = await start_home_assistant(config_dir)
        detector = config_entry(
            "Det",
            {
                const.CONF_ENTRY_TYPE: const.ENTRY_TYPE_DETECTOR,
                const.CONF_DETECTOR_KIND: const.DETECTOR_KIND_LOCAL,
                const.CONF_ENGINE: const.ENGINE_TFLITE,
                const.CONF_MODEL: str(model),
            },
            {},
            "bench-detector",
        )
        await hass.config_entries.async_add(detector)
        gc.collect()
        rss_base = rss_mib()

        setup_lateness: list[float] = []
        setup_stop = asyncio.Event()
        setup_monitor = asyncio.create_task(loop_monitor(setup_stop, setup_lateness))
        for index, port in enumerate(ports):
            options = {
                const.CONF_FRAME_SOURCE: const.FRAME_SOURCE_SNAPSHOT,
                const.CONF_PROFILES: ["profile_main"],
                const.CONF_DETECTOR: detector.entry_id,
                const.CONF_FPS: args.fps,
            }
            data = {
                const.CONF_HOST: "127.0.0.1",
                const.CONF_PORT: port,
                const.CONF_USERNAME: "admin",
                const.CONF_PASSWORD: "correct-horse-battery",
            }
            await hass.config_entries.async_add(
                config_entry(f"Cam {index}", data, options, camera_mac(index))
            )
        print(f"  {count} cameras set up; warming up", file=sys.stderr)
        deadline = time.monotonic() + args.timeout
        await wait_for_frames(clocks, count, args.warmup, deadline)
        setup_stop.set()
        await setup_monitor

        gc.collect()
        objects_start = len(gc.get_objects())
        rss_start = rss_mib()
        lateness: list[float] = []
        stop = asyncio.Event()
        clocks.reset()
        clocks.measuring = True
        cpu_start, window_start = time.process_time(), time.perf_counter()
        monitor = asyncio.create_task(loop_monitor(stop, lateness))
        complete = await wait_for_frames(clocks, count, args.frames, deadline)
        stop.set()
        await monitor
        clocks.measuring = False
        window = time.perf_counter() - window_start
        cpu = time.process_time() - cpu_start
        frames = sum(clocks.frames.values())
        rss_end = rss_mib()
        gc.collect()
        objects_end = len(gc.get_objects())
        warnings = list(collector.seen)
    finally:
        if hass is not None:
            await hass.async_stop()
        if cameras.stdin is not None:
            cameras.stdin.close()
        await stop_process(cameras)
        await asyncio.to_thread(shutil.rmtree, work, ignore_errors=True)

    stage_ms = {name: clocks.mean_ms(name, frames) for name in clocks.stages}
    # The detector's post-processing: its worker thread's time, less decoding and the model.
    stage_ms["post"] = max(
        0.0, stage_ms.pop("detector_thread", 0.0) - stage_ms["decode"] - stage_ms["model"]
    )
    # Waiting for the worker thread (queue behind other cameras' frames, thread hops).
    thread_ms = stage_ms["post"] + stage_ms["decode"] + stage_ms["model"]
    stage_ms["wait"] = max(0.0, stage_ms.pop("detect_call", 0.0) - thread_ms)
    cpu_s = {name: clock.cpu_s for name, clock in clocks.stages.items()}
    cpu_s["post"] = max(
        0.0, cpu_s.get("detector_thread", 0.0) - cpu_s.get("decode", 0.0) - cpu_s.get("model", 0.0)
    )
    overhead_cpu = sum(cpu_s.get(name, 0.0) for name in OVERHEAD_STAGES) * 1000
    return LevelResult(
        detector=args.detector,
        cameras=count,
        frames=frames,
        window_s=window,
        bare_model_ms=bare_ms,
        stage_ms=stage_ms,
        overhead_cpu_ms=overhead_cpu / frames if frames else math.nan,
        process_cpu_ms=cpu * 1000 / frames if frames else math.nan,
        loop_worst_ms=max(lateness, default=math.nan),
        loop_p99_ms=percentile(lateness, 99),
        loop_blocks_over_target=sum(1 for ms in lateness if ms > TARGET_BLOCK_MS),
        setup_worst_ms=max(setup_lateness, default=math.nan),
        worst_callbacks=list(clocks.slow),
        gc_worst_ms=max(clocks.gc_pauses, default=0.0),
        gc_count=len(clocks.gc_pauses),
        blocked_stacks=[(n, where) for where, n in clocks.stacks.most_common(5)],
        loop_cpu_ms=[
            (seconds * 1000 / frames if frames else math.nan, kind)
            for kind, seconds in sorted(clocks.loop_cpu.items(), key=lambda kv: -kv[1])[:6]
        ],
        rss_base_mib=rss_base,
        rss_start_mib=rss_start,
        rss_end_mib=rss_end,
        objects_start=objects_start,
        objects_end=objects_end,
        warnings=warnings,
        complete=complete,
    )


# --- the orchestrator ----------------------------------------------------------------------------


def worker_command(args: argparse.Namespace, detector: str, cameras: int) -> list[str]:
    """The argv of one level's worker process."""
    return [
        sys.executable, __file__, "--worker", "--detector", detector, "--cameras", str(cameras),
        "--frames", str(args.frames), "--warmup", str(args.warmup), "--fps", str(args.fps),
        "--calibration", str(args.calibration), "--timeout", str(args.timeout),
        "--image", str(args.image), "--model", str(args.model),
    ]  # fmt: skip


async def run_worker(command: list[str]) -> LevelResult:
    """Run one level's worker; its progress goes to our stderr, its result line is parsed."""
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, env=child_env()
    )
    stdout, _ = await process.communicate()
    for line in stdout.decode(errors="replace").splitlines():
        if line.startswith(RESULT_PREFIX):
            return LevelResult.from_json(line.removeprefix(RESULT_PREFIX))
    raise RuntimeError(f"level {command[3:7]} failed (exit {process.returncode})")


def describe_machine(args: argparse.Namespace) -> str:
    """One line naming what the figures were measured on."""
    from homeassistant.const import __version__ as ha_version

    return (
        f"Frame {FRAME_SIZE[0]}x{FRAME_SIZE[1]} JPEG ({args.image.name}), model {args.model.name} "
        f"(local TFLite), {args.fps:g} fps per camera, {args.frames} frames per camera after "
        f"{args.warmup} warm-up frames; Home Assistant {ha_version}; Python "
        f"{platform.python_version()}; {os.cpu_count()} CPUs; {platform.machine()}."
    )


async def run(args: argparse.Namespace) -> str:
    """Every selected level in its own process; the report."""
    results = []
    for detector in args.detectors:
        for cameras in args.cameras:
            print(f"{detector}: {cameras} cameras", file=sys.stderr)
            started = time.monotonic()
            result = await run_worker(worker_command(args, detector, cameras))
            print(
                f"  {result.frames} frames in {time.monotonic() - started:.0f} s: overhead "
                f"{result.overhead_ms:.2f} ms/frame ({result.ratio:.1%} of the model), worst "
                f"loop block {result.loop_worst_ms:.1f} ms",
                file=sys.stderr,
            )
            results.append(result)
    return report(results, describe_machine(args))


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command line of the benchmark (and of its worker and camera processes)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=_positive, nargs="+", default=[1, 8, 32])
    parser.add_argument(
        "--frames", type=_positive, default=15, help="measured frames per camera and level"
    )
    parser.add_argument("--warmup", type=_positive, default=3, help="frames per camera first")
    parser.add_argument("--fps", type=float, default=1.0, help="each camera's frame rate option")
    parser.add_argument(
        "--detectors", nargs="+", choices=DETECTORS, default=list(DETECTORS), help="which to run"
    )
    parser.add_argument("--calibration", type=_positive, default=20, help="bare model calls")
    parser.add_argument("--timeout", type=float, default=300, help="per level, seconds")
    parser.add_argument("--image", type=Path, default=default_image())
    parser.add_argument("--model", type=Path, default=None, help="TFLite model (default fhempy)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--detector", choices=DETECTORS, default=TFLITE, help=argparse.SUPPRESS)
    parser.add_argument("--serve-cameras", type=_positive, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.model is None and args.serve_cameras is None:
        args.model = default_model()
        if args.model is None:
            parser.error("no TFLite model: install fhempy (scripts/setup) or pass --model")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: the report on stdout, progress on stderr."""
    args = parse_args(argv)
    if args.serve_cameras is not None:
        asyncio.run(serve_cameras(args.serve_cameras, args.image))
        return
    if args.worker:
        from homeassistant import runner

        sys.path.insert(0, str(REPO_ROOT))  # custom_components/ as Home Assistant finds it
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        result = asyncio.run(run_level(args), loop_factory=runner.create_event_loop)
        print(RESULT_PREFIX + result.to_json(), flush=True)
        return
    print(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
