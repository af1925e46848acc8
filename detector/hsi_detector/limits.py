"""Per-client rate limiting, failed-authentication throttling and log line limits (in memory)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
import math
import time

_MAX_CLIENTS = 10_000  # bounded memory: the least recently seen clients are forgotten first


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """Token bucket per client: `rate` requests/s, bursts of twice that; rate 0 disables."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._burst = max(1.0, 2 * rate)
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def allow(self, client: str) -> bool:
        """Take one token for this client; False when it has none left."""
        if self._rate <= 0:
            return True
        now = self._clock()
        bucket = self._buckets.pop(client, None) or _Bucket(self._burst, now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.stamp) * self._rate)
        bucket.stamp = now
        self._buckets[client] = bucket
        if len(self._buckets) > _MAX_CLIENTS:
            self._buckets.popitem(last=False)
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True

    def retry_after(self) -> int:
        """Seconds a refused client should wait (whole seconds for the Retry-After header)."""
        return max(1, round(1 / self._rate)) if self._rate > 0 else 1


class AuthFailureLimiter:
    """Throttles failed authentications per client: after `limit` failures within `window` seconds
    further failed attempts get 429 (Retry-After) instead of 401. A valid key is always served,
    so an address that Home Assistant shares with a misbehaving device never locks the owner out."""

    def __init__(
        self, limit: int, window: float = 300.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._limit = limit
        self.window = window
        self._clock = clock
        self._failures: OrderedDict[str, list[float]] = OrderedDict()

    def _recent(self, client: str) -> list[float]:
        cutoff = self._clock() - self.window
        stamps = [t for t in self._failures.get(client, []) if t > cutoff]
        if stamps:
            self._failures[client] = stamps
        else:
            self._failures.pop(client, None)
        return stamps

    def blocked(self, client: str) -> bool:
        """Whether this client has used up its failed attempts. limit 0 disables the throttle."""
        return self._limit > 0 and len(self._recent(client)) >= self._limit

    def retry_after(self, client: str) -> int:
        """Whole seconds until this client's oldest counted failure leaves the window."""
        stamps = self._recent(client)
        if not stamps:
            return 1
        return max(1, math.ceil(stamps[0] + self.window - self._clock()))

    def record_failure(self, client: str) -> None:
        """Count one failed authentication (only the latest `limit` are kept: bounded memory)."""
        stamps = self._recent(client)
        stamps.append(self._clock())
        self._failures[client] = stamps[-max(1, self._limit) :]
        self._failures.move_to_end(client)
        if len(self._failures) > _MAX_CLIENTS:
            self._failures.popitem(last=False)


@dataclass(slots=True)
class _LogWindow:
    start: float
    lines: int = 0
    suppressed: int = 0


class LogLimiter:
    """At most `lines` log lines per client and `window` seconds; the rest are only counted."""

    def __init__(
        self, lines: int = 5, window: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._lines = lines
        self._window = window
        self._clock = clock
        self._clients: OrderedDict[str, _LogWindow] = OrderedDict()

    def allow(self, client: str) -> int | None:
        """None: do not log. Otherwise log, mentioning this many lines suppressed before it."""
        now = self._clock()
        entry = self._clients.pop(client, None)
        carried = 0
        if entry is None or now - entry.start >= self._window:
            carried = entry.suppressed if entry is not None else 0
            entry = _LogWindow(now)
        self._clients[client] = entry
        if len(self._clients) > _MAX_CLIENTS:
            self._clients.popitem(last=False)
        if entry.lines >= self._lines:
            entry.suppressed += 1
            return None
        entry.lines += 1
        return carried
