"""Argon2id password hashing, off the eventlet hub.

Hashing is deliberately slow and memory-hard. It runs in eventlet's native thread pool
(``tpool.execute``) so that one sign-in does not stall every green thread of the process.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import RFC_9106_LOW_MEMORY
from eventlet import tpool


@dataclass(frozen=True)
class HashCost:
    """Argon2id parameters; ``memory_cost`` is in KiB."""

    time_cost: int = RFC_9106_LOW_MEMORY.time_cost
    memory_cost: int = RFC_9106_LOW_MEMORY.memory_cost
    parallelism: int = RFC_9106_LOW_MEMORY.parallelism


class Passwords:
    """Hashes and verifies passwords with one set of Argon2id parameters."""

    def __init__(self, cost: HashCost | None = None) -> None:
        self.cost = cost or HashCost()
        self._hasher = PasswordHasher(
            time_cost=self.cost.time_cost,
            memory_cost=self.cost.memory_cost,
            parallelism=self.cost.parallelism,
        )

    def hash(self, password: str) -> str:
        return str(tpool.execute(self._hasher.hash, password))

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return bool(tpool.execute(self._hasher.verify, password_hash, password))
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether a stored hash was made with other parameters than the current ones."""
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    @cached_property
    def dummy_hash(self) -> str:
        """A hash to verify against when the username is unknown, so that answer takes as
        long as a wrong password does."""
        return self.hash("no such user, no such password 0")
