"""The dead-letter admin routes against services built on the real kit and a real broker."""

from __future__ import annotations

import pytest
from kombu import Connection, Queue

from crm_common import dead_letters as letters
from crm_common.kit import ServiceKit
from tests.integration.standins import access_token, gateway_config, problem_of, start_gateway
from tests.support.polling import eventually


def admin() -> str:
    """A fresh token: one older than the gateway would wait for org's revocation state."""
    return access_token(permissions=["system:admin"])


HANDLER_QUEUE = "evt-customer-probe--on_order"


class KitCustomer(ServiceKit):
    name = "customer"


class KitOrg(ServiceKit):
    name = "org"


def dead_letter(amqp_uri: str, letter_id: str) -> None:
    """Put a message in the customer's dead-letter queue as its consumer would."""
    headers = {
        letters.ID_HEADER: letter_id,
        letters.REASON_HEADER: "handler_failed",
        letters.AT_HEADER: f"2026-03-01T08:00:0{letter_id[-1]}+00:00",
        letters.ERROR_HEADER: "KeyError: 'sku'",
        letters.HANDLER_HEADER: "customer.on_order",
        letters.QUEUE_HEADER: HANDLER_QUEUE,
        letters.ATTEMPTS_HEADER: 4,
        letters.EVENT_TYPE_HEADER: "order_created",
    }
    with Connection(amqp_uri) as connection:
        producer = connection.Producer()
        producer.publish(
            {"event_id": f"e-{letter_id}", "type": "order_created", "data": {}},
            exchange="",
            routing_key="customer.dead-letters",
            headers=headers,
            declare=[letters.dead_letter_queue("customer")],
            serializer="json",
        )


@pytest.fixture
def api(rabbit_config, runner_factory):
    config = gateway_config(rabbit_config, BACKEND_SERVICES="customer,org")
    with Connection(config["AMQP_URI"]) as connection:
        Queue(HANDLER_QUEUE, durable=True)(connection.channel()).declare()
    for letter_id in ("dl-1", "dl-2"):
        dead_letter(config["AMQP_URI"], letter_id)
    return start_gateway(runner_factory, config, KitCustomer, KitOrg)


def test_dead_letters_of_every_service_are_listed_and_inspected(api):
    listed = api.get("/api/admin/dead-letters", token=admin())
    first = api.get("/api/admin/dead-letters?limit=1", token=admin())
    rest = api.get(f"/api/admin/dead-letters?cursor={first.json()['next_cursor']}", token=admin())
    one = api.get("/api/admin/dead-letters/customer/dl-2", token=admin())

    assert listed.status_code == 200, listed.text
    assert [(item["service"], item["id"]) for item in listed.json()["items"]] == [
        ("customer", "dl-1"),
        ("customer", "dl-2"),
    ]
    assert listed.json()["next_cursor"] is None
    assert [item["id"] for item in first.json()["items"] + rest.json()["items"]] == ["dl-1", "dl-2"]
    assert one.status_code == 200
    assert one.json()["envelope"]["event_id"] == "e-dl-2"
    assert one.json()["attempts"] == 4


def test_a_dead_letter_is_replayed_to_its_handler_or_discarded(api, rabbit_config):
    replayed = api.post("/api/admin/dead-letters/customer/dl-1/replay", token=admin())
    discarded = api.delete("/api/admin/dead-letters/customer/dl-2", token=admin())

    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["replayed_to"] == HANDLER_QUEUE
    assert discarded.status_code == 204
    assert api.get("/api/admin/dead-letters", token=admin()).json()["items"] == []
    with Connection(rabbit_config["AMQP_URI"]) as connection:
        queue = Queue(HANDLER_QUEUE, durable=True)(connection.channel())
        message = eventually(queue.get, what="the replayed message in its handler's queue")
        assert message.payload["event_id"] == "e-dl-1"


def test_unknown_services_and_letters_are_404_and_others_may_not_look(api):
    unknown_service = api.get("/api/admin/dead-letters/billing/dl-1", token=admin())
    listed_unknown = api.get("/api/admin/dead-letters?service=billing", token=admin())
    unknown_letter = api.get("/api/admin/dead-letters/org/dl-1", token=admin())
    not_admin = api.get("/api/admin/dead-letters", token=access_token())

    assert problem_of(unknown_service, 404)["resource"] == "service"
    assert problem_of(listed_unknown, 404)["resource"] == "service"
    assert problem_of(unknown_letter, 404)["resource"] == "dead letter"
    assert problem_of(not_admin, 403)["permission"] == "system:admin"
