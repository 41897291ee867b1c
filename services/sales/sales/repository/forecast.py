"""The forecast's queries (销售预测): every figure is grouped and summed in SQL over the
opportunities the caller may see, with the opportunity list's own scope condition.

Amounts are summed as whole fen (integers add up exactly on every database, SQLite included):
an expected amount is ``round(amount × 100)`` fen, and its weighted amount
``(fen × probability + 50) div 100``, which is ``round(amount × probability / 100, 2)`` half up
(``sales.domain.forecast.weighted_amount``) for the non-negative amounts opportunities have.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Float,
    case,
    cast,
    func,
    literal,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from sales.domain.opportunities import Status
from sales.models import (
    Department,
    LossReason,
    Opportunity,
    Person,
    SalesProcess,
    SalesStage,
    StageHistory,
)

CLOSED = (Status.WON.value, Status.LOST.value, Status.ABANDONED.value)


def fen(amount: Any) -> ColumnElement[int]:
    """An amount in whole fen (none counts as 0)."""
    whole: ColumnElement[int] = cast(func.round(func.coalesce(amount, 0) * 100), BigInteger)
    return whole


def weighted_fen(amount: Any, probability: Any) -> ColumnElement[int]:
    """``round(amount × probability / 100, 2)`` half up, in whole fen."""
    weighted: ColumnElement[int] = (fen(amount) * probability + 50) // 100
    return weighted


def as_money(fen_total: Any) -> Decimal:
    return Decimal(int(fen_total or 0)) / 100


@dataclass(frozen=True)
class Filters:
    """Whose opportunities a figure covers, within the caller's ``visible`` scope."""

    visible: ColumnElement[bool]
    owner_id: str | None = None
    department_ids: Collection[str] | None = None
    process_ids: Collection[uuid.UUID] | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        found = [self.visible]
        if self.owner_id is not None:
            found.append(Opportunity.owner_id == self.owner_id)
        if self.department_ids is not None:
            found.append(Opportunity.department_id.in_(sorted(self.department_ids)))
        if self.process_ids is not None:
            found.append(Opportunity.process_id.in_(sorted(self.process_ids)))
        return found


# -- processes -------------------------------------------------------------------------------
def process_codes(session: Session) -> list[str]:
    """The codes of the active processes' current revisions, in code order."""
    stmt = select(SalesProcess.code).where(
        SalesProcess.superseded_by.is_(None), SalesProcess.active.is_(True)
    )
    return sorted(set(session.scalars(stmt)))


def current_revision(session: Session, code: str) -> SalesProcess | None:
    stmt = select(SalesProcess).where(SalesProcess.code == code)
    return session.scalar(stmt.order_by(SalesProcess.revision.desc()).limit(1))


def revision_ids(session: Session, code: str) -> set[uuid.UUID]:
    """Every revision of the process ``code``: opportunities follow the one they started on."""
    return set(session.scalars(select(SalesProcess.id).where(SalesProcess.code == code)))


def stages_of(session: Session, process_id: uuid.UUID) -> list[SalesStage]:
    stmt = select(SalesStage).where(SalesStage.process_id == process_id)
    return list(session.scalars(stmt.order_by(SalesStage.position)))


def stage_order(session: Session) -> dict[str, tuple[int, str]]:
    """Stage code → (position, name) over the current revisions, the lowest position first
    where processes share a code."""
    stmt = (
        select(SalesStage.code, SalesStage.position, SalesStage.name)
        .join(SalesProcess, SalesProcess.id == SalesStage.process_id)
        .where(SalesProcess.superseded_by.is_(None))
        .order_by(SalesStage.position, SalesProcess.code)
    )
    found: dict[str, tuple[int, str]] = {}
    for code, position, name in session.execute(stmt):
        found.setdefault(str(code), (int(position), str(name)))
    return found


# -- names -----------------------------------------------------------------------------------
def people_by_user(session: Session, user_ids: Iterable[str | None]) -> dict[str, Person]:
    """User id → the person whose account it is."""
    wanted = sorted({u for u in user_ids if u})
    if not wanted:
        return {}
    stmt = select(Person).where(Person.user_id.in_(wanted))
    stmt = stmt.order_by(Person.source_updated_at.desc().nulls_last(), Person.source_version.desc())
    found: dict[str, Person] = {}
    for person in session.scalars(stmt):
        if person.user_id is not None:
            found.setdefault(person.user_id, person)
    return found


def department_names(session: Session, ids: Iterable[str | None]) -> dict[str, str]:
    wanted = sorted({i for i in ids if i})
    if not wanted:
        return {}
    stmt = select(Department.id, Department.name).where(Department.id.in_(wanted))
    return {str(i): str(name) for i, name in session.execute(stmt)}


def loss_reason_names(session: Session) -> dict[str, str]:
    return {str(c): str(n) for c, n in session.execute(select(LossReason.code, LossReason.name))}


# -- the weighted pipeline -------------------------------------------------------------------
def _month_of(session: Session, day: Any) -> ColumnElement[str]:
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(day, "YYYY-MM")
    return func.strftime("%Y-%m", day)


def pipeline(
    session: Session, filters: Filters, group_by: str, start: date | None, end: date | None
) -> list[tuple[str | None, str, int, Decimal, Decimal]]:
    """(key, currency, count, amount, weighted) of the open opportunities per ``group_by``
    (owner, department, month of expected close, stage) and currency; a close date range
    leaves out opportunities without a close date."""
    keys: dict[str, Any] = {
        "owner": Opportunity.owner_id,
        "department": Opportunity.department_id,
        "month": _month_of(session, Opportunity.expected_close_date),
        "stage": Opportunity.stage_code,
    }
    key = keys[group_by].label("key")
    stmt = select(
        key,
        Opportunity.currency,
        func.count(),
        func.sum(fen(Opportunity.expected_amount)),
        func.sum(weighted_fen(Opportunity.expected_amount, Opportunity.probability)),
    ).where(Opportunity.status == Status.OPEN.value, *filters.conditions())
    if start is not None:
        stmt = stmt.where(Opportunity.expected_close_date >= start)
    if end is not None:
        stmt = stmt.where(Opportunity.expected_close_date <= end)
    stmt = stmt.group_by(key, Opportunity.currency)
    return [
        (None if k is None else str(k), str(c), int(n), as_money(a), as_money(w))
        for k, c, n, a, w in session.execute(stmt)
    ]


# -- attainment ------------------------------------------------------------------------------
def won(
    session: Session, filters: Filters, by: str, start: datetime, end: datetime, currency: str
) -> dict[str | None, Decimal]:
    """Won amount in ``currency`` per owner (user id) or department, of the opportunities
    closed as won from ``start`` to before ``end``."""
    key = (Opportunity.owner_id if by == "owner" else Opportunity.department_id).label("key")
    stmt = (
        select(key, func.sum(fen(Opportunity.expected_amount)))
        .where(
            Opportunity.status == Status.WON.value,
            Opportunity.currency == currency,
            Opportunity.closed_at >= start,
            Opportunity.closed_at < end,
            *filters.conditions(),
        )
        .group_by(key)
    )
    return {None if k is None else str(k): as_money(a) for k, a in session.execute(stmt)}


# -- funnel ----------------------------------------------------------------------------------
def furthest_reached(
    session: Session,
    filters: Filters,
    stage_codes: Sequence[str],
    start: datetime | None,
    end: datetime | None,
) -> tuple[int, dict[int | None, int]]:
    """How many opportunities were created in the range, and how many of them got at most
    as far as each stage (its index in ``stage_codes``; None: none of them). Where an
    opportunity got is the furthest stage its stage history or its current stage shows."""
    cohort = select(Opportunity.id).where(*filters.conditions())
    if start is not None:
        cohort = cohort.where(Opportunity.created_at >= start)
    if end is not None:
        cohort = cohort.where(Opportunity.created_at < end)
    cohort_ids = cohort.subquery()
    entered = union_all(
        select(StageHistory.opportunity_id.label("opportunity_id"), StageHistory.stage_code).join(
            cohort_ids, cohort_ids.c.id == StageHistory.opportunity_id
        ),
        select(Opportunity.id.label("opportunity_id"), Opportunity.stage_code).join(
            cohort_ids, cohort_ids.c.id == Opportunity.id
        ),
    ).subquery()
    rank = case(
        {code: index for index, code in enumerate(stage_codes)},
        value=entered.c.stage_code,
        else_=literal(None),
    )
    per_opportunity = (
        select(func.max(rank).label("furthest")).group_by(entered.c.opportunity_id).subquery()
    )
    counts = session.execute(
        select(per_opportunity.c.furthest, func.count()).group_by(per_opportunity.c.furthest)
    )
    found = {None if f is None else int(f): int(n) for f, n in counts}
    return sum(found.values()), found


# -- days per stage --------------------------------------------------------------------------
def _seconds(session: Session) -> ColumnElement[float]:
    if session.get_bind().dialect.name == "postgresql":
        epoch: ColumnElement[float] = cast(
            func.extract("epoch", StageHistory.left_at - StageHistory.entered_at), Float
        )
        return epoch
    days = func.julianday(StageHistory.left_at) - func.julianday(StageHistory.entered_at)
    return cast(days * 86400, Float)


def stage_durations(
    session: Session, filters: Filters, start: datetime | None, end: datetime | None
) -> list[tuple[str, int, Decimal]]:
    """(stage code, opportunities, average seconds) over the stays that ended in the range;
    an opportunity that stayed in a stage twice counts once, with both stays."""
    stays = (
        select(
            StageHistory.opportunity_id,
            StageHistory.stage_code,
            func.sum(_seconds(session)).label("seconds"),
        )
        .join(Opportunity, Opportunity.id == StageHistory.opportunity_id)
        .where(StageHistory.left_at.is_not(None), *filters.conditions())
    )
    if start is not None:
        stays = stays.where(StageHistory.left_at >= start)
    if end is not None:
        stays = stays.where(StageHistory.left_at < end)
    per_stay = stays.group_by(StageHistory.opportunity_id, StageHistory.stage_code).subquery()
    stmt = select(per_stay.c.stage_code, func.count(), func.avg(per_stay.c.seconds)).group_by(
        per_stay.c.stage_code
    )
    return [
        (str(code), int(n), Decimal(str(average or 0)))
        for code, n, average in session.execute(stmt)
    ]


# -- win rates -------------------------------------------------------------------------------
def closed_counts(
    session: Session, filters: Filters, by: str, start: datetime | None, end: datetime | None
) -> list[tuple[str | None, str, int]]:
    """(owner or department, status, count) of the opportunities closed in the range."""
    key = (Opportunity.owner_id if by == "owner" else Opportunity.department_id).label("key")
    stmt = select(key, Opportunity.status, func.count()).where(
        Opportunity.status.in_(CLOSED), *filters.conditions(), *_closed_in(start, end)
    )
    rows = session.execute(stmt.group_by(key, Opportunity.status))
    return [(None if k is None else str(k), str(s), int(n)) for k, s, n in rows]


def losses(
    session: Session, filters: Filters, start: datetime | None, end: datetime | None
) -> list[tuple[str | None, int]]:
    """(loss reason, count) of the opportunities lost in the range."""
    stmt = select(Opportunity.loss_reason, func.count()).where(
        Opportunity.status == Status.LOST.value, *filters.conditions(), *_closed_in(start, end)
    )
    rows = session.execute(stmt.group_by(Opportunity.loss_reason))
    return [(None if r is None else str(r), int(n)) for r, n in rows]


def _closed_in(start: datetime | None, end: datetime | None) -> list[ColumnElement[bool]]:
    found = []
    if start is not None:
        found.append(Opportunity.closed_at >= start)
    if end is not None:
        found.append(Opportunity.closed_at < end)
    return found
