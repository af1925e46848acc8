"""In-process tests of settings, keys, limits, imaging, batcher, service, metrics, logs, TLS.

The batcher and service tests drive a small scripted engine (`ScriptedEngine`): they test queueing,
timeouts, cancellation and failure handling, which need an engine whose speed and failures the test
controls; the real engines are exercised by the process tests.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
import io
import logging
from pathlib import Path
import sys
import threading
from typing import Any

import numpy as np
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
import pytest

from hsi_detector import imaging
from hsi_detector.batcher import BatcherStoppedError, MicroBatcher, QueueFullError
from hsi_detector.config import ConfigError, Settings, is_loopback, parse_settings
from hsi_detector.engines.base import Detection, auto_batch_size, cpu_threads
from hsi_detector.engines.tflite import read_labelmap
from hsi_detector.engines.yolo import pick_device, use_half
from hsi_detector.errors import ApiError
from hsi_detector.imaging import (
    ImageRejectedError,
    decode_image,
    draft_scale,
    draft_size,
    image_pixels,
    sniff_format,
)
from hsi_detector.intake import decode_base64_image
from hsi_detector.keys import KeyStore, digest, key_problem
from hsi_detector.limits import AuthFailureLimiter, LogLimiter, RateLimiter
from hsi_detector.logsetup import SecretMasker, configure_logging
from hsi_detector.metrics import Metrics
from hsi_detector.service import DetectionService, Options
from hsi_detector.tls import _subject_names, ensure_self_signed, fingerprint, server_context
from tests.support import API_KEY, BUS, ZIDANE, encode, png_claiming, resized


class ScriptedEngine:
    """Returns one detection per image after an optional delay; can be told to fail."""

    name = "scripted"
    device = "cpu"
    engine_type = "scripted"
    runtime = "scripted"
    input_size = 64
    letterbox = False
    stride = 0
    streams = 1

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.fail = False
        self.batches: list[int] = []
        self.release = threading.Event()
        self.release.set()

    @property
    def class_names(self) -> tuple[str, ...]:
        return ("person", "car")

    def infer(
        self, batch: list[np.ndarray[Any, Any]], min_confidence: float
    ) -> list[list[Detection]]:
        self.release.wait(5)
        if self.fail:
            raise RuntimeError("boom")
        self.batches.append(len(batch))
        return [
            [
                Detection("person", 0, 0.9, 1, 2, 3, 4),
                Detection("car", 1, 0.3, 0, 0, float(img.shape[1]), float(img.shape[0])),
            ]
            for img in batch
        ]


# ---------------------------------------------------------------- settings


def test_defaults_and_env_with_flag_winning() -> None:
    s = parse_settings([], env={})
    assert (s.host, s.port, s.engine, s.model, s.imgsz) == ("127.0.0.1", 8765, "ultralytics",
                                                          "yolo11n.pt", 640)  # fmt: skip
    env = {
        "HSI_PORT": "9000",
        "HSI_IMGSZ": "320",
        "HSI_WARMUP": "false",
        "HSI_CLASSES": "person, car",
        "HSI_ALLOW_PLAINTEXT": "yes",
        "HSI_DEVICE": "cuda:1",
    }
    s = parse_settings(["--port", "9001"], env=env)
    assert s.port == 9001
    assert s.imgsz == 320
    assert s.warmup is False
    assert s.allow_plaintext is True
    assert s.classes == ("person", "car")
    assert s.device == "cuda:1"
    assert parse_settings(["--warmup"], env={"HSI_WARMUP": "0"}).warmup is True


def test_batch_size_auto_and_numbers() -> None:
    assert parse_settings([], env={}).max_batch_size is None  # auto is the default
    assert parse_settings(["--max-batch-size", "auto"], env={}).max_batch_size is None
    assert parse_settings(["--max-batch-size", "64"], env={}).max_batch_size == 64
    env = {"HSI_MAX_BATCH_SIZE": "8"}
    assert parse_settings([], env=env).max_batch_size == 8
    assert parse_settings(["--max-batch-size", "AUTO"], env=env).max_batch_size is None
    assert auto_batch_size(None, "cpu") == 1
    assert auto_batch_size(None, "cuda:0") == 16
    assert auto_batch_size(64, "cpu") == 64


def test_rate_limit_default_lets_64_cameras_at_4_fps_through() -> None:
    # One Home Assistant sends for all its cameras from one address.
    assert parse_settings([], env={}).rate_limit >= 64 * 4


def test_key_flag_is_noticed_env_is_not() -> None:
    assert parse_settings(["--api-key", API_KEY], env={}).key_on_command_line is True
    assert parse_settings([f"--api-key={API_KEY}"], env={}).key_on_command_line is True
    assert parse_settings([], env={"HSI_API_KEY": API_KEY}).key_on_command_line is False


def test_cpu_threads() -> None:
    assert parse_settings([], env={}).cpu_threads == 0
    assert cpu_threads(3) == 3
    assert cpu_threads(0) >= 1


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        ([], {"HSI_WARMUP": "maybe"}, "HSI_WARMUP must be true or false"),
        ([], {"HSI_PORT": "eighty"}, "HSI_PORT is not a valid value"),
        (["--port", "70000"], {}, "--port must be between"),
        (["--device", "tpu"], {}, "--device must be"),
        (["--half", "maybe"], {}, "--half must be one of"),
        (["--tls-client-ca", "ca.pem"], {}, "needs TLS"),
        (["--api-key-file", "/nonexistent/keys"], {}, "cannot read --api-key-file"),
        (["--max-batch-size", "0"], {}, "--max-batch-size must be between"),
        ([], {"HSI_MAX_BATCH_SIZE": "many"}, "HSI_MAX_BATCH_SIZE is not a valid value"),
        (["--cpu-threads", "-1"], {}, "--cpu-threads must be between"),
    ],
)
def test_refused_settings(argv: list[str], env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_settings(argv, env=env)


def test_key_file_several_keys_and_addon_mode(tmp_path: Path) -> None:
    other = "Hq3Zt8Wn2Kc6Vb9Lx4Rm7Pf1Dg5Sj0Ay"
    (tmp_path / "keys").write_text(f"{other}\n")
    s = parse_settings(
        ["--host", "172.30.32.1", "--network-mode", "addon", "--api-key", API_KEY,
         "--api-key-file", str(tmp_path / "keys")],
        env={},
    )  # fmt: skip
    assert s.key_digests == (digest(API_KEY), digest(other))
    assert not s.loopback_only
    assert s.max_body_bytes == 10 * 1024 * 1024


def test_tflite_without_packaged_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("hsi_detector.config.packaged_tflite_model", lambda: None)
    with pytest.raises(ConfigError, match="needs --model"):
        parse_settings(["--engine", "tflite"], env={})


def test_loopback_detection() -> None:
    assert is_loopback("localhost")
    assert is_loopback("::1")
    assert is_loopback("127.0.0.2")
    assert not is_loopback("0.0.0.0")
    assert not is_loopback("detector.lan")


# ---------------------------------------------------------------- keys and limits


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("short", "shorter"),
        ("a b" * 16, "whitespace"),
        ("your-api-key-" + "Zq8" * 8, "placeholder"),
        ("ab" * 20, "distinct"),
        ("abcdefghi" * 5, "repeated"),
        ("Zq8Wm3" + "qwertyui" + "Kd7Lp2Xs9Vb4Nc6Hj1", "sequence"),
        (API_KEY, None),
    ],
)
def test_key_rules(key: str, problem: str | None) -> None:
    found = key_problem(key)
    assert (found is None) if problem is None else (problem in (found or ""))


def test_keystore_compares_digests() -> None:
    store = KeyStore((digest(API_KEY), digest("x" * 40)))
    assert store.required
    assert store.verify(API_KEY)
    assert not store.verify(API_KEY[:-1])
    assert not store.verify(None)
    assert not KeyStore(()).verify(API_KEY)
    assert not KeyStore(()).required


def test_rate_limiter_refills_and_forgets_old_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    limiter = RateLimiter(1.0, clock=lambda: now[0])
    assert [limiter.allow("a") for _ in range(3)] == [True, True, False]
    now[0] = 1.0
    assert limiter.allow("a")
    assert limiter.retry_after() == 1
    assert RateLimiter(0).allow("a")
    assert RateLimiter(0).retry_after() == 1
    monkeypatch.setattr("hsi_detector.limits._MAX_CLIENTS", 2)
    for client in ("b", "c", "d"):
        limiter.allow(client)
    assert len(limiter._buckets) == 2


def test_auth_lockout_window(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    limiter = AuthFailureLimiter(2, window=10, clock=lambda: now[0])
    limiter.record_failure("a")
    assert not limiter.blocked("a")
    limiter.record_failure("a")
    assert limiter.blocked("a")
    now[0] = 11
    assert not limiter.blocked("a")
    assert not AuthFailureLimiter(0).blocked("a")
    monkeypatch.setattr("hsi_detector.limits._MAX_CLIENTS", 1)
    limiter.record_failure("b")
    limiter.record_failure("c")
    assert list(limiter._failures) == ["c"]


# ---------------------------------------------------------------- images


def test_sniff_and_decode_webp_png() -> None:
    webp = encode(Image.new("RGB", (40, 30), "green"), "WEBP")
    png = encode(Image.new("RGBA", (20, 10)), "PNG")
    assert sniff_format(webp) == "WEBP"
    assert sniff_format(png) == "PNG"
    assert sniff_format(b"GIF89a") is None
    decoded = decode_image(webp, 10_000, 640)
    assert decoded.pixels.shape == (30, 40, 3)
    assert decode_image(png, 10_000, 640).pixels.shape == (10, 20, 3)


@pytest.fixture(params=["turbo", "pil"])
def decoder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both JPEG decoders: libjpeg-turbo through simplejpeg (the server) and PIL (the light library
    Home Assistant imports, where simplejpeg is not installed)."""
    if request.param == "pil":
        monkeypatch.setattr(imaging, "_turbo", None)
    else:
        assert imaging._turbo is not None  # the server's extra brings simplejpeg
    return str(request.param)


def test_large_jpeg_is_decoded_at_a_reduced_scale_and_scaled_back(decoder: str) -> None:
    big = resized(BUS, 3240)  # 3240 x 4320
    decoded = decode_image(big, 40_000_000, 640)
    assert (decoded.width, decoded.height) == (3240, 4320)
    assert decoded.pixels.shape[:2] == (1080, 810)  # 1/4: the least that keeps 640 on both sides
    sx, sy = decoded.scale
    assert sx == pytest.approx(3240 / decoded.pixels.shape[1])
    assert Detection("a", 0, 1, 1, 1, 2, 2).scaled(sx, sy).x_max == pytest.approx(2 * sx)


def test_1080p_jpeg_is_decoded_at_the_least_scale_the_model_needs(decoder: str) -> None:
    # YOLO at 640 scales the long side to 640: a 1920x1080 frame needs 640x360, so 1/2 suffices.
    assert draft_size(1920, 1080, 640, letterbox=True) == (640, 360)
    assert draft_scale(1920, 1080, (640, 360)) == 2
    assert draft_size(1920, 1080, 640, letterbox=False) is None  # SSD stretches: needs 640 high
    assert draft_scale(1920, 1080, None) == 1
    assert draft_size(1000, 800, 640, letterbox=True) is None  # no reduced scale keeps 640
    assert draft_scale(3240, 4320, (640, 640)) == 4
    frame = resized(ZIDANE, 1920)  # 1920 x 1080
    decoded = decode_image(frame, 40_000_000, 640, letterbox=True)
    assert decoded.pixels.shape[:2] == (540, 960)
    assert decoded.scale == (2.0, 2.0)
    assert decode_image(frame, 40_000_000, 640).pixels.shape[:2] == (1080, 1920)  # SSD: full
    boxed = decode_image(frame, 40_000_000, 640, letterbox=True, stride=32)
    assert boxed.pixels.shape == (384, 640, 3)
    assert boxed.box == (0, 12, 640, 360)


@pytest.mark.parametrize("size", [(1920, 1080), (810, 1080), (640, 360), (3240, 4320)])
@pytest.mark.parametrize("stride", [32, 0])
def test_both_decoders_make_the_same_pixels(size: tuple[int, int], stride: int) -> None:
    """libjpeg-turbo at PIL's draft scale with PIL's settings: the server's decoder and Home
    Assistant's local detector (PIL) see the same image, so they find the same objects."""
    frame = encode(Image.open(io.BytesIO(ZIDANE)).convert("RGB").resize(size), "JPEG")
    turbo = decode_image(frame, 40_000_000, 640, letterbox=stride > 0, stride=stride)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(imaging, "_turbo", None)
        pil = decode_image(frame, 40_000_000, 640, letterbox=stride > 0, stride=stride)
    assert turbo.pixels.shape == pil.pixels.shape
    assert (turbo.box, turbo.scale) == (pil.box, pil.scale)
    assert np.array_equal(turbo.pixels, pil.pixels)


def test_a_frame_at_the_model_scale_is_decoded_into_the_model_input() -> None:
    frame = encode(Image.open(io.BytesIO(BUS)).convert("RGB").resize((640, 360)), "JPEG")
    reference = np.asarray(Image.open(io.BytesIO(frame)).convert("RGB"))  # libjpeg, full scale
    calls: list[Any] = []
    real = imaging._turbo.decode_jpeg

    def spy(data: bytes, **options: Any) -> Any:
        calls.append(options.get("buffer"))
        return real(data, **options)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(imaging._turbo, "decode_jpeg", spy)
        decoded = decode_image(frame, 40_000_000, 640, letterbox=True, stride=32)
    assert decoded.pixels.shape == (384, 640, 3)
    [buffer] = calls
    assert buffer is not None
    assert np.shares_memory(buffer, decoded.pixels)  # no copy after it
    inner = decoded.pixels[12:372].astype(np.int16)
    assert np.abs(inner - reference).max() <= 2  # libjpeg-turbo's accurate DCT, PIL's libjpeg


def test_cmyk_and_grey_jpegs_decode_to_rgb(decoder: str) -> None:
    cmyk = encode(Image.new("CMYK", (64, 48), (0, 255, 255, 0)), "JPEG")  # red, no RGB for turbo
    grey = encode(Image.new("L", (64, 48), 200), "JPEG")
    red = decode_image(cmyk, 10_000, 640).pixels
    assert red.shape == (48, 64, 3)
    assert red[..., 0].mean() > 200
    assert red[..., 1].mean() < 60
    light = decode_image(grey, 10_000, 640, letterbox=True, stride=32).pixels
    assert light.shape == (480, 640, 3)
    assert abs(int(light[240, 320, 0]) - 200) <= 2


@pytest.mark.parametrize("cut", [3, 2])
def test_truncated_jpeg_is_corrupt_for_both_decoders(decoder: str, cut: int) -> None:
    frame = resized(BUS, 1920)
    with pytest.raises(ImageRejectedError) as err:
        decode_image(frame[: len(frame) // cut], 40_000_000, 640, letterbox=True, stride=32)
    assert (err.value.status, err.value.reason) == (422, "corrupt")


def test_header_that_is_not_an_image() -> None:
    with pytest.raises(ImageRejectedError) as err:
        decode_image(b"\x89PNG\r\n\x1a\n" + b"\x00" * 30, 100, 64)
    assert err.value.status == 422


def test_base64_forms() -> None:
    assert decode_base64_image("aGk=") == b"hi"
    with pytest.raises(ApiError):
        decode_base64_image("")


# ---------------------------------------------------------------- batcher and service


def _img(width: int = 32) -> np.ndarray[Any, Any]:
    return np.zeros((16, width, 3), dtype=np.uint8)


async def test_batcher_batches_filters_and_reports() -> None:
    engine = ScriptedEngine()
    engine.release.clear()
    seen: list[int] = []
    batcher = MicroBatcher(engine, 4, 0.05, 100, on_batch=lambda n, _s: seen.append(n))
    batcher.start()
    try:
        first = asyncio.ensure_future(batcher.submit(_img(), 0.5))
        await asyncio.sleep(0.1)  # the first batch (one image) is held inside the engine
        rest = [asyncio.ensure_future(batcher.submit(_img(10 + i), 0.1)) for i in range(5)]
        await asyncio.sleep(0.05)
        assert batcher.depth == 5
        engine.release.set()
        one = await first
        others = await asyncio.gather(*rest)
    finally:
        batcher.stop()
    assert [d.label for d in one.detections] == ["person"]  # 0.3 < 0.5 filtered per request
    assert [len(o.detections) for o in others] == [2] * 5
    assert others[2].detections[1].x_max == 12
    assert engine.batches == [1, 4, 1]
    assert seen == [1, 4, 1]


async def test_batcher_queue_full_cancel_and_stop() -> None:
    engine = ScriptedEngine()
    engine.release.clear()
    batcher = MicroBatcher(engine, 1, 0.0, 2)
    batcher.start()
    held = asyncio.ensure_future(batcher.submit(_img(), 0.1))
    await asyncio.sleep(0.05)
    waiting = asyncio.ensure_future(batcher.submit(_img(), 0.1))
    await asyncio.sleep(0.01)
    with pytest.raises(QueueFullError):
        await batcher.submit_many([_img(), _img()], 0.1)
    waiting.cancel()  # a client that went away: its image leaves the queue
    await asyncio.sleep(0.01)
    assert batcher.depth == 0
    queued = asyncio.ensure_future(batcher.submit(_img(), 0.1))
    await asyncio.sleep(0.01)
    stopper = asyncio.get_running_loop().run_in_executor(None, batcher.stop, 5.0)
    await asyncio.sleep(0.05)
    engine.release.set()
    await stopper
    assert len((await held).detections) == 2
    with pytest.raises(BatcherStoppedError):
        await queued
    with pytest.raises(BatcherStoppedError):
        await batcher.submit(_img(), 0.1)


async def test_prepared_images_are_decoded_and_queued_by_the_pool() -> None:
    engine = ScriptedEngine()
    engine.release.clear()
    batcher = MicroBatcher(engine, 1, 0.0, 1)
    batcher.start()
    pool = ThreadPoolExecutor(2)
    calls: list[str] = []

    def prepare(name: str, gate: threading.Event | None = None) -> Any:
        def make() -> tuple[np.ndarray[Any, Any], object]:
            calls.append(name)
            if gate is not None:
                gate.wait(5)
            if name == "bad":
                raise ImageRejectedError(422, "corrupt", "the image could not be decoded")
            return _img(), name

        return make

    try:
        held = asyncio.ensure_future(batcher.submit_prepared(pool, prepare("held"), 0.1))
        await asyncio.sleep(0.05)  # in the engine now (held back by it)
        queued = asyncio.ensure_future(batcher.submit_prepared(pool, prepare("queued"), 0.1))
        await asyncio.sleep(0.05)
        assert batcher.depth == 1
        with pytest.raises(QueueFullError):  # found by the pool thread, after its decode
            await batcher.submit_prepared(pool, prepare("full"), 0.1)
        with pytest.raises(ImageRejectedError):  # the preparation's error is the request's answer
            await batcher.submit_prepared(pool, prepare("bad"), 0.1)
        gate = threading.Event()
        slow = asyncio.ensure_future(batcher.submit_prepared(pool, prepare("slow", gate), 0.1))
        await asyncio.sleep(0.05)
        slow.cancel()  # the client left while its image was being decoded: never queued
        await asyncio.sleep(0)
        gate.set()
        await asyncio.sleep(0.05)
        assert batcher.depth == 1
        engine.release.set()
        first, second = await held, await queued
        assert (first.prepared, second.prepared) == ("held", "queued")
        assert len(second.detections) == 2
        assert engine.batches == [1, 1]  # nothing of "slow", "full" or "bad" reached the model
        assert calls == ["held", "queued", "full", "bad", "slow"]
    finally:
        batcher.stop()
    stopped = ThreadPoolExecutor(1)
    with pytest.raises(BatcherStoppedError):
        await batcher.submit_prepared(stopped, prepare("late"), 0.1)
    pool.shutdown()
    stopped.shutdown()


async def test_idle_engine_dispatches_at_once() -> None:
    # A wait of an hour would hold a lone camera for an hour if an idle engine waited for company.
    engine = ScriptedEngine()
    batcher = MicroBatcher(engine, 16, 3600.0, 100)
    batcher.start()
    try:
        for _ in range(3):
            outcome = await asyncio.wait_for(batcher.submit(_img(), 0.1), 60)
            assert outcome.batch_size == 1
    finally:
        batcher.stop()
    assert engine.batches == [1, 1, 1]
    assert batcher.max_batch_size == 16


async def test_arrivals_during_a_pass_form_the_next_batch_and_top_up() -> None:
    engine = ScriptedEngine()
    engine.release.clear()
    batcher = MicroBatcher(engine, 4, 3600.0, 100)
    batcher.start()
    try:
        first = asyncio.ensure_future(batcher.submit(_img(), 0.1))
        await asyncio.sleep(0.05)  # taken alone by the idle engine, held inside it
        during = [asyncio.ensure_future(batcher.submit(_img(), 0.1)) for _ in range(2)]
        await asyncio.sleep(0.05)
        engine.release.set()
        await first
        # Busy now: the two that came during the pass wait for a top-up to a full batch ...
        later = [asyncio.ensure_future(batcher.submit(_img(), 0.1)) for _ in range(2)]
        outcomes = await asyncio.wait_for(asyncio.gather(*during, *later), 60)
        # ... and a lone request after the load is gone is not held back again.
        alone = await asyncio.wait_for(batcher.submit(_img(), 0.1), 60)
    finally:
        batcher.stop()
    assert [o.batch_size for o in outcomes] == [4] * 4
    assert alone.batch_size == 1
    assert engine.batches == [1, 4, 1]


def _service(engine: ScriptedEngine, **overrides: object) -> DetectionService:
    settings = Settings(**({"request_timeout": 5.0, "max_queue": 4} | overrides))  # type: ignore[arg-type]
    batcher = MicroBatcher(engine, 4, 0.0, settings.max_queue)
    return DetectionService(settings, engine, batcher, Metrics(lambda: batcher.depth))


async def test_service_maps_failures_to_statuses() -> None:
    engine = ScriptedEngine()
    service = _service(engine, request_timeout=0.2)
    service.batcher.start()
    png = encode(Image.new("RGB", (8, 8)), "PNG")
    try:
        ok = await service.detect([png], Options(0.1, frozenset({"car"})))
        assert [d.label for d in ok[0].detections] == ["car"]
        engine.release.clear()
        with pytest.raises(ApiError) as err:
            await service.detect([png], Options(0.1, None))
        assert err.value.status == 504
        engine.release.set()
        engine.fail = True
        with pytest.raises(ApiError) as err:
            await service.detect([png], Options(0.1, None))
        assert err.value.status == 500
        with pytest.raises(ApiError) as err:
            await service.detect([png] * 5, Options(0.1, None))
        assert err.value.status == 503
        assert err.value.headers == {"Retry-After": "1"}
        with pytest.raises(ApiError) as err:
            await service.detect([png] * 65, Options(0.1, None))
        assert err.value.status == 400
    finally:
        service.batcher.stop()
    with pytest.raises(ApiError) as err:
        await service.detect([png], Options(0.1, None))
    assert err.value.status == 503
    assert service.options({"min_confidence": "0.7"}, ("min_confidence",)).confidence == 0.7
    assert service.options({}, ("confidence",)).confidence == 0.25


# ---------------------------------------------------------------- metrics, logs, engines, TLS


def test_metrics_exposition_parses_with_prometheus_parser() -> None:
    m = Metrics(lambda: 3)
    m.request('/v1/"x"', 200, 0.02)
    m.batch(5, 0.1)
    m.reject("corrupt")
    m.rate_limit()
    m.refusal("header_timeout")
    text = m.render()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values()
               for s in f.samples}  # fmt: skip
    assert samples["hsi_requests_total", (("endpoint", '/v1/"x"'), ("status", "200"))] == 1
    assert samples["hsi_batch_size_bucket", (("le", "4.0"),)] == 0
    assert samples["hsi_batch_size_bucket", (("le", "8.0"),)] == 1
    assert samples["hsi_queue_depth", ()] == 3
    assert samples["hsi_rate_limited_total", ()] == 1
    assert samples["hsi_rejected_inputs_total", (("reason", "corrupt"),)] == 1
    assert samples["hsi_refusals_total", (("reason", "header_timeout"),)] == 1
    assert families["hsi_request_duration_seconds"].type == "histogram"
    assert samples["process_resident_memory_bytes", ()] > 0  # process metrics come along
    assert not any(name.endswith("_created") for name, _ in samples)
    assert "hsi_queue_depth 3.0" in Metrics(lambda: 3).render()


def test_log_limiter_and_auth_throttle_retry_after() -> None:
    now = [0.0]
    limiter = LogLimiter(lines=2, window=10, clock=lambda: now[0])
    assert [limiter.allow("a") for _ in range(4)] == [0, 0, None, None]
    assert limiter.allow("b") == 0
    now[0] = 11
    assert limiter.allow("a") == 2  # the next line says how many were left out
    throttle = AuthFailureLimiter(2, window=10, clock=lambda: now[0])
    assert throttle.retry_after("a") == 1
    for _ in range(5):
        throttle.record_failure("a")
    assert len(throttle._failures["a"]) == 2  # bounded: only the latest `limit` are kept
    now[0] = 14
    assert throttle.blocked("a")
    assert throttle.retry_after("a") == 7


def test_keys_that_are_not_utf8_hash_and_fail() -> None:
    assert digest("\udcff" + API_KEY) != digest(API_KEY)  # a surrogate-escaped header value
    assert not KeyStore((digest(API_KEY),)).verify("\udcff" + API_KEY)


async def test_request_over_the_pixel_budget_is_413_before_decoding() -> None:
    png = encode(Image.new("RGB", (100, 100)), "PNG")
    service = _service(ScriptedEngine(), max_request_pixels=25_000)
    service.batcher.start()
    try:
        [one] = await service.detect([png], Options(0.1, None))
        assert one.width == 100
        with pytest.raises(ApiError) as err:
            await service.detect([png, png, png], Options(0.1, None))
        assert err.value.status == 413
        assert err.value.reason == "request_too_many_pixels"
        with pytest.raises(ApiError) as err:
            await service.detect([png, b"GIF89a"], Options(0.1, None))
        assert err.value.message.startswith("image 2:")
        with pytest.raises(ApiError) as err:  # one image: checked in the same job as its decode
            await service.detect([b"GIF89a"], Options(0.1, None))
        assert (err.value.status, err.value.message) == (
            415,
            "only JPEG, PNG and WebP are accepted",
        )
    finally:
        service.batcher.stop()
    tight = _service(ScriptedEngine(), max_request_pixels=5_000)  # below one image's pixels
    tight.batcher.start()
    try:
        with pytest.raises(ApiError) as err:
            await tight.detect([png], Options(0.1, None))
        assert (err.value.status, err.value.reason) == (413, "request_too_many_pixels")
        assert "10000 pixels" in err.value.message
    finally:
        tight.batcher.stop()


def test_16_bit_grey_is_scaled_not_clipped() -> None:
    grey = Image.fromarray(np.full((8, 8), 40000, dtype=np.uint16))
    png = encode(grey, "PNG")
    assert Image.open(io.BytesIO(png)).mode.startswith("I;16")
    decoded = decode_image(png, 10_000, 64)
    assert decoded.pixels.shape == (8, 8, 3)
    assert decoded.pixels.dtype == np.uint8
    assert int(decoded.pixels[0, 0, 0]) == 40000 >> 8  # 156, not 255


def test_gigapixel_header_is_refused_not_raised() -> None:
    with pytest.raises(ImageRejectedError) as err:
        decode_image(png_claiming(65535, 65535), 40_000_000, 64)
    assert err.value.status == 413
    assert image_pixels(png_claiming(300, 200), 40_000_000) == 60_000


def test_tls12_offers_only_forward_secret_aead_suites(tmp_path: Path) -> None:
    context, _pin = server_context(Settings(tls="self-signed", tls_dir=tmp_path))
    assert context is not None
    suites = context.get_ciphers()
    tls12 = [c for c in suites if c["protocol"] == "TLSv1.2"]
    assert tls12
    for suite in tls12:
        assert suite["aead"], suite["name"]
        assert suite["kea"] == "kx-ecdhe", suite["name"]
    assert not any("CBC" in c["description"] or c["name"].endswith("-SHA") for c in suites)


def test_log_masking_covers_exception_text() -> None:
    masker = SecretMasker(KeyStore((digest(API_KEY),)))
    try:
        raise ValueError(f"bad header X-API-Key: {API_KEY}\x01")
    except ValueError:
        record = logging.LogRecord("t", logging.ERROR, "", 0, "failed", None, sys.exc_info())
    assert masker.filter(record)
    assert record.exc_text is not None
    assert "ValueError" in record.exc_text
    assert API_KEY not in record.exc_text
    assert API_KEY not in logging.Formatter().format(record)


def test_log_masking(caplog: pytest.LogCaptureFixture) -> None:
    masker = SecretMasker(KeyStore((digest(API_KEY),)))
    assert API_KEY not in masker.mask(f"got {API_KEY} from client")
    assert masker.mask("Authorization: Bearer abc.def") == "Authorization: Bearer ***"
    assert masker.mask("api_key=hunter2&x=1") == "api_key=***&x=1"
    other = "Q" * 40
    assert masker.mask(other) == other
    configure_logging("debug", KeyStore((digest(API_KEY),)))
    record = logging.LogRecord("t", logging.INFO, "", 0, "key %s", (API_KEY,), None)
    assert masker.filter(record)
    assert API_KEY not in record.getMessage()


def test_engine_helpers(tmp_path: Path) -> None:
    assert pick_device("auto", cuda_available=False) == "cpu"
    assert pick_device("auto", cuda_available=True) == "cuda:0"
    assert pick_device("cuda", cuda_available=True) == "cuda:0"
    assert pick_device("cuda:1", cuda_available=True) == "cuda:1"
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        pick_device("cuda", cuda_available=False)
    assert use_half("auto", "cuda:0")
    assert not use_half("off", "cuda:0")
    assert not use_half("on", "cpu")
    (tmp_path / "labels.txt").write_text("???\nperson\n???\ncar\n\n")
    assert read_labelmap(tmp_path / "labels.txt") == ("person", "???", "car")


def test_tls_material_and_names(tmp_path: Path) -> None:
    cert, _key = ensure_self_signed(tmp_path, "192.168.1.20")
    assert len(fingerprint(cert)) == 95
    assert ensure_self_signed(tmp_path, "192.168.1.20")[0] == cert
    names = {str(n.value) for n in _subject_names("detector.lan")}
    assert {"localhost", "127.0.0.1", "detector.lan"} <= names
    assert "0.0.0.0" not in {str(n.value) for n in _subject_names("0.0.0.0")}


def test_corrupt_header_after_ultralytics_patched_pil() -> None:
    import ultralytics  # noqa: F401  (its import patches PIL.Image.open, as in the YOLO server)

    with pytest.raises(ImageRejectedError) as err:
        decode_image(b"\xff\xd8\xff" + b"\x00" * 30, 100, 64)
    assert err.value.status == 422
