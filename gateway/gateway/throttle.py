"""Refused sign-ins held back per client, per (client, username) and per username.

Three counts, kept in each gateway process:

- per (client address, username): after a few refusals in a row, every further one makes the
  pair wait longer (doubling, up to a quarter of an hour). This is what slows a password
  guesser down.
- per username, from any address: more refusals are free, and the wait doubles up to a
  minute only. It slows a guesser spread over many addresses, but a user's own attempts are
  never held back longer than that by strangers failing on their name.
- per client address, over a sliding window: against one address trying one password on many
  usernames (spraying).

A wait is answered 429 with ``Retry-After``; attempts made while waiting are not checked and
do not count. A successful sign-in clears the counts of its pair and of its username. The
address is the client's as :func:`gateway.http_policy.client_address` finds it, so behind
trusted proxies one client never holds back another.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway import settings
from gateway.problems import too_many_requests


@dataclass(frozen=True)
class Backoff:
    """From the ``after``-th refusal in a row on, a wait of ``base`` seconds, doubling with
    each further refusal, never more than ``longest``."""

    after: int
    base: float
    longest: float

    def __post_init__(self) -> None:
        if self.after < 1 or self.base <= 0 or self.longest < self.base:
            raise ValueError("a backoff needs after >= 1 and 0 < base <= longest")

    def wait_after(self, failures: int) -> float:
        if failures < self.after:
            return 0.0
        return float(min(self.longest, self.base * 2 ** min(failures - self.after, 32)))


@dataclass
class _Streak:
    failures: int
    blocked_until: float


PAIR = Backoff(after=4, base=2.0, longest=900.0)
USERNAME = Backoff(after=5, base=1.0, longest=60.0)
"""Like the org service's own per-user waits (``LOCKOUT_THRESHOLD``), so a username that
exists and one that does not are held back alike."""
MAX_TRACKED = 100_000
"""Keys kept per count before the ones at rest are swept out."""


class SignInThrottle:
    def __init__(
        self,
        limit: int,
        window: float,
        *,
        pair: Backoff = PAIR,
        username: Backoff = USERNAME,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("the sign-in throttle needs a positive limit and window")
        self.limit = limit
        self.window = window
        self.pair = pair
        self.username = username
        self.clock = clock
        self._refusals: dict[str, deque[float]] = {}
        self._pairs: dict[tuple[str, str], _Streak] = {}
        self._usernames: dict[str, _Streak] = {}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SignInThrottle:
        return cls(
            settings.integer(config, "SIGN_IN_FAILURE_LIMIT"),
            settings.seconds(config, "SIGN_IN_FAILURE_WINDOW"),
            pair=Backoff(
                settings.integer(config, "SIGN_IN_PAIR_WAIT_AFTER"),
                PAIR.base,
                settings.seconds(config, "SIGN_IN_PAIR_LONGEST_WAIT"),
            ),
            username=Backoff(
                settings.integer(config, "SIGN_IN_USERNAME_WAIT_AFTER"),
                USERNAME.base,
                settings.seconds(config, "SIGN_IN_USERNAME_LONGEST_WAIT"),
            ),
        )

    def check(self, address: str, username: str) -> None:
        """429 with ``Retry-After`` when a sign-in of ``username`` from ``address`` must wait."""
        wait = self.retry_after(address, username)
        if wait is not None:
            raise too_many_requests(f"too many refused sign-ins; try again in {wait} seconds", wait)

    def retry_after(self, address: str, username: str = "") -> int | None:
        """Whole seconds until the sign-in may be tried; None when it may now."""
        now = self.clock()
        waits = [
            self._streak_wait(self._pairs.get((address, _key(username))), now),
            self._streak_wait(self._usernames.get(_key(username)), now),
        ]
        refusals = self._recent(address, now)
        if len(refusals) >= self.limit:
            waits.append(refusals[0] + self.window - now)
        longest = max(waits)
        return max(1, math.ceil(longest)) if longest > 0 else None

    def refused(self, address: str, username: str = "") -> None:
        now = self.clock()
        self._recent(address, now).append(now)
        self._count(self._pairs, (address, _key(username)), self.pair, now)
        self._count(self._usernames, _key(username), self.username, now)
        self._sweep(now)

    def succeeded(self, address: str, username: str) -> None:
        self._pairs.pop((address, _key(username)), None)
        self._usernames.pop(_key(username), None)

    def _count(self, streaks: dict[Any, _Streak], key: Any, backoff: Backoff, now: float) -> None:
        streak = streaks.get(key)
        if streak is None or self._at_rest(streak, now):
            streak = streaks[key] = _Streak(0, now)
        streak.failures += 1
        streak.blocked_until = now + backoff.wait_after(streak.failures)

    def _streak_wait(self, streak: _Streak | None, now: float) -> float:
        return streak.blocked_until - now if streak is not None else 0.0

    def _at_rest(self, streak: _Streak, now: float) -> bool:
        """A streak is over once a whole window has passed since its wait ended."""
        return now >= streak.blocked_until + self.window

    def _recent(self, address: str, now: float) -> deque[float]:
        refusals = self._refusals.setdefault(address, deque())
        while refusals and refusals[0] <= now - self.window:
            refusals.popleft()
        return refusals

    def _sweep(self, now: float) -> None:
        """Forget the addresses and streaks at rest, once there are many."""
        if len(self._refusals) > MAX_TRACKED:
            for address in [a for a, r in self._refusals.items() if r[-1] <= now - self.window]:
                del self._refusals[address]
        _forget_at_rest(self._pairs, now, self._at_rest)
        _forget_at_rest(self._usernames, now, self._at_rest)


def _forget_at_rest(
    streaks: dict[Any, _Streak], now: float, at_rest: Callable[[_Streak, float], bool]
) -> None:
    if len(streaks) > MAX_TRACKED:
        for key in [key for key, streak in streaks.items() if at_rest(streak, now)]:
            del streaks[key]


def _key(username: str) -> str:
    return username.strip().lower()
