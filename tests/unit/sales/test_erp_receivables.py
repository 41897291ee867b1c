"""The ERP's invoices, payments and credit limits applied to sales' receivables: idempotent by
document number, the later ``occurred_at`` winning whatever the arrival order, allocations to
an unknown invoice waiting for it, nothing counted twice."""

from __future__ import annotations

import itertools
import random
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from crm_common.errors import ValidationFailed
from crm_common.outbox import OutboxWriter
from sales.application.erp_receivables import apply_receivable_event
from sales.models import OutboxMessage
from sales.models.receivables import CreditLimit, Invoice, Payment, PaymentAllocation
from sales.repository.receivables import customer_exposure
from sales.schemas.erp import ERP_EVENT_SCHEMAS

from .sample_org import EAST_MACHINERY, GUANGZHOU_HEAVY, OLD_EAST

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
CUSTOMER = {"crm_customer_id": str(EAST_MACHINERY), "erp_code": "E001", "name": "华东机电"}
outbox = OutboxWriter(OutboxMessage, "sales")
counter = itertools.count(1)


def invoice_event(invoice_no="INV-001", amount="1130.00", tax="130.00", **changes):
    data = {
        "invoice_no": invoice_no,
        "erp_order_no": "SO-001",
        "customer": CUSTOMER,
        "issued_at": T0.isoformat(),
        "due_date": "2026-03-31",
        "amount": amount,
        "tax_amount": tax,
        "currency": "CNY",
        **changes,
    }
    return "invoice_issued", data


def payment_event(payment_no="RC-001", amount="1130.00", allocations=None, **changes):
    data = {
        "payment_no": payment_no,
        "customer": CUSTOMER,
        "received_at": (T0 + timedelta(days=5)).isoformat(),
        "amount": amount,
        "currency": "CNY",
        "allocations": [{"invoice_no": "INV-001", "amount": amount}]
        if allocations is None
        else allocations,
        **changes,
    }
    return "payment_received", data


@pytest.fixture
def apply(db):
    def apply(event, occurred_at=T0, event_id=None, customer_id=EAST_MACHINERY):
        event_type, raw = event
        data = ERP_EVENT_SCHEMAS[event_type]().load(raw)
        with db.session() as session:
            apply_receivable_event(
                session,
                outbox,
                event_type,
                data,
                occurred_at,
                event_id or f"evt-{next(counter)}",
                customer_id,
            )

    return apply


@pytest.fixture
def invoice(db):
    def read(invoice_no="INV-001"):
        with db.session() as session:
            found = session.scalar(select(Invoice).where(Invoice.invoice_no == invoice_no))
            if found is None:
                return None
            return {
                "amount": found.amount,
                "allocated": found.allocated,
                "outstanding": found.outstanding,
                "due_date": found.due_date,
                "owner_id": found.owner_id,
                "department_id": found.department_id,
                "region": found.region,
            }

    return read


def count(db, model):
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(model))


def allocations(db):
    with db.session() as session:
        return {
            (a.payment_no, a.invoice_no): (a.amount, a.applied, a.reason)
            for a in session.scalars(select(PaymentAllocation))
        }


def test_an_invoice_then_its_payment_clears_it(apply, invoice, db, outbox_events):
    apply(invoice_event())
    assert invoice()["outstanding"] == Decimal("1130.00")
    assert invoice()["owner_id"] == "u-sales-01"
    assert invoice()["region"] == "华东/上海"
    apply(payment_event(amount="1000.00"), occurred_at=T0 + timedelta(days=5))
    assert invoice()["allocated"] == Decimal("1000.00")
    assert invoice()["outstanding"] == Decimal("130.00")
    received = [data for kind, data in outbox_events() if kind == "payment_received"]
    assert len(received) == 1
    assert received[0]["customer_id"] == str(EAST_MACHINERY)
    assert received[0]["owner_id"] == "u-sales-01"
    assert received[0]["payment"]["allocations"][0]["applied"] is True


def test_a_payment_before_its_invoice_waits_then_applies(apply, invoice, db):
    apply(payment_event(), occurred_at=T0 + timedelta(days=5))
    assert invoice() is None
    assert allocations(db) == {
        ("RC-001", "INV-001"): (Decimal("1130.00"), False, "unknown_invoice")
    }
    assert customer_exposure_of(db).outstanding == Decimal("0.00")
    apply(invoice_event())
    assert invoice()["outstanding"] == Decimal("0.00")
    assert invoice()["allocated"] == Decimal("1130.00")
    assert allocations(db)[("RC-001", "INV-001")] == (Decimal("1130.00"), True, None)


def customer_exposure_of(db, customer_id=EAST_MACHINERY):
    with db.session() as session:
        return customer_exposure(session, customer_id)


def test_duplicates_never_double(apply, invoice, db, outbox_events):
    apply(invoice_event(), event_id="e-inv")
    apply(invoice_event(), event_id="e-inv")
    apply(invoice_event(), event_id="e-inv-again")
    apply(payment_event(amount="500.00"), T0 + timedelta(days=5), event_id="e-pay")
    apply(payment_event(amount="500.00"), T0 + timedelta(days=5), event_id="e-pay")
    apply(payment_event(amount="500.00"), T0 + timedelta(days=5), event_id="e-pay-again")
    assert count(db, Invoice) == 1
    assert count(db, Payment) == 1
    assert count(db, PaymentAllocation) == 1
    assert invoice()["outstanding"] == Decimal("630.00")
    assert len([k for k, _ in outbox_events() if k == "payment_received"]) == 1


def test_the_later_version_of_an_invoice_wins_in_any_order(apply, invoice):
    corrected = invoice_event(amount="1017.00", tax="117.00", due_date="2026-04-15")
    apply(corrected, occurred_at=T0 + timedelta(hours=2))
    apply(invoice_event(), occurred_at=T0)
    assert invoice()["amount"] == Decimal("1017.00")
    assert invoice()["due_date"] == date(2026, 4, 15)
    apply(invoice_event(amount="900.00", tax="100.00"), occurred_at=T0 + timedelta(hours=3))
    assert invoice()["amount"] == Decimal("900.00")


def test_an_amount_change_keeps_the_allocations(apply, invoice):
    apply(invoice_event())
    apply(payment_event(amount="1000.00"), occurred_at=T0 + timedelta(days=5))
    apply(invoice_event(amount="1017.00", tax="117.00"), occurred_at=T0 + timedelta(days=6))
    assert invoice()["allocated"] == Decimal("1000.00")
    assert invoice()["outstanding"] == Decimal("17.00")


def test_an_over_allocation_is_kept_and_the_outstanding_never_negative(apply, invoice):
    apply(invoice_event(amount="100.00", tax="11.50"))
    apply(payment_event(amount="150.00"), occurred_at=T0 + timedelta(days=1))
    assert invoice()["allocated"] == Decimal("150.00")
    assert invoice()["outstanding"] == Decimal("0.00")


def test_a_newer_payment_version_replaces_its_allocations(apply, invoice, db):
    apply(invoice_event())
    apply(invoice_event("INV-002", amount="226.00", tax="26.00"))
    apply(payment_event(amount="1130.00"), occurred_at=T0 + timedelta(days=5))
    moved = payment_event(
        amount="1130.00",
        allocations=[
            {"invoice_no": "INV-001", "amount": "904.00"},
            {"invoice_no": "INV-002", "amount": "226.00"},
        ],
    )
    apply(moved, occurred_at=T0 + timedelta(days=6))
    apply(payment_event(amount="1130.00"), occurred_at=T0 + timedelta(days=5))  # older: ignored
    assert invoice()["outstanding"] == Decimal("226.00")
    assert invoice("INV-002")["outstanding"] == Decimal("0.00")
    assert count(db, PaymentAllocation) == 2


def test_an_allocation_in_another_currency_waits(apply, invoice, db):
    apply(invoice_event(currency="USD"))
    apply(payment_event(amount="100.00"), occurred_at=T0 + timedelta(days=1))
    assert invoice()["outstanding"] == Decimal("1130.00")
    assert allocations(db)[("RC-001", "INV-001")][1:] == (False, "currency_mismatch")
    apply(invoice_event(currency="CNY"), occurred_at=T0 + timedelta(days=2))
    assert invoice()["outstanding"] == Decimal("1030.00")


def test_a_payment_on_account_counts_nowhere_but_is_kept(apply, db, outbox_events):
    apply(payment_event(amount="5000.00", allocations=[]))
    with db.session() as session:
        payment = session.scalar(select(Payment))
        assert (payment.amount, payment.allocated) == (Decimal("5000.00"), Decimal("0.00"))
    assert customer_exposure_of(db).outstanding == Decimal("0.00")


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (invoice_event(amount="10.001"), "amount"),
        (invoice_event(amount="-5.00"), "amount"),
        (invoice_event(amount="10.00", tax="20.00"), "tax_amount"),
        (payment_event(amount="0.00", allocations=[]), "amount"),
        (payment_event(amount="100.00", allocations=[{"invoice_no": "X", "amount": "200.00"}]),
         "allocations"),
        (payment_event(amount="100.00", allocations=[{"invoice_no": "X", "amount": "0.00"}]),
         "allocations.1.amount"),
    ],
)  # fmt: skip
def test_data_that_can_never_apply_is_refused_naming_the_field(apply, db, event, field):
    with pytest.raises(ValidationFailed) as refused:
        apply(event)
    assert field in refused.value.details["errors"]
    assert count(db, Invoice) == 0
    assert count(db, Payment) == 0


def test_the_credit_limit_keeps_the_latest_and_the_exposure_reads_it(apply, db):
    limit = ("customer_credit_updated", {"customer": CUSTOMER, "credit_limit": "50000.00",
                                         "currency": "CNY"})  # fmt: skip
    lower = ("customer_credit_updated", {"customer": CUSTOMER, "credit_limit": "20000.00",
                                         "currency": "CNY"})  # fmt: skip
    apply(lower, occurred_at=T0 + timedelta(days=1))
    apply(limit, occurred_at=T0)
    apply(invoice_event())
    apply(invoice_event("INV-USD", currency="USD"))
    exposure = customer_exposure_of(db)
    assert exposure.credit_limit == Decimal("20000.00")
    assert exposure.currency == "CNY"
    assert exposure.outstanding == Decimal("1130.00")
    assert count(db, CreditLimit) == 1
    other = customer_exposure_of(db, GUANGZHOU_HEAVY)
    assert (other.credit_limit, other.currency, other.outstanding) == (None, None, Decimal("0.00"))


def test_a_shuffled_stream_with_duplicates_gives_what_the_stream_implies(apply, db):
    """Invoices, corrections and partial payments delivered in random order, each twice:
    every invoice owes its latest amount less what was allocated to it."""
    rng = random.Random(11)
    stream = []
    expected = {}
    clock = itertools.count()

    def at():
        return T0 + timedelta(minutes=next(clock))

    for number in range(40):
        invoice_no = f"INV-{number:03d}"
        amount = Decimal(rng.randint(100, 90_000)) / 100 + 100
        stream.append((invoice_event(invoice_no, str(amount), "0.00"), at()))
        if rng.random() < 0.3:
            amount = (amount * Decimal("0.97")).quantize(Decimal("0.01"))
            stream.append((invoice_event(invoice_no, str(amount), "0.00"), at()))
        paid = (amount * Decimal(rng.randint(0, 100)) / 100).quantize(Decimal("0.01"))
        if paid:
            allocation = [{"invoice_no": invoice_no, "amount": str(paid)}]
            stream.append((payment_event(f"RC-{number:03d}", str(paid), allocation), at()))
        expected[invoice_no] = amount - paid
    deliveries = [(event, moment, str(uuid.uuid4())) for event, moment in stream] * 2
    rng.shuffle(deliveries)
    for event, moment, event_id in deliveries:
        apply(event, occurred_at=moment, event_id=event_id)
    with db.session() as session:
        found = {i.invoice_no: i.outstanding for i in session.scalars(select(Invoice))}
    assert found == expected
    assert customer_exposure_of(db).outstanding == sum(expected.values())


def test_documents_of_a_merged_customer_go_to_the_survivor(apply, db):
    """旧华东 was merged into 华东机电: what the ERP still sends for it counts on 华东机电."""
    apply(invoice_event(), customer_id=OLD_EAST)
    limit = ("customer_credit_updated", {"customer": CUSTOMER, "credit_limit": "9000.00",
                                         "currency": "CNY"})  # fmt: skip
    apply(limit, customer_id=OLD_EAST)
    with db.session() as session:
        invoice = session.scalar(select(Invoice))
        assert (invoice.customer_id, invoice.owner_id) == (EAST_MACHINERY, "u-sales-01")
    assert customer_exposure_of(db).credit_limit == Decimal("9000.00")
    assert customer_exposure_of(db).outstanding == Decimal("1130.00")
