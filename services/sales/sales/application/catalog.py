"""Items (存货) and price lists (价格政策) mirrored from the ERP: kept from its ``item_updated``
and ``price_list_updated`` events (``keep_item``, ``keep_price_list``, called by the ERP
consumer inside its transaction), searched and read by anyone who may read opportunities, and
the price pricing chooses for a customer (``Catalog.price``).

The ERP's ``occurred_at`` decides which of two updates of one item or list wins: an update
older than the stored one changes nothing, so redelivered and late events are harmless.
"""

from __future__ import annotations

import datetime as dt
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from crm_common.application import UseCases
from crm_common.errors import NotFound, ValidationFailed
from crm_common.ids import BUSINESS_TZ
from crm_common.schemas import load
from sales.application.history import dump
from sales.domain.money import DEFAULT_CURRENCY, MAX_INTEGER_DIGITS, parse_currency, quantize_fen
from sales.domain.pricing import ItemPrice, PriceChoice, choose_price
from sales.models.catalog import Item
from sales.repository import activities as activity_rows
from sales.repository import catalog as rows
from sales.schemas.catalog import (
    ItemPriceLineSchema,
    ItemPriceQuerySchema,
    ItemPriceSchema,
    ItemQuerySchema,
    ItemSchema,
    PriceListQuerySchema,
    PriceListSchema,
)

READ = "opportunity:read"
LIMITS = {
    "item_code": 40,
    "name": 200,
    "spec": 200,
    "unit": 20,
    "category": 100,
    "price_list_code": 40,
    "customer_category": 10,
}
QUANTITY_DIGITS = 14
"""Quantities are stored as Numeric(18, 4)."""

item_schema = ItemSchema()
price_list_schema = PriceListSchema()
price_line_schema = ItemPriceLineSchema()
choice_schema = ItemPriceSchema()


# -- from the ERP ------------------------------------------------------------------------------
def _text(data: dict[str, Any], name: str, field: str | None = None) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    text = str(value).strip()
    if len(text) > LIMITS[name]:
        raise ValidationFailed.on(field or name, f"is longer than {LIMITS[name]} characters")
    return text or None


def _required(data: dict[str, Any], name: str, field: str | None = None) -> str:
    text = _text(data, name, field)
    if text is None:
        raise ValidationFailed.on(field or name, "is required")
    return text


def _price(value: Any, field: str) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise ValidationFailed.on(field, "must be a decimal number")
    if value < 0:
        raise ValidationFailed.on(field, "must not be negative")
    price = quantize_fen(value)
    if price >= Decimal(10) ** MAX_INTEGER_DIGITS:
        raise ValidationFailed.on(field, f"has more than {MAX_INTEGER_DIGITS} digits")
    return price


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValidationFailed.on("occurred_at", "must carry its time zone")
    return moment.astimezone(UTC)


def keep_item(session: Session, data: dict[str, Any], occurred_at: datetime) -> None:
    """Store the ERP's item as ``item_updated`` tells it, unless a newer update is stored."""
    tax_rate = data.get("tax_rate")
    if tax_rate is not None and (
        not isinstance(tax_rate, Decimal) or not Decimal(0) <= tax_rate < 1
    ):
        raise ValidationFailed.on("tax_rate", "must be a fraction from 0 to 1, such as 0.13")
    list_price = data.get("list_price")
    rows.upsert_item(
        session,
        {
            "item_code": _required(data, "item_code"),
            "name": _required(data, "name"),
            "spec": _text(data, "spec"),
            "unit": _text(data, "unit"),
            "category": _text(data, "category"),
            "list_price": None if list_price is None else _price(list_price, "list_price"),
            "currency": DEFAULT_CURRENCY,
            "tax_rate": None if tax_rate is None else tax_rate.quantize(Decimal("0.0001")),
            "active": bool(data.get("active", True)),
            "source_occurred_at": _utc(occurred_at),
            "updated_at": datetime.now(UTC),
        },
    )


def keep_price_list(session: Session, data: dict[str, Any], occurred_at: datetime) -> None:
    """Store the ERP's price list with every line of ``price_list_updated`` (lines it no
    longer lists are gone), unless a newer update of the list is stored."""
    valid_from, valid_to = data.get("valid_from"), data.get("valid_to")
    if valid_from is not None and valid_to is not None and valid_to < valid_from:
        raise ValidationFailed.on("valid_to", "is before valid_from")
    lines = []
    for number, line in enumerate(data.get("lines") or [], start=1):
        field = f"lines.{number}"
        min_quantity = line.get("min_quantity")
        if min_quantity is None:
            min_quantity = Decimal(0)
        if not isinstance(min_quantity, Decimal) or not min_quantity.is_finite():
            raise ValidationFailed.on(f"{field}.min_quantity", "must be a decimal number")
        if min_quantity < 0 or min_quantity >= Decimal(10) ** QUANTITY_DIGITS:
            raise ValidationFailed.on(f"{field}.min_quantity", "is out of range")
        lines.append(
            {
                "line_no": number,
                "item_code": _required(line, "item_code", f"{field}.item_code"),
                "customer_category": _text(line, "customer_category", f"{field}.category"),
                "min_quantity": min_quantity,
                "unit_price": _price(line.get("unit_price"), f"{field}.unit_price"),
            }
        )
    rows.upsert_price_list(
        session,
        {
            "price_list_code": _required(data, "price_list_code"),
            "name": _required(data, "name"),
            "currency": parse_currency(data.get("currency")),
            "valid_from": valid_from,
            "valid_to": valid_to,
            "source_occurred_at": _utc(occurred_at),
            "updated_at": datetime.now(UTC),
        },
        lines,
    )


# -- pricing -----------------------------------------------------------------------------------
def price_of(
    session: Session,
    item: Item,
    quantity: Decimal,
    *,
    on: dt.date,
    customer_category: str | None,
    currency: str = DEFAULT_CURRENCY,
) -> PriceChoice:
    """What pricing chooses for ``quantity`` of ``item`` (``ValidationFailed`` without one)."""
    return choose_price(
        ItemPrice(item.item_code, item.list_price, item.currency),
        quantity,
        on=on,
        price_lists=rows.pricing_lists(session, [item.item_code], on),
        customer_category=customer_category,
        currency=currency,
    )


# -- reads -------------------------------------------------------------------------------------
class Catalog(UseCases):
    """Searching items and price lists, and pricing an item for a customer."""

    def today(self) -> dt.date:
        return self.context.now.astimezone(BUSINESS_TZ).date()

    def list_items(self, query: Any) -> dict[str, Any]:
        self.principal.require(READ)
        params = load(ItemQuerySchema(), query)
        page = rows.items_page(self.session, params)
        return {
            "items": [dump(item_schema, item) for item in page.items],
            "next_cursor": page.next_cursor,
        }

    def get_item(self, item_code: Any) -> dict[str, Any]:
        """The item with the lines of the price lists valid today that price it."""
        self.principal.require(READ)
        item = rows.get_item(self.session, item_code)
        dumped = dump(item_schema, item)
        dumped["prices"] = [
            dump(price_line_schema, line)
            for _list, line in rows.price_lines_of_items(
                self.session, [item.item_code], self.today()
            )
        ]
        return dumped

    def list_price_lists(self, query: Any) -> dict[str, Any]:
        self.principal.require(READ)
        params = load(PriceListQuerySchema(), query)
        page = rows.price_lists_page(self.session, params)
        counts = rows.line_counts(self.session, [p.price_list_code for p in page.items])
        items = []
        for price_list in page.items:
            dumped = dump(price_list_schema, price_list)
            dumped["line_count"] = counts.get(price_list.price_list_code, 0)
            items.append(dumped)
        return {"items": items, "next_cursor": page.next_cursor}

    def get_price_list(self, code: Any) -> dict[str, Any]:
        self.principal.require(READ)
        price_list = rows.get_price_list(self.session, code)
        lines = rows.lines_of_list(self.session, price_list.price_list_code)
        dumped = dump(price_list_schema, price_list)
        dumped["lines"] = [dump(price_line_schema, line) for line in lines]
        dumped["line_count"] = len(lines)
        return dumped

    def price(self, item_code: Any, query: Any) -> dict[str, Any]:
        """The unit price pricing chooses for the item, the customer's category (a customer
        the caller can see), the quantity and the day."""
        self.principal.require(READ)
        params = load(ItemPriceQuerySchema(), query)
        item = rows.get_item(self.session, item_code)
        category = None
        customer_id = params.get("customer_id")
        if customer_id is not None:
            customer = activity_rows.visible_customer(self.session, customer_id, self.principal)
            if customer is None:
                raise NotFound.of("customer", customer_id)
            category = customer.category
        quantity = params.get("quantity") or Decimal(1)
        on = params.get("on") or self.today()
        currency = parse_currency(params.get("currency"))
        choice = price_of(
            self.session, item, quantity, on=on, customer_category=category, currency=currency
        )
        return dump(
            choice_schema,
            {
                "item_code": item.item_code,
                "customer_id": customer_id,
                "customer_category": category,
                "quantity": quantity,
                "on": on,
                "unit_price": choice.unit_price,
                "currency": choice.currency,
                "source": choice.source.value,
                "price_list_code": choice.price_list_code,
                "line_customer_category": choice.customer_category,
                "min_quantity": choice.min_quantity,
            },
        )
