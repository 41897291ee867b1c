"""The shape of every service's use cases (``<service>/application/``).

Use cases are methods of small classes, one class per aggregate (``Customers``, ``Contacts``,
``Departments``…), one module per aggregate. A class is built per call on a ``UseCaseContext``:
the session of the call's one transaction, the outbox writer that records events in that same
transaction, the verified caller, and the one ``now`` every row written by the call carries.

A use case checks the caller's permission, validates input with the service's schemas, loads
and saves through the service's ``repository`` (the only module that queries), applies the
rules of ``domain/``, writes history and events, and returns dumped records. It never commits:
the entrypoint's ``db.session()`` does, so a use case may call another class's use case on the
same context (``Customers(self.context).apply_changes(…)``) and both land or neither.

The service's entrypoints stay one line each; a read runs on ``read_only``, which sends the
database no transaction to begin or end (see ``crm_common.db.SessionScope.read``)::

    class SalesService(ServiceKit):
        db = Database(Base)
        outbox = Outbox(OutboxMessage)

        @rpc
        def advance_stage(self, opportunity_id: str, stage: str) -> dict[str, Any]:
            with unit_of_work(self.db, self.outbox) as context:
                return Opportunities(context).advance(opportunity_id, stage)

        @rpc
        def get_opportunity(self, opportunity_id: str) -> dict[str, Any]:
            with read_only(self.db) as context:
                return Opportunities(context).get(opportunity_id)

and a test builds the same classes on a plain session:
``Opportunities(UseCaseContext(session, outbox_writer, principal))``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from crm_common.context import Principal, current_principal
from crm_common.db import SessionScope
from crm_common.models import utcnow


class EventSink(Protocol):
    """What a use case needs of an outbox (``crm_common.outbox.OutboxWriter`` is one)."""

    def add(
        self, session: Session, event_type: str, data: dict[str, Any], version: int = 1
    ) -> Any: ...


@dataclass(frozen=True)
class UseCaseContext:
    session: Session
    outbox: EventSink
    principal: Principal
    now: datetime = field(default_factory=utcnow)

    @property
    def actor_id(self) -> str:
        return self.principal.user_id

    def publish(self, event_type: str, data: dict[str, Any], version: int = 1) -> None:
        """Record an event in the outbox of this call's transaction."""
        self.outbox.add(self.session, event_type, data, version)


class UseCases:
    """Base of a use-case class: ``context`` and its session and principal at hand."""

    def __init__(self, context: UseCaseContext) -> None:
        self.context = context
        self.session = context.session
        self.principal = context.principal


@contextmanager
def unit_of_work(db: SessionScope, outbox: EventSink) -> Iterator[UseCaseContext]:
    """A context for one entrypoint call by the current principal: commits on success, rolls
    back on any error (a stale version becomes ``Conflict``)."""
    with db.session() as session:
        yield UseCaseContext(session, outbox, current_principal())


class NoEvents:
    """The event sink of a read: recording an event there is a mistake, refused at once."""

    def add(self, session: Session, event_type: str, data: dict[str, Any], version: int = 1) -> Any:
        raise RuntimeError(f"a read cannot publish {event_type}: use unit_of_work")


@contextmanager
def read_only(db: SessionScope) -> Iterator[UseCaseContext]:
    """A context for one entrypoint call that only reads: its session (``db.read()``) begins
    no transaction and refuses writes, and it publishes no events."""
    with db.read() as session:
        yield UseCaseContext(session, NO_EVENTS, current_principal())


NO_EVENTS = NoEvents()
