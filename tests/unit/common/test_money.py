from decimal import Decimal

import pytest
from marshmallow import Schema, ValidationError

from crm_common.money import Money, MoneyField


class Price(Schema):
    price = MoneyField(required=True)


def test_amounts_are_decimals_rounded_half_up_to_cents():
    assert Money.of("10.005").amount == Decimal("10.01")
    assert Money.of("0.1") + Money.of("0.2") == Money.of("0.3")
    assert (Money.of("19.99") * 3).amount == Decimal("59.97")


def test_floats_are_refused():
    with pytest.raises(TypeError):
        Money.of(0.1)
    with pytest.raises(ValidationError):
        Price().load({"price": {"amount": 0.1}})


def test_currencies_do_not_mix():
    with pytest.raises(ValueError):
        Money.of("1", "CNY") + Money.of("1", "USD")


def test_money_field_round_trips_as_strings():
    loaded = Price().load({"price": {"amount": "1234.5", "currency": "usd"}})
    assert loaded["price"] == Money(Decimal("1234.50"), "USD")
    assert Price().dump(loaded) == {"price": {"amount": "1234.50", "currency": "USD"}}
    assert Price().load({"price": {"amount": "8"}})["price"].currency == "CNY"


@pytest.mark.parametrize(
    "bad", [{"amount": "abc"}, {"amount": "NaN"}, "12", {"amount": "1", "currency": "RMB1"}]
)
def test_bad_money_is_a_field_error(bad):
    with pytest.raises(ValidationError) as caught:
        Price().load({"price": bad})
    assert "price" in caught.value.messages
