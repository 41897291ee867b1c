"""Queries on contracts (合同) and their payment milestones (回款计划).

People reach contracts through their ``visible`` condition (``visible_contracts(principal)``);
``contract_milestones`` answers receivables' planned-vs-actual collections, which scope the
rows themselves by the owner, department, region and category each row carries.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, delete, or_, select
from sqlalchemy.orm import Session

from crm_common.context import Principal
from crm_common.errors import NotFound
from crm_common.ids import lookup_id
from crm_common.pagination import Page, SortKey, keyset_page
from crm_common.scope import ScopeColumns, scope_filter
from sales.models.orders import Contract, ContractMilestone

CONTRACT_SCOPE = ScopeColumns(
    owner=Contract.owner_id,
    department=Contract.department_id,
    region=Contract.region,
    category=Contract.category,
)
SORT_COLUMNS = {"created_at": Contract.created_at, "end_date": Contract.end_date}
PLANNED_STATUSES = ("signed", "active", "completed", "expired")
"""Contracts whose milestones are a collection plan: signed and not terminated."""


@dataclass(frozen=True)
class MilestoneRow:
    """One payment milestone of a signed contract, with what scopes and routes it."""

    contract_id: uuid.UUID
    contract_code: str
    customer_id: uuid.UUID
    owner_id: str
    department_id: str | None
    region: str | None
    category: str | None
    seq: int
    name: str
    due_date: date
    amount: Decimal
    currency: str


def visible_contracts(principal: Principal) -> ColumnElement[bool]:
    return scope_filter(principal, CONTRACT_SCOPE)


def get_contract(session: Session, contract_id: Any, visible: ColumnElement[bool]) -> Contract:
    key = lookup_id(contract_id)
    found = session.scalar(select(Contract).where(Contract.id == key, visible)) if key else None
    if found is None:
        raise NotFound.of("contract", contract_id)
    return found


def milestones_of(
    session: Session, contract_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[ContractMilestone]]:
    wanted = sorted(set(contract_ids))
    found: dict[uuid.UUID, list[ContractMilestone]] = {key: [] for key in wanted}
    if wanted:
        stmt = (
            select(ContractMilestone)
            .where(ContractMilestone.contract_id.in_(wanted))
            .order_by(ContractMilestone.contract_id, ContractMilestone.seq)
        )
        for milestone in session.scalars(stmt):
            found[milestone.contract_id].append(milestone)
    return found


def replace_milestones(
    session: Session, contract_id: uuid.UUID, rows: Iterable[dict[str, Any]]
) -> None:
    session.execute(delete(ContractMilestone).where(ContractMilestone.contract_id == contract_id))
    session.flush()
    session.add_all(
        ContractMilestone(contract_id=contract_id, seq=seq, **row)
        for seq, row in enumerate(rows, start=1)
    )
    session.flush()


def filter_conditions(query: dict[str, Any]) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if query.get("status"):
        conditions.append(Contract.status.in_(query["status"]))
    for name in ("customer_id", "opportunity_id", "owner_id", "department_id"):
        if query.get(name) is not None:
            conditions.append(getattr(Contract, name) == query[name])
    if query.get("ends_from") is not None:
        conditions.append(Contract.end_date >= query["ends_from"])
    if query.get("ends_to") is not None:
        conditions.append(Contract.end_date <= query["ends_to"])
    if query.get("q"):
        text = query["q"]
        conditions.append(
            or_(
                Contract.code.icontains(text, autoescape=True),
                Contract.title.icontains(text, autoescape=True),
            )
        )
    return conditions


def contracts_page(
    session: Session,
    query: dict[str, Any],
    visible: ColumnElement[bool],
    extra: Sequence[ColumnElement[bool]] = (),
) -> Page:
    sort: str = query.get("sort") or "-created_at"
    key = SortKey(SORT_COLUMNS[sort.lstrip("-")], Contract.id, descending=sort.startswith("-"))
    stmt = select(Contract).where(visible, *filter_conditions(query), *extra)
    return keyset_page(session, stmt, key, query.get("cursor"), query.get("limit"))


def expiring_condition(
    first: date, last: date, statuses: Sequence[str]
) -> list[ColumnElement[bool]]:
    """Contracts in ``statuses`` ending between ``first`` and ``last``, both inclusive."""
    return [
        Contract.status.in_(list(statuses)),
        Contract.end_date >= first,
        Contract.end_date <= last,
    ]


def contract_milestones(
    session: Session, customer_id: uuid.UUID | None = None
) -> list[MilestoneRow]:
    """The payment milestones of signed, active and completed contracts (of one customer
    when given), by due date: the collections planned (interface for receivables)."""
    stmt = (
        select(ContractMilestone, Contract)
        .join(Contract, Contract.id == ContractMilestone.contract_id)
        .where(Contract.status.in_(PLANNED_STATUSES))
        .order_by(ContractMilestone.due_date, Contract.code, ContractMilestone.seq)
    )
    if customer_id is not None:
        stmt = stmt.where(Contract.customer_id == customer_id)
    return [
        MilestoneRow(
            contract_id=contract.id,
            contract_code=contract.code,
            customer_id=contract.customer_id,
            owner_id=contract.owner_id,
            department_id=contract.department_id,
            region=contract.region,
            category=contract.category,
            seq=milestone.seq,
            name=milestone.name,
            due_date=milestone.due_date,
            amount=milestone.amount,
            currency=contract.currency,
        )
        for milestone, contract in session.execute(stmt).tuples()
    ]


def signed_and_started(session: Session, today: date) -> list[Contract]:
    stmt = select(Contract).where(Contract.status == "signed", Contract.start_date <= today)
    return list(session.scalars(stmt.with_for_update(skip_locked=True)))


def in_force_and_ended(session: Session, today: date) -> list[Contract]:
    stmt = select(Contract).where(
        Contract.status.in_(("signed", "active")), Contract.end_date < today
    )
    return list(session.scalars(stmt.with_for_update(skip_locked=True)))
