"""Prometheus metrics, written in the text exposition format (no extra dependency).

Updated from the event loop and from the inference thread, hence the lock.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
import threading

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(
        f'{k}="{v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")}"'
        for k, v in pairs
    )
    return "{" + inner + "}" if inner else ""


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class Histogram:
    """Cumulative buckets, sum and count, per label set."""

    def __init__(self, buckets: Iterable[float]) -> None:
        self.buckets = tuple(sorted(buckets))
        self._counts: dict[tuple[tuple[str, str], ...], list[int]] = {}
        self._sums: defaultdict[tuple[tuple[str, str], ...], float] = defaultdict(float)

    def observe(self, value: float, labels: tuple[tuple[str, str], ...] = ()) -> None:
        """Record one value."""
        counts = self._counts.setdefault(labels, [0] * (len(self.buckets) + 1))
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                counts[i] += 1
        counts[-1] += 1
        self._sums[labels] += value

    def lines(self, name: str) -> Iterable[str]:
        """Exposition lines for this histogram."""
        for labels, counts in sorted(self._counts.items()):
            for bound, count in zip(self.buckets, counts, strict=False):
                yield f"{name}_bucket{_labels((*labels, ('le', _number(bound))))} {count}"
            yield f"{name}_bucket{_labels((*labels, ('le', '+Inf')))} {counts[-1]}"
            yield f"{name}_sum{_labels(labels)} {_number(self._sums[labels])}"
            yield f"{name}_count{_labels(labels)} {counts[-1]}"


class Metrics:
    """All the server's metrics."""

    def __init__(self, queue_depth: Callable[[], int] = lambda: 0) -> None:
        self._lock = threading.Lock()
        self.queue_depth = queue_depth
        self.requests: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.latency = Histogram(LATENCY_BUCKETS)
        self.batch_size = Histogram(BATCH_BUCKETS)
        self.inference = Histogram(LATENCY_BUCKETS)
        self.auth_failures = 0
        self.rate_limited = 0
        self.rejected: defaultdict[str, int] = defaultdict(int)
        self.images = 0

    def request(self, endpoint: str, status: int, seconds: float) -> None:
        """One answered request."""
        with self._lock:
            self.requests[endpoint, str(status)] += 1
            self.latency.observe(seconds, (("endpoint", endpoint),))

    def batch(self, size: int, seconds: float) -> None:
        """One forward pass (called from the inference thread)."""
        with self._lock:
            self.batch_size.observe(size)
            self.inference.observe(seconds)
            self.images += size

    def auth_failure(self) -> None:
        """One request with a missing or wrong key."""
        with self._lock:
            self.auth_failures += 1

    def rate_limit(self) -> None:
        """One request refused by the per-client rate limit."""
        with self._lock:
            self.rate_limited += 1

    def reject(self, reason: str) -> None:
        """One input refused (bad image, too large, ...)."""
        with self._lock:
            self.rejected[reason] += 1

    def render(self) -> str:
        """The whole exposition."""
        with self._lock:
            out = [
                "# HELP hsi_requests_total Requests answered, by endpoint and HTTP status.",
                "# TYPE hsi_requests_total counter",
            ]
            out += [
                f"hsi_requests_total{_labels((('endpoint', e), ('status', s)))} {n}"
                for (e, s), n in sorted(self.requests.items())
            ]
            out += [
                "# HELP hsi_request_duration_seconds Time to answer a request.",
                "# TYPE hsi_request_duration_seconds histogram",
                *self.latency.lines("hsi_request_duration_seconds"),
                "# HELP hsi_batch_size Images per forward pass.",
                "# TYPE hsi_batch_size histogram",
                *self.batch_size.lines("hsi_batch_size"),
                "# HELP hsi_inference_duration_seconds Time of one forward pass.",
                "# TYPE hsi_inference_duration_seconds histogram",
                *self.inference.lines("hsi_inference_duration_seconds"),
                "# HELP hsi_images_total Images run through the model.",
                "# TYPE hsi_images_total counter",
                f"hsi_images_total {self.images}",
                "# HELP hsi_queue_depth Images waiting for a batch.",
                "# TYPE hsi_queue_depth gauge",
                f"hsi_queue_depth {self.queue_depth()}",
                "# HELP hsi_auth_failures_total Requests with a missing or wrong API key.",
                "# TYPE hsi_auth_failures_total counter",
                f"hsi_auth_failures_total {self.auth_failures}",
                "# HELP hsi_rate_limited_total Requests refused by the per-client rate limit.",
                "# TYPE hsi_rate_limited_total counter",
                f"hsi_rate_limited_total {self.rate_limited}",
                "# HELP hsi_rejected_inputs_total Inputs refused, by reason.",
                "# TYPE hsi_rejected_inputs_total counter",
            ]
            out += [
                f"hsi_rejected_inputs_total{_labels((('reason', r),))} {n}"
                for r, n in sorted(self.rejected.items())
            ]
        return "\n".join(out) + "\n"
