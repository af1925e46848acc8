"""Per-client request rate limiting and lockout after failed authentications (in memory)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
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
    """Locks a client out (429) after `limit` failed authentications within `window` seconds."""

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
        """Whether this client has used up its failed attempts. limit 0 disables the lockout."""
        return self._limit > 0 and len(self._recent(client)) >= self._limit

    def record_failure(self, client: str) -> None:
        """Count one failed authentication for this client."""
        stamps = self._recent(client)
        stamps.append(self._clock())
        self._failures[client] = stamps
        self._failures.move_to_end(client)
        if len(self._failures) > _MAX_CLIENTS:
            self._failures.popitem(last=False)
