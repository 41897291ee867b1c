"""ERP events applied by batches (``ErpInbound.prepare`` loading what a batch reads, then each
event applied from it) leave the database and the outbox exactly as applying the same events
one query at a time does: the same orders, versions, codes, shipments, invoices, balances,
allocations, waiting events and announced payloads; a batch with an event that fails falls
back one by one and still agrees."""

from __future__ import annotations

import random
import uuid
from collections import Counter, defaultdict
from typing import Any

import pytest
from sqlalchemy import event, select

from crm_common.batch_consumer import Delivery, EventBatch
from crm_common.consumer import ReceivedEvent
from crm_common.db import SessionScope, engine_for
from crm_common.outbox import OutboxWriter
from sales.application.erp_inbound import ErpInbound
from sales.application.erp_orders import update_orders_together
from sales.application.read_models import ReadModels
from sales.models import Base, CodeCounter, HistoryEntry, InboxEvent, OutboxMessage
from sales.models.erp import ErpUnmatchedEvent
from sales.models.orders import (
    ErpOrderEventWaiting,
    SalesOrder,
    SalesOrderLine,
    SalesOrderShipment,
    SalesOrderShipmentLine,
)
from sales.models.receivables import CreditLimit, Invoice, Payment, PaymentAllocation
from tools.erp_simulator.delivery import plan
from tools.erp_simulator.world import Stream, customers_from, numbered_customer_records

SEED = 11
BATCH = 40
UNSTABLE = {"id", "created_at", "updated_at", "applied_at", "waiting_since", "recorded_at"}


def customer_records(count: int) -> list[dict[str, Any]]:
    return numbered_customer_records(random.Random(SEED), count, "客户")


def envelopes(records: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    rng = random.Random(SEED)
    events = Stream(SEED, customers_from(rng, records)).events(count)
    delivery = plan(events, rng, duplicates=0.03, out_of_order=0.15)
    return [event.envelope for event in delivery.messages]


def batches(messages: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Each type's queue cut in batches, the queues taken in turn."""
    queues: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for envelope in messages:
        queues[envelope["type"]].append(envelope)
    cut = {kind: [q[i : i + BATCH] for i in range(0, len(q), BATCH)] for kind, q in queues.items()}
    found = []
    while any(cut.values()):
        for kind in cut:
            if cut[kind]:
                found.append(cut[kind].pop(0))
    return found


def database(tmp_path, name: str, records: list[dict[str, Any]]) -> SessionScope:
    """A sales database (SQLite file ``name``, or the PostgreSQL database ``name`` names)."""
    engine = engine_for(name if name.startswith("postgresql") else f"sqlite:///{tmp_path / name}")
    Base.metadata.create_all(engine)
    scope = SessionScope(engine)
    with scope.session() as session:
        # half the customers are known from the start; the others arrive half-way
        for number, record in enumerate(records[: len(records) // 2], start=1):
            keep(session, number, record)
    return scope


def keep(session, number: int, record: dict[str, Any]) -> None:
    customer = {
        "id": record["crm_customer_id"],
        "code": f"C2026{number:06d}",
        "name": record["name"],
        "status": "formal",
        "owner_id": "u-sales-01",
        "department_id": "d-east-sh",
        "category": "A",
        "erp_code": record["erp_code"],
        "version": 1,
    }
    ReadModels(session).keep_customer(customer)
    ErpInbound(session, OutboxWriter(OutboxMessage, "sales")).customer_known(customer)


def apply_all(scope: SessionScope, records, messages, *, prepared: bool) -> list[Exception]:
    outbox = OutboxWriter(OutboxMessage, "sales")
    failures = []
    cut = batches(messages)
    for number, envelopes_of_batch in enumerate(cut):
        if number == len(cut) // 2:
            with scope.session() as session:
                for later, record in enumerate(records[len(records) // 2 :], start=100):
                    keep(session, later, record)
        event_type = envelopes_of_batch[0]["type"]
        handler = "sales.on_erp_" + event_type
        deliveries = [
            Delivery(ReceivedEvent(envelope, handler, InboxEvent), None)
            for envelope in envelopes_of_batch
        ]
        batch = EventBatch(deliveries, handler, InboxEvent, event_type)
        with scope.session() as session:
            inbound = ErpInbound(session, outbox)
            if prepared:
                inbound.prepare(batch.events)
            batch.apply(session, inbound.apply)
        failures += [d.failure for d in deliveries if d.failure is not None]
    return failures


def plain(value: Any, codes: dict[str, str]) -> Any:
    """A payload or row with ids replaced by order codes and instants of the run left out."""
    if isinstance(value, dict):
        return {k: plain(v, codes) for k, v in value.items() if k not in UNSTABLE}
    if isinstance(value, list):
        return [plain(item, codes) for item in value]
    if isinstance(value, uuid.UUID):
        value = str(value)
    if isinstance(value, str) and value in codes:
        return codes[value]
    return value


def state(scope: SessionScope) -> dict[str, Any]:
    with scope.session() as session:
        orders = session.scalars(select(SalesOrder)).all()
        codes = {str(order.id): order.code for order in orders}
        shipment_orders = {
            str(s.id): codes[str(s.order_id)] for s in session.scalars(select(SalesOrderShipment))
        }
        codes.update(shipment_orders)

        def rows(model, *order_by):
            return [
                plain({c.key: getattr(row, c.key) for c in model.__table__.columns}, codes)
                for row in session.scalars(select(model).order_by(*order_by))
            ]

        return {
            "orders": rows(SalesOrder, SalesOrder.code),
            "lines": sorted(rows(SalesOrderLine), key=lambda r: (r["order_id"], r["line_no"])),
            "shipments": rows(SalesOrderShipment, SalesOrderShipment.shipment_no),
            "shipment_lines": sorted(
                rows(SalesOrderShipmentLine), key=lambda r: (r["shipment_id"], r["position"])
            ),
            "waiting": rows(ErpOrderEventWaiting, ErpOrderEventWaiting.event_id),
            "invoices": rows(Invoice, Invoice.invoice_no),
            "payments": rows(Payment, Payment.payment_no),
            "allocations": rows(
                PaymentAllocation, PaymentAllocation.payment_no, PaymentAllocation.invoice_no
            ),
            "credit_limits": rows(CreditLimit, CreditLimit.customer_id),
            "unmatched": [
                (row.event_id, row.status, row.attempts)
                for row in session.scalars(
                    select(ErpUnmatchedEvent).order_by(ErpUnmatchedEvent.event_id)
                )
            ],
            "history": sorted(
                (codes.get(row.entity_id, row.entity_id), row.change, row.old, row.new)
                for row in session.scalars(select(HistoryEntry))
            ),
            "outbox": [
                (row.routing_key, plain(row.payload["data"], codes))
                for row in session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
            ],
            "inbox": sorted(session.scalars(select(InboxEvent.event_id))),
            "counters": rows(CodeCounter, CodeCounter.prefix, CodeCounter.year),
        }


@pytest.fixture(scope="module")
def stream():
    records = customer_records(8)
    return records, envelopes(records, 900)


class Statements:
    """Counts the statements an engine runs, by their first words."""

    def __init__(self, scope: SessionScope) -> None:
        self.counts: Counter[str] = Counter()
        event.listen(scope.engine, "before_cursor_execute", self.count)

    def total(self) -> int:
        return sum(self.counts.values())

    def count(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.counts[" ".join(statement.split()[:3])] += 1


def test_batches_applied_from_what_they_loaded_agree_with_one_query_at_a_time(tmp_path, stream):
    records, messages = stream
    one_by_one = database(tmp_path, "plain.db", records)
    batched = database(tmp_path, "batched.db", records)
    plain_statements, batched_statements = Statements(one_by_one), Statements(batched)
    assert apply_all(one_by_one, records, messages, prepared=False) == []
    assert apply_all(batched, records, messages, prepared=True) == []
    # one query per kind of document a batch, not one per event
    assert batched_statements.total() * 2 < plain_statements.total()
    expected, found = state(one_by_one), state(batched)
    assert len(expected["orders"]) > 50 and len(expected["outbox"]) > 100
    assert any(order["version"] > 2 for order in expected["orders"])
    assert expected["waiting"] == [] or len(expected["waiting"]) < 20
    for part in expected:
        assert found[part] == expected[part], part


def test_batches_on_postgresql_agree_with_one_query_at_a_time(
    tmp_path, stream, pg_uri, second_pg_uri
):
    """On PostgreSQL too (where a batch's changed orders are written by one UPDATE per set of
    changed columns, in pages of statements); the first half of the stream."""
    records, messages = stream
    messages = messages[: len(messages) // 2]
    one_by_one = database(tmp_path, pg_uri, records)
    batched = database(tmp_path, second_pg_uri, records)
    plain_statements, batched_statements = Statements(one_by_one), Statements(batched)
    assert apply_all(one_by_one, records, messages, prepared=False) == []
    assert apply_all(batched, records, messages, prepared=True) == []
    updates = "UPDATE sales_orders SET"
    assert batched_statements.counts[updates] * 4 < plain_statements.counts[updates]
    expected, found = state(one_by_one), state(batched)
    assert any(order["version"] > 2 for order in expected["orders"])
    for part in expected:
        assert found[part] == expected[part], part


def test_orders_written_together_are_read_again_after_a_rollback(tmp_path, stream):
    """The flush still takes the orders the batch's UPDATE wrote (with nothing left to write),
    so a rolled-back savepoint expires them as it would have."""
    records, messages = stream
    scope = database(tmp_path, "orders.db", records)
    assert apply_all(scope, records, messages[:300], prepared=True) == []
    with scope.session() as session:
        update_orders_together(session)
        order = session.scalars(select(SalesOrder).order_by(SalesOrder.code)).first()
        status, version = order.status, order.version
        savepoint = session.begin_nested()
        order.status, order.version = "cancelled", version + 5
        session.flush()  # written by the batch's UPDATE, not by the ORM
        assert session.scalar(select(SalesOrder.version).where(SalesOrder.id == order.id)) == (
            version + 5
        )
        savepoint.rollback()
        assert (order.status, order.version) == (status, version)


def broken(messages: list[dict[str, Any]], event_type: str, change) -> dict[str, Any]:
    """A copy of the stream's first event of ``event_type`` of a customer known from the
    start, with a new id, changed so that it can never apply."""
    known = {f"C{number:05d}" for number in range(1, 5)}
    original = next(
        m
        for m in messages
        if m["type"] == event_type and m["data"]["customer"]["erp_code"] in known
    )
    data = {**original["data"]}
    change(data)
    return {**original, "event_id": str(uuid.uuid4()), "data": data}


def test_batches_with_a_failing_event_fall_back_one_by_one_and_still_agree(tmp_path, stream):
    records, messages = stream
    bad = [
        broken(
            messages,
            "invoice_issued",
            lambda d: d.update(invoice_no="INV-BAD", tax_amount=str(d["amount"]) + "1"),
        ),
        broken(
            messages,
            "order_created",
            lambda d: d.update(erp_order_no="SO-BAD", crm_order_id=str(uuid.uuid4())),
        ),
        broken(
            messages,
            "payment_received",
            lambda d: d.update(
                payment_no="PAY-BAD",
                allocations=[{"invoice_no": "INV-X", "amount": "99999999.00"}],
            ),
        ),
    ]
    middle = len(messages) // 2
    with_bad = [*messages[:middle], *bad, *messages[middle:]]
    one_by_one = database(tmp_path, "plain.db", records)
    batched = database(tmp_path, "batched.db", records)
    assert len(apply_all(one_by_one, records, with_bad, prepared=False)) == len(bad)
    assert len(apply_all(batched, records, with_bad, prepared=True)) == len(bad)
    expected, found = state(one_by_one), state(batched)
    for part in expected:
        assert found[part] == expected[part], part
