"""Sales applying the ERP's events on the real RabbitMQ, published by the pika simulator: what
waited in the topology's queues before sales ever ran is applied when it starts and leaves
every invoice and customer as the stream implies; malformed events go to the dead letters
with their reasons while the queue keeps flowing; an event of an ERP customer the CRM does
not know waits, and applies when a customer event brings its ERP code."""

from __future__ import annotations

import json
import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pika
import pytest
from kombu import Connection, Exchange
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import select

from crm_common.context import Principal
from crm_common.db import SessionScope, engine_for
from crm_common.events import make_envelope
from crm_common.migrations import upgrade
from devstack import topology
from sales.application.catch_up import SNAPSHOTS
from sales.application.read_models import ReadModels
from sales.models import CatchUp
from sales.models.erp import ErpUnmatchedEvent
from sales.models.orders import SalesOrder
from sales.models.receivables import CreditLimit, Invoice
from sales.service import SalesService
from tests.fixtures import postgres_database
from tests.support.polling import eventually
from tests.support.tokens import context_of
from tools.erp_simulator import broker
from tools.erp_simulator.delivery import plan
from tools.erp_simulator.world import Stream, customers_from, numbered_customer_records

ADMIN = context_of(Principal("u-admin", permissions=("system:admin",)))
CUSTOMERS = 8
HANDLED = topology.ERP_EVENT_TYPES


def sales_config(amqp: dict[str, Any], db_uri: str, **extra: Any) -> dict[str, Any]:
    return {
        **amqp,
        "DB_URIS": {"sales": db_uri},
        "OUTBOX_POLL_SECONDS": 0.2,
        "METRICS_PORT": 0,
        **extra,
    }


def prepare_database(db_uri: str, count: int = CUSTOMERS, seed: int = 7) -> list[dict[str, Any]]:
    """A migrated sales database that has read every snapshot and knows ``count`` customers
    with their ERP and credit codes; returns them as the simulator takes them."""
    upgrade("sales", db_uri)
    records = numbered_customer_records(random.Random(seed), count, "测试客户")
    now = datetime.now(UTC)
    with SessionScope(engine_for(db_uri)).session() as session:
        for snapshot in SNAPSHOTS:
            session.merge(CatchUp(source=snapshot.source, rows=0, finished_at=now))
        for number, record in enumerate(records, start=1):
            ReadModels(session).keep_customer(
                {
                    "id": record["crm_customer_id"],
                    "code": f"C2026{number:06d}",
                    "name": record["name"],
                    "status": "formal",
                    "owner_id": "u-sales-01",
                    "department_id": "d-east-sh",
                    "erp_code": record["erp_code"],
                    "version": 1,
                }
            )
    return records


def publish_stream(
    amqp_uri: str,
    records: list[dict[str, Any]],
    events: int,
    seed: int = 11,
    duplicates: float = 0.0,
    out_of_order: float = 0.0,
    window: int = 500,
) -> dict[str, Any]:
    """Publish a simulated stream as the ERP does; what it implies (``Stream.expected``)."""
    rng = random.Random(seed)
    stream = Stream(seed, customers_from(rng, records))
    made = stream.events(events)
    delivery = plan(made, rng, duplicates=duplicates, out_of_order=out_of_order)
    broker.publish_all(amqp_uri, (event.envelope for event in delivery.messages), window)
    return {
        **stream.expected(),
        "messages": len(delivery.messages),
        "by_type": {
            t: sum(1 for e in delivery.messages if e.type == t) for t in {e.type for e in made}
        },
    }


def invoices_in(db_uri: str) -> dict[str, tuple[str, str]]:
    with SessionScope(engine_for(db_uri)).session() as session:
        return {
            invoice.invoice_no: (f"{invoice.amount:.2f}", f"{invoice.outstanding:.2f}")
            for invoice in session.scalars(select(Invoice))
        }


def receivable_totals(db_uri: str, records: list[dict[str, Any]]) -> dict[str, str]:
    code_of = {uuid.UUID(r["crm_customer_id"]): r["erp_code"] for r in records}
    totals: dict[str, Decimal] = defaultdict(lambda: Decimal("0.00"))
    with SessionScope(engine_for(db_uri)).session() as session:
        for invoice in session.scalars(select(Invoice)):
            totals[code_of[invoice.customer_id]] += invoice.outstanding
    return {code: f"{total:.2f}" for code, total in totals.items()}


def orders_in(db_uri: str) -> dict[str, str]:
    with SessionScope(engine_for(db_uri)).session() as session:
        return {
            order.erp_order_no: order.status
            for order in session.scalars(select(SalesOrder))
            if order.erp_order_no
        }


def expected_orders(expected: dict[str, Any]) -> dict[str, str]:
    return {number: order["status"] for number, order in expected["orders"].items()}


def expected_invoices(expected: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {
        number: (f"{Decimal(i['amount']):.2f}", f"{Decimal(i['outstanding']):.2f}")
        for number, i in expected["invoices"].items()
    }


def expected_totals(expected: dict[str, Any]) -> dict[str, str]:
    return {
        code: f"{Decimal(c['receivable']):.2f}"
        for code, c in expected["customers"].items()
        if c["invoices"]
    }


def queue_depths(management, vhost: str, prefix: str = "sales.on_erp_") -> dict[str, int]:
    """Ready plus unacknowledged messages of each queue whose name starts with ``prefix``."""
    return {
        q["name"]: q.get("messages", 0)
        for q in management.get_queues(vhost)
        if q["name"].startswith(prefix) and ".retry." not in q["name"]
    }


def drained(management, vhost: str, event_types=HANDLED) -> bool:
    depths = queue_depths(management, vhost)
    return all(depths.get(topology.handler_queue("sales", t), 0) == 0 for t in event_types)


@pytest.fixture
def amqp(rabbit_config):
    assert topology.main(["--amqp-uri", rabbit_config["AMQP_URI"]]) == 0
    return rabbit_config


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_uri(request, tmp_path):
    """SQLite (ERP batches one at a time) and PostgreSQL (batches of orders, receivables and
    the catalogue side by side)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'sales.db'}"
    else:
        yield from postgres_database()


def test_events_published_before_sales_ever_ran_are_applied_when_it_starts(
    any_db_uri, amqp, container_factory, rabbit_manager
):
    db_uri = any_db_uri
    records = prepare_database(db_uri)
    expected = publish_stream(amqp["AMQP_URI"], records, 600, duplicates=0.05, out_of_order=0.1)
    assert invoices_in(db_uri) == {}

    container_factory(SalesService, sales_config(amqp, db_uri)).start()

    eventually(lambda: drained(rabbit_manager, amqp["vhost"]), timeout=60, what="queues drained")
    eventually(
        lambda: invoices_in(db_uri) == expected_invoices(expected),
        timeout=20,
        what="every invoice as the stream implies",
    )
    eventually(
        lambda: orders_in(db_uri) == expected_orders(expected),
        timeout=60,
        what="every order as the stream implies",
    )
    # Each event type has its queue: the payments' and the credit limits' may drain after
    # the invoices' and the orders', while the management API's counts lag behind.
    eventually(
        lambda: receivable_totals(db_uri, records) == expected_totals(expected),
        timeout=60,
        what="every customer's receivable as the stream implies",
    )
    assert invoices_in(db_uri) == expected_invoices(expected)
    expected_limits = {
        uuid.UUID(c["crm_customer_id"]): c["credit_limit"]
        for c in expected["customers"].values()
        if c["credit_limit"]
    }
    eventually(
        lambda: credit_limits_in(db_uri) == expected_limits,
        timeout=60,
        what="every credit limit as the stream implies",
    )


def credit_limits_in(db_uri: str) -> dict[uuid.UUID, str]:
    with SessionScope(engine_for(db_uri)).session() as session:
        return {
            row.customer_id: f"{row.credit_limit:.2f}"
            for row in session.scalars(select(CreditLimit))
        }


def publish_raw(amqp_uri: str, routing_key: str, body: bytes) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            topology.ERP_EXCHANGE,
            routing_key,
            body,
            pika.BasicProperties(content_type="application/json", delivery_mode=2),
            mandatory=True,
        )
    finally:
        connection.close()


def erp_envelope(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    return make_envelope(event_type, data, source="erp", actor_id=None)


def invoice_data(erp_code: str, number: str, amount: str = "113.00", **more: Any) -> dict[str, Any]:
    return {
        "invoice_no": number,
        "erp_order_no": None,
        "customer": {
            "crm_customer_id": None,
            "erp_code": erp_code,
            "credit_code": None,
            "name": "某客户",
        },
        "issued_at": "2026-03-02T09:00:00+08:00",
        "due_date": "2026-04-01",
        "amount": amount,
        "tax_amount": "13.00",
        "currency": "CNY",
        **more,
    }


def dead_letters(config: dict[str, Any]) -> list[dict[str, Any]]:
    with ServiceRpcProxy("sales", config, context_data=ADMIN, timeout=10) as sales:
        return sales.list_dead_letters()["items"]


def test_malformed_erp_events_are_dead_lettered_with_reasons_and_the_queue_flows(
    amqp, container_factory, tmp_path
):
    db_uri = f"sqlite:///{tmp_path / 'sales.db'}"
    records = prepare_database(db_uri, count=1)
    config = sales_config(amqp, db_uri)
    container_factory(SalesService, config).start()
    uri = amqp["AMQP_URI"]

    publish_raw(uri, "invoice_issued", b'{"event_id": "x", "type": ')  # bad JSON
    no_data = erp_envelope("invoice_issued", {})
    del no_data["data"]
    publish_raw(uri, "invoice_issued", json.dumps(no_data).encode())  # no data at all
    missing = invoice_data("C00001", "INV-M")
    del missing["due_date"]
    publish_raw(uri, "invoice_issued", json.dumps(erp_envelope("invoice_issued", missing)).encode())
    not_decimal = erp_envelope("invoice_issued", invoice_data("C00001", "INV-N", amount=113.5))
    publish_raw(uri, "invoice_issued", json.dumps(not_decimal).encode())
    good = erp_envelope("invoice_issued", invoice_data(records[0]["erp_code"], "INV-GOOD"))
    publish_raw(uri, "invoice_issued", json.dumps(good).encode())

    eventually(lambda: "INV-GOOD" in invoices_in(db_uri), what="the good invoice applied")
    items = eventually(lambda: len(dead_letters(config)) == 4 and dead_letters(config))
    assert sorted(item["reason"] for item in items) == [
        "invalid",
        "invalid",
        "malformed",
        "malformed",
    ]
    assert {item["handler"] for item in items} == {"sales.on_erp_invoice_issued"}
    errors = " | ".join(item["error"] for item in items)
    assert "cannot be decoded" in errors
    assert "data" in errors
    assert "due_date: Missing data for required field." in errors
    assert "amount: " in errors
    assert {item["attempts"] for item in items} <= {0, 1}
    assert set(invoices_in(db_uri)) == {"INV-GOOD"}


def test_an_unknown_erp_customer_waits_until_a_customer_event_brings_its_code(
    amqp, container_factory, tmp_path
):
    db_uri = f"sqlite:///{tmp_path / 'sales.db'}"
    prepare_database(db_uri, count=1)
    config = sales_config(amqp, db_uri)
    container_factory(SalesService, config).start()
    uri = amqp["AMQP_URI"]
    publish_raw(
        uri,
        "invoice_issued",
        json.dumps(erp_envelope("invoice_issued", invoice_data("C07777", "INV-W"))).encode(),
    )

    def waiting() -> list[str]:
        with SessionScope(engine_for(db_uri)).session() as session:
            return [row.status for row in session.scalars(select(ErpUnmatchedEvent))]

    eventually(lambda: waiting() == ["waiting"], what="the invoice kept as unmatched")
    assert invoices_in(db_uri) == {}

    customer_id = str(uuid.uuid4())
    customer = {
        "id": customer_id,
        "code": "C2026000777",
        "name": "新来的客户有限公司",
        "status": "formal",
        "erp_code": "C07777",
        "version": 2,
    }
    with Connection(uri) as connection:
        connection.Producer().publish(
            make_envelope(
                "customer_updated", {"customer": customer}, source="customer", actor_id="u1"
            ),
            exchange=Exchange("customer.events", type="topic", durable=True),
            routing_key="customer_updated",
            serializer="json",
        )

    eventually(lambda: waiting() == ["applied"], what="the waiting invoice applied")
    assert invoices_in(db_uri) == {"INV-W": ("113.00", "113.00")}
    with SessionScope(engine_for(db_uri)).session() as session:
        invoice = session.scalars(select(Invoice)).one()
        assert str(invoice.customer_id) == customer_id
