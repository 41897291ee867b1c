"""Refused sign-ins counted per client address, against password spraying.

The org service locks a user after repeated wrong passwords, but trying one common password
against many usernames never locks anyone. So each gateway process also counts the refused
sign-ins of each client address over a sliding window; past the limit, that address gets 429
until its oldest refusal leaves the window. Successful sign-ins are not counted.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable


class SignInThrottle:
    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("the sign-in throttle needs a positive limit and window")
        self.limit = limit
        self.window = window
        self.clock = clock
        self._refusals: dict[str, deque[float]] = {}

    def retry_after(self, address: str) -> int | None:
        """Whole seconds until ``address`` may try again; None when it may now."""
        refusals = self._recent(address, self.clock())
        if len(refusals) < self.limit:
            return None
        return max(1, math.ceil(refusals[0] + self.window - self.clock()))

    def refused(self, address: str) -> None:
        now = self.clock()
        self._recent(address, now).append(now)
        self._sweep(now)

    def _recent(self, address: str, now: float) -> deque[float]:
        refusals = self._refusals.setdefault(address, deque())
        while refusals and refusals[0] <= now - self.window:
            refusals.popleft()
        return refusals

    def _sweep(self, now: float) -> None:
        """Forget addresses whose refusals have all left the window."""
        if len(self._refusals) > 10_000:
            for address in [a for a, r in self._refusals.items() if r[-1] <= now - self.window]:
                del self._refusals[address]
