"""Choosing a unit price (价格政策): the ERP's price lists first, the item's list price last.

A price-list line applies to an item when its list is valid on the day (both ends inclusive,
an open end when missing), is in the wanted currency, names the customer's category or no
category at all, and its ``min_quantity`` is reached. Among applicable lines a line for the
customer's category beats a line for everyone; then the highest quantity break reached wins;
then the lower price (two overlapping lists, such as a standing list and a promotion); then
the price list code, so the choice never depends on the order the lists were read in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from crm_common.errors import ValidationFailed
from sales.domain.money import DEFAULT_CURRENCY


@dataclass(frozen=True)
class PriceListLine:
    item_code: str
    unit_price: Decimal
    min_quantity: Decimal = Decimal(0)
    customer_category: str | None = None
    """``None`` prices the item for every customer category."""


@dataclass(frozen=True)
class PriceList:
    code: str
    lines: tuple[PriceListLine, ...]
    currency: str = DEFAULT_CURRENCY
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None

    def is_valid_on(self, day: dt.date) -> bool:
        starts_by = self.valid_from is None or self.valid_from <= day
        runs_through = self.valid_to is None or day <= self.valid_to
        return starts_by and runs_through


@dataclass(frozen=True)
class ItemPrice:
    """What pricing needs of an item: its code and the ERP's list price (tax as the ERP keeps
    it), ``None`` when the ERP gave none."""

    item_code: str
    list_price: Decimal | None
    currency: str = DEFAULT_CURRENCY


class PriceSource(StrEnum):
    PRICE_LIST = "price_list"
    LIST_PRICE = "list_price"


@dataclass(frozen=True)
class PriceChoice:
    unit_price: Decimal
    currency: str
    source: PriceSource
    price_list_code: str | None = None
    customer_category: str | None = None
    min_quantity: Decimal | None = None


def choose_price(
    item: ItemPrice,
    quantity: Decimal,
    *,
    on: dt.date,
    price_lists: Iterable[PriceList],
    customer_category: str | None = None,
    currency: str = DEFAULT_CURRENCY,
) -> PriceChoice:
    """The unit price of ``quantity`` of ``item`` for a customer of ``customer_category`` on
    the day ``on``; ``ValidationFailed`` when neither a price list nor the list price gives one.
    """
    if quantity <= 0:
        raise ValidationFailed.on("quantity", "must be greater than zero")
    candidates = [
        (price_list, line)
        for price_list in price_lists
        if price_list.currency == currency and price_list.is_valid_on(on)
        for line in price_list.lines
        if line.item_code == item.item_code
        and line.min_quantity <= quantity
        and (line.customer_category is None or line.customer_category == customer_category)
    ]
    if candidates:
        price_list, line = min(
            candidates,
            key=lambda found: (
                found[1].customer_category is None,
                -found[1].min_quantity,
                found[1].unit_price,
                found[0].code,
            ),
        )
        return PriceChoice(
            unit_price=line.unit_price,
            currency=currency,
            source=PriceSource.PRICE_LIST,
            price_list_code=price_list.code,
            customer_category=line.customer_category,
            min_quantity=line.min_quantity,
        )
    if item.list_price is not None and item.currency == currency:
        return PriceChoice(
            unit_price=item.list_price, currency=currency, source=PriceSource.LIST_PRICE
        )
    raise ValidationFailed(
        f"no price for item {item.item_code}",
        {
            "errors": {
                "unit_price": [
                    f"no price list prices item {item.item_code} in {currency} on "
                    f"{on.isoformat()} and it has no list price in {currency}; "
                    "enter a unit price"
                ]
            },
            "item_code": item.item_code,
        },
    )
