"""The pika ERP simulator against a real vhost with the ERP topology: what arrives is the
stream it announced (count, valid envelopes and data by the contract's schemas, AMQP
properties, the duplicates and out-of-order pairs asked for), its expected outcome is what
the receivables rules make of what arrived, and in ``respond`` mode it answers the CRM's order
requests as the contract says."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import uuid
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import amqp
import pytest
from kombu import Connection, Exchange

from crm_common.events import EnvelopeSchema, make_envelope
from devstack import registry, topology
from sales.domain.receivables import Allocation, Invoice, Payment, receivables
from sales.schemas.erp import ERP_EVENT_SCHEMAS, ORDER_REQUEST_SCHEMAS
from tests.support.polling import eventually
from tools.erp_simulator.world import Stream

TAP = "test.erp-tap"


@pytest.fixture
def uri(rabbit_config) -> str:
    topology.apply(rabbit_config["AMQP_URI"])
    return str(rabbit_config["AMQP_URI"])


def simulator(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.erp_simulator", *args],
        cwd=registry.ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def tap(uri: str) -> None:
    """A queue of every ERP event in the order the broker received them."""
    with Connection(uri) as connection:
        channel = connection.channel()
        channel.queue_declare(TAP, durable=True, auto_delete=False)
        channel.queue_bind(TAP, topology.ERP_EXCHANGE, "#")


def drain(uri: str, queue: str) -> list[amqp.Message]:
    with Connection(uri) as connection:
        channel = connection.channel()
        messages = []
        while (message := channel.basic_get(queue, no_ack=True)) is not None:
            messages.append(message)
        return messages


def envelope_of(message: amqp.Message) -> dict[str, Any]:
    body = message.body
    return dict(json.loads(body.decode("utf-8") if isinstance(body, bytes) else body))


def valid_erp_event(envelope: dict[str, Any]) -> dict[str, Any]:
    """The event's data as sales loads it; a ValidationError if the contract is broken."""
    EnvelopeSchema().load(envelope)
    assert envelope["source"] == "erp"
    loaded: dict[str, Any] = ERP_EVENT_SCHEMAS[envelope["type"]]().load(envelope["data"])
    return loaded


def publish_stream(uri: str, tmp_path: Path, *args: str) -> dict[str, Any]:
    expected = tmp_path / "expected.json"
    result = simulator("--amqp-uri", uri, "--expected", str(expected), *args)
    assert result.returncode == 0, result.stderr
    outcome: dict[str, Any] = json.loads(expected.read_text(encoding="utf-8"))
    return outcome


# -- publish -------------------------------------------------------------------------------
def test_the_stream_arrives_whole_valid_with_the_duplicates_and_reorderings_asked_for(
    uri, tmp_path
):
    tap(uri)
    expected = publish_stream(
        uri, tmp_path, "--events", "800", "--seed", "11", "--duplicates", "0.05",
        "--out-of-order", "0.1",
    )  # fmt: skip

    received = {
        event_type: drain(uri, topology.handler_queue("sales", event_type))
        for event_type in topology.ERP_EVENT_TYPES
    }
    in_order = [envelope_of(message)["event_id"] for message in drain(uri, TAP)]

    every = [message for messages in received.values() for message in messages]
    assert len(every) == expected["messages"] == 800 + len(expected["duplicates"])
    assert len(in_order) == len(every)
    seen: Counter[str] = Counter()
    types: dict[str, str] = {}
    for event_type, messages in received.items():
        for message in messages:
            envelope = envelope_of(message)
            assert envelope["type"] == event_type
            valid_erp_event(envelope)
            assert message.properties["content_type"] == "application/json"
            assert message.properties["delivery_mode"] == 2
            assert message.properties["message_id"] == envelope["event_id"]
            seen[envelope["event_id"]] += 1
            types[envelope["event_id"]] = event_type
    assert len(seen) == expected["events"] == 800
    assert dict(Counter(types.values())) == expected["by_type"]
    assert sorted(e for e, n in seen.items() if n == 2) == sorted(expected["duplicates"])
    assert max(seen.values()) == 2
    assert 0 < len(expected["duplicates"]) < 80

    assert expected["out_of_order"]
    position = {event_id: in_order.index(event_id) for event_id in seen}  # first delivery
    for first, then in expected["out_of_order"]:
        assert position[first] < position[then], (first, then)


def test_the_expected_outcome_is_what_the_receivables_rules_make_of_what_arrived(uri, tmp_path):
    expected = publish_stream(
        uri, tmp_path, "--events", "1500", "--seed", "5", "--duplicates", "0.05",
        "--out-of-order", "0.05",
    )  # fmt: skip
    invoices, payments = [], []
    for message in drain(uri, "sales.on_erp_invoice_issued"):
        envelope = envelope_of(message)
        data = valid_erp_event(envelope)
        invoices.append(
            Invoice(
                invoice_no=data["invoice_no"],
                customer_id=data["customer"]["erp_code"],
                amount=data["amount"],
                issued_on=data["issued_at"].date(),
                due_date=data["due_date"],
                occurred_at=dt.datetime.fromisoformat(envelope["occurred_at"]),
                tax_amount=data["tax_amount"],
                erp_order_no=data["erp_order_no"],
            )
        )
    for message in drain(uri, "sales.on_erp_payment_received"):
        envelope = envelope_of(message)
        data = valid_erp_event(envelope)
        payments.append(
            Payment(
                payment_no=data["payment_no"],
                customer_id=data["customer"]["erp_code"],
                amount=data["amount"],
                received_on=data["received_at"].date(),
                occurred_at=dt.datetime.fromisoformat(envelope["occurred_at"]),
                allocations=tuple(
                    Allocation(a["invoice_no"], a["amount"]) for a in data["allocations"]
                ),
            )
        )

    result = receivables(invoices, payments)

    assert result.waiting == ()
    outstanding = {no: str(balance.outstanding) for no, balance in result.balances.items()}
    assert outstanding == {no: inv["outstanding"] for no, inv in expected["invoices"].items()}
    by_customer = result.outstanding_by_customer()
    for erp_code, customer in expected["customers"].items():
        assert by_customer.get(erp_code, Decimal("0.00")) == Decimal(customer["receivable"])
    assert any(Decimal(c["receivable"]) > 0 for c in expected["customers"].values())
    unallocated = Counter[str]()
    for payment_no, amount in result.unallocated.items():
        [payment] = {p for p in payments if p.payment_no == payment_no}
        unallocated[payment.customer_id] += amount
    for erp_code, customer in expected["customers"].items():
        assert unallocated.get(erp_code, Decimal(0)) == Decimal(customer["on_account"])


def test_orders_name_the_customers_given(uri, tmp_path):
    listed = str(uuid.uuid4())
    named = str(uuid.uuid4())
    customers = tmp_path / "customers.json"
    customers.write_text(
        json.dumps({"items": [{"id": listed, "name": "苏州恒达机电有限公司", "category": "VIP"}]}),
        encoding="utf-8",
    )

    expected = publish_stream(
        uri, tmp_path, "--events", "300", "--seed", "2", "--customers", str(customers),
        "--customer-id", named,
    )  # fmt: skip

    assert {c["crm_customer_id"] for c in expected["customers"].values()} == {listed, named}
    assert "苏州恒达机电有限公司" in {c["name"] for c in expected["customers"].values()}
    for event_type in ("order_created", "invoice_issued", "customer_credit_updated"):
        for message in drain(uri, topology.handler_queue("sales", event_type)):
            customer = valid_erp_event(envelope_of(message))["customer"]
            assert str(customer["crm_customer_id"]) in {listed, named}


def test_the_same_seed_makes_the_same_stream():
    first = [event.envelope for event in Stream(3).events(500)]
    assert [event.envelope for event in Stream(3).events(500)] == first
    assert [event.envelope for event in Stream(4).events(500)] != first


def test_without_the_topology_the_stream_stops_and_says_why(rabbit_config, tmp_path):
    expected = tmp_path / "expected.json"

    result = simulator(
        "--amqp-uri", rabbit_config["AMQP_URI"], "--events", "5", "--expected", str(expected)
    )

    assert result.returncode == 1
    assert "declare the topology first" in result.stderr
    assert not expected.exists()


# -- respond -------------------------------------------------------------------------------
def order_confirmed(
    total: str = "3887.20", item_code: str = "BRG-6205-2RS", erp_code: str | None = "C00123"
) -> dict[str, Any]:
    data = {
        "crm_order_id": str(uuid.uuid4()),
        "crm_order_code": "SO-2026-000123",
        "customer": {
            "crm_customer_id": str(uuid.uuid4()),
            "erp_code": erp_code,
            "credit_code": None,
            "name": "上海华东机电设备有限公司",
        },
        "order_date": "2026-03-03",
        "currency": "CNY",
        "prices_include_tax": False,
        "lines": [
            {
                "line_no": 1,
                "item_code": item_code,
                "item_name": "深沟球轴承",
                "spec": "6205-2RS",
                "unit": "个",
                "quantity": "200",
                "unit_price": "18.50",
                "discount_amount": "260.00",
                "tax_rate": "0.13",
                "net_amount": "3440.00",
                "tax_amount": "447.20",
                "amount": total,
            }
        ],
        "discount_amount": "260.00",
        "net_amount": "3440.00",
        "tax_amount": "447.20",
        "total_amount": total,
        "requested_delivery_date": None,
        "salesperson_code": "E1001",
        "department_code": "D-EAST-1",
    }
    ORDER_REQUEST_SCHEMAS["order_confirmed"]().load(data)
    return make_envelope("order_confirmed", data, source="sales", actor_id=None)


def send_as_sales(uri: str, *envelopes: dict[str, Any] | bytes) -> None:
    """Publish as the sales outbox does, on ``sales.events``."""
    exchange = Exchange("sales.events", type="topic", durable=True)
    with Connection(uri) as connection:
        producer = connection.Producer()
        for envelope in envelopes:
            if isinstance(envelope, bytes):
                producer.publish(envelope, exchange=exchange, routing_key="order_confirmed")
            else:
                producer.publish(
                    envelope, exchange=exchange, routing_key=envelope["type"], serializer="json"
                )


def answers(uri: str, event_type: str) -> list[dict[str, Any]]:
    found = []
    for message in drain(uri, topology.handler_queue("sales", event_type)):
        envelope = envelope_of(message)
        assert message.properties["message_id"] == envelope["event_id"]
        found.append({**envelope, "data": valid_erp_event(envelope)})
    return found


def test_respond_books_or_rejects_each_order_and_cancels_on_request(uri):
    booked = order_confirmed(erp_code=None)
    too_big = order_confirmed(total="250000.00")
    blocked = order_confirmed(item_code="VLV-D71X-DN200")
    cancel = make_envelope(
        "order_cancel_requested",
        {
            "crm_order_id": booked["data"]["crm_order_id"],
            "crm_order_code": "SO-2026-000123",
            "erp_order_no": None,
            "reason": "客户项目延期",
        },
        source="sales",
        actor_id=None,
    )
    send_as_sales(uri, booked, booked, too_big, blocked, cancel, b"not json")

    result = simulator(
        "respond", "--amqp-uri", uri, "--count", "6", "--reject-above", "100000",
        "--reject-item", "VLV-D71X-DN200",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    created = answers(uri, "order_created")
    assert len(created) == 2 and created[0] == created[1], "a repeated request, the same answer"
    order = created[0]["data"]
    assert str(order["crm_order_id"]) == booked["data"]["crm_order_id"]
    assert order["customer"]["erp_code"], "the ERP gives a new customer its code"
    assert str(order["total_amount"]) == "3887.20"
    rejected = {
        str(e["data"]["crm_order_id"]): e["data"]["reason"] for e in answers(uri, "order_rejected")
    }
    assert rejected == {
        too_big["data"]["crm_order_id"]: "订单金额 250000.00 超出客户信用额度",
        blocked["data"]["crm_order_id"]: "物料 VLV-D71X-DN200 已停用",
    }
    [cancelled] = answers(uri, "order_cancelled")
    assert cancelled["data"] == {"erp_order_no": order["erp_order_no"], "reason": "客户项目延期"}
    eventually(
        lambda: len(drain(uri, topology.ERP_DEAD_LETTERS)) == 1, what="the unreadable request"
    )


def test_respond_can_ship_invoice_and_get_paid(uri):
    confirmed = order_confirmed()
    send_as_sales(uri, confirmed)

    result = simulator("respond", "--amqp-uri", uri, "--count", "1", "--fulfil", "--pay")

    assert result.returncode == 0, result.stderr
    [created] = answers(uri, "order_created")
    [shipped] = answers(uri, "order_shipped")
    [invoice] = answers(uri, "invoice_issued")
    [payment] = answers(uri, "payment_received")
    order_no = created["data"]["erp_order_no"]
    assert shipped["data"]["erp_order_no"] == invoice["data"]["erp_order_no"] == order_no
    assert shipped["data"]["lines"][0]["quantity"] == Decimal("200")
    assert invoice["data"]["amount"] == Decimal("3887.20")
    assert payment["data"]["allocations"] == [
        {"invoice_no": invoice["data"]["invoice_no"], "amount": Decimal("3887.20")}
    ]
    times = [e["occurred_at"] for e in (created, shipped, invoice, payment)]
    assert times == sorted(times) and len(set(times)) == 4
