"""Waiting for what happens asynchronously, without sleeping and hoping."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(
    probe: Callable[[], T],
    *,
    timeout: float = 30.0,
    interval: float = 0.05,
    what: str = "the condition",
) -> T:
    """Call ``probe`` until it returns something truthy and return that; an AssertionError
    that names ``what`` (and the last answer or error) when ``timeout`` seconds pass first.

    An ``AssertionError`` raised by ``probe`` counts as "not yet", so a probe may assert.
    The default timeout is generous: a probe that succeeds returns at once, and the broker
    can stall for seconds while an earlier test's virtual host and its quorum queues go.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            result = probe()
        except AssertionError as exc:
            result, last = None, exc  # type: ignore[assignment]
        else:
            if result:
                return result
            last = result
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} did not happen within {timeout}s (last: {last!r})")
        time.sleep(interval)
