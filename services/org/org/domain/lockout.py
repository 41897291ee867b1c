"""Holding back sign-ins of a user after consecutive wrong passwords.

Not a lock: from the ``threshold``-th wrong password in a row, each one makes the next sign-in
of that user wait — one second, then two, four, ... never more than ``seconds``. Attempts made
while waiting are refused without looking at the password and do not count, so a guesser gets
one try per wait, while someone failing on a stranger's name from elsewhere can hold the
owner back by one short wait at a time, never lock them out. A successful sign-in (or an
administrator) ends the streak.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from org.domain.times import aware

DEFAULT_THRESHOLD = 5
DEFAULT_SECONDS = 60
FIRST_WAIT_SECONDS = 1


@dataclass(frozen=True)
class Attempts:
    """The failure count of a user after a wrong password, and until when sign-ins wait."""

    failed_attempts: int
    locked_until: datetime | None
    just_locked: bool
    """The first wait of a streak: worth an audit entry."""


@dataclass(frozen=True)
class LockoutPolicy:
    threshold: int = DEFAULT_THRESHOLD
    seconds: int = DEFAULT_SECONDS
    """The longest wait."""

    def __post_init__(self) -> None:
        if self.threshold < 1 or self.seconds < 1:
            raise ValueError("the lockout threshold and longest wait must be positive")

    def is_locked(self, locked_until: datetime | None, now: datetime) -> bool:
        until = aware(locked_until)
        return until is not None and until > now

    def retry_after(self, locked_until: datetime | None, now: datetime) -> int:
        """Whole seconds until the user may try again (0 when they may now)."""
        until = aware(locked_until)
        if until is None or until <= now:
            return 0
        return max(1, math.ceil((until - now).total_seconds()))

    def wait_after(self, failed_attempts: int) -> int:
        """Seconds the next sign-in waits after ``failed_attempts`` wrong passwords in a row."""
        if failed_attempts < self.threshold:
            return 0
        doublings = min(failed_attempts - self.threshold, 32)
        return int(min(self.seconds, FIRST_WAIT_SECONDS * 2**doublings))

    def after_failure(
        self, failed_attempts: int, locked_until: datetime | None, now: datetime
    ) -> Attempts:
        """Count one more consecutive failure; from the threshold on, sign-ins wait."""
        count = failed_attempts + 1
        wait = self.wait_after(count)
        if not wait:
            return Attempts(count, None, just_locked=False)
        return Attempts(count, now + timedelta(seconds=wait), just_locked=count == self.threshold)
