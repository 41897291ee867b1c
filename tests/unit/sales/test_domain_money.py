from decimal import Decimal

import pytest

from crm_common.errors import ValidationFailed
from sales.domain.codes import codes_exhausted, format_code, parse_code
from sales.domain.money import (
    Money,
    format_amount,
    parse_amount,
    parse_currency,
    parse_decimal,
    quantize_fen,
    total,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1234.5", Decimal("1234.50")),
        ("  88 ", Decimal("88.00")),
        ("0.005", Decimal("0.01")),
        ("0.004", Decimal("0.00")),
        ("2.675", Decimal("2.68")),
        ("1.115", Decimal("1.12")),
        (".5", Decimal("0.50")),
        ("7.", Decimal("7.00")),
        (Decimal("19.999"), Decimal("20.00")),
        (42, Decimal("42.00")),
        ("9999999999999999.99", Decimal("9999999999999999.99")),
    ],
)
def test_amounts_parse_exactly_and_round_half_up_to_the_fen(raw, expected):
    amount = parse_amount(raw)
    assert amount == expected
    assert amount.as_tuple().exponent == -2


@pytest.mark.parametrize(
    "raw",
    [1.5, 0.1, True, None, "", "abc", "1e3", "1,234.00", "12.3.4", "NaN", "Infinity", [], {}],
)
def test_floats_and_anything_but_decimal_text_are_refused(raw):
    with pytest.raises(ValidationFailed) as caught:
        parse_amount(raw, "expected_amount")
    assert list(caught.value.field_errors) == ["expected_amount"]


def test_non_finite_decimals_are_refused():
    for raw in (Decimal("NaN"), Decimal("Infinity")):
        with pytest.raises(ValidationFailed):
            parse_decimal(raw, "quantity")


@pytest.mark.parametrize(
    ("raw", "kwargs", "reason"),
    [
        ("-1", {}, "cannot be negative"),
        ("0", {"allow_zero": False}, "must be more than zero"),
        ("0.001", {"allow_zero": False}, "must be more than zero"),
        ("10000000000000000", {}, "has more than 16 digits"),
        ("9999999999999999.995", {}, "has more than 16 digits"),
    ],
)
def test_amount_bounds(raw, kwargs, reason):
    with pytest.raises(ValidationFailed) as caught:
        parse_amount(raw, **kwargs)
    assert caught.value.field_errors == {"amount": [reason]}


def test_negative_amounts_when_allowed():
    assert parse_amount("-3.456", allow_negative=True) == Decimal("-3.46")


def test_quantize_fen_rounds_half_away_from_zero():
    assert quantize_fen(Decimal("-2.005")) == Decimal("-2.01")
    assert quantize_fen(Decimal("2.005")) == Decimal("2.01")


def test_amounts_are_written_as_plain_decimal_strings():
    assert format_amount(Decimal("1E+3")) == "1000.00"
    assert format_amount(Decimal("0")) == "0.00"
    assert format_amount(Decimal("12.3")) == "12.30"


@pytest.mark.parametrize(
    ("raw", "expected"), [(None, "CNY"), ("", "CNY"), ("usd", "USD"), (" EUR ", "EUR")]
)
def test_currency_codes(raw, expected):
    assert parse_currency(raw) == expected


@pytest.mark.parametrize("raw", ["RMB1", "US", "¥", "12A", 840])
def test_bad_currency_codes(raw):
    with pytest.raises(ValidationFailed) as caught:
        parse_currency(raw)
    assert "currency" in caught.value.field_errors


def test_money_parse_names_the_fields_at_fault():
    with pytest.raises(ValidationFailed) as caught:
        Money.parse("1.5", "XX", field="offer", currency_field="offer_currency")
    assert list(caught.value.field_errors) == ["offer_currency"]
    assert Money.parse("1.5") == Money(Decimal("1.50"), "CNY")


def test_money_is_rounded_on_construction_and_refuses_floats():
    assert Money(Decimal("1.005")).amount == Decimal("1.01")
    with pytest.raises(TypeError):
        Money(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Money(Decimal(1), "cny")


def test_money_arithmetic_stays_in_one_currency():
    a, b = Money(Decimal("10.10")), Money(Decimal("0.25"))
    assert a + b == Money(Decimal("10.35"))
    assert a - b == Money(Decimal("9.85"))
    assert Money(Decimal("3.33")).times(Decimal("3")) == Money(Decimal("9.99"))
    assert Money(Decimal("0.10")).times(Decimal("0.333")) == Money(Decimal("0.03"))
    with pytest.raises(ValueError):
        a + Money(Decimal(1), "USD")


def test_money_serialises_as_strings():
    money = Money(Decimal("1234.5"), "USD")
    assert money.as_json() == {"amount": "1234.50", "currency": "USD"}
    assert str(money) == "1234.50 USD"


def test_total():
    assert total([Money(Decimal("0.1"))] * 10) == Money(Decimal("1.00"))
    assert total([], "USD") == Money.zero("USD")
    with pytest.raises(ValueError):
        total([Money(Decimal(1), "USD")])


# -- codes ---------------------------------------------------------------------------------
def test_codes_are_prefix_year_and_six_digits():
    assert format_code("OPP", 2026, 1) == "OPP-2026-000001"
    assert parse_code("OPP", " opp-2026-000123 ") == (2026, 123)
    assert parse_code("EXP", "EXP-2026-999999") == (2026, 999_999)


@pytest.mark.parametrize(
    "bad",
    ["", "OPP-2026-000000", "OPP-26-000001", "OPP-2026-1", "EXP-2026-000001", "OPP2026000001"],
)
def test_malformed_codes(bad):
    assert parse_code("OPP", bad) is None


@pytest.mark.parametrize(("year", "sequence"), [(2026, 0), (2026, 1_000_000), (99, 1)])
def test_codes_out_of_range(year, sequence):
    with pytest.raises(ValueError):
        format_code("OPP", year, sequence)


def test_exhausted_codes_are_a_conflict():
    error = codes_exhausted("OPP", 2026)
    assert error.status == 409
    assert error.details["reason"] == "codes_exhausted"
