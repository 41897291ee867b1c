"""Batched event handling (``crm_common.batch_consumer``) and never-applicable data on the real
RabbitMQ: one commit per batch, duplicates applied once, a failing event retried or
dead-lettered alone while the rest of its batch commits, invalid data dead-lettered at once."""

from __future__ import annotations

import pytest
from kombu import Connection
from marshmallow import ValidationError
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import event as sa_event

from crm_common.batch_consumer import EventBatch, event_batch_handler
from crm_common.consumer import ReceivedEvent, event_handler
from crm_common.db import Database, engine_for
from crm_common.errors import ValidationFailed
from crm_common.kit import ServiceKit
from tests.support.polling import eventually
from tests.unit.common.models import Base, InboxEvent, Note

from .event_ledger import ADMIN, FAILURES, customer_created, ledger_config, poison, publish, titles

QUEUE = "ledger.on_customer_created"
COMMITS: list[int] = []


def apply_note(session, event: ReceivedEvent) -> None:
    name = event.data["name"]
    if name == "invalid":
        raise ValidationError({"name": ["is not a customer name"]})
    if name == "refused":
        raise ValidationFailed.on("amount", "must be a decimal string")
    if FAILURES.get(name, 0) > 0:
        FAILURES[name] -= 1
        raise RuntimeError(f"cannot apply {name}")
    session.add(Note(title=name))


class BatchLedger(ServiceKit):
    name = "ledger"
    db = Database(Base)
    inbox_model = InboxEvent

    @event_batch_handler("customer", "customer_created", max_batch=50, max_wait=0.05)
    def on_customer_created(self, batch: EventBatch) -> None:
        with self.db.session() as session:
            batch.apply(session, lambda event: apply_note(session, event))


class StrictLedger(ServiceKit):
    """The single-event handler: data it refuses is dead-lettered at once, not retried."""

    name = "ledger"
    db = Database(Base)
    inbox_model = InboxEvent

    @event_handler("customer", "customer_created")
    def on_customer_created(self, event: ReceivedEvent) -> None:
        with self.db.session() as session:
            if event.first_delivery(session):
                apply_note(session, event)


@pytest.fixture
def config(rabbit_config, tmp_path):
    config = ledger_config(rabbit_config, tmp_path)
    COMMITS.clear()
    engine = engine_for(config["DB_URIS"]["ledger"])

    def count(_connection):
        COMMITS.append(1)

    sa_event.listen(engine, "commit", count)
    yield config
    sa_event.remove(engine, "commit", count)


def dead_letters(config):
    with ServiceRpcProxy("ledger", config, context_data=ADMIN, timeout=10) as ledger:
        return ledger.list_dead_letters()["items"]


def publish_many(config, bodies):
    with Connection(config["AMQP_URI"]) as connection:
        producer = connection.Producer()
        for body in bodies:
            producer.publish(
                body, exchange="customer.events", routing_key="customer_created", serializer="json"
            )


def queued(rabbit_manager, config, name=QUEUE):
    queue = rabbit_manager.get_queue(config["vhost"], name)
    return queue.get("messages", 0)


def test_a_stream_is_applied_in_few_commits_with_duplicates_once(
    container_factory, config, rabbit_manager
):
    container = container_factory(BatchLedger, config)
    container.start()
    events = [customer_created(f"客户{n:03d}") for n in range(200)]
    stream = events + events[:30]  # thirty delivered twice

    publish_many(config, stream)

    expected = sorted(event["data"]["name"] for event in events)
    eventually(lambda: titles(config) == expected, timeout=30, what="every event applied once")
    assert len(COMMITS) < 40, f"{len(COMMITS)} commits for 230 messages"
    eventually(lambda: queued(rabbit_manager, config) == 0, timeout=30, what="all acknowledged")
    assert rabbit_manager.get_queue(config["vhost"], QUEUE)["type"] == "quorum"
    assert dead_letters(config) == []


def test_a_failing_event_is_retried_alone_and_the_rest_of_its_batch_commits(
    container_factory, config
):
    container_factory(BatchLedger, config).start()
    poison("poison")
    FAILURES["flaky"] = 1
    names = ["a", "poison", "b", "flaky", "c"]

    publish_many(config, [customer_created(name) for name in names])

    eventually(
        lambda: titles(config) == ["a", "b", "c", "flaky"], timeout=20, what="all but the poison"
    )
    [item] = eventually(lambda: dead_letters(config), timeout=20, what="the poison dead-lettered")
    assert item["reason"] == "failed" and item["attempts"] == 3
    assert "RuntimeError: cannot apply poison" in item["error"]
    assert titles(config) == ["a", "b", "c", "flaky"]


def test_invalid_data_in_a_batch_is_dead_lettered_at_once_with_its_reasons(
    container_factory, config
):
    container_factory(BatchLedger, config).start()

    publish_many(config, [customer_created(n) for n in ("x", "invalid", "refused", "y")])
    publish(config, b"{not json", content_type="application/json", content_encoding="utf-8")
    publish(config, customer_created("z"))

    eventually(lambda: titles(config) == ["x", "y", "z"], what="the valid events applied")
    items = eventually(lambda: len(dead_letters(config)) == 3 and dead_letters(config))
    by_reason = sorted((item["reason"], item["attempts"], item["error"]) for item in items)
    assert [reason for reason, _, _ in by_reason] == ["invalid", "invalid", "malformed"]
    assert {attempts for _, attempts, _ in by_reason} == {0, 1}
    errors = " | ".join(error for _, _, error in by_reason)
    assert "name: is not a customer name" in errors
    assert "amount: must be a decimal string" in errors
    assert "cannot be decoded" in errors


def test_the_single_event_handler_dead_letters_invalid_data_without_retrying(
    container_factory, config
):
    container_factory(StrictLedger, config).start()

    publish(config, customer_created("refused"))
    publish(config, customer_created("after"))

    eventually(lambda: titles(config) == ["after"], what="the next event applied")
    [item] = eventually(lambda: dead_letters(config), what="the invalid event dead-lettered")
    assert item["reason"] == "invalid" and item["attempts"] == 1
    assert item["error"] == "ValidationFailed: amount: must be a decimal string"


def test_a_killed_consumer_leaves_its_batch_to_be_delivered_again(
    container_factory, config, rabbit_manager
):
    container = container_factory(BatchLedger, config)
    container.start()
    publish_many(config, [customer_created(f"k{n}") for n in range(20)])
    eventually(lambda: len(titles(config)) == 20, what="the first batch")
    container.kill()

    publish_many(config, [customer_created(f"m{n}") for n in range(20)])
    assert queued(rabbit_manager, config) in range(0, 21)
    container_factory(BatchLedger, config).start()

    eventually(lambda: len(titles(config)) == 40, timeout=20, what="the second batch")
