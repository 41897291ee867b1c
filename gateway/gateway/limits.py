"""What keeps the gateway answering while a backend is slow or the broker is silent.

* **One deadline per request.** It starts when the request arrives: the time a request waits
  for a worker or a bulkhead slot counts, and every RPC it makes shares what is left
  (:func:`deadline_after`). No request outlives its deadline by more than the time to write
  its answer.
* **Request workers.** At most ``REQUEST_WORKERS`` requests are handled at once; one that cannot
  get a worker before its deadline is answered 503 with ``Retry-After``
  (:class:`RequestWorkers`).
* **A bulkhead per backend service.** At most ``BACKEND_MAX_IN_FLIGHT`` calls to one service
  are in flight at once (per service: ``BACKEND_MAX_IN_FLIGHT_BY_SERVICE``); a call beyond
  that is refused at once with 503 and ``Retry-After`` (:class:`Bulkheads`), so a slow service
  holds a bounded number of workers and the routes of the others go on.

Prometheus metrics: ``crm_gateway_backend_in_flight`` and
``crm_gateway_backend_rejected_total`` by service, ``crm_gateway_requests_in_flight`` and
``crm_gateway_requests_rejected_total``.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from eventlet.semaphore import Semaphore
from nameko.extensions import SharedExtension
from prometheus_client import Counter, Gauge

from gateway import settings
from gateway.problems import HttpProblem

BACKEND_IN_FLIGHT = Gauge(
    "crm_gateway_backend_in_flight", "RPC calls to a backend awaiting their answer", ["service"]
)
BACKEND_REJECTED = Counter(
    "crm_gateway_backend_rejected_total",
    "RPC calls refused at once because the backend's bulkhead was full",
    ["service"],
)
REQUESTS_IN_FLIGHT = Gauge(
    "crm_gateway_requests_in_flight", "HTTP requests held by a request worker"
)
REQUESTS_REJECTED = Counter(
    "crm_gateway_requests_rejected_total",
    "HTTP requests answered 503 because no request worker was free before their deadline",
)

_arrived: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "request_arrived", default=None
)


def bind_arrival(arrived: float | None) -> None:
    """Set when the current green thread's request arrived (``time.monotonic()``)."""
    _arrived.set(arrived)


def deadline_after(timeout: float) -> float:
    """The deadline of a call allowed ``timeout`` seconds: counted from the arrival of the
    request being handled, or from now outside a request."""
    arrived = _arrived.get()
    return (time.monotonic() if arrived is None else arrived) + timeout


def busy(detail: str, retry_after: int, **extra: str) -> HttpProblem:
    return HttpProblem(
        503,
        "unavailable",
        detail,
        title="Service unavailable",
        extra={**extra, "retry_after": retry_after},
        headers={"Retry-After": str(retry_after)},
    )


class RequestWorkers:
    """At most ``size`` requests handled at once; the others wait until their deadline."""

    def __init__(self, size: int, retry_after: int) -> None:
        self.size = size
        self.retry_after = retry_after
        self._free = Semaphore(size)

    @contextmanager
    def held(self, deadline: float) -> Iterator[None]:
        if not self._free.acquire(timeout=max(deadline - time.monotonic(), 0.0)):
            REQUESTS_REJECTED.inc()
            raise busy("the gateway is busy: try again shortly", self.retry_after)
        REQUESTS_IN_FLIGHT.inc()
        try:
            yield
        finally:
            REQUESTS_IN_FLIGHT.dec()
            self._free.release()


class Bulkhead:
    """The in-flight calls to one backend service, at most ``limit`` of them."""

    def __init__(self, service: str, limit: int, retry_after: int) -> None:
        self.service = service
        self.limit = limit
        self.retry_after = retry_after
        self._free = Semaphore(limit)
        self._in_flight = BACKEND_IN_FLIGHT.labels(service)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one slot for a call; a 503 at once when all are taken."""
        if not self._free.acquire(blocking=False):
            BACKEND_REJECTED.labels(self.service).inc()
            raise busy(
                f"the {self.service} service has too many requests in progress: try again shortly",
                self.retry_after,
                service=self.service,
                reason="too_many_in_flight",
            )
        self._in_flight.inc()
        try:
            yield
        finally:
            self._in_flight.dec()
            self._free.release()


class Bulkheads(SharedExtension):
    """One bulkhead per backend service, shared by every RPC proxy of the gateway's container."""

    def __init__(
        self,
        default_limit: int | None = None,
        limits: Mapping[str, int] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__()
        self.default_limit = default_limit
        self.limits = dict(limits or {})
        self.retry_after = retry_after
        self._bulkheads: dict[str, Bulkhead] = {}

    def setup(self) -> None:
        default_limit, limits = settings.backend_max_in_flight(self.container.config)
        self.default_limit = self.default_limit or default_limit
        self.limits = {**limits, **self.limits}
        self.retry_after = self.retry_after or settings.busy_retry_after(self.container.config)

    def of(self, service: str) -> Bulkhead:
        found = self._bulkheads.get(service)
        if found is None:
            limit = self.limits.get(service, self.default_limit)
            if limit is None or self.retry_after is None:
                raise RuntimeError("the bulkheads are not set up")
            found = self._bulkheads[service] = Bulkhead(service, limit, self.retry_after)
        return found
