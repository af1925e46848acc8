"""The HTTP connection layer, hardened before any request reaches the application.

aiohttp's own `RequestHandler` (one per connection) is extended with what a server on a hostile LAN
needs before authentication can even be checked:

- a header read time limit (a fresh connection, or a request whose first byte arrived, must finish
  its headers within `header_timeout`, else 408 and close) and an idle keep-alive limit;
- a cap on concurrent connections per client address (the excess gets 503 and is closed at once);
- a body byte cap on the connection itself: once a request's body passes the limit the body stream
  fails with 413, wherever it is being read (a multipart preamble or part headers too);
- the framework's own error answers (unparsable requests) as short JSON with our headers, never
  echoing the request, and logged as one short line per client and minute (no traceback).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
import json
import logging
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from hsi_detector.errors import ApiError, error_body
from hsi_detector.limits import LogLimiter

if TYPE_CHECKING:
    from aiohttp import StreamReader
    from aiohttp.web_request import BaseRequest

    from hsi_detector.metrics import Metrics

_LOGGER = logging.getLogger("hsi_detector.http")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Server": "hsi-detector",
}
_PHRASES = {400: "Bad Request", 408: "Request Timeout", 413: "Content Too Large",
            431: "Request Header Fields Too Large", 500: "Internal Server Error",
            503: "Service Unavailable", 504: "Gateway Timeout"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """What one connection may cost before (and while) a request is handled."""

    header_timeout: float = 10.0
    keepalive_timeout: float = 30.0
    body_timeout: float = 30.0
    max_per_client: int = 128
    max_body_bytes: int = 10 * 1024 * 1024
    # Request line and header limits of the parser (aiohttp's defaults allow 128 x 8 KiB).
    max_line_size: int = 8190
    max_field_size: int = 8190
    max_headers: int = 32


def body_too_large(limit: int) -> ApiError:
    """The error for a body over the limit."""
    return ApiError(413, "body_too_large", f"the request body is larger than {limit} bytes")


def raw_error(status: int, reason: str, message: str, extra: dict[str, str] | None = None) -> bytes:
    """A complete HTTP/1.1 error answer that closes the connection (for use outside a request)."""
    body = json.dumps(error_body("/", status, reason, message)).encode()
    headers = SECURITY_HEADERS | (extra or {})
    lines = [f"HTTP/1.1 {status} {_PHRASES.get(status, 'Error')}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines += ["Content-Type: application/json", f"Content-Length: {len(body)}", "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _peer(transport: asyncio.BaseTransport | None) -> str:
    peer = transport.get_extra_info("peername") if transport is not None else None
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return "unknown"


class GuardedServer(web.Server):
    """aiohttp's low-level server making `GuardedHandler`s, with the per-client connection count."""

    def __init__(
        self, *args: Any, limits: ConnectionLimits, metrics: Metrics, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self.metrics = metrics
        self.per_client: Counter[str] = Counter()
        self.log_limiter = LogLimiter()

    def __call__(self) -> GuardedHandler:
        return GuardedHandler(self, loop=self._loop, **self._kwargs)

    def note(self, client: str, reason: str, line: str) -> None:
        """Count a refusal and log it as one short line, at most a few per client and minute."""
        self.metrics.refusal(reason)
        if (suppressed := self.log_limiter.allow(client)) is not None:
            more = f" ({suppressed} similar lines suppressed)" if suppressed else ""
            _LOGGER.warning("%s from %s%s", line, client, more)


class GuardedHandler(RequestHandler):
    """One connection: time limits, per-client cap, body cap, short framework errors."""

    def __init__(self, manager: GuardedServer, **kwargs: Any) -> None:
        limits = manager.limits
        super().__init__(
            manager,
            keepalive_timeout=limits.keepalive_timeout,
            lingering_time=min(10.0, limits.body_timeout),
            max_line_size=limits.max_line_size,
            max_field_size=limits.max_field_size,
            max_headers=limits.max_headers,
            **kwargs,
        )
        self._guard = manager
        self._client = "unknown"
        self._counted = False
        self._header_timer: asyncio.TimerHandle | None = None
        self._body: StreamReader | None = None  # the body of the request last handled

    # -- connection life
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._client = _peer(transport)
        guard = self._guard
        if guard.per_client[self._client] >= guard.limits.max_per_client:
            guard.note(self._client, "too_many_connections", "connection refused: too many")
            message = "too many connections from this address"
            self._refuse(raw_error(503, "too_many_connections", message, {"Retry-After": "1"}))
            return
        guard.per_client[self._client] += 1
        self._counted = True
        self._arm_header_timer()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm_header_timer()
        if self._counted:
            self._counted = False
            count = self._guard.per_client[self._client] - 1
            if count > 0:
                self._guard.per_client[self._client] = count
            else:
                del self._guard.per_client[self._client]
        super().connection_lost(exc)

    def _refuse(self, answer: bytes) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(answer)
        self.force_close()

    # -- header time limit
    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self._loop.call_later(
                self._guard.limits.header_timeout, self._header_timed_out
            )

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timed_out(self) -> None:
        self._header_timer = None
        self._guard.note(self._client, "header_timeout", "request headers too slow")
        message = "the request headers did not arrive in time"
        self._refuse(raw_error(408, "header_timeout", message))

    def data_received(self, data: bytes) -> None:
        # Between requests (not while a body still arrives, or lingers after an early answer).
        body_done = self._body is None or self._body.is_eof()
        idle = not self._request_in_progress and not self._messages and body_done
        before = self._request_count
        if idle and data:
            self._arm_header_timer()  # the first bytes of a request: its headers are now timed
        super().data_received(data)
        if self._request_count != before:
            self._disarm_header_timer()  # a whole request head arrived (or was refused)
        request = self._current_request
        if request is not None:
            content = request.content
            limit = self._guard.limits.max_body_bytes
            if content.total_bytes > limit and content.exception() is None:
                content.set_exception(body_too_large(limit))

    async def _handle_request(
        self, request: BaseRequest, start_time: float | None, request_handler: Any
    ) -> tuple[web.StreamResponse, bool]:
        self._body = request.content
        return await super()._handle_request(request, start_time, request_handler)

    # -- the framework's own errors
    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """A short JSON error with our headers; logs one line naming only the error's type."""
        name = type(exc).__name__ if exc is not None else "error"
        reason = "bad_request" if status < 500 else ("timeout" if status == 504 else "internal")
        self._guard.note(self._client, reason, f"HTTP {status} ({name})")
        if request.writer.output_size > 0:
            raise ConnectionError("the answer has been started already")
        phrase = _PHRASES.get(status, "Error").lower()
        response = web.json_response(
            error_body("/", status, reason, phrase), status=status, headers=SECURITY_HEADERS
        )
        response.force_close()
        return response

    def log_exception(self, *args: Any, **kw: Any) -> None:
        """aiohttp's tracebacks (e.g. a body read past a refused limit): one short line instead."""
        exc = kw.get("exc_info")
        if isinstance(exc, ApiError):
            return  # already answered
        name = type(exc).__name__ if isinstance(exc, BaseException) else "error"
        self._guard.note(self._client, "connection_error", f"connection error ({name})")


class GuardedRunner(web.AppRunner):
    """An AppRunner whose server makes `GuardedHandler`s (the application is set up as usual)."""

    def __init__(
        self, app: web.Application, *, limits: ConnectionLimits, metrics: Metrics, **kwargs: Any
    ) -> None:
        super().__init__(app, **kwargs)
        self._limits = limits
        self._metrics = metrics

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()  # runs the app's start-up and freezes it
        return GuardedServer(
            plain.request_handler,
            request_factory=plain.request_factory,
            limits=self._limits,
            metrics=self._metrics,
            **self._kwargs,
        )
