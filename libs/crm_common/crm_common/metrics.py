"""Prometheus metrics of a service process, exposed over HTTP on ``METRICS_PORT``.

The ``Metrics`` dependency (every ``ServiceKit`` has it; the gateway adds it too) starts the
exposition server once per process and port, and records every RPC call with its latency and
outcome. The outbox relay, the event consumer and the gateway record their own counters through
the functions below; the outbox backlog and the database pool are read at scrape time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from nameko.extensions import DependencyProvider
from nameko.rpc import Rpc
from prometheus_client import Counter, Histogram, start_http_server
from prometheus_client.core import REGISTRY, GaugeMetricFamily, Metric
from sqlalchemy import Engine

from crm_common.errors import CrmError
from crm_common.models import utcnow

log = logging.getLogger(__name__)

RPC_CALLS = Counter("crm_rpc_calls_total", "RPC calls handled", ["service", "method", "outcome"])
RPC_SECONDS = Histogram(
    "crm_rpc_duration_seconds", "Time to handle an RPC call", ["service", "method", "outcome"]
)
EVENTS_PUBLISHED = Counter(
    "crm_events_published_total", "Events confirmed by the broker", ["service", "event_type"]
)
EVENT_LABELS = ["service", "handler", "event_type"]
EVENTS_CONSUMED = Counter(
    "crm_events_consumed_total",
    "Events a handler finished: applied, or skipped as already handled",
    [*EVENT_LABELS, "outcome"],
)
EVENTS_RETRIED = Counter(
    "crm_events_retried_total", "Failed deliveries sent to a retry queue", EVENT_LABELS
)
EVENTS_DEAD_LETTERED = Counter(
    "crm_events_dead_lettered_total", "Events moved to the dead-letter queue", EVENT_LABELS
)
HTTP_REQUESTS = Counter(
    "crm_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_SECONDS = Histogram(
    "crm_http_request_duration_seconds", "Time to answer an HTTP request", ["method", "route"]
)

BacklogProbe = Callable[[], tuple[int, datetime | None]]
"""Returns how many outbox rows are unsent and when the oldest of them was written."""


_http_series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
"""The labelled series of each (method, route, status), looked up once: as many as Prometheus
itself keeps."""


def observe_http(method: str, route: str, status: int, seconds: float) -> None:
    """Record one HTTP request by its route template (``/api/customers/{id}``), not its path."""
    series = _http_series.get((method, route, status))
    if series is None:
        series = _http_series[(method, route, status)] = (
            HTTP_REQUESTS.labels(method, route, str(status)),
            HTTP_SECONDS.labels(method, route),
        )
    series[0].inc()
    series[1].observe(seconds)


def outcome_of(exc: BaseException | None) -> str:
    """``ok``, the code of an expected error (``not_found``), or ``error``."""
    if exc is None:
        return "ok"
    return exc.code if isinstance(exc, CrmError) else "error"


class _ScrapeTimeGauges:
    """Gauges read when Prometheus scrapes: outbox backlog and age, DB connections in use."""

    def __init__(self) -> None:
        self.backlogs: dict[str, BacklogProbe] = {}
        self.pools: dict[str, Engine] = {}

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily("crm_outbox_backlog", "Outbox rows not yet sent", labels=["service"]),
            GaugeMetricFamily(
                "crm_outbox_oldest_unsent_age_seconds",
                "Age of the oldest unsent outbox row (0 when none)",
                labels=["service"],
            ),
            GaugeMetricFamily(
                "crm_db_pool_connections_in_use",
                "Database connections checked out of the pool",
                labels=["service"],
            ),
        )

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        backlog, age, pool = self._families()
        for service, probe in list(self.backlogs.items()):
            try:
                unsent, oldest = probe()
            except Exception as exc:  # a scrape must not fail because one database is away
                log.warning("outbox backlog of %s unreadable: %s", service, exc)
                continue
            backlog.add_metric([service], unsent)
            age.add_metric([service], (utcnow() - oldest).total_seconds() if oldest else 0.0)
        for service, engine in list(self.pools.items()):
            checked_out = getattr(engine.pool, "checkedout", None)
            if checked_out is not None:
                pool.add_metric([service], checked_out())
        return [backlog, age, pool]


GAUGES = _ScrapeTimeGauges()
REGISTRY.register(GAUGES)


def watch_outbox(service: str, probe: BacklogProbe) -> None:
    GAUGES.backlogs[service] = probe


def watch_pool(service: str, engine: Engine) -> None:
    GAUGES.pools[service] = engine


_servers: dict[int, Any] = {}
_servers_lock = threading.Lock()


def serve(port: int) -> bool:
    """Start the exposition server on ``port`` unless this process already serves it there.

    Returns whether the port is served; a port taken by another process is logged, not raised,
    so metrics never stop a service from starting.
    """
    with _servers_lock:
        if port in _servers:
            return True
        try:
            _servers[port] = start_http_server(port)
        except OSError as exc:
            log.warning("metrics not served on port %s: %s", port, exc)
            return False
        log.info("metrics served on port %s", port)
        return True


def metrics_port(config: dict[str, Any]) -> int | None:
    """``METRICS_PORT`` from the Nameko config; absent, empty or 0 means no server."""
    value = config.get("METRICS_PORT")
    return int(value) if value not in (None, "", 0, "0") else None


class Metrics(DependencyProvider):
    """Serves the process's metrics and times every RPC call of the service."""

    def setup(self) -> None:
        self.service_name = self.container.service_name
        self._started: dict[str, float] = {}
        self._series: dict[tuple[str, str], tuple[Counter, Histogram]] = {}

    def start(self) -> None:
        port = metrics_port(self.container.config)
        if port is not None:
            serve(port)

    def worker_setup(self, worker_ctx: Any) -> None:
        if isinstance(worker_ctx.entrypoint, Rpc):
            self._started[worker_ctx.call_id] = time.perf_counter()

    def worker_result(self, worker_ctx: Any, result: Any = None, exc_info: Any = None) -> None:
        started = self._started.pop(worker_ctx.call_id, None)
        if started is None:
            return
        method = worker_ctx.entrypoint.method_name
        outcome = outcome_of(exc_info[1] if exc_info else None)
        series = self._series.get((method, outcome))
        if series is None:
            series = self._series[(method, outcome)] = (
                RPC_CALLS.labels(self.service_name, method, outcome),
                RPC_SECONDS.labels(self.service_name, method, outcome),
            )
        series[0].inc()
        series[1].observe(time.perf_counter() - started)

    def get_dependency(self, worker_ctx: Any) -> None:
        return None
