"""Rows a batch defers are written with it, in the order they were added, and only for the
events that were applied: an event set aside takes its rows with it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from crm_common.batch_consumer import Delivery, EventBatch
from crm_common.consumer import ReceivedEvent
from crm_common.db import SessionScope, engine_for
from crm_common.deferred import add_row, deferring, write_deferred
from crm_common.outbox import OutboxWriter
from tests.unit.common.models import Base, InboxEvent, Note, OutboxMessage

HANDLER = "ledger.on_note"


class Message:
    headers: dict[str, Any] = {}


@pytest.fixture
def scope(tmp_path):
    engine = engine_for(f"sqlite:///{tmp_path / 'ledger.db'}")
    Base.metadata.create_all(engine)
    return SessionScope(engine)


def batch_of(titles):
    deliveries = [
        Delivery(
            ReceivedEvent(
                {"event_id": str(uuid.uuid4()), "type": "note", "data": {"title": title}},
                HANDLER,
                InboxEvent,
            ),
            Message(),
        )
        for title in titles
    ]
    return EventBatch(deliveries, HANDLER, InboxEvent, "note_added")


def apply_note(session, writer):
    def apply(event):
        title = event.data["title"]
        session.add(Note(title=title))
        writer.add(session, "note_added", {"title": title})
        add_row(session, Note, {"title": f"{title} (deferred)"})
        if title == "bad":
            raise ValueError("set aside")

    return apply


def test_an_event_set_aside_takes_its_deferred_rows_with_it(scope):
    batch = batch_of(["first", "bad", "last"])
    with scope.session() as session:
        writer = OutboxWriter(OutboxMessage, "ledger")
        assert batch.apply(session, apply_note(session, writer)) == 2
    with scope.session() as session:
        published = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        titles = set(session.scalars(select(Note.title)))
        applied = set(session.scalars(select(InboxEvent.event_id)))
    assert [row.payload["data"]["title"] for row in published] == ["first", "last"]
    assert all(row.sent_at is None and row.attempts == 0 and row.headers == {} for row in published)
    assert titles == {"first", "first (deferred)", "last", "last (deferred)"}
    assert [d.failure is not None for d in batch.deliveries] == [False, True, False]
    assert applied == {batch.deliveries[0].event.event_id, batch.deliveries[2].event.event_id}


def test_a_whole_batch_writes_its_rows_in_the_order_they_were_added(scope):
    titles = [f"note {n}" for n in range(250)]
    with scope.session() as session:
        writer = OutboxWriter(OutboxMessage, "ledger")
        assert batch_of(titles).apply(session, apply_note(session, writer)) == 250
    with scope.session() as session:
        published = session.scalars(select(OutboxMessage.payload).order_by(OutboxMessage.id))
        assert [payload["data"]["title"] for payload in published] == titles


def test_rows_with_other_columns_are_written_in_order_too(scope):
    with scope.session() as session, deferring(session):
        add_row(session, OutboxMessage, outbox_row("a"))
        add_row(session, OutboxMessage, {**outbox_row("b"), "attempts": 3})
        add_row(session, OutboxMessage, outbox_row("c"))
        assert session.scalars(select(OutboxMessage)).all() == []  # kept, not written yet
        write_deferred(session)
    with scope.session() as session:
        rows = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    assert [(row.routing_key, row.attempts) for row in rows] == [("a", 0), ("b", 3), ("c", 0)]


def test_outside_a_batch_rows_are_objects_of_the_session(scope):
    with scope.session() as session:
        OutboxWriter(OutboxMessage, "ledger").add(session, "note_added", {"title": "alone"})
        assert [row.routing_key for row in session.new] == ["note_added"]


def outbox_row(routing_key):
    return {
        "event_id": str(uuid.uuid4()),
        "exchange": "ledger.events",
        "routing_key": routing_key,
        "payload": {},
        "headers": {},
    }
