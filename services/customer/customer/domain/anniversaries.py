"""Yearly dates — a contact's birthday, a customer's founding anniversary — and the window of
days ahead an alert schedule looks at.

A date recurs on its month and day every year after its own; 29 February recurs on 28 February
in years that have no 29 February. A window of ``days`` runs from today through today plus
``days`` (both included: ``days=0`` is today only).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

MAX_WINDOW_DAYS = 366
"""The longest window asked for: a year, whatever its length."""


def occurrence(origin: date, year: int) -> date:
    """The day in ``year`` on which ``origin`` recurs (29 Feb → 28 Feb in a common year)."""
    if origin.month == 2 and origin.day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return origin.replace(year=year)


def next_occurrence(origin: date, today: date) -> date | None:
    """The first recurrence of ``origin`` on or after ``today``, never ``origin`` itself (a
    founding day is no anniversary of itself); ``None`` for an origin after today."""
    if origin > today:
        return None
    found = occurrence(origin, today.year)
    if found < today or found == origin:
        found = occurrence(origin, today.year + 1)
    return found


@dataclass(frozen=True)
class Due:
    """A recurrence inside the window: on which day, in how many days, the how-manieth."""

    on: date
    days_until: int
    years: int


def due_within(origin: date, today: date, days: int) -> Due | None:
    """The recurrence of ``origin`` within ``days`` days from ``today``, if one falls there."""
    found = next_occurrence(origin, today)
    if found is None or (found - today).days > days:
        return None
    return Due(on=found, days_until=(found - today).days, years=found.year - origin.year)


LEAP_DAY = 229
LAST_OF_FEBRUARY = 228


def month_day(day: date) -> int:
    """``MMDD`` as a number (29 February is 229): how the database compares dates by their
    place in the year."""
    return day.month * 100 + day.day


def month_day_ranges(today: date, days: int) -> list[tuple[int, int]]:
    """Inclusive ``MMDD`` ranges that hold the month-day of every date recurring within the
    window, one range per calendar year the window touches. A range of a common year that
    ends on 28 February also holds 29 February, whose recurrence falls on that day. They select
    exactly the dates ``due_within`` finds, but for a date that is itself in the window (a
    company founded today has no anniversary yet), which ``due_within`` leaves out."""
    ranges = []
    start, end = today, today + timedelta(days=days)
    while start <= end:
        last = min(end, date(start.year, 12, 31))
        high = month_day(last)
        if high == LAST_OF_FEBRUARY and not calendar.isleap(last.year):
            high = LEAP_DAY
        ranges.append((month_day(start), high))
        start = date(start.year + 1, 1, 1)
    return ranges
