"""The gateway's configuration keys, their defaults, and typed access to them.

Values come from the nameko config (``config.yml``, where each one can be overridden by an
environment variable); a key missing from the config falls back to the default here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DEFAULTS: dict[str, Any] = {
    "RPC_TIMEOUT": 10.0,
    "BULK_RPC_TIMEOUT": 120.0,
    "READY_TIMEOUT": 2.0,
    "BACKEND_SERVICES": "org,customer,sales,notify",
    "MAX_BODY_BYTES": 10 * 1024 * 1024,
    "OPENAPI_CACHE_SECONDS": 60.0,
    "SIGN_IN_FAILURE_LIMIT": 20,
    "SIGN_IN_FAILURE_WINDOW": 300.0,
    "SIGN_IN_PAIR_WAIT_AFTER": 4,
    "SIGN_IN_PAIR_LONGEST_WAIT": 900.0,
    "SIGN_IN_USERNAME_WAIT_AFTER": 5,
    "SIGN_IN_USERNAME_LONGEST_WAIT": 60.0,
    "TRUSTED_PROXIES": "",
    "CORS_ORIGINS": "",
    "REQUEST_WORKERS": 256,
    "BACKEND_MAX_IN_FLIGHT": 32,
    "BACKEND_MAX_IN_FLIGHT_BY_SERVICE": "",
    "BUSY_RETRY_AFTER": 2,
}


def value(config: Mapping[str, Any], key: str) -> Any:
    found = config.get(key)
    if found is None or found == "":
        return DEFAULTS[key]
    return found


def seconds(config: Mapping[str, Any], key: str) -> float:
    result = float(value(config, key))
    if result <= 0:
        raise ValueError(f"{key} must be a positive number of seconds, got {result}")
    return result


def integer(config: Mapping[str, Any], key: str) -> int:
    return int(value(config, key))


def rpc_timeout(config: Mapping[str, Any]) -> float:
    return seconds(config, "RPC_TIMEOUT")


def bulk_rpc_timeout(config: Mapping[str, Any]) -> float:
    """The deadline of CSV import and export, which move many rows in one call."""
    return seconds(config, "BULK_RPC_TIMEOUT")


def ready_timeout(config: Mapping[str, Any]) -> float:
    return seconds(config, "READY_TIMEOUT")


def backend_services(config: Mapping[str, Any]) -> tuple[str, ...]:
    """The services behind the gateway, as a list or a comma-separated string."""
    raw = value(config, "BACKEND_SERVICES")
    names = raw.split(",") if isinstance(raw, str) else list(raw)
    return tuple(name.strip() for name in names if name and name.strip())


def request_workers(config: Mapping[str, Any]) -> int:
    """How many HTTP requests the gateway handles at once (the rest wait, within their deadline)."""
    return positive_integer(config, "REQUEST_WORKERS")


def busy_retry_after(config: Mapping[str, Any]) -> int:
    """The ``Retry-After`` seconds of a 503 answered because the gateway or a backend is busy."""
    return positive_integer(config, "BUSY_RETRY_AFTER")


def backend_max_in_flight(config: Mapping[str, Any]) -> tuple[int, dict[str, int]]:
    """The bulkhead of the backend services: the limit of in-flight calls to any one service,
    and the limits of the services named in ``BACKEND_MAX_IN_FLIGHT_BY_SERVICE``
    (``customer=16,org=64``, or a mapping)."""
    default = positive_integer(config, "BACKEND_MAX_IN_FLIGHT")
    raw = value(config, "BACKEND_MAX_IN_FLIGHT_BY_SERVICE")
    pairs = raw.items() if isinstance(raw, Mapping) else _pairs(str(raw))
    limits = {str(service).strip(): int(limit) for service, limit in pairs}
    for service, limit in limits.items():
        if limit <= 0:
            raise ValueError(f"the in-flight limit of {service} must be positive, got {limit}")
    return default, limits


def positive_integer(config: Mapping[str, Any], key: str) -> int:
    result = integer(config, key)
    if result <= 0:
        raise ValueError(f"{key} must be a positive integer, got {result}")
    return result


def _pairs(raw: str) -> list[tuple[str, str]]:
    found = []
    for item in raw.split(","):
        if item.strip():
            service, separator, limit = item.partition("=")
            if not separator:
                raise ValueError(f"expected service=limit, got {item!r}")
            found.append((service, limit))
    return found
