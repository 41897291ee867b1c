"""Queries on activities (行动), and the lookups every record hanging off a customer needs:
the customer, contact and opportunity it names, each only when the caller may see it.

Customers are scoped by the read model's owner, department, region and category (the
customer's own scope), opportunities as the opportunity list scopes them, activities by the
same four columns they carry.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    and_,
    cast,
    exists,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from crm_common.context import Principal
from crm_common.errors import NotFound
from crm_common.ids import lookup_id
from crm_common.pagination import Page, SortKey, keyset_page
from crm_common.scope import ScopeColumns, scope_filter
from sales.domain.activities import ActivityStatus
from sales.models import Activity, Contact, Customer, Department, Opportunity
from sales.repository import opportunities as opportunity_rows

ACTIVITY_SCOPE = ScopeColumns(
    owner=Activity.owner_id,
    department=Activity.department_id,
    region=Activity.region,
    category=Activity.category,
)
MAX_CALENDAR_ITEMS = 2000
"""The most activities one calendar answers with (a quarter of a busy department)."""


def aware(moment: datetime | None) -> datetime | None:
    """SQLite gives timestamps back without their zone: they are UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


# -- what records hang off -------------------------------------------------------------------
def visible_customer(session: Session, customer_id: Any, principal: Principal) -> Customer | None:
    """The customer if the caller's grants cover it (by the customer's own scope)."""
    key = lookup_id(customer_id)
    if key is None:
        return None
    return opportunity_rows.find_customer(
        session, key, opportunity_rows.visible_customers(principal)
    )


def contact_of(session: Session, contact_id: uuid.UUID, customer_id: uuid.UUID) -> Contact | None:
    return session.scalar(
        select(Contact).where(Contact.id == contact_id, Contact.customer_id == customer_id)
    )


def visible_opportunity(
    session: Session, opportunity_id: Any, principal: Principal
) -> Opportunity | None:
    """The opportunity if the caller may see it (as the opportunity list filters)."""
    key = lookup_id(opportunity_id)
    if key is None:
        return None
    return session.scalar(
        select(Opportunity).where(
            Opportunity.id == key, opportunity_rows.visible_opportunities(principal)
        )
    )


def departments_under(session: Session, department_id: str) -> set[str]:
    """The department and every department below it in sales' copy of the org chart."""
    children: dict[str | None, list[str]] = {}
    for child, parent in session.execute(select(Department.id, Department.parent_id)):
        children.setdefault(parent, []).append(child)
    found, frontier = {department_id}, [department_id]
    while frontier:
        for child in children.get(frontier.pop(), []):
            if child not in found:
                found.add(child)
                frontier.append(child)
    return found


# -- activities ------------------------------------------------------------------------------
def visible_activities(principal: Principal) -> ColumnElement[bool]:
    return scope_filter(principal, ACTIVITY_SCOPE)


def find_activity(
    session: Session, activity_id: Any, visible: ColumnElement[bool]
) -> Activity | None:
    key = lookup_id(activity_id)
    return session.scalar(select(Activity).where(Activity.id == key, visible)) if key else None


def get_activity(session: Session, activity_id: Any, visible: ColumnElement[bool]) -> Activity:
    """The activity if the caller may see it; ``NotFound`` alike when missing or hidden."""
    found = find_activity(session, activity_id, visible)
    if found is None:
        raise NotFound.of("activity", activity_id)
    return found


def planned_end(session: Session) -> ColumnElement[Any]:
    """``start_at + duration_minutes`` in the database's own date arithmetic; on SQLite as
    text ``YYYY-MM-DD HH:MM:SS`` (see ``moment_for``)."""
    if session.get_bind().dialect.name == "postgresql":
        minutes = func.make_interval(0, 0, 0, 0, 0, func.coalesce(Activity.duration_minutes, 0))
        return Activity.start_at + minutes
    modifier = func.printf("+%d minutes", func.coalesce(Activity.duration_minutes, 0))
    return func.datetime(Activity.start_at, modifier)


def moment_for(session: Session, moment: datetime) -> Any:
    """``moment`` as ``planned_end`` compares with it."""
    if session.get_bind().dialect.name == "postgresql":
        return moment
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def overdue_condition(session: Session, now: datetime) -> ColumnElement[bool]:
    """Planned and past its planned end (``sales.domain.activities.is_overdue``)."""
    return and_(
        Activity.status == ActivityStatus.PLANNED.value,
        Activity.start_at < now,
        planned_end(session) < moment_for(session, now),
    )


def takes_part(session: Session, user_id: str) -> ColumnElement[bool]:
    """The user owns the activity or is one of its participants."""
    listed: ColumnElement[bool]
    if session.get_bind().dialect.name == "postgresql":
        listed = cast(cast(Activity.participants, JSON), JSONB).contains([user_id])
    else:
        members = func.json_each(Activity.participants).table_valued("value")
        listed = exists(
            select(literal_column("1")).select_from(members).where(members.c.value == user_id)
        )
    return or_(Activity.owner_id == user_id, listed)


SORT_COLUMNS = {"start_at": Activity.start_at, "created_at": Activity.created_at}


def _sort_key(sort: str) -> SortKey:
    return SortKey(SORT_COLUMNS[sort.lstrip("-")], Activity.id, descending=sort.startswith("-"))


def _filters(session: Session, query: dict[str, Any], now: datetime) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if query.get("q"):
        conditions.append(Activity.subject.icontains(query["q"], autoescape=True))
    if query.get("type"):
        conditions.append(Activity.type.in_(query["type"]))
    if query.get("status"):
        conditions.append(Activity.status.in_(query["status"]))
    for name in ("customer_id", "contact_id", "opportunity_id", "owner_id", "department_id"):
        if query.get(name) is not None:
            conditions.append(getattr(Activity, name) == query[name])
    if query.get("department_ids") is not None:
        conditions.append(Activity.department_id.in_(sorted(query["department_ids"])))
    if query.get("participant_id"):
        conditions.append(takes_part(session, query["participant_id"]))
    if query.get("start") is not None:
        conditions.append(Activity.start_at >= query["start"])
    if query.get("end") is not None:
        conditions.append(Activity.start_at < query["end"])
    if query.get("overdue") is True:
        conditions.append(overdue_condition(session, now))
    elif query.get("overdue") is False:
        conditions.append(~overdue_condition(session, now))
    return conditions


def activities_page(
    session: Session, query: dict[str, Any], visible: ColumnElement[bool], now: datetime
) -> Page:
    """One page of the visible activities matching a validated ``ActivityQuerySchema``."""
    stmt = select(Activity).where(visible, *_filters(session, query, now))
    return keyset_page(
        session, stmt, _sort_key(query["sort"]), query.get("cursor"), query.get("limit")
    )


def calendar(
    session: Session, query: dict[str, Any], visible: ColumnElement[bool], now: datetime
) -> list[Activity]:
    """The visible activities starting in the range, by start (``MAX_CALENDAR_ITEMS`` at
    most)."""
    stmt = select(Activity).where(visible, *_filters(session, query, now))
    stmt = stmt.order_by(Activity.start_at, Activity.id).limit(MAX_CALENDAR_ITEMS)
    return list(session.scalars(stmt))


def overdue_page(
    session: Session, query: dict[str, Any], visible: ColumnElement[bool], now: datetime
) -> Page:
    """Planned activities past their end, the longest overdue first."""
    stmt = select(Activity).where(
        visible, overdue_condition(session, now), *_filters(session, query, now)
    )
    return keyset_page(
        session,
        stmt,
        SortKey(Activity.start_at, Activity.id),
        query.get("cursor"),
        query.get("limit"),
    )
