"""Forecast figures (销售预测) over plain rows the repository has already scoped.

Amounts are summed per currency and never converted. A weighted amount is rounded to the fen
per opportunity, then summed, so a list of opportunities adds up to the forecast exactly.
Percentages are rounded half up to one decimal place; a rate over nothing is None.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from sales.domain.money import DEFAULT_CURRENCY, quantize_fen

ONE_DECIMAL = Decimal("0.1")
GROUPINGS = ("owner", "department", "month", "stage")


def percent(part: Decimal | int, whole: Decimal | int) -> Decimal | None:
    """``part`` as a percentage of ``whole`` to one decimal place; None when ``whole`` is 0."""
    if not whole:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(ONE_DECIMAL, rounding=ROUND_HALF_UP)


def weighted_amount(amount: Decimal | None, probability: int) -> Decimal:
    """``amount × probability / 100`` rounded to the fen; no amount weighs nothing."""
    return quantize_fen((amount or Decimal(0)) * probability / 100)


# -- weighted pipeline ---------------------------------------------------------------------
@dataclass(frozen=True)
class PipelineRow:
    """An open opportunity as the forecast reads it."""

    owner_id: str
    department_id: str | None
    stage_code: str
    probability: int
    amount: Decimal | None
    currency: str = DEFAULT_CURRENCY
    expected_close_date: date | None = None


@dataclass(frozen=True)
class PipelineGroup:
    key: str | None
    currency: str
    count: int
    amount: Decimal
    weighted: Decimal


def _group_key(by: str) -> Callable[[PipelineRow], str | None]:
    if by == "owner":
        return lambda row: row.owner_id
    if by == "department":
        return lambda row: row.department_id
    if by == "month":
        return lambda row: f"{row.expected_close_date:%Y-%m}" if row.expected_close_date else None
    if by == "stage":
        return lambda row: row.stage_code
    raise ValueError(f"the pipeline groups by one of {', '.join(GROUPINGS)}, not {by!r}")


def _ordered(keys: Iterable[str | None], order: Sequence[str]) -> list[str | None]:
    """``order`` first (in its order), the other keys sorted, None last."""
    rank = {key: index for index, key in enumerate(order)}
    return sorted(
        set(keys),
        key=lambda k: (k is None, rank.get(k, len(rank)) if k is not None else 0, k or ""),
    )


def weighted_pipeline(
    rows: Iterable[PipelineRow], by: str, stage_order: Sequence[str] = ()
) -> list[PipelineGroup]:
    """Count, amount and weighted amount per ``by`` (owner, department, month of expected close
    or stage) and currency. Stages come in ``stage_order``; a missing key (no department, no
    close date) is None and comes last."""
    key_of = _group_key(by)
    sums: dict[tuple[str | None, str], tuple[int, Decimal, Decimal]] = {}
    for row in rows:
        group = (key_of(row), row.currency)
        count, amount, weighted = sums.get(group, (0, Decimal(0), Decimal(0)))
        sums[group] = (
            count + 1,
            amount + (row.amount or Decimal(0)),
            weighted + weighted_amount(row.amount, row.probability),
        )
    order = stage_order if by == "stage" else ()
    keys = _ordered((key for key, _ in sums), order)
    return [
        PipelineGroup(key, currency, *sums[(key, currency)])
        for key in keys
        for currency in sorted(c for k, c in sums if k == key)
    ]


# -- attainment ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Attainment:
    subject_id: str
    period: str
    target: Decimal | None
    won: Decimal
    percent: Decimal | None


def attainment(subject_id: str, period: str, target: Decimal | None, won: Decimal) -> Attainment:
    """Won amount against the target; no target (or a target of 0) has no percentage."""
    return Attainment(subject_id, period, target, won, percent(won, target or 0))


# -- funnel --------------------------------------------------------------------------------
@dataclass(frozen=True)
class FunnelStep:
    stage_code: str
    reached: int
    conversion: Decimal | None
    """Percent of the opportunities that reached the stage before; None for the first."""


def funnel(stage_order: Sequence[str], entered: Iterable[tuple[str, str]]) -> list[FunnelStep]:
    """How many opportunities reached each stage of ``stage_order`` (the open stages, then the
    won stage), from ``(opportunity_id, stage_code)`` entries. An opportunity reached every
    stage up to the furthest it entered, so a skipped stage counts as passed; stages outside
    the order (lost stages) are left out."""
    rank = {code: index for index, code in enumerate(stage_order)}
    furthest: dict[str, int] = {}
    for opportunity_id, stage_code in entered:
        if stage_code in rank:
            furthest[opportunity_id] = max(furthest.get(opportunity_id, -1), rank[stage_code])
    steps: list[FunnelStep] = []
    for index, code in enumerate(stage_order):
        reached = sum(1 for f in furthest.values() if f >= index)
        before = steps[-1].reached if steps else 0
        steps.append(FunnelStep(code, reached, percent(reached, before) if steps else None))
    return steps


# -- days per stage ------------------------------------------------------------------------
@dataclass(frozen=True)
class HistoryRow:
    opportunity_id: str
    stage_code: str
    entered_at: datetime
    left_at: datetime | None = None


@dataclass(frozen=True)
class StageDuration:
    stage_code: str
    opportunities: int
    average_days: Decimal


def average_days_per_stage(
    rows: Iterable[HistoryRow], stage_order: Sequence[str] = ()
) -> list[StageDuration]:
    """Average days an opportunity spent in each stage it has left (a stage visited twice
    counts once per opportunity with both stays); stays not yet over are left out."""
    seconds: dict[str, dict[str, Decimal]] = {}
    for row in rows:
        if row.left_at is None:
            continue
        per_stage = seconds.setdefault(row.stage_code, {})
        spent = Decimal((row.left_at - row.entered_at).total_seconds())
        per_stage[row.opportunity_id] = per_stage.get(row.opportunity_id, Decimal(0)) + spent
    durations = []
    for code in (c for c in _ordered(seconds, stage_order) if c is not None):
        stays = seconds[code]
        average = sum(stays.values(), Decimal(0)) / len(stays) / 86_400
        durations.append(
            StageDuration(code, len(stays), average.quantize(ONE_DECIMAL, ROUND_HALF_UP))
        )
    return durations


# -- win rates -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ClosedRow:
    """A closed opportunity: status won, lost or abandoned."""

    owner_id: str
    status: str
    loss_reason: str | None = None
    department_id: str | None = None


@dataclass(frozen=True)
class WinRate:
    key: str | None
    won: int
    lost: int
    abandoned: int
    win_rate: Decimal | None
    """Won out of won and lost, in percent; abandoned deals are not counted as lost."""


def win_rates(rows: Iterable[ClosedRow], by: str = "owner") -> list[WinRate]:
    """Won, lost and abandoned counts and the win rate per owner or department."""
    if by not in ("owner", "department"):
        raise ValueError(f"win rates group by owner or department, not {by!r}")
    counts: dict[str | None, dict[str, int]] = {}
    for row in rows:
        key = row.owner_id if by == "owner" else row.department_id
        per_status = counts.setdefault(key, {"won": 0, "lost": 0, "abandoned": 0})
        if row.status in per_status:
            per_status[row.status] += 1
    rates = []
    for key in _ordered(counts, ()):
        won, lost, abandoned = counts[key]["won"], counts[key]["lost"], counts[key]["abandoned"]
        rates.append(WinRate(key, won, lost, abandoned, percent(won, won + lost)))
    return rates


@dataclass(frozen=True)
class LossShare:
    loss_reason: str | None
    lost: int
    share: Decimal | None
    """Percent of all lost opportunities."""


def losses_by_reason(rows: Iterable[ClosedRow]) -> list[LossShare]:
    """How many lost opportunities each loss reason accounts for, most first."""
    counts: dict[str | None, int] = {}
    for row in rows:
        if row.status == "lost":
            counts[row.loss_reason] = counts.get(row.loss_reason, 0) + 1
    total = sum(counts.values())
    return [
        LossShare(reason, lost, percent(lost, total))
        for reason, lost in sorted(
            counts.items(), key=lambda item: (-item[1], item[0] is None, item[0] or "")
        )
    ]
