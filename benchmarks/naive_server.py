"""A deliberately naive detector server, the baseline of the throughput benchmark.

It does what the seed's ``/detect/batch`` did: one ultralytics ``model.predict`` per image, one at a
time under a lock, so concurrent cameras simply queue behind each other. It speaks just enough of
the hsi_detector API (``POST /v1/detect`` with a raw image body, ``GET /health``, ``X-API-Key``) for
``benchmarks/detector_throughput.py`` to drive both servers with the same client code. It is a
measuring stick, not a product: no TLS, no rate limits, loopback only.

    HSI_API_KEY=... python benchmarks/naive_server.py --port 8766 --model yolo11n.yaml --device cpu
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass
import hmac
import io
import logging
import os
import threading
import time
from typing import Any

from aiohttp import web
from PIL import Image, UnidentifiedImageError
import torch
from ultralytics.engine.results import Results
from ultralytics.models import YOLO

_LOGGER = logging.getLogger("naive_server")
MAX_BODY_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class NaiveConfig:
    """What the naive server was started with."""

    model: str
    device: str
    half: bool
    imgsz: int
    confidence: float
    api_key: str


class NaiveDetector:
    """One YOLO model; ``detect`` runs a single prediction while holding a process-wide lock."""

    def __init__(self, config: NaiveConfig) -> None:
        self._config = config
        self._model = YOLO(config.model)
        self._lock = threading.Lock()

    def detect(self, body: bytes) -> dict[str, Any]:
        """Decode and detect one image; runs in an executor thread, never on the event loop."""
        started = time.perf_counter()
        with Image.open(io.BytesIO(body)) as raw:
            image = raw.convert("RGB")
        decoded = time.perf_counter()
        with self._lock:
            locked = time.perf_counter()
            results = self._model.predict(
                image,
                imgsz=self._config.imgsz,
                conf=self._config.confidence,
                device=self._config.device,
                half=self._config.half,
                verbose=False,
            )
        done = time.perf_counter()
        result = next(iter(results))
        if not isinstance(result, Results):  # stream=False always yields Results objects
            raise TypeError(f"unexpected prediction type {type(result).__name__}")
        return {
            "detections": _detections(result),
            "image": {"width": image.width, "height": image.height},
            "timings_ms": {
                "decode": round((decoded - started) * 1000, 2),
                "queue": round((locked - decoded) * 1000, 2),
                "inference": round((done - locked) * 1000, 2),
                "total": round((done - started) * 1000, 2),
            },
        }

    def warm_up(self) -> None:
        """One prediction on a blank frame, so the first measured request pays no lazy init."""
        self.detect(_blank_jpeg())


def _detections(result: Results) -> list[dict[str, Any]]:
    """The hsi_detector response shape for one ultralytics result."""
    boxes = result.boxes
    if boxes is None:
        return []
    corners = ("x_min", "y_min", "x_max", "y_max")
    return [
        {
            "label": result.names[int(cls)],
            "class_id": int(cls),
            "confidence": round(float(conf), 4),
            "box": {key: float(value) for key, value in zip(corners, xyxy, strict=True)},
        }
        for xyxy, conf, cls in zip(
            boxes.xyxy.tolist(), boxes.conf.tolist(), boxes.cls.tolist(), strict=True
        )
    ]


def _blank_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480)).save(buffer, format="JPEG")
    return buffer.getvalue()


def _authorized(request: web.Request, api_key: str) -> bool:
    presented = request.headers.get("X-API-Key", "")
    bearer = request.headers.get("Authorization", "")
    if not presented and bearer.startswith("Bearer "):
        presented = bearer.removeprefix("Bearer ")
    return hmac.compare_digest(presented.encode(), api_key.encode())


def build_app(detector: NaiveDetector, api_key: str) -> web.Application:
    """The aiohttp application: /health and /v1/detect (raw image body)."""

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def detect(request: web.Request) -> web.Response:
        if not _authorized(request, api_key):
            return web.json_response({"error": "unauthorized"}, status=401)
        body = await request.read()
        loop = asyncio.get_running_loop()
        try:
            payload = await loop.run_in_executor(None, detector.detect, body)
        # ultralytics patches Image.open to retry unknown data as HEIF, which raises ImportError
        # when pi_heif is not installed: for us that is just one more undecodable image.
        except (UnidentifiedImageError, OSError, ValueError, ImportError):
            return web.json_response({"error": "image could not be decoded"}, status=400)
        return web.json_response(payload)

    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_get("/health", health)
    app.router.add_post("/v1/detect", detect)
    return app


def _resolve_device(device: str) -> str:
    if device != "auto":
        return device
    return "cuda:0" if torch.cuda.is_available() else "cpu"


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--model", default="yolo11n.yaml")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--half", choices=("auto", "on", "off"), default="auto")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--confidence", type=float, default=0.25)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Load the model, warm it up, serve until interrupted. The key comes from HSI_API_KEY."""
    args = _parse_args(argv)
    api_key = os.environ.get("HSI_API_KEY", "")
    if not api_key:
        raise SystemExit("HSI_API_KEY must be set")
    device = _resolve_device(args.device)
    # Half precision only helps (and only works) on CUDA, as in hsi_detector's `--half auto`.
    half = args.half == "on" or (args.half == "auto" and device.startswith("cuda"))
    config = NaiveConfig(args.model, device, half, args.imgsz, args.confidence, api_key)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s naive_server %(message)s")
    detector = NaiveDetector(config)
    detector.warm_up()
    _LOGGER.info("serving %s on %s (half=%s) at port %d", args.model, device, half, args.port)
    web.run_app(build_app(detector, api_key), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
