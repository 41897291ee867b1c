"""Sales targets (销售目标) per person or department, per month (``2026-03``) or quarter
(``2026-Q1``). A quarter without a target of its own has the sum of its months' targets."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from crm_common.errors import ValidationFailed

MIN_YEAR = 2000
MAX_YEAR = 2999
PERIOD_FORMAT = "must be a month such as 2026-03 or a quarter such as 2026-Q1"
_MONTH = re.compile(r"(\d{4})-(\d{2})")
_QUARTER = re.compile(r"(\d{4})-Q(\d)")


class PeriodKind(StrEnum):
    MONTH = "month"
    QUARTER = "quarter"


class SubjectType(StrEnum):
    PERSON = "person"
    DEPARTMENT = "department"


@dataclass(frozen=True)
class Period:
    year: int
    kind: PeriodKind
    number: int
    """The month (1 to 12) or the quarter (1 to 4)."""

    def __str__(self) -> str:
        if self.kind is PeriodKind.QUARTER:
            return f"{self.year}-Q{self.number}"
        return f"{self.year}-{self.number:02d}"

    @property
    def first_month(self) -> int:
        return (self.number - 1) * 3 + 1 if self.kind is PeriodKind.QUARTER else self.number

    @property
    def start(self) -> date:
        return date(self.year, self.first_month, 1)

    @property
    def end(self) -> date:
        """The first day after the period."""
        month = self.first_month + (3 if self.kind is PeriodKind.QUARTER else 1)
        return date(self.year + (month - 1) // 12, (month - 1) % 12 + 1, 1)

    def months(self) -> tuple[Period, ...]:
        if self.kind is PeriodKind.MONTH:
            return (self,)
        return tuple(month(self.year, self.first_month + i) for i in range(3))

    def quarter(self) -> Period:
        return Period(self.year, PeriodKind.QUARTER, (self.first_month - 1) // 3 + 1)

    def contains(self, day: date) -> bool:
        return self.start <= day < self.end


def month(year: int, number: int) -> Period:
    return Period(year, PeriodKind.MONTH, number)


def month_of(day: date) -> Period:
    return month(day.year, day.month)


def quarter_of(day: date) -> Period:
    return month_of(day).quarter()


def parse_period(text: object, field: str = "period") -> Period:
    """A month ``2026-03`` or a quarter ``2026-Q1`` (``q`` in lower case too)."""
    value = str(text or "").strip().upper()
    matched = _MONTH.fullmatch(value)
    found: Period | None = None
    if matched and 1 <= int(matched.group(2)) <= 12:
        found = month(int(matched.group(1)), int(matched.group(2)))
    matched = _QUARTER.fullmatch(value)
    if matched and 1 <= int(matched.group(2)) <= 4:
        found = Period(int(matched.group(1)), PeriodKind.QUARTER, int(matched.group(2)))
    if found is None:
        raise ValidationFailed.on(field, PERIOD_FORMAT)
    if not MIN_YEAR <= found.year <= MAX_YEAR:
        raise ValidationFailed.on(field, f"the year must be from {MIN_YEAR} to {MAX_YEAR}")
    return found


def check_subject_type(value: object, field: str = "subject_type") -> SubjectType:
    if value not in tuple(SubjectType):
        raise ValidationFailed.on(field, "must be person or department")
    return SubjectType(str(value))


def target_for(period: Period, targets: Mapping[str, Decimal]) -> Decimal | None:
    """One subject's target for ``period``, from its targets keyed by period text: the set
    one, else for a quarter the sum of the months that have one; None when nothing is set."""
    if str(period) in targets:
        return targets[str(period)]
    if period.kind is PeriodKind.MONTH:
        return None
    months = [targets[str(m)] for m in period.months() if str(m) in targets]
    return sum(months, Decimal(0)) if months else None


def targets_for(periods: Iterable[Period], targets: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """The targets of ``periods`` that have one (set, or summed from months)."""
    found: dict[str, Decimal] = {}
    for period in periods:
        amount = target_for(period, targets)
        if amount is not None:
            found[str(period)] = amount
    return found
