"""Outbox and inbox on the real RabbitMQ: events leave after commit and take effect once."""

from __future__ import annotations

import pytest
from kombu import Connection, Exchange, Queue
from kombu.exceptions import OperationalError
from nameko.rpc import rpc
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import func, select

from crm_common.consumer import ReceivedEvent, event_handler
from crm_common.context import CallContext, Principal, current_request_id
from crm_common.db import Database, SessionScope, engine_for
from crm_common.errors import EXPECTED_ERRORS, ValidationFailed
from crm_common.outbox import RELAY_CHUNK, RELAY_LOCK, OutboxRelay, OutboxWriter
from crm_common.outbox import Outbox as OutboxProvider
from tests.support.polling import eventually
from tests.support.tokens import context_of
from tests.unit.common.models import Base, InboxEvent, Note, OutboxMessage

from .tcp_proxy import TcpProxy


class LedgerService:
    name = "ledger"
    db = Database(Base)
    outbox = OutboxProvider(OutboxMessage)
    context = CallContext()

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def add_note(self, title, reject=False):
        with self.db.session() as session:
            note = Note(title=title)
            session.add(note)
            session.flush()
            self.outbox.add(session, "note_added", {"id": str(note.id), "title": title})
            if reject:
                raise ValidationFailed.on("title", "rejected on purpose")
        return str(note.id)


class AuditService:
    name = "audit"
    db = Database(Base)
    inbox_model = InboxEvent
    context = CallContext()

    @event_handler("ledger", "note_added")
    def on_note_added(self, event: ReceivedEvent) -> None:
        with self.db.session() as session:
            if not event.first_delivery(session):
                return
            title = f"{event.data['title']}|{event.actor_id}|{current_request_id()}"
            session.add(Note(title=title))


@pytest.fixture
def config(rabbit_config, tmp_path):
    uris = {name: f"sqlite:///{tmp_path / name}.db" for name in ("ledger", "audit")}
    for uri in uris.values():
        Base.metadata.create_all(engine_for(uri))
    return {**rabbit_config, "DB_URIS": uris, "OUTBOX_POLL_SECONDS": 0.2, "max_workers": 1}


def audit_titles(config):
    with SessionScope(engine_for(config["DB_URIS"]["audit"])).session() as session:
        return session.scalars(select(Note.title)).all()


def test_committed_change_reaches_a_consumer_with_actor_and_request_id(runner_factory, config):
    runner = runner_factory(config, LedgerService, AuditService)
    runner.start()
    context = context_of(Principal("u-sales-01"), "req-42")

    with ServiceRpcProxy("ledger", config, context_data=context) as ledger:
        ledger.add_note("华东机电")

    assert eventually(lambda: audit_titles(config)) == ["华东机电|u-sales-01|req-42"]


def test_rolled_back_change_publishes_nothing(runner_factory, config):
    runner = runner_factory(config, LedgerService, AuditService)
    runner.start()

    with ServiceRpcProxy("ledger", config, context_data=context_of(Principal("u-1"))) as ledger:
        with pytest.raises(ValidationFailed):
            ledger.add_note("never", reject=True)
        ledger.add_note("marker")

    eventually(lambda: audit_titles(config))
    assert [title.split("|")[0] for title in audit_titles(config)] == ["marker"]


def test_redelivered_event_is_applied_once(runner_factory, config):
    runner = runner_factory(config, AuditService)
    runner.start()
    writer = OutboxWriter(OutboxMessage, "ledger")
    ledger = SessionScope(engine_for(config["DB_URIS"]["ledger"]))
    with ledger.session() as session:
        duplicate = writer.add(session, "note_added", {"title": "dup"})
        writer.add(session, "note_added", {"title": "after"})
    relay = OutboxRelay(ledger.engine, OutboxMessage, config["AMQP_URI"], "ledger")
    assert relay.relay_pending() == 2

    with Connection(config["AMQP_URI"]) as connection:  # the broker hands the same event again
        connection.Producer().publish(
            duplicate,
            exchange=Exchange("ledger.events", type="topic", durable=True),
            routing_key="note_added",
            serializer="json",
        )
        connection.Producer().publish(
            {
                **duplicate,
                "event_id": "5f1d7c52-7a53-4d2e-9a3b-1c8f0e2a9b10",
                "data": {"title": "last"},
            },
            exchange=Exchange("ledger.events", type="topic", durable=True),
            routing_key="note_added",
            serializer="json",
        )

    eventually(lambda: any(t.startswith("last|") for t in audit_titles(config)))
    assert sorted(t.split("|")[0] for t in audit_titles(config)) == ["after", "dup", "last"]


def test_rows_written_while_the_broker_is_away_are_delivered_when_it_returns(
    rabbit_config, tmp_path
):
    uri = f"sqlite:///{tmp_path / 'ledger.db'}"
    engine = engine_for(uri)
    Base.metadata.create_all(engine)
    proxy = TcpProxy(5672)
    proxy.start()
    vhost_uri = proxy.uri + rabbit_config["vhost"]
    relay = OutboxRelay(engine, OutboxMessage, vhost_uri, "ledger")
    with Connection(rabbit_config["AMQP_URI"]) as connection:
        queue = watching_ledger_events(connection)
        proxy.stop()

        scope = SessionScope(engine)
        with scope.session() as session:
            OutboxWriter(OutboxMessage, "ledger").add(session, "note_added", {"title": "offline"})
        with pytest.raises(OperationalError):
            relay.relay_pending()
        with scope.session() as session:
            row = session.scalars(select(OutboxMessage)).one()
            assert row.sent_at is None and row.attempts == 1 and row.last_error

        proxy.start()
        assert eventually(lambda: _try_relay(relay)) == 1
        message = queue.get(no_ack=True)
        assert message.payload["data"] == {"title": "offline"}
        assert queue.get(no_ack=True) is None
        with scope.session() as session:
            assert session.scalar(select(func.count()).where(OutboxMessage.sent_at.is_(None))) == 0
        assert relay.relay_pending() == 0
    proxy.stop()


def watching_ledger_events(connection):
    """A queue declared on ``connection`` that every ledger event reaches."""
    queue = Queue(
        "ledger-watch",
        Exchange("ledger.events", type="topic", durable=True),
        routing_key="#",
        channel=connection.channel(),
    )
    queue.declare()
    return queue


def _try_relay(relay):
    try:
        return relay.relay_pending()
    except Exception:
        return 0


def test_rows_committed_before_a_crash_leave_when_the_service_starts_again(runner_factory, config):
    ledger = SessionScope(engine_for(config["DB_URIS"]["ledger"]))
    with ledger.session() as session:  # committed, then the process died before relaying
        OutboxWriter(OutboxMessage, "ledger").add(session, "note_added", {"title": "orphan"})
    runner = runner_factory(config, AuditService)
    runner.start()  # the consumer's queue exists before the publisher comes back
    runner_factory(config, LedgerService).start()

    assert eventually(lambda: audit_titles(config)) == ["orphan|None|None"]
    with ledger.session() as session:
        assert session.scalar(select(OutboxMessage.sent_at)) is not None


@pytest.mark.postgres
def test_one_relay_at_a_time_drains_a_shared_postgres_outbox_in_order(rabbit_config, pg_uri):
    engine = engine_for(pg_uri)
    Base.metadata.create_all(engine)
    first = OutboxRelay(engine, OutboxMessage, rabbit_config["AMQP_URI"], "ledger")
    second = OutboxRelay(engine, OutboxMessage, rabbit_config["AMQP_URI"], "ledger")
    with Connection(rabbit_config["AMQP_URI"]) as connection:
        queue = watching_ledger_events(connection)
        writer = OutboxWriter(OutboxMessage, "ledger")
        with SessionScope(engine).session() as session:
            for number in range(RELAY_CHUNK + 5):  # more than one chunk
                writer.add(session, "note_added", {"title": f"n{number}"})

        with engine.connect() as holder:  # another replica's relay is draining
            assert holder.scalar(select(func.pg_try_advisory_lock(RELAY_LOCK)))
            assert second.relay_pending() == 0
            holder.scalar(select(func.pg_advisory_unlock(RELAY_LOCK)))
            holder.commit()

        assert first.relay_pending() == RELAY_CHUNK + 5
        assert second.relay_pending() == 0
        titles = []
        while (message := queue.get(no_ack=True)) is not None:
            titles.append(message.payload["data"]["title"])
        assert titles == [f"n{number}" for number in range(RELAY_CHUNK + 5)]
        with SessionScope(engine).session() as session:
            rows = session.scalars(select(OutboxMessage)).all()
            assert all(row.sent_at is not None and row.attempts == 1 for row in rows)
        with engine.connect() as probe:  # the drain gave its lock back
            assert probe.scalar(select(func.pg_try_advisory_lock(RELAY_LOCK)))
            probe.scalar(select(func.pg_advisory_unlock(RELAY_LOCK)))
