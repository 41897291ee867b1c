"""A stalled backend does not stall the gateway.

The customer stand-in here takes every call and never answers (as a customer service whose
table is locked does), while the org stand-in answers at once. Against the real broker:

* ``/health``, ``/api/me`` and an org admin route keep answering promptly, far under the RPC
  timeout, while the customer calls hang;
* customer calls beyond the customer bulkhead are answered 503 with ``Retry-After`` at once;
* a request that waited for a worker counts that wait in its deadline: no request outlives its
  deadline by more than a second, whatever it waited for.

Before the gateway had request workers of its own, bulkheads and a deadline per request, 10
hanging customer calls took all of its 10 workers: the health check and the org routes waited
behind them, and a request that waited for a worker got the full RPC timeout after that.
"""

from __future__ import annotations

import time
from typing import Any

import eventlet
import pytest
import requests
from eventlet.event import Event
from nameko.rpc import rpc
from prometheus_client import REGISTRY

from crm_common.context import CallContext
from crm_common.errors import EXPECTED_ERRORS
from tests.integration.standins import StandInOrg, access_token, gateway_config, start_gateway
from tests.support.polling import eventually
from tests.support.tokens import RUN_LONG

RPC_TIMEOUT = 3.0
PROMPT = 0.5
"""Seconds within which a route of a healthy backend must answer while customer is stalled."""
OVERSHOOT = 1.0
"""Seconds a request may take beyond its deadline (to write its answer)."""
ADMIN = access_token(
    "u-admin",
    ttl=RUN_LONG,
    username="admin",
    department_id="d-hq",
    roles=["admin"],
    permissions=["customer:read", "customer:write", "org:admin"],
    grants=[{}],
)


class StalledCustomer:
    """Takes every ``get_customer`` and answers only once the test releases it."""

    name = "customer"
    context = CallContext()
    released = Event()
    taken = 0

    @rpc
    def ping(self) -> str:
        return "pong"

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def get_customer(self, customer_id: str) -> dict[str, Any]:
        StalledCustomer.taken += 1
        StalledCustomer.released.wait()
        return {"id": customer_id, "version": 1}


@pytest.fixture
def stalled(rabbit_config, runner_factory):
    """A gateway in front of the stalled customer stand-in and a prompt org stand-in."""
    StalledCustomer.released = Event()
    StalledCustomer.taken = 0

    def start(**overrides: Any) -> str:
        config = gateway_config(
            rabbit_config,
            RPC_TIMEOUT=RPC_TIMEOUT,
            READY_TIMEOUT=1,
            BACKEND_SERVICES="customer,org",
            BUSY_RETRY_AFTER=1,
            **overrides,
        )
        api = start_gateway(runner_factory, config, StalledCustomer, StandInOrg)
        return api.base_url

    yield start
    StalledCustomer.released.send()


def timed_get(url: str, token: str | None = None) -> tuple[float, requests.Response]:
    headers = {"Authorization": f"Bearer {token or access_token()}"}
    started = time.monotonic()
    response = requests.get(url, headers=headers, timeout=4 * RPC_TIMEOUT)
    return time.monotonic() - started, response


def fire(pool: eventlet.GreenPool, base_url: str, count: int) -> list[Any]:
    return [
        pool.spawn(timed_get, f"{base_url}/api/customers/c-{number}") for number in range(count)
    ]


def wait_until_taken(count: int) -> None:
    """Until the stalled customer service holds ``count`` calls (its 10 workers at most)."""
    eventually(
        lambda: StalledCustomer.taken == count,
        timeout=RPC_TIMEOUT,
        what=f"{count} customer calls taken",
    )


def in_flight(service: str) -> float | None:
    return REGISTRY.get_sample_value("crm_gateway_backend_in_flight", {"service": service})


def test_healthy_routes_answer_promptly_while_customer_calls_hang(stalled):
    base_url = stalled()
    pool = eventlet.GreenPool(64)
    customer_calls = fire(pool, base_url, 10)
    wait_until_taken(10)

    health = [timed_get(f"{base_url}/health") for _ in range(3)]
    me = [timed_get(f"{base_url}/api/me") for _ in range(3)]
    departments = [timed_get(f"{base_url}/api/org/departments", ADMIN) for _ in range(3)]

    for elapsed, response in (*health, *me, *departments):
        assert response.status_code == 200, response.text
        assert elapsed < PROMPT, f"{response.url} took {elapsed:.2f}s"
    answers = [thread.wait() for thread in customer_calls]
    assert {response.status_code for _, response in answers} == {504}
    assert max(elapsed for elapsed, _ in answers) < RPC_TIMEOUT + OVERSHOOT


def test_calls_beyond_the_bulkhead_are_refused_at_once_with_retry_after(stalled):
    base_url = stalled(BACKEND_MAX_IN_FLIGHT_BY_SERVICE="customer=4")
    rejected_before = REGISTRY.get_sample_value(
        "crm_gateway_backend_rejected_total", {"service": "customer"}
    )
    pool = eventlet.GreenPool(64)
    held = fire(pool, base_url, 4)
    wait_until_taken(4)
    assert in_flight("customer") == 4

    refused = [thread.wait() for thread in fire(pool, base_url, 6)]

    for elapsed, response in refused:
        assert response.status_code == 503, response.text
        assert response.headers["Content-Type"] == "application/problem+json"
        assert response.headers["Retry-After"] == "1"
        assert response.json()["reason"] == "too_many_in_flight"
        assert response.json()["service"] == "customer"
        assert elapsed < PROMPT
    rejected = REGISTRY.get_sample_value(
        "crm_gateway_backend_rejected_total", {"service": "customer"}
    )
    assert rejected == (rejected_before or 0) + 6
    assert timed_get(f"{base_url}/api/me")[1].status_code == 200
    assert {thread.wait()[1].status_code for thread in held} == {504}


def test_no_request_outlives_its_deadline_however_long_it_waited_for_a_worker(stalled):
    base_url = stalled(REQUEST_WORKERS=4)
    pool = eventlet.GreenPool(64)

    answers = [thread.wait() for thread in fire(pool, base_url, 14)]

    assert max(elapsed for elapsed, _ in answers) < RPC_TIMEOUT + OVERSHOOT
    # 504 for the calls that timed out; 503 for the requests that never got a worker, or got
    # one too late for the broker to take their call
    assert {response.status_code for _, response in answers} <= {503, 504}
    for _, response in answers:
        if response.status_code == 503:
            assert int(response.headers["Retry-After"]) > 0


def test_health_and_ready_answer_while_every_request_worker_is_busy(stalled):
    base_url = stalled(REQUEST_WORKERS=2, BACKEND_MAX_IN_FLIGHT_BY_SERVICE="customer=2")
    pool = eventlet.GreenPool(16)
    held = fire(pool, base_url, 10)
    eventually(lambda: StalledCustomer.taken >= 2, timeout=RPC_TIMEOUT, what="calls taken")

    health_took, health = timed_get(f"{base_url}/health")
    ready_took, ready = timed_get(f"{base_url}/ready")

    assert health.status_code == 200 and health_took < PROMPT
    assert ready.json()["checks"]["org"] == "ok"
    assert ready_took < 1 + OVERSHOOT
    assert {thread.wait()[1].status_code for thread in held} <= {503, 504}
