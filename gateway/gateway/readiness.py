"""Readiness: the broker accepts a connection, every backend service answers ``ping``, and the
revocation state has been loaded from org (until then tokens older than the process are
refused, so a load balancer should not send it traffic)."""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Mapping
from typing import Any

import eventlet
from kombu.connection import Connection

from gateway.problems import HttpProblem

_log = logging.getLogger(__name__)

OK = "ok"
LOADING = "loading"


def broker_status(amqp_uri: str, timeout: float) -> str:
    """Whether the broker takes a connection within ``timeout``. The connection is closed
    within the same time; one that timed out or failed is dropped without a word to the
    broker, whose polite close (awaiting ``close-ok``) would hang on a silent broker."""
    connection = Connection(amqp_uri, connect_timeout=timeout)
    timer = eventlet.Timeout(timeout)
    closed = False
    try:
        connection.connect()
        connection.release()
        closed = True
        return OK
    except eventlet.Timeout as exc:
        if exc is not timer:
            raise
        return "timeout"
    except Exception as exc:
        _log.warning("readiness: the broker is not reachable: %s", exc)
        return "unreachable"
    finally:
        timer.cancel()
        if not closed:
            connection.collect()


def revocations_status(authority: Any) -> str:
    """``authority`` is the gateway's :class:`~gateway.auth.TokenAuthority`."""
    return OK if authority.synced else LOADING


def service_status(proxy: Any) -> str:
    """``proxy`` is a timed service proxy; the answer must be ``pong``."""
    try:
        answer = proxy.ping()
    except HttpProblem as exc:
        return "timeout" if exc.status == 504 else exc.code
    except Exception as exc:
        code = getattr(exc, "code", None)
        _log.warning("readiness: ping failed: %s", exc)
        return code if isinstance(code, str) else "error"
    return OK if answer == "pong" else "unexpected answer"


def check(amqp_uri: str, proxies: Mapping[str, Any], timeout: float) -> dict[str, str]:
    """Each check by name ("broker" and one per service), run side by side."""
    pool = eventlet.GreenPool(len(proxies) + 1)

    def spawn(fn: Any, *args: Any) -> Any:
        return pool.spawn(contextvars.copy_context().run, fn, *args)

    broker = spawn(broker_status, amqp_uri, timeout)
    services = {name: spawn(service_status, proxy) for name, proxy in proxies.items()}
    results = {"broker": broker.wait()}
    results.update({name: thread.wait() for name, thread in services.items()})
    return results


def summary(checks: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
    ready = all(value == OK for value in checks.values())
    return (200 if ready else 503), {
        "status": "ready" if ready else "unavailable",
        "checks": dict(checks),
    }
