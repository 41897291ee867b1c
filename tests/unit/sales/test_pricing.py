import datetime as dt
from decimal import Decimal

import pytest

from crm_common.errors import ValidationFailed
from sales.domain.pricing import (
    ItemPrice,
    PriceChoice,
    PriceList,
    PriceListLine,
    PriceSource,
    choose_price,
)

D = Decimal
BEARING = ItemPrice("6204-2RS", list_price=D("12.50"))
UNPRICED = ItemPrice("NEW-ITEM", list_price=None)

STANDARD = PriceList(
    "PL-STD",
    valid_from=dt.date(2026, 1, 1),
    valid_to=dt.date(2026, 12, 31),
    lines=(
        PriceListLine("6204-2RS", D("12.00")),
        PriceListLine("6204-2RS", D("11.40"), min_quantity=D(100)),
        PriceListLine("6204-2RS", D("10.80"), min_quantity=D(500)),
        PriceListLine("6204-2RS", D("9.90"), min_quantity=D(1000)),
        PriceListLine("6204-2RS", D("11.00"), customer_category="dealer"),
        PriceListLine("6204-2RS", D("10.20"), customer_category="dealer", min_quantity=D(100)),
        PriceListLine("MOTOR-Y2", D("3200.00")),
    ),
)
PROMOTION = PriceList(
    "PL-PROMO",
    valid_from=dt.date(2026, 3, 1),
    valid_to=dt.date(2026, 3, 31),
    lines=(PriceListLine("6204-2RS", D("11.20"), min_quantity=D(100)),),
)
EXPIRED = PriceList(
    "PL-2025",
    valid_from=dt.date(2025, 1, 1),
    valid_to=dt.date(2025, 12, 31),
    lines=(PriceListLine("6204-2RS", D("9.00")),),
)
OPEN_ENDED = PriceList("PL-OPEN", lines=(PriceListLine("6204-2RS", D("11.90")),))
IN_USD = PriceList("PL-USD", currency="USD", lines=(PriceListLine("6204-2RS", D("1.60")),))

FEB = dt.date(2026, 2, 10)
MARCH = dt.date(2026, 3, 10)


NO_BREAK = D(0)


def _listed(code, price, category=None, break_at=NO_BREAK):
    return PriceChoice(price, "CNY", PriceSource.PRICE_LIST, code, category, break_at)


LIST_PRICE = PriceChoice(D("12.50"), "CNY", PriceSource.LIST_PRICE)


@pytest.mark.parametrize(
    ("case", "lists", "quantity", "category", "on", "expected"),
    [
        ("generic line, no break", [STANDARD], D(1), None, FEB, _listed("PL-STD", D("12.00"))),
        (
            "just below a break",
            [STANDARD],
            D("99.999"),
            None,
            FEB,
            _listed("PL-STD", D("12.00")),
        ),
        (
            "exactly at a break",
            [STANDARD],
            D(100),
            None,
            FEB,
            _listed("PL-STD", D("11.40"), break_at=D(100)),
        ),
        (
            "the highest break reached wins",
            [STANDARD],
            D(800),
            None,
            FEB,
            _listed("PL-STD", D("10.80"), break_at=D(500)),
        ),
        (
            "category line beats the generic one",
            [STANDARD],
            D(1),
            "dealer",
            FEB,
            _listed("PL-STD", D("11.00"), "dealer"),
        ),
        (
            "the top break",
            [STANDARD],
            D(1000),
            None,
            FEB,
            _listed("PL-STD", D("9.90"), break_at=D(1000)),
        ),
        (
            "category beats a cheaper higher generic break",
            [STANDARD],
            D(1000),
            "dealer",
            FEB,
            _listed("PL-STD", D("10.20"), "dealer", D(100)),
        ),
        (
            "another category gets the generic lines",
            [STANDARD],
            D(100),
            "end_user",
            FEB,
            _listed("PL-STD", D("11.40"), break_at=D(100)),
        ),
        (
            "overlapping lists: the lower price at the same break",
            [STANDARD, PROMOTION],
            D(200),
            None,
            MARCH,
            _listed("PL-PROMO", D("11.20"), break_at=D(100)),
        ),
        (
            "overlapping lists, order does not matter",
            [PROMOTION, STANDARD],
            D(200),
            None,
            MARCH,
            _listed("PL-PROMO", D("11.20"), break_at=D(100)),
        ),
        (
            "a higher break in the standing list beats the promotion",
            [PROMOTION, STANDARD],
            D(500),
            None,
            MARCH,
            _listed("PL-STD", D("10.80"), break_at=D(500)),
        ),
        (
            "promotion valid on its first day",
            [PROMOTION],
            D(100),
            None,
            dt.date(2026, 3, 1),
            _listed("PL-PROMO", D("11.20"), break_at=D(100)),
        ),
        (
            "promotion valid on its last day",
            [PROMOTION],
            D(100),
            None,
            dt.date(2026, 3, 31),
            _listed("PL-PROMO", D("11.20"), break_at=D(100)),
        ),
        ("promotion not yet valid", [PROMOTION], D(100), None, dt.date(2026, 2, 28), LIST_PRICE),
        ("promotion over", [PROMOTION], D(100), None, dt.date(2026, 4, 1), LIST_PRICE),
        (
            "expired list ignored",
            [EXPIRED, OPEN_ENDED],
            D(1),
            None,
            FEB,
            _listed("PL-OPEN", D("11.90")),
        ),
        ("expired list only: list price", [EXPIRED], D(1), None, FEB, LIST_PRICE),
        (
            "open-ended list",
            [OPEN_ENDED],
            D(1),
            None,
            dt.date(2099, 1, 1),
            _listed("PL-OPEN", D("11.90")),
        ),
        ("no price lists at all", [], D(1), None, FEB, LIST_PRICE),
        ("list in another currency ignored", [IN_USD], D(1), None, FEB, LIST_PRICE),
        ("break not reached anywhere: list price", [PROMOTION], D(99), None, MARCH, LIST_PRICE),
    ],
)
def test_choose_price(case, lists, quantity, category, on, expected):
    assert (
        choose_price(BEARING, quantity, on=on, price_lists=lists, customer_category=category)
        == expected
    ), case


def test_other_items_lines_do_not_apply():
    motor = ItemPrice("MOTOR-Y2", list_price=D("3500.00"))
    chosen = choose_price(motor, D(1), on=FEB, price_lists=[PROMOTION, STANDARD])
    assert (chosen.unit_price, chosen.price_list_code) == (D("3200.00"), "PL-STD")


def test_price_in_another_currency_from_its_list():
    chosen = choose_price(BEARING, D(1), on=FEB, price_lists=[STANDARD, IN_USD], currency="USD")
    assert (chosen.unit_price, chosen.currency, chosen.source) == (
        D("1.60"),
        "USD",
        PriceSource.PRICE_LIST,
    )


def test_same_price_same_break_in_two_lists_goes_to_the_first_code():
    again = PriceList("PL-AAA", lines=(PriceListLine("6204-2RS", D("12.00")),))
    chosen = choose_price(BEARING, D(1), on=FEB, price_lists=[STANDARD, again])
    assert chosen.price_list_code == "PL-AAA"


def test_no_price_list_and_no_list_price_is_a_clear_validation_error():
    with pytest.raises(ValidationFailed) as caught:
        choose_price(UNPRICED, D(1), on=FEB, price_lists=[STANDARD])
    assert caught.value.details["item_code"] == "NEW-ITEM"
    (reason,) = caught.value.field_errors["unit_price"]
    assert "NEW-ITEM" in reason and "no list price" in reason and "2026-02-10" in reason


def test_list_price_in_another_currency_is_no_fallback():
    with pytest.raises(ValidationFailed) as caught:
        choose_price(BEARING, D(1), on=FEB, price_lists=[], currency="USD")
    assert "unit_price" in caught.value.field_errors


@pytest.mark.parametrize("quantity", [D(0), D(-1)])
def test_quantity_must_be_positive(quantity):
    with pytest.raises(ValidationFailed) as caught:
        choose_price(BEARING, quantity, on=FEB, price_lists=[STANDARD])
    assert "quantity" in caught.value.field_errors
