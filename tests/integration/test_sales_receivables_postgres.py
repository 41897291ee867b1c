"""Receivables on PostgreSQL: migration 0007 builds exactly the receivable models, the sums in
fen and the aging and summary queries run there, a shuffled stream with duplicates gives what
it implies, and how fast receivable events apply (printed, batched as the ERP consumer applies
them: one transaction per batch, a savepoint per event)."""

from __future__ import annotations

import itertools
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import eventlet
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, func, select, text

from crm_common.application import UseCaseContext
from crm_common.context import bind
from crm_common.db import SessionScope, engine_for
from crm_common.migrations import upgrade
from crm_common.models import utcnow
from crm_common.outbox import OutboxWriter
from sales.application.erp_receivables import apply_receivable_event
from sales.application.receivables import Receivables, announce_overdue, business_today
from sales.models import Base, OutboxMessage
from sales.models.receivables import Invoice, Payment
from sales.repository.receivables import customer_exposure
from sales.schemas.erp import ERP_EVENT_SCHEMAS
from tests.unit.sales.sample_org import ADMIN, EAST_MACHINERY, GUANGZHOU_HEAVY, seed

pytestmark = pytest.mark.postgres

TABLES = {"invoices", "payments", "payment_allocations", "credit_limits", "invoice_overdue_notices"}
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CUSTOMERS = {EAST_MACHINERY: "E001", GUANGZHOU_HEAVY: "E003"}
outbox = OutboxWriter(OutboxMessage, "sales")


def tables_of(diff):
    """The tables one entry of ``compare_metadata`` is about."""
    found = set()
    for part in diff if isinstance(diff, list) else [diff]:
        for item in part:
            name = getattr(item, "name", None)
            table = getattr(item, "table", None)
            if getattr(table, "name", None):
                found.add(table.name)
            elif isinstance(name, str):
                found.add(name)
            elif isinstance(item, str):
                found.add(item)
    return found


def test_the_migration_builds_exactly_the_receivable_models(pg_uri):
    upgrade("sales", pg_uri)
    engine = create_engine(pg_uri)
    try:
        with engine.connect() as connection:
            diffs = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()
    assert [d for d in diffs if tables_of(d) & TABLES] == []


def stream(count, rng):
    """(event type, data, occurred_at) of ``count`` invoices, a correction of some, and
    partial payments of most, and the outstanding amount each invoice should end with."""
    clock = itertools.count()
    events, expected = [], {}
    for number in range(count):
        customer = rng.choice(list(CUSTOMERS))
        named = {"crm_customer_id": str(customer), "erp_code": CUSTOMERS[customer], "name": "客户"}
        invoice_no = f"INV-{number:06d}"
        amount = Decimal(rng.randint(10_000, 9_000_000)) / 100
        for version in range(2 if rng.random() < 0.2 else 1):
            if version:
                amount = (amount * Decimal("0.95")).quantize(Decimal("0.01"))
            data = {
                "invoice_no": invoice_no,
                "erp_order_no": f"SO-{number:06d}",
                "customer": named,
                "issued_at": T0.isoformat(),
                "due_date": str((T0 + timedelta(days=rng.randint(-120, 60))).date()),
                "amount": str(amount),
                "tax_amount": "0.00",
                "currency": "CNY",
            }
            events.append(("invoice_issued", data, customer, T0 + timedelta(seconds=next(clock))))
        paid = (amount * Decimal(rng.randint(0, 100)) / 100).quantize(Decimal("0.01"))
        if paid:
            data = {
                "payment_no": f"RC-{number:06d}",
                "customer": named,
                "received_at": T0.isoformat(),
                "amount": str(paid),
                "currency": "CNY",
                "allocations": [{"invoice_no": invoice_no, "amount": str(paid)}],
            }
            events.append(("payment_received", data, customer, T0 + timedelta(seconds=next(clock))))
        expected[invoice_no] = (customer, amount - paid)
    return events, expected


def apply_batches(db, deliveries, size):
    """Apply ``deliveries`` in transactions of ``size`` events, a savepoint per event, as the
    ERP consumer does; returns events per second."""
    started = time.perf_counter()
    for first in range(0, len(deliveries), size):
        with db.session() as session:
            for event_type, raw, customer, occurred_at, event_id in deliveries[
                first : first + size
            ]:
                data = ERP_EVENT_SCHEMAS[event_type]().load(raw)
                with session.begin_nested():
                    apply_receivable_event(
                        session, outbox, event_type, data, occurred_at, event_id, customer
                    )
    return len(deliveries) / (time.perf_counter() - started)


def test_a_shuffled_stream_with_duplicates_on_postgresql(pg_uri):
    upgrade("sales", pg_uri)
    db = SessionScope(engine_for(pg_uri))
    with db.session() as session:
        seed(session)
    rng = random.Random(7)
    events, expected = stream(500, rng)
    deliveries = [(*event, str(uuid.uuid4())) for event in events]
    deliveries += rng.sample(deliveries, len(deliveries) // 10)  # redeliveries
    rng.shuffle(deliveries)
    rate = apply_batches(db, deliveries, 100)
    print(f"\nreceivable events applied on PostgreSQL: {len(deliveries)} at {rate:.0f}/s")
    with db.session() as session:
        found = {i.invoice_no: i.outstanding for i in session.scalars(select(Invoice))}
        payments = session.scalar(select(func.count()).select_from(Payment))
        exposures = {c: customer_exposure(session, c).outstanding for c in CUSTOMERS}
    assert found == {no: owed for no, (_customer, owed) in expected.items()}
    assert payments == len({raw["payment_no"] for kind, raw, *_ in events if "payment_no" in raw})
    for customer in CUSTOMERS:
        owed = sum((o for c, o in expected.values() if c == customer), Decimal("0.00"))
        assert exposures[customer] == owed
    bind(ADMIN, "req-pg")
    try:
        with db.read() as session:
            context = UseCaseContext(session, outbox, ADMIN, utcnow())
            aging = Receivables(context).aging({"by": "customer"})
            earlier = Receivables(context).aging({"by": "owner", "as_of": "2026-06-30"})
            before = Receivables(context).aging({"by": "owner", "as_of": "2026-01-04"})
            summary = Receivables(context).customer_receivable(str(EAST_MACHINERY))
            overdue = Receivables(context).overdue({"days": 1, "limit": 5})
    finally:
        bind(None, None)
    total = sum(Decimal(row["total"]) for row in aging["rows"])
    assert total == sum((o for _c, o in expected.values()), Decimal("0.00"))
    assert sum(Decimal(row["total"]) for row in earlier["rows"]) == total
    assert before["rows"] == []
    assert Decimal(summary["currencies"][0]["outstanding"]) == exposures[EAST_MACHINERY]
    assert len(overdue["items"]) == 5
    assert business_today(utcnow()).isoformat() == overdue["as_of"]


def test_an_invoice_and_its_payment_applied_at_once_see_each_other(pg_uri):
    """The payment's transaction has not committed when the invoice's starts: the invoice
    waits for it, then applies the allocation instead of leaving it waiting forever."""
    upgrade("sales", pg_uri)
    engine = engine_for(pg_uri)
    db = SessionScope(engine)
    with db.session() as session:
        seed(session)
    named = {"crm_customer_id": str(EAST_MACHINERY), "erp_code": "E001", "name": "客户"}
    invoice = {
        "invoice_no": "INV-RACE",
        "customer": named,
        "issued_at": T0.isoformat(),
        "due_date": "2026-02-05",
        "amount": "1000.00",
        "tax_amount": "115.04",
        "currency": "CNY",
    }
    payment = {
        "payment_no": "RC-RACE",
        "customer": named,
        "received_at": T0.isoformat(),
        "amount": "400.00",
        "currency": "CNY",
        "allocations": [{"invoice_no": "INV-RACE", "amount": "400.00"}],
    }

    def apply(session, event_type, raw):
        data = ERP_EVENT_SCHEMAS[event_type]().load(raw)
        apply_receivable_event(
            session, outbox, event_type, data, T0, str(uuid.uuid4()), EAST_MACHINERY
        )

    def issue_invoice():
        with db.session() as session:
            apply(session, "invoice_issued", invoice)

    with db.session() as session:
        apply(session, "payment_received", payment)
        session.flush()
        other = eventlet.spawn(issue_invoice)
        deadline = time.monotonic() + 10
        while not waiting_on_a_lock(engine):
            assert time.monotonic() < deadline, "the invoice's writer never waited"
            eventlet.sleep(0.01)
        assert not other.dead
    other.wait()
    with db.session() as session:
        found = session.scalar(select(Invoice).where(Invoice.invoice_no == "INV-RACE"))
        assert (found.allocated, found.outstanding) == (Decimal("400.00"), Decimal("600.00"))


def waiting_on_a_lock(engine):
    with engine.connect() as connection:
        waiting = connection.scalar(
            text("select count(*) from pg_locks where locktype = 'advisory' and not granted")
        )
    return waiting > 0


def test_one_process_at_a_time_announces_overdue_invoices(pg_uri):
    upgrade("sales", pg_uri)
    db = SessionScope(engine_for(pg_uri))
    with db.session() as session:
        seed(session)
        named = {"crm_customer_id": str(EAST_MACHINERY), "erp_code": "E001", "name": "客户"}
        raw = {
            "invoice_no": "INV-LATE",
            "customer": named,
            "issued_at": T0.isoformat(),
            "due_date": "2026-01-10",
            "amount": "100.00",
            "tax_amount": "0.00",
            "currency": "CNY",
        }
        data = ERP_EVENT_SCHEMAS["invoice_issued"]().load(raw)
        apply_receivable_event(
            session, outbox, "invoice_issued", data, T0, "e-late", EAST_MACHINERY
        )
    now = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    with db.session() as first, db.session() as second:
        assert announce_overdue(first, outbox, now) == 1
        assert announce_overdue(second, outbox, now) == 0
    with db.session() as session:
        assert announce_overdue(session, outbox, now) == 0
        sent = session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.routing_key == "invoice_overdue")
        )
    assert sent == 1
