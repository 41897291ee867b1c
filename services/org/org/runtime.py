"""What the org use cases need besides a database: settings, the password hasher, a clock,
and the keys access tokens are signed with (org is their one signer, see
``crm_common.identity``).

Settings come from the Nameko config (every key overridable by an environment variable in
``config.yml``). Tests build a ``Runtime`` with cheap hashing, a clock they move by hand and a
test key pair.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nameko.extensions import DependencyProvider

from crm_common.identity import ACCESS_TOKEN_SIGNER, Trust
from crm_common.models import utcnow
from org.domain.lockout import DEFAULT_SECONDS, DEFAULT_THRESHOLD, LockoutPolicy
from org.hashing import HashCost, Passwords

DEFAULT_REFRESH_TTL_SECONDS = 14 * 24 * 3600
DEFAULT_SESSION_MAX_SECONDS = 30 * 24 * 3600


@dataclass(frozen=True)
class Settings:
    refresh_ttl_seconds: int = DEFAULT_REFRESH_TTL_SECONDS
    session_max_seconds: int = DEFAULT_SESSION_MAX_SECONDS
    lockout: LockoutPolicy = field(default_factory=LockoutPolicy)
    hash_cost: HashCost = field(default_factory=HashCost)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        def number(key: str, default: int) -> int:
            value = config.get(key)
            return default if value in (None, "") else int(value)

        cost = HashCost()
        return cls(
            refresh_ttl_seconds=number("REFRESH_TTL_SECONDS", DEFAULT_REFRESH_TTL_SECONDS),
            session_max_seconds=number("SESSION_MAX_SECONDS", DEFAULT_SESSION_MAX_SECONDS),
            lockout=LockoutPolicy(
                threshold=number("LOCKOUT_THRESHOLD", DEFAULT_THRESHOLD),
                seconds=number("LOCKOUT_SECONDS", DEFAULT_SECONDS),
            ),
            hash_cost=HashCost(
                time_cost=number("ARGON2_TIME_COST", cost.time_cost),
                memory_cost=number("ARGON2_MEMORY_COST", cost.memory_cost),
                parallelism=number("ARGON2_PARALLELISM", cost.parallelism),
            ),
        )


@dataclass
class Runtime:
    settings: Settings
    passwords: Passwords
    trust: Trust
    clock: Callable[[], datetime] = utcnow

    @classmethod
    def create(
        cls, settings: Settings, trust: Trust, clock: Callable[[], datetime] = utcnow
    ) -> Runtime:
        trust.signing_key(ACCESS_TOKEN_SIGNER)  # a signer without its key does not start
        return cls(settings, Passwords(settings.hash_cost), trust, clock)


class RuntimeProvider(DependencyProvider):
    """Nameko dependency: one ``Runtime`` per container, built from its config."""

    def setup(self) -> None:
        config = self.container.config
        self.runtime = Runtime.create(
            Settings.from_config(config), Trust.from_config(config, signs=True)
        )

    def get_dependency(self, worker_ctx: Any) -> Runtime:
        return self.runtime
