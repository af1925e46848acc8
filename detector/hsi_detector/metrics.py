"""Prometheus metrics through `prometheus_client`: a registry per server, plus process metrics.

Updated from the event loop and from the inference thread; prometheus_client's values are
thread-safe. `render()` is the text exposition that Prometheus' parsers read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import prometheus_client
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
CONTENT_TYPE = prometheus_client.CONTENT_TYPE_LATEST
# The `*_created` series double every counter and histogram; the exposition keeps to the values.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]


class _QueueDepth:
    """A collector reading the batcher's depth at scrape time (the batcher is built after us)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        gauge = prometheus_client.metrics_core.GaugeMetricFamily(
            "hsi_queue_depth", "Images waiting for a batch."
        )
        gauge.add_metric([], self._metrics.queue_depth())
        yield gauge


class Metrics:
    """All the server's metrics, in a registry of their own (servers may share a process)."""

    def __init__(self, queue_depth: Callable[[], int] = lambda: 0) -> None:
        self.queue_depth = queue_depth
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self._requests = Counter(
            "hsi_requests",
            "Requests answered, by endpoint and HTTP status.",
            ("endpoint", "status"),
            registry=reg,
        )
        self._latency = Histogram(
            "hsi_request_duration_seconds",
            "Time to answer a request.",
            ("endpoint",),
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self._batch_size = Histogram(
            "hsi_batch_size", "Images per forward pass.", buckets=BATCH_BUCKETS, registry=reg
        )
        self._inference = Histogram(
            "hsi_inference_duration_seconds",
            "Time of one forward pass.",
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self._images = Counter("hsi_images", "Images run through the model.", registry=reg)
        self._auth_failures = Counter(
            "hsi_auth_failures", "Requests with a missing or wrong API key.", registry=reg
        )
        self._rate_limited = Counter(
            "hsi_rate_limited", "Requests refused by the per-client rate limit.", registry=reg
        )
        self._rejected = Counter(
            "hsi_rejected_inputs", "Inputs refused, by reason.", ("reason",), registry=reg
        )
        self._refusals = Counter(
            "hsi_refusals",
            "Requests and connections refused, by reason (auth, limits, bad input, timeouts).",
            ("reason",),
            registry=reg,
        )
        reg.register(_QueueDepth(self))
        ProcessCollector(registry=reg)

    def request(self, endpoint: str, status: int, seconds: float) -> None:
        """One answered request."""
        self._requests.labels(endpoint, str(status)).inc()
        self._latency.labels(endpoint).observe(seconds)

    def batch(self, size: int, seconds: float) -> None:
        """One forward pass (called from the inference thread)."""
        self._batch_size.observe(size)
        self._inference.observe(seconds)
        self._images.inc(size)

    def auth_failure(self) -> None:
        """One request with a missing or wrong key."""
        self._auth_failures.inc()

    def rate_limit(self) -> None:
        """One request refused by the per-client rate limit."""
        self._rate_limited.inc()

    def reject(self, reason: str) -> None:
        """One input refused (bad image, too large, ...)."""
        self._rejected.labels(reason).inc()

    def refusal(self, reason: str) -> None:
        """One request or connection refused, for whatever reason (counted once each)."""
        self._refusals.labels(reason).inc()

    def render(self) -> str:
        """The whole exposition (Prometheus text format)."""
        return generate_latest(self.registry).decode("utf-8")
