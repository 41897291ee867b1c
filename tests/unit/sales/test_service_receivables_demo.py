"""The demo's receivables: invoices of the shipped demo orders and a history of the demo
customers' invoices and payments, applied as the ERP consumer applies them, with something in
every aging bucket, overdue invoices, credit limits and one allocation waiting for its invoice."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest
from sqlalchemy import select

from crm_common.db import SessionScope, dispose_engine, engine_for
from demo.sales import DEMO_NOW, ensure_demo
from sales.application.receivables import business_today
from sales.domain.receivables import AgingBucket, aging_bucket
from sales.models import Customer
from sales.models.orders import SalesOrder
from sales.models.receivables import CreditLimit, Invoice, Payment, PaymentAllocation


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    uri = f"sqlite:///{tmp_path_factory.mktemp('receivables-demo') / 'sales.db'}"
    counts = ensure_demo(uri)
    with SessionScope(engine_for(uri)).session() as session:
        session.expire_on_commit = False
        yield {
            "counts": counts,
            "invoices": list(session.scalars(select(Invoice))),
            "payments": list(session.scalars(select(Payment))),
            "allocations": list(session.scalars(select(PaymentAllocation))),
            "limits": list(session.scalars(select(CreditLimit))),
            "customers": {c.id: c for c in session.scalars(select(Customer))},
            "orders": list(session.scalars(select(SalesOrder))),
        }
    dispose_engine(uri)


def test_the_demo_has_receivables_in_every_aging_bucket(ledger):
    invoices = ledger["invoices"]
    assert ledger["counts"]["invoices"] == len(invoices) > 50
    assert ledger["counts"]["payments"] == len(ledger["payments"])
    as_of = business_today(DEMO_NOW)
    owing = [i for i in invoices if i.outstanding > 0]
    buckets = Counter(aging_bucket(i.due_date, as_of) for i in owing)
    assert set(buckets) == set(AgingBucket)
    assert any(i.outstanding == 0 for i in invoices)
    assert any(0 < i.outstanding < i.amount for i in invoices)


def test_the_demo_balances_add_up_and_follow_the_customers(ledger):
    applied: Counter[str] = Counter()
    for allocation in ledger["allocations"]:
        if allocation.applied:
            applied[allocation.invoice_no] += allocation.amount
    for invoice in ledger["invoices"]:
        assert invoice.allocated == applied.get(invoice.invoice_no, Decimal(0))
        assert invoice.outstanding == max(invoice.amount - invoice.allocated, Decimal(0))
        customer = ledger["customers"][invoice.customer_id]
        assert (invoice.owner_id, invoice.department_id) == (
            customer.owner_id,
            customer.department_id,
        )
    waiting = [a for a in ledger["allocations"] if not a.applied]
    assert [a.reason for a in waiting] == ["unknown_invoice"]
    assert any(p.allocated == 0 for p in ledger["payments"])


def test_the_demo_invoices_its_shipped_orders_and_sets_credit_limits(ledger):
    shipped = {
        o.erp_order_no
        for o in ledger["orders"]
        if o.status in ("shipped", "partially_shipped") and o.erp_order_no
    }
    invoiced = {i.erp_order_no for i in ledger["invoices"] if i.erp_order_no}
    assert shipped == invoiced
    assert len(ledger["limits"]) >= 20
    owed: Counter[object] = Counter()
    for invoice in ledger["invoices"]:
        owed[invoice.customer_id] += invoice.outstanding
    used = [owed[limit.customer_id] / limit.credit_limit for limit in ledger["limits"]]
    assert any(share > Decimal("0.8") for share in used)
