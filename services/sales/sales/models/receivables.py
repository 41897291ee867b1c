"""Receivables (应收): invoices and payments from the ERP, their allocations, and customers'
credit limits.

An invoice and a payment are known by their ERP number and keep the version that occurred last
in the ERP (``occurred_at``, with the ``event_id`` that brought it). An invoice carries what has
been allocated to it (``allocated``) and what it still owes (``outstanding``, never negative:
``allocated`` above ``amount`` is an over-allocation, reported, not dropped); the apply code
keeps both, so balances are read without summing allocations. Invoices and payments carry the
customer's scope columns (``owner_id``, ``department_id``, ``region``, ``category``), copied
from sales' copy of the customer when the document arrives.

An allocation (payment number, invoice number) is ``applied`` once its invoice is known in the
payment's currency; until then it waits (``reason`` says why), is listed for an administrator,
and counts nowhere. ``invoice_overdue_notices`` remembers which overdue thresholds of an invoice
were announced, so each is announced once.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Index,
    Integer,
    String,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from crm_common.models import utcnow
from sales.models import DEFAULT_CURRENCY, MONEY, Base

DOCUMENT_NO = 40


class Invoice(Base):
    """销售发票: ``amount`` is what the customer owes, tax included (价税合计)."""

    __tablename__ = "invoices"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    invoice_no: Mapped[str] = mapped_column(String(DOCUMENT_NO), unique=True)
    erp_order_no: Mapped[str | None] = mapped_column(String(DOCUMENT_NO), index=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    owner_id: Mapped[str | None] = mapped_column(String(64))
    department_id: Mapped[str | None] = mapped_column(String(64))
    region: Mapped[str | None] = mapped_column(String(100), index=True)
    category: Mapped[str | None] = mapped_column(String(10), index=True)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    due_date: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    tax_amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3), default=DEFAULT_CURRENCY)
    allocated: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    outstanding: Mapped[Decimal] = mapped_column(MONEY)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    event_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        CheckConstraint("outstanding >= 0", name="ck_invoices_outstanding"),
        CheckConstraint("allocated >= 0", name="ck_invoices_allocated"),
        Index("ix_invoices_customer_currency", "customer_id", "currency"),
        Index("ix_invoices_owner_due_date", "owner_id", "due_date"),
        Index("ix_invoices_department_due_date", "department_id", "due_date"),
        Index("ix_invoices_due_date", "due_date"),
        Index("ix_invoices_issued_at_id", "issued_at", "id"),
    )


class Payment(Base):
    """收款单: ``allocated`` is the part of ``amount`` the payment allocates to invoices (applied
    or waiting); the rest is on account."""

    __tablename__ = "payments"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    payment_no: Mapped[str] = mapped_column(String(DOCUMENT_NO), unique=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    owner_id: Mapped[str | None] = mapped_column(String(64), index=True)
    department_id: Mapped[str | None] = mapped_column(String(64), index=True)
    region: Mapped[str | None] = mapped_column(String(100), index=True)
    category: Mapped[str | None] = mapped_column(String(10), index=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    allocated: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3), default=DEFAULT_CURRENCY)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    event_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        CheckConstraint("amount > 0", name="ck_payments_amount"),
        Index("ix_payments_received_at_id", "received_at", "id"),
    )


class PaymentAllocation(Base):
    """Part of a payment settling one invoice; ``applied`` once it counts on the invoice,
    waiting (``reason`` ``unknown_invoice`` or ``currency_mismatch``) until then."""

    __tablename__ = "payment_allocations"

    payment_no: Mapped[str] = mapped_column(String(DOCUMENT_NO), primary_key=True)
    invoice_no: Mapped[str] = mapped_column(String(DOCUMENT_NO), primary_key=True, index=True)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3), default=DEFAULT_CURRENCY)
    applied: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(String(20))
    waiting_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    applied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("amount > 0", name="ck_payment_allocations_amount"),
        Index("ix_payment_allocations_applied_waiting", "applied", "waiting_since"),
    )


class CreditLimit(Base):
    """信用额度 of a customer as the ERP last set it."""

    __tablename__ = "credit_limits"

    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    credit_limit: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3), default=DEFAULT_CURRENCY)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    event_id: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (CheckConstraint("credit_limit >= 0", name="ck_credit_limits_credit_limit"),)


class InvoiceOverdueNotice(Base):
    """An overdue threshold (1, 30, 60, 90 days) of an invoice that ``invoice_overdue``
    announced."""

    __tablename__ = "invoice_overdue_notices"

    invoice_no: Mapped[str] = mapped_column(String(DOCUMENT_NO), primary_key=True)
    threshold: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    days_overdue: Mapped[int] = mapped_column(Integer)
    noticed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
