"""Publishing groups with publisher confirms on the real RabbitMQ: what the broker confirmed is
told apart from what it refused, and the outbox relay marks sent exactly the confirmed rows."""

from __future__ import annotations

import pytest
from kombu import Connection, Exchange, Queue
from sqlalchemy import select

from crm_common.confirms import ConfirmingPublisher, NotConfirmed, Outgoing, Published
from crm_common.db import SessionScope, engine_for
from crm_common.outbox import OutboxRelay, OutboxWriter
from tests.unit.common.models import Base, OutboxMessage

EXCHANGE = Exchange("ledger.events", type="topic", durable=True)


def bounded_queue(connection, max_length):
    """A queue taking every ledger event, refusing publishes beyond ``max_length`` messages
    (the broker then answers basic.nack)."""
    queue = Queue(
        "ledger-bounded",
        EXCHANGE,
        routing_key="#",
        queue_arguments={"x-max-length": max_length, "x-overflow": "reject-publish"},
        channel=connection.channel(),
    )
    queue.declare()
    return queue


def drained(queue):
    messages = []
    while (message := queue.get(no_ack=True)) is not None:
        messages.append(message)
    return messages


def test_a_group_is_confirmed_as_a_whole_with_its_properties(rabbit_config):
    publisher = ConfirmingPublisher(rabbit_config["AMQP_URI"], EXCHANGE)
    with Connection(rabbit_config["AMQP_URI"]) as connection:
        queue = bounded_queue(connection, 1000)
        group = [
            Outgoing({"event_id": f"e-{n}", "data": {"n": n, "名": "轴承"}}, "note_added", f"e-{n}")
            for n in range(250)
        ]
        assert publisher.publish_all(group) == Published(250)
        assert publisher.publish_all(group[:3]).confirmed == 3  # the same channel goes on
        messages = drained(queue)
    publisher.close()
    assert [m.payload["data"]["n"] for m in messages] == [*range(250), 0, 1, 2]
    first = messages[0]
    assert first.payload["data"]["名"] == "轴承"
    assert first.properties["message_id"] == "e-0"
    assert first.properties["delivery_mode"] == 2
    assert first.content_type == "application/json"
    assert first.delivery_info["routing_key"] == "note_added"


def test_messages_the_broker_refuses_are_not_counted_as_confirmed(rabbit_config):
    publisher = ConfirmingPublisher(rabbit_config["AMQP_URI"], EXCHANGE)
    with Connection(rabbit_config["AMQP_URI"]) as connection:
        bounded_queue(connection, 3)
        published = publisher.publish_all(
            [Outgoing({"n": n}, "note_added", f"e-{n}") for n in range(5)]
        )
    assert published.confirmed == 3
    assert isinstance(published.failure, NotConfirmed)
    publisher.close()


def test_the_relay_marks_sent_only_the_rows_the_broker_confirmed(rabbit_config, tmp_path):
    engine = engine_for(f"sqlite:///{tmp_path / 'ledger.db'}")
    Base.metadata.create_all(engine)
    scope = SessionScope(engine)
    with scope.session() as session:
        writer = OutboxWriter(OutboxMessage, "ledger")
        for n in range(5):
            writer.add(session, "note_added", {"n": n})
    relay = OutboxRelay(engine, OutboxMessage, rabbit_config["AMQP_URI"], "ledger")
    with Connection(rabbit_config["AMQP_URI"]) as connection:
        queue = bounded_queue(connection, 3)
        with pytest.raises(NotConfirmed):
            relay.relay_pending()
        with scope.session() as session:
            rows = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
            assert [row.sent_at is not None for row in rows] == [True] * 3 + [False] * 2
            assert [row.attempts for row in rows] == [1, 1, 1, 1, 0]
            assert "NotConfirmed" in rows[3].last_error and rows[4].last_error is None
        assert [m.payload["data"]["n"] for m in drained(queue)] == [0, 1, 2]

        assert relay.relay_pending() == 2  # room again: the rest leave, in order
        assert [m.payload["data"]["n"] for m in drained(queue)] == [3, 4]
    relay.publisher.close()
