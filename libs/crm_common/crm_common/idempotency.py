"""Writes a client can safely retry: answers stored per user and ``Idempotency-Key``.

The gateway passes the client's ``Idempotency-Key`` of a write in Nameko context data
(``idempotency_key``). ``IdempotencyContext``, a dependency of every ``ServiceKit``, takes it
out of the worker's context data (so the worker's own RPCs and events do not carry it on) and
binds it to the call. ``crm_common.entrypoints.rpc`` then runs the entrypoint through
:func:`call_idempotently`, which gives the call one transaction on the service's ``db``:

* it takes the key for the caller: a call with the same user and key still running in any
  process is refused at once with ``Conflict`` (409, ``reason: idempotency_key_in_use``);
* a stored answer for the key is returned as it was first answered, without running the
  entrypoint again; one stored for another request (another operation or other arguments) is a
  ``ValidationFailed`` (422, ``reason: idempotency_key_reused``);
* otherwise the entrypoint runs and its answer is stored **in the same transaction** as its
  writes, so a committed write always has its answer, however its reply went astray.

Only answers are stored: a call that fails rolls back entirely and the key stays free for a
retry. Answers are kept ``IDEMPOTENCY_TTL_SECONDS`` (24 h by default); older ones are purged as
writes go by. A call that carries a key is answered with an :func:`envelope` telling the caller
whether the answer is a replay; a call without one is answered as usual. Calls without a
principal (sign-in), entrypoints marked :func:`not_idempotent` and services without a ``db``
ignore the key.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from kombu.utils import json as wire_json
from nameko.extensions import DependencyProvider
from sqlalchemy import JSON, DateTime, String, column, delete, insert, select, table, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from crm_common.context import optional_principal
from crm_common.db import SessionScope
from crm_common.errors import Conflict, ValidationFailed
from crm_common.models import utcnow

IDEMPOTENCY_TABLE = "idempotency_records"
IDEMPOTENCY_KEY = "idempotency_key"
"""The member of Nameko context data carrying the client's key."""
HEADER = "Idempotency-Key"
TTL_CONFIG_KEY = "IDEMPOTENCY_TTL_SECONDS"
DEFAULT_TTL_SECONDS = 24 * 3600
PURGE_INTERVAL_SECONDS = 60.0
VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
"""1 to 255 visible ASCII characters: a UUID, a ULID, or any opaque token a client makes."""

F = TypeVar("F", bound=Callable[..., Any])


class IdempotencyRecordMixin:
    """The answer of a write sent with an ``Idempotency-Key``, stored in its own transaction."""

    if TYPE_CHECKING:  # the declarative base of the concrete model supplies the constructor

        def __init__(self, **values: Any) -> None: ...

    __tablename__ = IDEMPOTENCY_TABLE

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    operation: Mapped[str] = mapped_column(String(150), nullable=False)
    result: Mapped[Any] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )


_records = table(
    IDEMPOTENCY_TABLE,
    column("user_id", String(64)),
    column("key", String(255)),
    column("fingerprint", String(64)),
    column("operation", String(150)),
    column("result", JSON),
    column("created_at", DateTime(timezone=True)),
)


@dataclass(frozen=True)
class KeyedCall:
    """The key a call was sent with, and how long its answer is kept."""

    key: str
    ttl: timedelta


_keyed_call: contextvars.ContextVar[KeyedCall | None] = contextvars.ContextVar(
    "keyed_call", default=None
)
_in_flight: set[tuple[str, str, str]] = set()
"""(database, user, key) of the calls running in this process."""
_last_purge: dict[str, float] = {}


class IdempotencyContext(DependencyProvider):
    """Takes the call's ``idempotency_key`` out of its context data and binds it to the call."""

    def setup(self) -> None:
        seconds = int(self.container.config.get(TTL_CONFIG_KEY) or DEFAULT_TTL_SECONDS)
        self.ttl = timedelta(seconds=seconds)

    def worker_setup(self, worker_ctx: Any) -> None:
        key = worker_ctx.data.pop(IDEMPOTENCY_KEY, None)
        _keyed_call.set(KeyedCall(str(key), self.ttl) if key is not None else None)

    def worker_teardown(self, worker_ctx: Any) -> None:
        _keyed_call.set(None)

    def get_dependency(self, worker_ctx: Any) -> None:
        return None


def bind_key(key: str | None, ttl_seconds: int = DEFAULT_TTL_SECONDS) -> None:
    """Bind a key to the current green thread (workers do this through the dependency)."""
    _keyed_call.set(KeyedCall(key, timedelta(seconds=ttl_seconds)) if key is not None else None)


def not_idempotent(fn: F) -> F:
    """Mark an entrypoint that must run as it always does, key or not (e.g. sign-in, whose
    refusals are written in transactions of their own that a retry must not undo)."""
    fn.__dict__["idempotent"] = False
    return fn


def envelope(result: Any, key: str, replayed: bool) -> dict[str, Any]:
    """The answer of a keyed call: the entrypoint's ``result`` and whether it is a replay."""
    return {"idempotency": {"key": key, "replayed": replayed}, "result": result}


def unwrap(answer: Any, key: str) -> tuple[Any, bool] | None:
    """``(result, replayed)`` of an answer to a call sent with ``key``; ``None`` when the
    service answered without honouring the key."""
    if not isinstance(answer, dict) or set(answer) != {"idempotency", "result"}:
        return None
    about = answer["idempotency"]
    if not isinstance(about, dict) or about.get("key") != key:
        return None
    return answer["result"], bool(about.get("replayed"))


def check_key(key: str) -> None:
    if not VALID_KEY.match(key):
        raise ValidationFailed.on(HEADER, "must be 1 to 255 visible ASCII characters")


def fingerprint(operation: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """What identifies a request: the operation and every argument it was called with."""
    canonical = json.dumps(
        [operation, list(args), kwargs],
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def call_idempotently(
    service: Any, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Run the entrypoint ``fn`` of ``service`` under the call's key, if it has one."""
    keyed = _keyed_call.get()
    principal = optional_principal()
    scope = getattr(service, "db", None)
    if keyed is None or principal is None or not isinstance(scope, SessionScope):
        return fn(service, *args, **kwargs)
    check_key(keyed.key)
    operation = f"{getattr(service, 'name', type(service).__name__)}.{fn.__name__}"
    claim = (str(scope.engine.url), principal.user_id, keyed.key)
    if claim in _in_flight:
        raise _still_running()
    _in_flight.add(claim)
    try:
        with scope.transaction() as session:
            _lock(session, claim)
            stored = _stored(session, principal.user_id, keyed, utcnow())
            wanted = fingerprint(operation, args, kwargs)
            if stored is not None:
                if stored.fingerprint != wanted:
                    raise ValidationFailed(
                        f"this {HEADER} was used for another request; send a new key",
                        {"reason": "idempotency_key_reused", "operation": stored.operation},
                    )
                return envelope(_from_storage(stored.result), keyed.key, replayed=True)
            result = fn(service, *args, **kwargs)
            session.execute(
                insert(_records).values(
                    user_id=principal.user_id,
                    key=keyed.key,
                    fingerprint=wanted,
                    operation=operation,
                    result=_for_storage(result),
                    created_at=utcnow(),
                )
            )
    finally:
        _in_flight.discard(claim)
    purge_expired(scope, keyed.ttl)
    return envelope(result, keyed.key, replayed=False)


def purge_expired(scope: SessionScope, ttl: timedelta, *, force: bool = False) -> int:
    """Delete answers older than ``ttl``, at most once a minute per database unless ``force``."""
    database = str(scope.engine.url)
    now = time.monotonic()
    if not force and now - _last_purge.get(database, -PURGE_INTERVAL_SECONDS) < (
        PURGE_INTERVAL_SECONDS
    ):
        return 0
    _last_purge[database] = now
    with scope.session() as session:
        deleted = session.execute(delete(_records).where(_records.c.created_at < utcnow() - ttl))
    return int(getattr(deleted, "rowcount", 0) or 0)


def _still_running() -> Conflict:
    return Conflict(
        f"a request with this {HEADER} is still being processed; retry in a moment",
        {"reason": "idempotency_key_in_use"},
    )


def _lock(session: Session, claim: tuple[str, str, str]) -> None:
    """On PostgreSQL, hold the key for this transaction across processes; 409 when another
    transaction holds it. (SQLite serves one process, where ``_in_flight`` is the lock.)"""
    if session.get_bind().dialect.name != "postgresql":
        return
    digest = hashlib.sha256(f"{IDEMPOTENCY_TABLE}\0{claim[1]}\0{claim[2]}".encode()).digest()
    lock_id = int.from_bytes(digest[:8], "big", signed=True)
    taken = session.execute(text("SELECT pg_try_advisory_xact_lock(:id)"), {"id": lock_id})
    if not taken.scalar_one():
        raise _still_running()


def _stored(session: Session, user_id: str, keyed: KeyedCall, now: datetime) -> Any:
    """The live answer stored for the key, after dropping an expired one."""
    mine = (_records.c.user_id == user_id) & (_records.c.key == keyed.key)
    session.execute(delete(_records).where(mine & (_records.c.created_at < now - keyed.ttl)))
    return session.execute(select(_records).where(mine)).one_or_none()


def _for_storage(result: Any) -> Any:
    """The result as JSON that gives back the very same value (dates, decimals, UUIDs too)."""
    return json.loads(wire_json.dumps(result))


def _from_storage(stored: Any) -> Any:
    return wire_json.loads(json.dumps(stored))
