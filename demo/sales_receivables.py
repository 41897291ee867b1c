"""Demo receivables (应收) of the sales database, as the ERP's events would leave them.

The shipped demo orders are invoiced (a partial shipment for what was shipped), and the demo
customers with an owner carry a history of invoices of the past months, due 30 to 90 days after
issue: most paid in full, some in part, some not at all, so that every aging bucket and the
overdue lists have something in them. Credit limits are set for those customers (a few of them
used beyond 80 %), one customer has paid on account, and one payment names an invoice the ERP
has not sent yet (it waits). Everything is applied through ``apply_receivable_event`` as the
ERP consumer applies it; nothing is announced.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sales.application.erp_receivables import apply_receivable_event
from sales.models import Customer
from sales.models.orders import SalesOrder
from sales.models.receivables import Invoice
from sales.schemas.erp import ERP_EVENT_SCHEMAS

SEED = 20261203
CUSTOMER_COUNT = 30
FEN = Decimal("0.01")
VAT = Decimal("0.13")
SHIPPED = ("shipped", "partially_shipped", "completed")


class _Quiet:
    """The demo announces nothing: events are dropped."""

    def add(self, session: Session, event_type: str, data: dict[str, Any], version: int = 1) -> Any:
        return None


def _named(customer: Customer) -> dict[str, Any]:
    return {
        "crm_customer_id": str(customer.id),
        "erp_code": customer.erp_code or f"ERP{customer.code}",
        "name": customer.name,
    }


class _Ledger:
    def __init__(self, session: Session, now: datetime) -> None:
        self.session = session
        self.now = now
        self.events = 0
        self.invoices = 0
        self.payments = 0

    def apply(self, event_type: str, raw: dict[str, Any], customer: Customer, at: datetime) -> None:
        self.events += 1
        data = ERP_EVENT_SCHEMAS[event_type]().load(raw)
        apply_receivable_event(
            self.session,
            _Quiet(),
            event_type,
            data,
            min(at, self.now),
            f"demo-receivable-{self.events}",
            customer.id,
        )

    def invoice(
        self,
        customer: Customer,
        amount: Decimal,
        issued: datetime,
        terms: int,
        erp_order_no: str | None = None,
    ) -> str:
        self.invoices += 1
        invoice_no = f"FP{issued.year}{self.invoices:06d}"
        tax = (amount * VAT / (1 + VAT)).quantize(FEN, ROUND_HALF_UP)
        self.apply(
            "invoice_issued",
            {
                "invoice_no": invoice_no,
                "erp_order_no": erp_order_no,
                "customer": _named(customer),
                "issued_at": issued.isoformat(),
                "due_date": (issued.date() + timedelta(days=terms)).isoformat(),
                "amount": f"{amount:f}",
                "tax_amount": f"{tax:f}",
                "currency": "CNY",
            },
            customer,
            issued,
        )
        return invoice_no

    def payment(
        self,
        customer: Customer,
        amount: Decimal,
        received: datetime,
        allocations: list[tuple[str, Decimal]],
    ) -> None:
        self.payments += 1
        self.apply(
            "payment_received",
            {
                "payment_no": f"SK{received.year}{self.payments:06d}",
                "customer": _named(customer),
                "received_at": received.isoformat(),
                "amount": f"{amount:f}",
                "currency": "CNY",
                "allocations": [{"invoice_no": no, "amount": f"{a:f}"} for no, a in allocations],
            },
            customer,
            received,
        )

    def credit_limit(self, customer: Customer, limit: Decimal) -> None:
        self.apply(
            "customer_credit_updated",
            {"customer": _named(customer), "credit_limit": f"{limit:f}", "currency": "CNY"},
            customer,
            self.now - timedelta(days=200),
        )


def _amount(rng: random.Random, low: int, high: int) -> Decimal:
    return (Decimal(rng.randint(low, high)) * 100 + Decimal(rng.randint(0, 99)) / 100).quantize(FEN)


def load_receivables(session: Session, now: datetime) -> dict[str, int]:
    """Make the demo's invoices, payments and credit limits (once: none if invoices exist)."""
    if session.scalar(select(func.count()).select_from(Invoice)):
        return {}
    rng = random.Random(SEED)
    ledger = _Ledger(session, now)
    customers = session.scalars(
        select(Customer)
        .where(Customer.owner_id.is_not(None), Customer.status != "merged")
        .order_by(Customer.code)
        .limit(CUSTOMER_COUNT)
    ).all()
    for order in session.scalars(
        select(SalesOrder)
        .where(SalesOrder.status.in_(SHIPPED), SalesOrder.erp_order_no.is_not(None))
        .order_by(SalesOrder.code)
    ):
        customer = session.get(Customer, order.customer_id)
        if customer is None:
            continue
        share = Decimal(1) if order.status != "partially_shipped" else Decimal("0.5")
        booked = order.erp_status_at or now
        if booked.tzinfo is None:  # SQLite gives timestamps back without their zone: UTC
            booked = booked.replace(tzinfo=UTC)
        issued = booked + timedelta(days=1)
        ledger.invoice(
            customer, (order.gross * share).quantize(FEN), issued, 30, order.erp_order_no
        )
    owed: dict[Any, Decimal] = {}
    for number, customer in enumerate(customers):
        owed[customer.id] = Decimal(0)
        for _ in range(rng.randint(2, 5)):
            issued = now - timedelta(days=rng.randint(20, 220), hours=rng.randint(0, 8))
            amount = _amount(rng, 50, 2000)
            invoice_no = ledger.invoice(customer, amount, issued, rng.choice((30, 60, 90)))
            due = issued + timedelta(days=45)
            fate = rng.random()
            if fate < 0.55 and due < now:
                ledger.payment(customer, amount, due, [(invoice_no, amount)])
            elif fate < 0.75:
                part = (amount * Decimal(rng.choice((30, 50, 70))) / 100).quantize(FEN)
                ledger.payment(customer, part, min(due, now), [(invoice_no, part)])
                owed[customer.id] += amount - part
            else:
                owed[customer.id] += amount
        if number % 3 == 0:
            limit = max(owed[customer.id], Decimal(50_000)) * Decimal("1.1")
        else:
            limit = owed[customer.id] * 3 + Decimal(100_000)
        ledger.credit_limit(customer, (limit / 1000).quantize(Decimal(1)) * 1000)
    if customers:
        first = customers[0]
        ledger.payment(first, Decimal("20000.00"), now - timedelta(days=2), [])
        last = customers[-1]
        waiting_for = f"FP{now.year}999001"
        ledger.payment(
            last, Decimal("8800.00"), now - timedelta(days=1), [(waiting_for, Decimal("8800.00"))]
        )
    session.flush()
    return {"invoices": ledger.invoices, "payments": ledger.payments}
