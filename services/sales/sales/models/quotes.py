"""Quotations (报价单): the current version of each quote with its lines, the earlier versions
as they were offered, and the approvals of discounts beyond the salesperson's authority.

A quote keeps one id through its revisions: ``version_no`` is the version now current (its
lines are ``quote_lines``); a revision stores the version it replaces in ``quote_versions`` as
the API showed it, so every earlier version stays readable. ``version`` (from ``EntityMixin``)
is the optimistic lock. Quotes are scoped like opportunities (owner, department, and the
customer's region and category).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from crm_common.models import EntityMixin, utcnow
from sales.models import DEFAULT_CURRENCY, MONEY, QUANTITY, Base

DISCOUNT = Numeric(18, 4)
PERCENT = Numeric(7, 2)
TAX_RATE = Numeric(5, 4)
QUOTE_STATUSES = (
    "'draft', 'submitted', 'approved', 'sent', 'accepted', 'rejected', 'expired', 'superseded'"
)


class Quote(EntityMixin, Base):
    """报价单, at its current version. Totals are the domain's ``quote_totals`` of the lines."""

    __tablename__ = "quotes"

    code: Mapped[str] = mapped_column(String(20), unique=True)
    version_no: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(12), default="draft")
    title: Mapped[str | None] = mapped_column(String(200))
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    contact_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    opportunity_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("opportunities.id", ondelete="SET NULL"), index=True
    )
    owner_id: Mapped[str] = mapped_column(String(64))
    department_id: Mapped[str | None] = mapped_column(String(64))
    region: Mapped[str | None] = mapped_column(String(100), index=True)
    category: Mapped[str | None] = mapped_column(String(10), index=True)
    currency: Mapped[str] = mapped_column(String(3), default=DEFAULT_CURRENCY)
    prices_include_tax: Mapped[bool] = mapped_column(Boolean, default=False)
    discount_kind: Mapped[str] = mapped_column(String(8), default="percent")
    discount_value: Mapped[Decimal] = mapped_column(DISCOUNT, default=Decimal(0))
    valid_until: Mapped[date] = mapped_column(Date)
    terms: Mapped[str | None] = mapped_column(Text)
    remark: Mapped[str | None] = mapped_column(Text)
    amount: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    line_discount: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    document_discount: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    net: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    tax: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    gross: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    reference_amount: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    effective_discount_percent: Mapped[Decimal] = mapped_column(PERCENT, default=Decimal(0))
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decline_reason: Mapped[str | None] = mapped_column(Text)
    order_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_by: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        CheckConstraint(f"status in ({QUOTE_STATUSES})", name="ck_quotes_status"),
        CheckConstraint("discount_kind in ('percent', 'amount')", name="ck_quotes_discount_kind"),
        Index("ix_quotes_owner_status", "owner_id", "status"),
        Index("ix_quotes_department_status", "department_id", "status"),
        Index("ix_quotes_status_valid_until", "status", "valid_until"),
        Index("ix_quotes_created_at_id", "created_at", "id"),
    )


class QuoteLine(Base):
    """A line of a quote's current version: the item as the item master named it when the
    line was written, the price pricing chose (``reference_unit_price``) and the one quoted."""

    __tablename__ = "quote_lines"

    quote_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("quotes.id", ondelete="CASCADE"), primary_key=True
    )
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    item_code: Mapped[str] = mapped_column(String(40))
    item_name: Mapped[str] = mapped_column(String(200))
    spec: Mapped[str | None] = mapped_column(String(200))
    unit: Mapped[str | None] = mapped_column(String(20))
    quantity: Mapped[Decimal] = mapped_column(QUANTITY)
    unit_price: Mapped[Decimal] = mapped_column(MONEY)
    reference_unit_price: Mapped[Decimal | None] = mapped_column(MONEY)
    price_source: Mapped[str | None] = mapped_column(String(12))
    price_list_code: Mapped[str | None] = mapped_column(String(40))
    discount_kind: Mapped[str] = mapped_column(String(8), default="percent")
    discount_value: Mapped[Decimal] = mapped_column(DISCOUNT, default=Decimal(0))
    tax_rate: Mapped[Decimal] = mapped_column(TAX_RATE)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    line_discount: Mapped[Decimal] = mapped_column(MONEY)
    document_discount: Mapped[Decimal] = mapped_column(MONEY)
    net: Mapped[Decimal] = mapped_column(MONEY)
    tax: Mapped[Decimal] = mapped_column(MONEY)
    gross: Mapped[Decimal] = mapped_column(MONEY)
    remark: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (
        CheckConstraint(
            "discount_kind in ('percent', 'amount')", name="ck_quote_lines_discount_kind"
        ),
    )


class QuoteVersion(Base):
    """An earlier version of a quote, as ``GET /api/quotes/{id}`` showed it when a revision
    replaced it (``status`` is what it ended as: superseded, rejected or expired)."""

    __tablename__ = "quote_versions"

    quote_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("quotes.id", ondelete="CASCADE"), primary_key=True
    )
    version_no: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    status: Mapped[str] = mapped_column(String(12))
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    replaced_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    replaced_by: Mapped[str | None] = mapped_column(String(64))


class QuoteApproval(Base):
    """One manager's decision on a version's discount (折扣审批), level by level up the org
    chart until an approver's own authority covers it."""

    __tablename__ = "quote_approvals"

    quote_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("quotes.id", ondelete="CASCADE"), primary_key=True
    )
    version_no: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    department_id: Mapped[str] = mapped_column(String(64))
    approver_person_id: Mapped[str] = mapped_column(String(64))
    approver_user_id: Mapped[str | None] = mapped_column(String(64))
    decision: Mapped[str | None] = mapped_column(String(10))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    comment: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint(
            "decision is null or decision in ('approved', 'rejected')",
            name="ck_quote_approvals_decision",
        ),
        Index("ix_quote_approvals_approver_decision", "approver_person_id", "decision"),
    )
