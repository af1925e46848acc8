"""The model alone: our server's engine with the server's own flags, timed with no server around it.

``detector_throughput.py`` runs this in a child process in the same run as the servers (after them,
on the same machine): it loads the engine exactly as ``python -m hsi_detector`` would with the same
flags (same runtime, export cache, threads), decodes the benchmark frame as the server does (the
letterboxed model input), and times passes back to back on it, as many at once as the server runs
(``Engine.streams``, one thread each), in five stretches whose median is taken, so the figures are
the per-image cost at saturation:

- ``model_ms``: wall time per image of the runtime's forward pass alone (the hardware's limit);
- ``engine_ms``: the same with NMS and detections (what the inference threads do per image);
- ``pass_ms``: one forward pass by itself, nothing beside it (the latency floor).

Prints one JSON object. Run by hand:

    PYTHONPATH=detector .venv-detector/bin/python benchmarks/model_time.py --frame f.jpg -- \\
        --model yolo11n.yaml --runtime auto --device cpu
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
import json
from pathlib import Path
import statistics
import threading
import time
from typing import Any

from hsi_detector.config import parse_settings
from hsi_detector.engines.base import build_engine
from hsi_detector.imaging import decode_image


def _timed(call: Callable[[], Any], repeats: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        call()
    times: list[float] = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def _per_image(
    call: Callable[[], Any], streams: int, repeats: int, warmup: int, blocks: int = 5
) -> float:
    """Wall milliseconds per image with `streams` threads calling back to back: the median of
    `blocks` timed stretches (a busy moment of the machine moves one stretch, not the figure)."""
    per_block = max(1, repeats // blocks)
    barrier = threading.Barrier(streams + 1)

    def worker() -> None:
        for _ in range(warmup):
            call()
        for _ in range(blocks):
            barrier.wait()
            for _ in range(per_block):
                call()
            barrier.wait()

    workers = [threading.Thread(target=worker) for _ in range(streams)]
    for thread in workers:
        thread.start()
    stretches: list[float] = []
    for _ in range(blocks):
        barrier.wait()
        started = time.perf_counter()
        barrier.wait()
        stretches.append((time.perf_counter() - started) * 1000 / (streams * per_block))
    for thread in workers:
        thread.join()
    return statistics.median(stretches)


def measure(
    server_args: Sequence[str], frame: bytes, repeats: int, warmup: int = 5
) -> dict[str, Any]:
    """Mean and median milliseconds per image of the forward pass and of the whole engine pass."""
    settings = parse_settings(list(server_args), env={})
    engine = build_engine(settings)
    image = decode_image(
        frame,
        settings.max_pixels,
        engine.input_size,
        letterbox=engine.letterbox,
        stride=engine.stride,
    )
    batch = [image.pixels]
    # The ultralytics engine's forward pass without NMS; an engine without one: the whole pass.
    forward: Callable[[list[Any]], Any] = getattr(
        engine, "forward", lambda b: engine.infer(b, settings.confidence)
    )
    streams = engine.streams
    single = _timed(lambda: forward(batch), repeats, warmup)
    model = _per_image(lambda: forward(batch), streams, repeats, warmup)
    whole = _per_image(lambda: engine.infer(batch, settings.confidence), streams, repeats, warmup)
    return {
        "runtime": engine.runtime,
        "precision": getattr(engine, "precision", "?"),
        "streams": streams,
        "device": engine.device,
        "input": f"{image.pixels.shape[1]}x{image.pixels.shape[0]}",
        "repeats": repeats,
        "model_ms": model,
        "engine_ms": whole,
        "pass_ms": statistics.median(single),
    }


def parse_args(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    """``--frame`` and ``--repeats``; everything after ``--`` is the server's command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frame", type=Path, required=True, help="the image to time")
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("server_args", nargs=argparse.REMAINDER, help="-- then the server's flags")
    args = parser.parse_args(argv)
    rest = list(args.server_args)
    if rest[:1] == ["--"]:
        rest = rest[1:]
    return args, rest


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: one JSON line on stdout."""
    args, server_args = parse_args(argv)
    print(json.dumps(measure(server_args, args.frame.read_bytes(), args.repeats)))


if __name__ == "__main__":
    main()
