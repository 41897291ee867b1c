"""Items and price lists mirrored from the ERP (存货, 价格政策).

The ERP owns them: ``item_updated`` and ``price_list_updated`` replace a row whole, keyed by the
ERP's ``item_code`` / ``price_list_code``. ``source_occurred_at`` is the ``occurred_at`` of the
event that wrote the row, so an older update arriving late never overwrites a newer one.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from crm_common.models import utcnow
from sales.models import DEFAULT_CURRENCY, MONEY, QUANTITY, Base

TAX_RATE = Numeric(5, 4)


class Item(Base):
    """存货: an item of the ERP's item master. ``list_price`` is the ERP's list price (none
    when it keeps none); ``tax_rate`` its VAT rate as a fraction (``0.1300``)."""

    __tablename__ = "items"

    item_code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    spec: Mapped[str | None] = mapped_column(String(200))
    unit: Mapped[str | None] = mapped_column(String(20))
    category: Mapped[str | None] = mapped_column(String(100))
    list_price: Mapped[Decimal | None] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3), default=DEFAULT_CURRENCY)
    tax_rate: Mapped[Decimal | None] = mapped_column(TAX_RATE)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    source_occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("ix_items_active_code", "active", "item_code"),)


class PriceList(Base):
    """价格政策: one of the ERP's price lists, valid from/to (open ends when missing)."""

    __tablename__ = "price_lists"

    price_list_code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3), default=DEFAULT_CURRENCY)
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    source_occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PriceListLine(Base):
    """A price of an item in a price list, for a customer category (none: every category)
    from ``min_quantity`` on."""

    __tablename__ = "price_list_lines"

    price_list_code: Mapped[str] = mapped_column(
        String(40), ForeignKey("price_lists.price_list_code", ondelete="CASCADE"), primary_key=True
    )
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    item_code: Mapped[str] = mapped_column(String(40))
    customer_category: Mapped[str | None] = mapped_column(String(10))
    min_quantity: Mapped[Decimal] = mapped_column(QUANTITY, default=Decimal(0))
    unit_price: Mapped[Decimal] = mapped_column(MONEY)

    __table_args__ = (Index("ix_price_list_lines_item_code", "item_code"),)
