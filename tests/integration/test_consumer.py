"""The crm_common event consumer on the real RabbitMQ: envelope check, inbox, retries, quorum
queues that agree with deployment topology."""

from __future__ import annotations

import pytest
from kombu import Connection, Exchange
from nameko.standalone.rpc import ServiceRpcProxy
from prometheus_client import REGISTRY

from crm_common.consumer import ReceivedEvent, event_handler, retry_delays
from crm_common.dead_letters import DeadLetterQueue, quorum_queue
from tests.support.polling import eventually
from tests.unit.common.models import InboxEvent

from .event_ledger import (
    ADMIN,
    FAILURES,
    HANDLER_QUEUE,
    LedgerService,
    customer_created,
    ledger_config,
    poison,
    publish,
    titles,
)

LABELS = {"service": "ledger", "handler": HANDLER_QUEUE, "event_type": "customer_created"}


@pytest.fixture
def config(rabbit_config, tmp_path):
    return ledger_config(rabbit_config, tmp_path)


def dead_letters(config):
    with ServiceRpcProxy("ledger", config, context_data=ADMIN, timeout=10) as ledger:
        return ledger.list_dead_letters()["items"]


def test_a_redelivered_event_is_applied_once(container_factory, config):
    container_factory(LedgerService, config).start()
    first = customer_created("华东机电")

    publish(config, first)
    publish(config, first)  # the broker hands the same event again
    publish(config, customer_created("华南五金"))

    assert eventually(lambda: titles(config) == ["华东机电", "华南五金"], what="both applied")
    publish(config, first)
    publish(config, customer_created("marker"))
    eventually(lambda: "marker" in titles(config), what="the marker")
    assert titles(config) == ["marker", "华东机电", "华南五金"]


def test_a_failing_handler_is_retried_then_dead_lettered_while_the_next_is_handled(
    container_factory, config
):
    container_factory(LedgerService, config).start()
    poison("poison")
    publish(config, customer_created("poison"))
    publish(config, customer_created("good"))

    eventually(lambda: titles(config) == ["good"], what="the good event applied")
    [item] = eventually(lambda: dead_letters(config), what="a dead letter")
    assert item["handler"] == HANDLER_QUEUE
    assert item["attempts"] == 3  # the first try and one per retry delay
    assert item["reason"] == "failed"
    assert "RuntimeError: cannot apply poison" in item["error"]
    assert item["event_type"] == "customer_created" and item["source"] == "customer"
    assert titles(config) == ["good"]


def test_a_handler_that_recovers_on_retry_applies_the_event_once(container_factory, config):
    container_factory(LedgerService, config).start()
    FAILURES["flaky"] = 1
    retried = REGISTRY.get_sample_value("crm_events_retried_total", LABELS) or 0
    publish(config, customer_created("flaky"))

    eventually(lambda: titles(config) == ["flaky"], what="the retried event applied")
    assert REGISTRY.get_sample_value("crm_events_retried_total", LABELS) == retried + 1
    assert dead_letters(config) == []


AUDITED: list[str] = []


class AuditedLedger(LedgerService):
    """The ledger with a second handler of the same events, which never fails."""

    @event_handler("customer", "customer_created")
    def audit_customer_created(self, event: ReceivedEvent) -> None:
        AUDITED.append(event.data["name"])  # before the inbox: every delivery counts
        with self.db.session() as session:
            event.first_delivery(session)


def test_a_retried_event_comes_back_to_the_handler_that_failed_it_only(container_factory, config):
    """The service's handlers share its retry queues: the waited message returns, by its
    routing key, to the one handler that failed it."""
    AUDITED.clear()
    container_factory(AuditedLedger, config).start()
    FAILURES["flaky"] = 2
    publish(config, customer_created("flaky"))

    eventually(lambda: titles(config) == ["flaky"], what="the twice retried event applied")
    publish(config, customer_created("marker"))
    eventually(lambda: "marker" in AUDITED, what="the marker audited")
    assert AUDITED.count("flaky") == 1


def test_malformed_messages_are_dead_lettered_at_once_and_the_queue_moves_on(
    container_factory, config
):
    container_factory(LedgerService, config).start()
    publish(config, b"{not json", content_type="application/json", content_encoding="utf-8")
    publish(config, {"type": "customer_created", "data": {"name": "no id"}})
    publish(config, customer_created("newer major", version=2))
    publish(config, customer_created("newer minor", version="1.3", extra_field="tolerated"))

    eventually(lambda: titles(config) == ["newer minor"], what="the newer minor applied")
    items = eventually(lambda: len(dead_letters(config)) == 3 and dead_letters(config))
    assert {item["reason"] for item in items} == {"malformed"}
    assert {item["attempts"] for item in items} == {0}
    errors = " | ".join(item["error"] for item in items)
    assert "cannot be decoded" in errors
    assert "event_id" in errors
    assert "version 2 is not understood" in errors


def test_a_queue_declared_by_deployment_topology_is_consumed(
    container_factory, config, rabbit_manager
):
    exchange = Exchange("customer.events", type="topic", durable=True)
    with Connection(config["AMQP_URI"]) as connection:  # what deployment topology declares
        quorum_queue(HANDLER_QUEUE, exchange=exchange, routing_key="customer_created")(
            connection.channel()
        ).declare()
    publish(config, customer_created("waited in the queue"))  # before any consumer runs

    container_factory(LedgerService, config).start()

    eventually(lambda: titles(config) == ["waited in the queue"], what="the queued event")
    assert rabbit_manager.get_queue(config["vhost"], HANDLER_QUEUE)["type"] == "quorum"


def test_the_consumer_declares_quorum_queues_itself(container_factory, config, rabbit_manager):
    container_factory(LedgerService, config).start()

    assert rabbit_manager.get_queue(config["vhost"], HANDLER_QUEUE)["type"] == "quorum"
    assert rabbit_manager.get_queue(config["vhost"], "ledger.dead-letters")["type"] == "quorum"
    retry = rabbit_manager.get_queue(config["vhost"], "ledger.retry.400ms")
    assert retry["type"] == "quorum" and retry["arguments"]["x-message-ttl"] == 400
    assert retry["arguments"]["x-dead-letter-exchange"] == "ledger.retried"


def test_retry_delays_come_from_the_config_with_a_default():
    assert retry_delays({}) == (1.0, 10.0, 60.0)
    assert retry_delays({"EVENT_RETRY_DELAYS": "0.2, 0.4"}) == (0.2, 0.4)
    assert retry_delays({"EVENT_RETRY_DELAYS": [5, 30]}) == (5.0, 30.0)
    assert retry_delays({"EVENT_RETRY_DELAYS": ""}) == ()


class ForgetfulService:
    name = "forgetful"
    inbox_model = InboxEvent
    applied: list[str] = []

    @event_handler("customer", "customer_created")
    def on_customer_created(self, event: ReceivedEvent) -> None:
        self.applied.append(event.data["name"])  # no inbox check: redeliveries would repeat it


def test_a_handler_that_skips_the_inbox_check_is_dead_lettered_at_once(container_factory, config):
    container_factory(ForgetfulService, config).start()
    publish(config, customer_created("unchecked"))

    queue = DeadLetterQueue(config["AMQP_URI"], "forgetful")
    [item] = eventually(lambda: queue.list()["items"], what="the dead letter")
    assert item["reason"] == "inbox_unchecked" and item["attempts"] == 1
    assert "event.first_delivery(session)" in item["error"]
    assert ForgetfulService.applied == ["unchecked"]  # tried once, not retried
