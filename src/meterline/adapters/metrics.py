"""Prometheus implementation of :class:`meterline.ports.Metrics`, plus the HTTP series.

Each container owns its own ``CollectorRegistry`` (no module-level state): several apps
in one test process do not collide, and ``/metrics`` shows exactly this app's figures.
Figures are per process; with several uvicorn workers, scrape each or put replicas
behind a Prometheus service discovery (the usual deployment is one worker per replica).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

__all__ = ["PrometheusMetrics"]

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class PrometheusMetrics:
    """The series of RELIABILITY.md's observability promise."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        #: Labelled series by (metric, label values): ``labels()`` validates and takes a
        #: lock on every call, and every gateway call reaches four series. The label
        #: values are route templates, outcomes and reasons: a small, fixed set.
        self._children: dict[tuple[Any, ...], Any] = {}
        self.registry = CollectorRegistry()
        r = self.registry
        self._requests = Counter(
            "meterline_http_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self._request_seconds = Histogram(
            "meterline_http_request_duration_seconds",
            "Time until the response is complete (streams included), by route template",
            ["route"],
            registry=r,
            buckets=_LATENCY_BUCKETS,
        )
        self._admission = Counter(
            "meterline_admission_decisions",
            "Admission decisions (check-quota and gateway) by result and reason",
            ["result", "reason"],
            registry=r,
        )
        self._upstream = Histogram(
            "meterline_upstream_latency_seconds",
            "Provider latency (first byte for streams) by provider and outcome",
            ["provider", "outcome"],
            registry=r,
            buckets=_LATENCY_BUCKETS,
        )
        self._ledger = Counter(
            "meterline_ledger_writes",
            "Usage events written to the ledger by outcome",
            ["outcome"],
            registry=r,
        )
        self._counter_errors = Counter(
            "meterline_counter_errors",
            "Counter backend (Redis) unreachable, by operation",
            ["operation"],
            registry=r,
        )

    def _child(self, metric: Any, *values: str) -> Any:
        key = (metric, *values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    # ports.Metrics
    def admission(self, result: str, reason: str) -> None:
        self._child(self._admission, result, reason).inc()

    def upstream(self, provider: str, outcome: str, seconds: float) -> None:
        self._child(self._upstream, provider, outcome).observe(seconds)

    def ledger_write(self, outcome: str, count: int = 1) -> None:
        self._child(self._ledger, outcome).inc(count)

    def counter_error(self, operation: str) -> None:
        self._child(self._counter_errors, operation).inc()

    # web
    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        self._child(self._requests, route, method, str(status)).inc()
        self._child(self._request_seconds, route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
