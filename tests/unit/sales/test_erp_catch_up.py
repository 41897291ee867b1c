"""ERP events waiting for a customer sales did not know are applied when the customer arrives
by the customer snapshot of a catch-up, as when it arrives by a customer event."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from crm_common.db import SessionScope, engine_for
from crm_common.outbox import OutboxWriter
from sales.application.catch_up import CatchUp
from sales.application.erp_inbound import ErpInbound
from sales.models import Base, OutboxMessage
from sales.models.erp import APPLIED, WAITING, ErpUnmatchedEvent
from sales.models.receivables import Invoice, Payment
from tests.fixtures import outbox_reader

from .test_erp_inbound import CREDIT_CODE, customer, invoice, received
from .test_read_models import customer as customer_record
from .test_read_models_catch_up import CustomerService, Pages


@pytest.fixture
def db(sqlite_uri):
    engine = engine_for(sqlite_uri)
    Base.metadata.create_all(engine)
    return SessionScope(engine)


def payment(who, number="PAY-1"):
    return {
        "payment_no": number,
        "customer": who,
        "received_at": "2026-03-03T10:00:00+08:00",
        "amount": "113.00",
        "currency": "CNY",
        "allocations": [{"invoice_no": "INV-1", "amount": "113.00"}],
    }


def apply(db, event):
    with db.session() as session:
        return ErpInbound(session, OutboxWriter(OutboxMessage, "sales")).apply(event)


def statuses(db):
    with db.session() as session:
        rows = session.scalars(select(ErpUnmatchedEvent).order_by(ErpUnmatchedEvent.event_id))
        return {row.event_type: (row.status, row.customer_id) for row in rows}


def test_events_waiting_for_customers_are_applied_when_the_snapshot_brings_them(db):
    by_code, by_credit_code, by_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert not apply(db, received("invoice_issued", invoice(customer(erp_code="C00001"))))
    assert not apply(
        db,
        received(
            "payment_received",
            payment(customer(erp_code="C00077", credit_code=CREDIT_CODE)),
        ),
    )
    assert not apply(
        db,
        received(
            "customer_credit_updated",
            {
                "customer": customer(crm_id=by_id, erp_code="C00099"),
                "credit_limit": "50000.00",
                "currency": "CNY",
            },
        ),
    )
    assert not apply(
        db, received("invoice_issued", invoice(customer(erp_code="C00555"), number="INV-2"))
    )
    assert {status for status, _ in statuses(db).values()} == {WAITING}

    customers = [
        customer_record(by_code, 1, code="C2026000001", erp_code="C00001"),
        customer_record(by_credit_code, 1, code="C2026000002", credit_code=CREDIT_CODE),
        customer_record(by_id, 1, code="C2026000003"),
    ]
    pages = Pages({"customers": customers, "contacts": []}, size=2)
    CatchUp(db).read("customer", CustomerService(pages))

    with db.session() as session:
        rows = session.scalars(select(ErpUnmatchedEvent)).all()
        applied = {(row.event_type, row.customer_id) for row in rows if row.status == APPLIED}
        waiting = [row.erp_code for row in rows if row.status == WAITING]
        invoice_row = session.scalar(select(Invoice).where(Invoice.invoice_no == "INV-1"))
        payment_row = session.scalar(select(Payment))
        assert invoice_row.customer_id == by_code
        assert invoice_row.outstanding == 0  # the payment, applied after it, settled it
        assert payment_row.customer_id == by_credit_code
    assert applied == {
        ("invoice_issued", by_code),
        ("payment_received", by_credit_code),
        ("customer_credit_updated", by_id),
    }
    assert waiting == ["C00555"]  # no customer of the snapshot has its code
    assert [kind for kind, _ in outbox_reader(db, OutboxMessage)()] == ["payment_received"]
