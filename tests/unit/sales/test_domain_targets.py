from datetime import date
from decimal import Decimal

import pytest

from crm_common.errors import ValidationFailed
from sales.domain.targets import (
    Period,
    PeriodKind,
    check_subject_type,
    month,
    month_of,
    parse_period,
    quarter_of,
    target_for,
    targets_for,
)


@pytest.mark.parametrize(
    ("text", "kind", "year", "number", "canonical"),
    [
        ("2026-03", PeriodKind.MONTH, 2026, 3, "2026-03"),
        ("2026-12", PeriodKind.MONTH, 2026, 12, "2026-12"),
        (" 2026-01 ", PeriodKind.MONTH, 2026, 1, "2026-01"),
        ("2026-Q1", PeriodKind.QUARTER, 2026, 1, "2026-Q1"),
        ("2026-q4", PeriodKind.QUARTER, 2026, 4, "2026-Q4"),
    ],
)
def test_periods_parse(text, kind, year, number, canonical):
    period = parse_period(text)
    assert (period.kind, period.year, period.number) == (kind, year, number)
    assert str(period) == canonical


@pytest.mark.parametrize(
    "text",
    ["", None, "2026-3", "2026-13", "2026-00", "2026-Q0", "2026-Q5", "2026Q1", "26-03", "2026/03"],
)
def test_malformed_periods(text):
    with pytest.raises(ValidationFailed) as caught:
        parse_period(text)
    assert caught.value.field_errors == {
        "period": ["must be a month such as 2026-03 or a quarter such as 2026-Q1"]
    }


@pytest.mark.parametrize("text", ["1999-12", "3000-Q1"])
def test_years_out_of_range(text):
    with pytest.raises(ValidationFailed):
        parse_period(text)


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2026-03", date(2026, 3, 1), date(2026, 4, 1)),
        ("2026-12", date(2026, 12, 1), date(2027, 1, 1)),
        ("2026-Q1", date(2026, 1, 1), date(2026, 4, 1)),
        ("2026-Q4", date(2026, 10, 1), date(2027, 1, 1)),
    ],
)
def test_period_bounds(text, start, end):
    period = parse_period(text)
    assert (period.start, period.end) == (start, end)
    assert period.contains(start)
    assert not period.contains(end)


def test_months_and_quarters():
    q2 = parse_period("2026-Q2")
    assert [str(m) for m in q2.months()] == ["2026-04", "2026-05", "2026-06"]
    assert month(2026, 5).quarter() == q2
    assert month(2026, 5).months() == (month(2026, 5),)
    assert month_of(date(2026, 11, 30)) == Period(2026, PeriodKind.MONTH, 11)
    assert str(quarter_of(date(2026, 11, 30))) == "2026-Q4"


def test_subject_types():
    assert check_subject_type("person") == "person"
    assert check_subject_type("department") == "department"
    with pytest.raises(ValidationFailed) as caught:
        check_subject_type("team")
    assert list(caught.value.field_errors) == ["subject_type"]


TARGETS = {
    "2026-01": Decimal("100000.00"),
    "2026-02": Decimal("80000.00"),
    "2026-03": Decimal("120000.00"),
    "2026-04": Decimal("50000.00"),
    "2026-Q3": Decimal("400000.00"),
    "2026-07": Decimal("1.00"),
}


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        ("2026-02", Decimal("80000.00")),
        ("2026-05", None),
        ("2026-Q1", Decimal("300000.00")),
        ("2026-Q2", Decimal("50000.00")),
        ("2026-Q3", Decimal("400000.00")),
        ("2026-Q4", None),
    ],
    ids=[
        "set month",
        "unset month",
        "sum of months",
        "sum of the months set",
        "set quarter",
        "nothing",
    ],
)
def test_a_quarter_defaults_to_the_sum_of_its_months(period, expected):
    assert target_for(parse_period(period), TARGETS) == expected


def test_targets_for_several_periods_leave_out_those_without():
    periods = [parse_period(p) for p in ("2026-Q1", "2026-Q4", "2026-05", "2026-07")]
    assert targets_for(periods, TARGETS) == {
        "2026-Q1": Decimal("300000.00"),
        "2026-07": Decimal("1.00"),
    }
