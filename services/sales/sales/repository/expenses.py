"""Queries on expenses (费用), their approvals and categories.

An expense is scoped like every sales record (its submitter is its owner, the customer gives
region and category); its approvers see it too, whatever their grants, so that the expenses
waiting for them can be listed and decided.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, and_, cast, exists, false, func, or_, select
from sqlalchemy.orm import Session, aliased

from crm_common.context import Principal
from crm_common.errors import NotFound
from crm_common.ids import lookup_id
from crm_common.pagination import Page, SortKey, keyset_page
from crm_common.scope import ScopeColumns, scope_filter
from sales.models import Expense, ExpenseApproval, ExpenseCategory

EXPENSE_SCOPE = ScopeColumns(
    owner=Expense.submitter_id,
    department=Expense.department_id,
    region=Expense.region,
    category=Expense.category,
)
DIMENSION_COLUMNS: dict[str, Any] = {
    "submitter_id": Expense.submitter_id,
    "department_id": Expense.department_id,
    "customer_id": Expense.customer_id,
    "opportunity_id": Expense.opportunity_id,
    "expense_category": Expense.expense_category,
}


def approves(person_id: str | None) -> ColumnElement[bool]:
    """The person is one of the expense's approvers, at any level."""
    if person_id is None:
        return false()
    return exists().where(
        ExpenseApproval.expense_id == Expense.id, ExpenseApproval.approver_person_id == person_id
    )


def visible_expenses(principal: Principal, person_id: str | None) -> ColumnElement[bool]:
    """The expenses the caller's grants cover, and those the caller's person approves."""
    return or_(scope_filter(principal, EXPENSE_SCOPE), approves(person_id))


def awaiting(person_id: str) -> ColumnElement[bool]:
    """Submitted expenses whose first undecided level is the person's."""
    mine, earlier = aliased(ExpenseApproval), aliased(ExpenseApproval)
    return and_(
        Expense.status == "submitted",
        exists().where(
            mine.expense_id == Expense.id,
            mine.approver_person_id == person_id,
            mine.decision.is_(None),
            ~exists().where(
                earlier.expense_id == mine.expense_id,
                earlier.level < mine.level,
                earlier.decision.is_(None),
            ),
        ),
    )


def get_expense(session: Session, expense_id: Any, visible: ColumnElement[bool]) -> Expense:
    """The expense if the caller may see it; ``NotFound`` alike when missing or hidden."""
    key = lookup_id(expense_id)
    found = session.scalar(select(Expense).where(Expense.id == key, visible)) if key else None
    if found is None:
        raise NotFound.of("expense", expense_id)
    return found


def approvals_of(session: Session, expense_ids: Iterable[uuid.UUID]) -> dict[Any, list[Any]]:
    """The approval levels of each expense, in level order."""
    wanted = sorted(set(expense_ids))
    found: dict[Any, list[Any]] = {key: [] for key in wanted}
    if not wanted:
        return found
    stmt = (
        select(ExpenseApproval)
        .where(ExpenseApproval.expense_id.in_(wanted))
        .order_by(ExpenseApproval.expense_id, ExpenseApproval.level)
    )
    for approval in session.scalars(stmt):
        found[approval.expense_id].append(approval)
    return found


# -- lists -----------------------------------------------------------------------------------
SORT_COLUMNS = {"created_at": Expense.created_at, "spent_on": Expense.spent_on}


def filter_conditions(query: dict[str, Any]) -> list[ColumnElement[bool]]:
    """SQL conditions for a validated ``ExpenseFilterSchema`` result."""
    conditions: list[ColumnElement[bool]] = []
    if query.get("status"):
        conditions.append(Expense.status.in_(query["status"]))
    if query.get("expense_category"):
        conditions.append(Expense.expense_category.in_(query["expense_category"]))
    for name in ("submitter_id", "department_id", "customer_id", "opportunity_id", "activity_id"):
        if query.get(name) is not None:
            conditions.append(getattr(Expense, name) == query[name])
    if query.get("spent_from") is not None:
        conditions.append(Expense.spent_on >= query["spent_from"])
    if query.get("spent_to") is not None:
        conditions.append(Expense.spent_on <= query["spent_to"])
    if query.get("q"):
        text = query["q"]
        conditions.append(
            or_(
                Expense.code.icontains(text, autoescape=True),
                Expense.receipt_no.icontains(text, autoescape=True),
                Expense.remark.icontains(text, autoescape=True),
            )
        )
    return conditions


def expenses_page(
    session: Session,
    query: dict[str, Any],
    visible: ColumnElement[bool],
    extra: Sequence[ColumnElement[bool]] = (),
) -> Page:
    """One page of the visible expenses matching a validated ``ExpenseQuerySchema``."""
    sort: str = query["sort"]
    key = SortKey(SORT_COLUMNS[sort.lstrip("-")], Expense.id, descending=sort.startswith("-"))
    stmt = select(Expense).where(visible, *filter_conditions(query), *extra)
    return keyset_page(session, stmt, key, query.get("cursor"), query.get("limit"))


# -- totals ----------------------------------------------------------------------------------
def _month(session: Session) -> ColumnElement[str]:
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(Expense.spent_on, "YYYY-MM")
    return func.strftime("%Y-%m", Expense.spent_on)


def fen(amount: Any) -> ColumnElement[int]:
    """An amount in whole fen: integers add up exactly on every database."""
    return cast(func.round(amount * 100), BigInteger)


def totals(
    session: Session,
    by: Sequence[str],
    conditions: Sequence[ColumnElement[bool]],
    statuses: Collection[str],
) -> list[tuple[tuple[str | None, ...], str, Decimal, int]]:
    """(key per ``by`` dimension, currency, amount, count) of the expenses in ``statuses``
    meeting ``conditions``, grouped in SQL and ordered by key (none last) and currency."""
    keys = [
        (_month(session) if name == "month" else DIMENSION_COLUMNS[name]).label(f"k{index}")
        for index, name in enumerate(by)
    ]
    stmt = (
        select(*keys, Expense.currency, func.sum(fen(Expense.amount)), func.count())
        .where(Expense.status.in_(sorted(statuses)), *conditions)
        .group_by(*keys, Expense.currency)
    )
    found: list[tuple[tuple[str | None, ...], str, Decimal, int]] = []
    for row in session.execute(stmt):
        values = tuple(row)
        key = tuple(None if v is None else str(v) for v in values[: len(keys)])
        currency, cents, count = values[len(keys) :]
        found.append((key, str(currency), Decimal(int(cents or 0)) / 100, int(count)))
    found.sort(key=lambda item: (tuple((k is None, k or "") for k in item[0]), item[1]))
    return found


# -- categories ------------------------------------------------------------------------------
def categories(session: Session, include_inactive: bool) -> Sequence[ExpenseCategory]:
    stmt = select(ExpenseCategory)
    if not include_inactive:
        stmt = stmt.where(ExpenseCategory.active.is_(True))
    return session.scalars(stmt.order_by(ExpenseCategory.code)).all()


def active_category_codes(session: Session) -> set[str]:
    return set(
        session.scalars(select(ExpenseCategory.code).where(ExpenseCategory.active.is_(True)))
    )


def get_category(session: Session, code: str) -> ExpenseCategory:
    found = session.get(ExpenseCategory, code)
    if found is None:
        raise NotFound.of("expense category", code)
    return found
