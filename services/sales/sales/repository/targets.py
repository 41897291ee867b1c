"""Queries on sales targets (销售目标).

A target has no scope columns of its own: a person's target is scoped as that person's
records are (their user as owner, their department), a department's as its department's
records. A grant constraining region or category covers no target.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, case, literal, select
from sqlalchemy.orm import Session

from crm_common.context import Principal
from crm_common.errors import NotFound
from crm_common.ids import lookup_id
from crm_common.scope import ScopeColumns, scope_filter
from sales.domain.targets import SubjectType
from sales.models import Department, Person, SalesTarget

PERSON = SubjectType.PERSON.value
DEPARTMENT = SubjectType.DEPARTMENT.value

TARGET_SCOPE = ScopeColumns(
    owner=case((SalesTarget.subject_type == PERSON, Person.user_id), else_=literal(None)),
    department=case(
        (SalesTarget.subject_type == DEPARTMENT, SalesTarget.subject_id),
        else_=Person.department_id,
    ),
)


def visible_targets(principal: Principal) -> ColumnElement[bool]:
    """The condition (on ``targets_select``) selecting the targets ``principal`` may read."""
    return scope_filter(principal, TARGET_SCOPE)


def targets_select(visible: ColumnElement[bool]) -> Select[SalesTarget]:
    """Targets joined to the person they belong to (if any), filtered by ``visible``."""
    person_target = (SalesTarget.subject_type == PERSON) & (Person.id == SalesTarget.subject_id)
    return select(SalesTarget).outerjoin(Person, person_target).where(visible)


def get_target(session: Session, target_id: Any, visible: ColumnElement[bool]) -> SalesTarget:
    key = lookup_id(target_id)
    found = session.scalar(targets_select(visible).where(SalesTarget.id == key)) if key else None
    if found is None:
        raise NotFound.of("sales target", target_id)
    return found


def find_target(
    session: Session, subject_type: str, subject_id: str, period: str
) -> SalesTarget | None:
    return session.scalar(
        select(SalesTarget).where(
            SalesTarget.subject_type == subject_type,
            SalesTarget.subject_id == subject_id,
            SalesTarget.period == period,
        )
    )


def list_targets(
    session: Session,
    visible: ColumnElement[bool],
    subject_type: str | None = None,
    subject_ids: Collection[str] | None = None,
    periods: Collection[str] | None = None,
    year: int | None = None,
) -> Sequence[SalesTarget]:
    """The visible targets matching the filters, by subject then period."""
    stmt = targets_select(visible)
    if subject_type is not None:
        stmt = stmt.where(SalesTarget.subject_type == subject_type)
    if subject_ids is not None:
        stmt = stmt.where(SalesTarget.subject_id.in_(sorted(subject_ids)))
    if periods is not None:
        stmt = stmt.where(SalesTarget.period.in_(sorted(periods)))
    if year is not None:
        stmt = stmt.where(SalesTarget.period.startswith(f"{year:04d}-"))
    order = (SalesTarget.subject_type, SalesTarget.subject_id, SalesTarget.period)
    return session.scalars(stmt.order_by(*order)).all()


def subject_names(session: Session, subject_type: str, ids: Iterable[str]) -> dict[str, str]:
    """Person or department id → name, for those sales' copy of the org chart knows."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    model = Person if subject_type == PERSON else Department
    found = session.execute(select(model.id, model.name).where(model.id.in_(wanted)))
    return {str(subject_id): str(name) for subject_id, name in found}


def subject_exists(session: Session, subject_type: str, subject_id: str) -> bool:
    model = Person if subject_type == PERSON else Department
    return session.get(model, subject_id) is not None
