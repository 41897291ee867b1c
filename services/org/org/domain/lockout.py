"""Locking a user out after consecutive wrong passwords."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from org.domain.times import aware

DEFAULT_THRESHOLD = 5
DEFAULT_SECONDS = 900


@dataclass(frozen=True)
class Attempts:
    """The failure count and lock of a user after a wrong password."""

    failed_attempts: int
    locked_until: datetime | None
    just_locked: bool


@dataclass(frozen=True)
class LockoutPolicy:
    threshold: int = DEFAULT_THRESHOLD
    seconds: int = DEFAULT_SECONDS

    def __post_init__(self) -> None:
        if self.threshold < 1 or self.seconds < 1:
            raise ValueError("the lockout threshold and duration must be positive")

    def is_locked(self, locked_until: datetime | None, now: datetime) -> bool:
        until = aware(locked_until)
        return until is not None and until > now

    def after_failure(
        self, failed_attempts: int, locked_until: datetime | None, now: datetime
    ) -> Attempts:
        """Count one more consecutive failure; reaching the threshold locks the user.

        A lock that has run out starts a fresh count, so the first wrong password after it
        does not lock the user again at once."""
        until = aware(locked_until)
        count = 0 if until is not None and until <= now else failed_attempts
        count += 1
        if count >= self.threshold:
            return Attempts(count, now + timedelta(seconds=self.seconds), just_locked=True)
        return Attempts(count, None, just_locked=False)
