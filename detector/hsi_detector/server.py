"""Start-up and shutdown: settings, TLS, model and warm-up, then serving until SIGTERM/SIGINT.

Exit status: 0 after a clean stop, 1 when the model or the port cannot be had, 2 for a refused
configuration.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import logging
import signal
import ssl
import sys
import time
from typing import Any

from aiohttp import web
import numpy as np
from PIL import Image

from hsi_detector.app import AppState, create_app
from hsi_detector.batcher import MicroBatcher
from hsi_detector.config import ConfigError, Settings, parse_settings
from hsi_detector.engines import Engine, EngineError, auto_batch_size, build_engine
from hsi_detector.keys import KeyStore
from hsi_detector.limits import AuthFailureLimiter, LogLimiter, RateLimiter
from hsi_detector.logsetup import configure_logging
from hsi_detector.metrics import Metrics
from hsi_detector.protocol import ConnectionLimits, GuardedRunner
from hsi_detector.service import DetectionService
from hsi_detector.tls import TlsError, server_context

_LOGGER = logging.getLogger("hsi_detector")
# PIL's decompression-bomb guard would refuse images that --max-pixels (up to 1e9, checked from the
# header before decoding) allows; in the server's own process it is raised to that ceiling.
Image.MAX_IMAGE_PIXELS = 1_000_000_000
EXIT_RUNTIME = 1
EXIT_CONFIG = 2


def warm_up(engine: Engine, settings: Settings, batch_size: int) -> float:
    """Run the model on a grey frame so the first camera does not pay for lazy initialisation."""
    frame = np.full((settings.imgsz, settings.imgsz, 3), 114, dtype=np.uint8)
    start = time.perf_counter()
    for size in (1, min(2, batch_size)):
        engine.infer([frame] * size, settings.confidence)
    return time.perf_counter() - start


def _security_notes(settings: Settings) -> None:
    if settings.tls != "disabled" or settings.loopback_only:
        return
    if settings.network_mode == "addon":
        _LOGGER.info("plaintext HTTP on the add-on's internal network (%s)", settings.host)
    else:
        _LOGGER.warning(
            "plaintext HTTP beyond loopback on %s (--allow-plaintext): API keys and images travel "
            "unencrypted; use --tls self-signed or provided",
            settings.host,
        )


def connection_limits(settings: Settings) -> ConnectionLimits:
    """The connection layer's limits from the settings."""
    return ConnectionLimits(
        header_timeout=settings.header_timeout,
        keepalive_timeout=settings.keepalive_timeout,
        body_timeout=settings.body_timeout,
        max_per_client=settings.max_connections_per_client,
        max_body_bytes=settings.max_body_bytes,
    )


class HandshakeLimitedSite(web.TCPSite):
    """A TCP site whose TLS handshakes must finish within the header time limit.

    asyncio gives a handshake 60 s by default, and the per-client connection cap only sees a
    connection once its handshake is done: a client that opens connections and never completes
    the handshake would hold each for a minute. aiohttp's TCPSite does not pass the limit on.
    """

    def __init__(self, *args: Any, handshake_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._handshake_timeout = handshake_timeout

    async def start(self) -> None:
        """Listen like TCPSite does, with the handshake limit when TLS is on."""
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None
        extra: dict[str, Any] = {}
        if self._ssl_context is not None:
            extra["ssl_handshake_timeout"] = self._handshake_timeout
        self._server = await asyncio.get_running_loop().create_server(
            server,
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
            **extra,
        )


def _loop_errors(
    limiter: LogLimiter,
) -> Callable[[asyncio.AbstractEventLoop, dict[str, Any]], None]:
    """asyncio's own error reports (a failed TLS handshake, ...): one short line, rate limited."""

    def report(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        name = type(exc).__name__ if exc is not None else "no exception"
        if limiter.allow("asyncio") is not None:
            _LOGGER.warning("event loop: %s (%s)", context.get("message", "error"), name)

    return report


async def serve(
    settings: Settings, engine: Engine, batch_size: int, context: ssl.SSLContext | None
) -> None:
    """Serve until a stop signal."""
    metrics = Metrics()
    batcher = MicroBatcher(
        engine,
        batch_size,
        settings.max_batch_wait_ms / 1000,
        settings.max_queue,
        on_batch=metrics.batch,
        workers=engine.streams,
    )
    metrics.queue_depth = lambda: batcher.depth
    service = DetectionService(settings, engine, batcher, metrics)
    state = AppState(
        service=service,
        keys=KeyStore(settings.key_digests),
        metrics=metrics,
        rate_limiter=RateLimiter(settings.rate_limit),
        auth_limiter=AuthFailureLimiter(settings.auth_fail_limit),
    )
    batcher.start()
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_loop_errors(LogLimiter()))
    # handler_cancellation: a client that disconnects cancels its handler, dropping its images.
    runner = GuardedRunner(
        create_app(state),
        limits=connection_limits(settings),
        metrics=metrics,
        access_log=None,
        handler_cancellation=True,
    )
    await runner.setup()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        site = HandshakeLimitedSite(
            runner,
            settings.host,
            settings.port,
            ssl_context=context,
            handshake_timeout=settings.header_timeout,
        )
        await site.start()
        scheme = "https" if context else "http"
        _LOGGER.info(
            "listening on %s://%s:%d (engine %s, runtime %s, model %s, device %s, max batch %d)",
            scheme,
            settings.host,
            settings.port,
            engine.engine_type,
            engine.runtime,
            engine.name,
            engine.device,
            batch_size,
        )
        await stop.wait()
        _LOGGER.info("stopping")
    finally:
        await runner.cleanup()
        await loop.run_in_executor(None, batcher.stop)
        service.pool.shutdown(wait=False, cancel_futures=True)


def main(argv: list[str] | None = None) -> int:
    """Run the server; returns the exit status."""
    try:
        settings = parse_settings(argv)
    except ConfigError as err:
        print(f"hsi_detector: error: {err}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(settings.log_level, KeyStore(settings.key_digests))
    try:
        context, fingerprint = server_context(settings)
    except TlsError as err:
        failure = str(err)
    else:
        failure = ""
    if failure:
        _LOGGER.error("%s", failure)
        return EXIT_CONFIG
    if settings.key_on_command_line:
        _LOGGER.warning(
            "a key given as a command-line flag is visible to every local user (ps, /proc); "
            "set HSI_API_KEY or use --api-key-file instead"
        )
    if fingerprint:
        print(f"TLS certificate SHA-256 fingerprint: {fingerprint}", flush=True)
    _security_notes(settings)
    try:
        engine = build_engine(settings)
    except EngineError as err:
        failure = str(err)
    if failure:
        _LOGGER.error("%s", failure)
        return EXIT_RUNTIME
    batch_size = auto_batch_size(settings.max_batch_size, engine.device)
    if settings.warmup:
        _LOGGER.info("warm-up took %.2f s", warm_up(engine, settings, batch_size))
    try:
        asyncio.run(serve(settings, engine, batch_size, context))
    except OSError as err:
        failure = f"cannot listen on {settings.host}:{settings.port}: {err.strerror}"
    if failure:
        _LOGGER.error("%s", failure)
        return EXIT_RUNTIME
    return 0
