"""Yearly dates and the window of days ahead: year ends, leap days, the day itself."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from customer.domain.anniversaries import (
    Due,
    due_within,
    month_day,
    month_day_ranges,
    next_occurrence,
    occurrence,
)

D = date


@pytest.mark.parametrize(
    ("origin", "year", "expected"),
    [
        (D(1980, 6, 18), 2026, D(2026, 6, 18)),
        (D(1980, 2, 29), 2027, D(2027, 2, 28)),  # no 29 Feb: the 28th
        (D(1980, 2, 29), 2028, D(2028, 2, 29)),
        (D(1981, 2, 28), 2028, D(2028, 2, 28)),
        (D(1980, 12, 31), 2027, D(2027, 12, 31)),
    ],
)
def test_occurrence(origin, year, expected):
    assert occurrence(origin, year) == expected


@pytest.mark.parametrize(
    ("origin", "today", "days", "expected"),
    [
        # the window is today through today + days, both included
        (D(1980, 6, 18), D(2026, 6, 18), 0, Due(D(2026, 6, 18), 0, 46)),
        (D(1980, 6, 18), D(2026, 6, 11), 7, Due(D(2026, 6, 18), 7, 46)),
        (D(1980, 6, 18), D(2026, 6, 10), 7, None),
        (D(1980, 6, 18), D(2026, 6, 19), 7, None),  # just passed: next year's is far
        # across the year end
        (D(1980, 1, 2), D(2026, 12, 30), 3, Due(D(2027, 1, 2), 3, 47)),
        (D(1980, 12, 31), D(2026, 12, 30), 3, Due(D(2026, 12, 31), 1, 46)),
        (D(1980, 1, 3), D(2026, 12, 30), 3, None),
        (D(1980, 12, 29), D(2026, 12, 30), 3, None),
        # 29 February: on the 28th in a common year, on the 29th in a leap year
        (D(1980, 2, 29), D(2027, 2, 21), 7, Due(D(2027, 2, 28), 7, 47)),
        (D(1980, 2, 29), D(2027, 2, 20), 7, None),
        (D(1980, 2, 29), D(2027, 3, 1), 30, None),
        (D(1980, 2, 29), D(2028, 2, 22), 7, Due(D(2028, 2, 29), 7, 48)),
        (D(1980, 2, 29), D(2028, 2, 28), 0, None),
        (D(1981, 2, 28), D(2028, 2, 28), 0, Due(D(2028, 2, 28), 0, 47)),
        (D(1981, 3, 1), D(2028, 2, 28), 1, None),
        (D(1981, 3, 1), D(2028, 2, 28), 2, Due(D(2028, 3, 1), 2, 47)),
        # a date is no anniversary of itself, and one still to come has none yet
        (D(2026, 6, 18), D(2026, 6, 18), 30, None),
        (D(2026, 6, 18), D(2026, 6, 1), 30, None),
        (D(2025, 6, 18), D(2026, 6, 18), 0, Due(D(2026, 6, 18), 0, 1)),
        # a whole year ahead finds every date exactly once
        (D(1980, 6, 17), D(2026, 6, 18), 366, Due(D(2027, 6, 17), 364, 47)),
    ],
)
def test_due_within(origin, today, days, expected):
    assert due_within(origin, today, days) == expected


def test_next_occurrence_of_a_future_date_is_none():
    assert next_occurrence(D(2030, 1, 1), D(2026, 1, 1)) is None


@pytest.mark.parametrize(
    ("today", "days", "expected"),
    [
        (D(2026, 6, 11), 7, [(611, 618)]),
        (D(2026, 12, 30), 3, [(1230, 1231), (101, 102)]),
        (D(2026, 12, 31), 0, [(1231, 1231)]),
        (D(2027, 2, 21), 7, [(221, 229)]),  # common year: 29 Feb falls on the 28th
        (D(2028, 2, 21), 7, [(221, 228)]),  # leap year: the 29th is a day of its own
        (D(2027, 2, 28), 1, [(228, 301)]),
        (D(2026, 12, 31), 366, [(1231, 1231), (101, 1231), (101, 101)]),
    ],
)
def test_month_day_ranges(today, days, expected):
    assert month_day_ranges(today, days) == expected


@pytest.mark.parametrize(
    "today",
    [D(2026, 12, 20), D(2027, 2, 14), D(2027, 2, 28), D(2028, 2, 20), D(2028, 2, 29)],
)
@pytest.mark.parametrize("days", [0, 1, 6, 13, 45, 365, 366])
def test_the_ranges_select_exactly_the_dates_due(today, days):
    """Every day of a leap and a common year as an origin: the ranges the database filters by
    hold the month-day of exactly the origins ``due_within`` finds (but for the origin that
    is itself today, which is no anniversary)."""
    ranges = month_day_ranges(today, days)
    for year in (1980, 1981):
        origin = D(year, 1, 1)
        while origin.year == year:
            selected = any(low <= month_day(origin) <= high for low, high in ranges)
            assert selected == (due_within(origin, today, days) is not None), origin
            origin += timedelta(days=1)
