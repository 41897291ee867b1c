"""The rules of writes sent with an Idempotency-Key (crm_common.idempotency), on a real SQLite
file and, where locking matters, PostgreSQL."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import eventlet
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.operations import Operations
from nameko.exceptions import IncorrectSignature
from sqlalchemy import String, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from crm_common import idempotency
from crm_common.context import Principal, bind
from crm_common.db import SessionScope, engine_for
from crm_common.entrypoints import rpc
from crm_common.errors import Conflict, ValidationFailed
from crm_common.idempotency import (
    IdempotencyRecordMixin,
    bind_key,
    envelope,
    not_idempotent,
    purge_expired,
    unwrap,
)
from crm_common.migrations import create_idempotency_table, drop_idempotency_table
from crm_common.models import EntityMixin, utcnow


class Base(DeclarativeBase):
    pass


class Ticket(EntityMixin, Base):
    __tablename__ = "tickets"

    title: Mapped[str] = mapped_column(String(100), unique=True)


class IdempotencyRecord(IdempotencyRecordMixin, Base):
    pass


class TicketService:
    """Stands in for a Nameko service: a ``name``, a ``db`` and entrypoints made by ``@rpc``."""

    name = "tickets"

    def __init__(self, db: SessionScope) -> None:
        self.db = db
        self.calls = 0
        self.during_call = lambda: None

    @rpc
    def open_ticket(self, title: str, urgent: bool = False) -> dict:
        self.calls += 1
        with self.db.session() as session:
            ticket = Ticket(title=title)
            session.add(ticket)
            session.flush()
        self.during_call()
        return {"id": str(ticket.id), "title": title, "created_at": ticket.created_at}

    @rpc
    def open_two(self, first: str, second: str) -> list[str]:
        """Two sessions, the second of which fails and is caught: only the first lands."""
        self.calls += 1
        self.open_ticket.__wrapped__(self, first)
        with contextlib.suppress(IntegrityError):  # a duplicate title: refused
            self.open_ticket.__wrapped__(self, first)
        return [first, second]

    @rpc
    @not_idempotent
    def open_unkeyed(self, title: str) -> str:
        self.calls += 1
        with self.db.session() as session:
            session.add(Ticket(title=title))
        return title


@pytest.fixture(params=["sqlite", "postgres"])
def uri(request, sqlite_uri):
    return sqlite_uri if request.param == "sqlite" else request.getfixturevalue("pg_uri")


@pytest.fixture
def service(uri):
    engine = engine_for(uri)
    Base.metadata.create_all(engine)
    bind(Principal(user_id="u-1", permissions=("ticket:write",)))
    yield TicketService(SessionScope(engine))
    bind_key(None)
    bind(None)


def tickets(service) -> list[str]:
    with service.db.session() as session:
        return sorted(session.scalars(select(Ticket.title)))


def records(service) -> int:
    with service.db.session() as session:
        return session.scalar(select(func.count()).select_from(IdempotencyRecord))


def test_a_repeat_gets_the_first_answer_and_writes_nothing(service):
    bind_key("k-1")
    first = service.open_ticket("pump")
    again = service.open_ticket("pump")
    assert first["idempotency"] == {"key": "k-1", "replayed": False}
    assert again["idempotency"] == {"key": "k-1", "replayed": True}
    assert again["result"] == first["result"]  # dates come back as dates
    assert service.calls == 1
    assert tickets(service) == ["pump"]
    assert records(service) == 1


def test_the_same_key_with_other_arguments_is_refused(service):
    bind_key("k-1")
    service.open_ticket("pump")
    with pytest.raises(ValidationFailed) as caught:
        service.open_ticket("valve")
    assert caught.value.details["reason"] == "idempotency_key_reused"
    with pytest.raises(ValidationFailed):
        service.open_ticket("pump", urgent=True)
    assert tickets(service) == ["pump"]


def test_keys_belong_to_their_user(service):
    bind_key("k-1")
    service.open_ticket("pump")
    bind(Principal(user_id="u-2", permissions=("ticket:write",)))
    answer = service.open_ticket("valve")
    assert answer["idempotency"]["replayed"] is False
    assert tickets(service) == ["pump", "valve"]


def test_a_repeat_while_the_first_runs_is_a_conflict(service):
    bind_key("k-1")
    seen = []

    def repeat():
        with pytest.raises(Conflict) as caught:
            service.open_ticket("pump")
        seen.append(caught.value.details["reason"])

    service.during_call = repeat
    service.open_ticket("pump")
    assert seen == ["idempotency_key_in_use"]
    assert tickets(service) == ["pump"]


def test_on_postgresql_another_process_running_the_key_is_a_conflict(service, monkeypatch):
    if service.db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serves one process; its in-process guard is tested above")
    bind_key("k-1")
    seen = []

    def repeat_from_another_process():
        def call():
            bind(Principal(user_id="u-1", permissions=("ticket:write",)))
            bind_key("k-1")
            with pytest.raises(Conflict) as caught:
                service.open_ticket("pump")
            seen.append(caught.value.details["reason"])

        monkeypatch.setattr(idempotency, "_in_flight", set())  # as if in another process
        eventlet.spawn(call).wait()

    service.during_call = repeat_from_another_process
    service.open_ticket("pump")
    assert seen == ["idempotency_key_in_use"]
    assert tickets(service) == ["pump"] and records(service) == 1


def test_a_failed_call_stores_nothing_and_the_key_stays_usable(service):
    bind_key("k-1")

    def fail():
        raise Conflict("the database went away")

    service.during_call = fail
    with pytest.raises(Conflict):
        service.open_ticket("pump")
    assert tickets(service) == [] and records(service) == 0
    service.during_call = lambda: None
    assert service.open_ticket("pump")["idempotency"]["replayed"] is False
    assert tickets(service) == ["pump"]


def test_sessions_inside_a_keyed_call_are_savepoints_of_its_one_transaction(service):
    bind_key("k-1")
    answer = service.open_two("pump", "valve")
    assert answer["result"] == ["pump", "valve"]
    assert tickets(service) == ["pump"]
    assert service.open_two("pump", "valve")["idempotency"]["replayed"] is True


def test_an_expired_answer_is_forgotten(service):
    bind_key("k-1", ttl_seconds=3600)
    service.open_ticket("pump")
    with service.db.session() as session:
        session.execute(update(IdempotencyRecord).values(created_at=utcnow() - timedelta(hours=2)))
    assert service.open_ticket("valve")["idempotency"]["replayed"] is False
    assert tickets(service) == ["pump", "valve"]


def test_purge_deletes_only_expired_answers(service):
    bind_key("old")
    service.open_ticket("pump")
    with service.db.session() as session:
        session.execute(update(IdempotencyRecord).values(created_at=utcnow() - timedelta(days=2)))
    bind_key("new")
    service.open_ticket("valve")
    assert purge_expired(service.db, timedelta(days=1), force=True) == 1
    with service.db.session() as session:
        assert session.scalars(select(IdempotencyRecord.key)).all() == ["new"]


def test_without_a_key_or_a_principal_or_when_marked_the_call_runs_as_usual(service):
    assert service.open_ticket("pump")["title"] == "pump"
    bind_key("k-1")
    assert service.open_unkeyed("valve") == "valve"
    bind(None)
    assert service.open_ticket("gear")["title"] == "gear"
    assert records(service) == 0


@pytest.mark.parametrize("key", ["", "a b", "x" * 256, "键"])
def test_a_malformed_key_is_refused(service, key):
    bind_key(key)
    with pytest.raises(ValidationFailed) as caught:
        service.open_ticket("pump")
    assert "Idempotency-Key" in caught.value.field_errors
    assert tickets(service) == []


def test_wrong_arguments_are_still_an_incorrect_signature(service):
    with pytest.raises(IncorrectSignature):
        service.open_ticket("pump", colour="red")


def test_unwrap_accepts_only_the_envelope_of_the_key_sent():
    assert unwrap(envelope({"id": 1}, "k", replayed=True), "k") == ({"id": 1}, True)
    assert unwrap(envelope({"id": 1}, "k", replayed=False), "other") is None
    assert unwrap({"id": 1}, "k") is None
    assert unwrap({"idempotency": "k", "result": 1}, "k") is None


def test_the_migration_helper_builds_the_mixin_and_drops_it(uri):
    class Only(DeclarativeBase):
        pass

    class Record(IdempotencyRecordMixin, Only):
        pass

    engine = engine_for(uri)
    with engine.begin() as connection:
        context = MigrationContext.configure(connection)
        create_idempotency_table(Operations(context))
        assert compare_metadata(context, Only.metadata) == []
        drop_idempotency_table(Operations(context))
