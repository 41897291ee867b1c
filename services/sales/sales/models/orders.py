"""Sales orders, their lines and shipments, and contracts (合同) with their payment milestones.

A sales order (销售订单) is scoped like every sales record (``owner_id``, ``department_id``,
``region``, ``category`` copied from the customer). Its figures are stored as the totals rules
computed them (``sales.domain.quotes.quote_totals``): per line the amount before discounts, the
whole discount (the line's own and its share of the document's), net, tax and gross; the order
holds their sums. ``origin`` says whether people entered it in the CRM or the ERP did.

What the ERP reports is kept as it came: the ERP's order number, when its last status change
occurred there (``erp_status_at``, so an older event never overrides a newer one), shipments
by their number (a shipment counts once) with their serial numbers, and the events naming an
ERP order number no order has yet (``ErpOrderEventWaiting``), applied once ``order_created``
brings it.
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
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from crm_common.models import EntityMixin, utcnow
from sales.models import DEFAULT_CURRENCY, MONEY, QUANTITY, Base

UNIT_PRICE = Numeric(18, 4)
RATE = Numeric(5, 4)
ORDER_STATUSES = (
    "draft",
    "pending_approval",
    "confirmed",
    "erp_created",
    "rejected",
    "partially_shipped",
    "shipped",
    "cancel_requested",
    "cancelled",
)
CONTRACT_STATUSES = ("draft", "signed", "active", "completed", "terminated", "expired")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} in ({', '.join(repr(value) for value in values)})"


class SalesOrder(EntityMixin, Base):
    """销售订单. ``credit_*`` keep the credit check made when it was confirmed; ``approved_by``
    the manager who let an order over the credit limit through."""

    __tablename__ = "sales_orders"

    code: Mapped[str] = mapped_column(String(20), unique=True)
    origin: Mapped[str] = mapped_column(String(3), default="crm")
    status: Mapped[str] = mapped_column(String(20), default="draft")
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    opportunity_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("opportunities.id", ondelete="SET NULL"), index=True
    )
    quote_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    quote_version_no: Mapped[int | None] = mapped_column(Integer)
    owner_id: Mapped[str] = mapped_column(String(64))
    department_id: Mapped[str | None] = mapped_column(String(64))
    region: Mapped[str | None] = mapped_column(String(100), index=True)
    category: Mapped[str | None] = mapped_column(String(10), index=True)
    order_date: Mapped[date] = mapped_column(Date)
    requested_delivery_date: Mapped[date | None] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3), default=DEFAULT_CURRENCY)
    prices_include_tax: Mapped[bool] = mapped_column(Boolean, default=False)
    document_discount_kind: Mapped[str | None] = mapped_column(String(10))
    document_discount_value: Mapped[Decimal | None] = mapped_column(UNIT_PRICE)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    discount: Mapped[Decimal] = mapped_column(MONEY)
    net: Mapped[Decimal] = mapped_column(MONEY)
    tax: Mapped[Decimal] = mapped_column(MONEY)
    gross: Mapped[Decimal] = mapped_column(MONEY)
    remark: Mapped[str | None] = mapped_column(Text)
    credit_outcome: Mapped[str | None] = mapped_column(String(30))
    credit_limit: Mapped[Decimal | None] = mapped_column(MONEY)
    credit_exposure: Mapped[Decimal | None] = mapped_column(MONEY)
    approved_by: Mapped[str | None] = mapped_column(String(64))
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    approval_comment: Mapped[str | None] = mapped_column(Text)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    erp_order_no: Mapped[str | None] = mapped_column(String(40), unique=True)
    erp_status_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    erp_document_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    erp_reason: Mapped[str | None] = mapped_column(Text)
    salesperson_code: Mapped[str | None] = mapped_column(String(32))
    department_code: Mapped[str | None] = mapped_column(String(32))
    created_by: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        CheckConstraint(_one_of("status", ORDER_STATUSES), name="ck_sales_orders_status"),
        CheckConstraint("origin in ('crm', 'erp')", name="ck_sales_orders_origin"),
        Index("ix_sales_orders_owner_status", "owner_id", "status"),
        Index("ix_sales_orders_department_status", "department_id", "status"),
        Index("ix_sales_orders_status_order_date", "status", "order_date"),
        Index("ix_sales_orders_created_at_id", "created_at", "id"),
    )


class SalesOrderLine(Base):
    """A line: the item as it was ordered, its figures, and how much of it has shipped."""

    __tablename__ = "sales_order_lines"

    order_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("sales_orders.id", ondelete="CASCADE"), primary_key=True
    )
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    item_code: Mapped[str] = mapped_column(String(40))
    item_name: Mapped[str] = mapped_column(String(200))
    spec: Mapped[str | None] = mapped_column(String(200))
    unit: Mapped[str | None] = mapped_column(String(20))
    quantity: Mapped[Decimal] = mapped_column(QUANTITY)
    unit_price: Mapped[Decimal] = mapped_column(UNIT_PRICE)
    discount_kind: Mapped[str | None] = mapped_column(String(10))
    discount_value: Mapped[Decimal | None] = mapped_column(UNIT_PRICE)
    tax_rate: Mapped[Decimal] = mapped_column(RATE)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    discount: Mapped[Decimal] = mapped_column(MONEY)
    net: Mapped[Decimal] = mapped_column(MONEY)
    tax: Mapped[Decimal] = mapped_column(MONEY)
    gross: Mapped[Decimal] = mapped_column(MONEY)
    shipped: Mapped[Decimal] = mapped_column(QUANTITY, default=Decimal(0))


class SalesOrderShipment(Base):
    """One shipment (发货单) the ERP reported; its number is unique across orders."""

    __tablename__ = "sales_order_shipments"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    order_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("sales_orders.id", ondelete="CASCADE"), index=True
    )
    shipment_no: Mapped[str] = mapped_column(String(40), unique=True)
    shipped_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    event_id: Mapped[str | None] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SalesOrderShipmentLine(Base):
    """A shipment line as the ERP sent it; ``issue`` flags one that does not fit the order
    (``over_shipped``, ``unknown_line``, ``item_mismatch``), ``issue_quantity`` by how much."""

    __tablename__ = "sales_order_shipment_lines"

    shipment_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("sales_order_shipments.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    line_no: Mapped[int] = mapped_column(Integer)
    item_code: Mapped[str] = mapped_column(String(40))
    quantity: Mapped[Decimal] = mapped_column(QUANTITY)
    serial_numbers: Mapped[list[str]] = mapped_column(JSON, default=list)
    issue: Mapped[str | None] = mapped_column(String(20))
    issue_quantity: Mapped[Decimal | None] = mapped_column(QUANTITY)


class ErpOrderEventWaiting(Base):
    """An ``order_shipped`` or ``order_cancelled`` naming an ERP order number no order has
    yet: kept until ``order_created`` brings the number (``data`` as the ERP sent it,
    loaded again then)."""

    __tablename__ = "erp_order_events_waiting"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    event_type: Mapped[str] = mapped_column(String(30))
    erp_order_no: Mapped[str] = mapped_column(String(40), index=True)
    document_no: Mapped[str | None] = mapped_column(String(40))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# -- contracts -------------------------------------------------------------------------------
class Contract(EntityMixin, Base):
    """合同 between a customer and one of our signing entities (``our_entity``), from a won
    opportunity, an accepted quote or entered directly; ``attachments`` are file names."""

    __tablename__ = "contracts"

    code: Mapped[str] = mapped_column(String(20), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(12), default="draft")
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    opportunity_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("opportunities.id", ondelete="SET NULL"), index=True
    )
    quote_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    order_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("sales_orders.id", ondelete="SET NULL"), index=True
    )
    our_entity: Mapped[str] = mapped_column(String(200))
    customer_signatory: Mapped[str | None] = mapped_column(String(100))
    owner_id: Mapped[str] = mapped_column(String(64))
    department_id: Mapped[str | None] = mapped_column(String(64))
    region: Mapped[str | None] = mapped_column(String(100), index=True)
    category: Mapped[str | None] = mapped_column(String(10), index=True)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3), default=DEFAULT_CURRENCY)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    signed_on: Mapped[date | None] = mapped_column(Date)
    terms: Mapped[str | None] = mapped_column(Text)
    attachments: Mapped[list[str]] = mapped_column(JSON, default=list)
    terminated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    termination_reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        CheckConstraint(_one_of("status", CONTRACT_STATUSES), name="ck_contracts_status"),
        CheckConstraint("amount > 0", name="ck_contracts_amount"),
        CheckConstraint("end_date >= start_date", name="ck_contracts_dates"),
        Index("ix_contracts_status_end_date", "status", "end_date"),
        Index("ix_contracts_owner_status", "owner_id", "status"),
        Index("ix_contracts_department_status", "department_id", "status"),
        Index("ix_contracts_created_at_id", "created_at", "id"),
    )


class ContractMilestone(Base):
    """A payment milestone (回款计划) of a contract: its name, due date and amount, and the
    percentage it was planned as, if it was."""

    __tablename__ = "contract_milestones"

    contract_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("contracts.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(100))
    due_date: Mapped[date] = mapped_column(Date, index=True)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    percent: Mapped[Decimal | None] = mapped_column(Numeric(7, 4))

    __table_args__ = (UniqueConstraint("contract_id", "name", name="uq_contract_milestones_name"),)
