"""The only module of the sales service that queries its database: lookups scoped by the
caller's grants (``crm_common.scope``), keyset pages, and the rows use cases save.

Read models (``customers``, ``contacts``, ``people``, ``departments``, ``regions``): each
``keep_*`` stores a record as its source sent it, unless the stored copy is as new or newer
(``source_version``). It is one upsert whose update applies only to an older row, so
concurrent, repeated and out-of-order deliveries settle on the newest version.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import CursorResult, case, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from sales.models import (
    Activity,
    Contact,
    Customer,
    Department,
    Expense,
    Opportunity,
    Person,
    Region,
)
from sales.models.orders import Contract, SalesOrder
from sales.models.quotes import Quote

MAX_CHAIN = 32
"""The most departments a chain walks up (a guard against a cycle in a damaged copy)."""
MERGED = "merged"

ScopedRecord = Opportunity | Activity | Expense | Quote | SalesOrder | Contract
"""The sales records scoped by their customer's region and category, copied from it (a merge
moves them to the survivor)."""
ScopedModel = (
    type[Opportunity]
    | type[Activity]
    | type[Expense]
    | type[Quote]
    | type[SalesOrder]
    | type[Contract]
)


def _insert(session: Session) -> Callable[..., Any]:
    """The dialect's INSERT, which knows ON CONFLICT."""
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def _keep(session: Session, model: type[Any], values: dict[str, Any], **overrides: Any) -> bool:
    """Insert ``values``, or update the stored row if it is older; whether a row was written.
    ``overrides`` replace the plain "take the new value" of some columns on update."""
    table = model.__table__
    insert = _insert(session)(table).values(**values)
    changes = {name: insert.excluded[name] for name in values if name != "id"}
    stmt = insert.on_conflict_do_update(
        index_elements=[table.c.id],
        set_={**changes, **{name: make(table, insert) for name, make in overrides.items()}},
        where=table.c.source_version < insert.excluded.source_version,
    )
    result: CursorResult[Any] = session.execute(stmt)  # type: ignore[assignment]
    return bool(result.rowcount)


# -- customers and contacts --------------------------------------------------------------------
def keep_customer(session: Session, values: dict[str, Any]) -> bool:
    """Store a customer unless a copy as new is stored. A customer merged away stays merged
    (status and survivor) whatever an older event says of it."""
    return _keep(
        session,
        Customer,
        values,
        status=lambda table, insert: case(
            (table.c.merged_into_id.is_not(None), table.c.status), else_=insert.excluded.status
        ),
        merged_into_id=lambda table, insert: func.coalesce(
            table.c.merged_into_id, insert.excluded.merged_into_id
        ),
    )


def move_customer_owner(
    session: Session,
    customer_id: uuid.UUID,
    owner_id: str | None,
    department_id: str | None,
    changed_at: datetime,
) -> bool:
    """Give the customer this owner and department unless its copy was changed at or after
    ``changed_at``; whether it did."""
    stored = session.get(Customer, customer_id)
    if stored is None or (
        stored.source_updated_at is not None and _aware(stored.source_updated_at) >= changed_at
    ):
        return False
    stored.owner_id = owner_id
    stored.department_id = department_id
    stored.source_updated_at = changed_at
    stored.updated_at = changed_at
    session.flush()
    return True


def mark_customer_merged(
    session: Session, merged_id: uuid.UUID, survivor_id: uuid.UUID, code: str, now: datetime
) -> None:
    """Mark the customer merged into the survivor (a placeholder if sales never heard of it,
    so that its late events still find it merged); customers merged into it before follow."""
    insert = _insert(session)(Customer.__table__).values(
        id=merged_id,
        code=code,
        name=code,
        status=MERGED,
        merged_into_id=survivor_id,
        source_version=0,
        updated_at=now,
    )
    session.execute(
        insert.on_conflict_do_update(
            index_elements=[Customer.__table__.c.id],
            set_={"status": MERGED, "merged_into_id": survivor_id, "updated_at": now},
        )
    )
    session.execute(
        update(Customer)
        .where(Customer.merged_into_id == merged_id)
        .values(merged_into_id=survivor_id, updated_at=now)
    )


def survivor_of(session: Session, customer_id: uuid.UUID) -> uuid.UUID:
    """The customer that ``customer_id`` was (perhaps in several steps) merged into; itself
    if it was not."""
    current, seen = customer_id, {customer_id}
    while True:
        merged_into = session.scalar(select(Customer.merged_into_id).where(Customer.id == current))
        if merged_into is None or merged_into in seen:
            return current
        seen.add(merged_into)
        current = merged_into


def get_customer(session: Session, customer_id: uuid.UUID) -> Customer | None:
    return session.get(Customer, customer_id)


def customer_scope(
    session: Session, customer_id: uuid.UUID
) -> tuple[str | None, str | None] | None:
    """The stored copy's (region, category), locked until the transaction ends (PostgreSQL;
    SQLite serializes writers anyway), so that two deliveries of one customer compare each
    against what the other left; ``None`` if sales has no copy."""
    row = session.execute(
        select(Customer.region, Customer.category)
        .where(Customer.id == customer_id)
        .with_for_update()
    ).one_or_none()
    return None if row is None else (row.region, row.category)


def records_out_of_scope(
    session: Session,
    model: ScopedModel,
    customer_id: uuid.UUID,
    region: str | None,
    category: str | None,
) -> list[ScopedRecord]:
    """The customer's records of ``model`` whose region or category is not the given one,
    oldest first."""
    stmt = select(model).where(
        model.customer_id == customer_id,
        or_(model.region.is_distinct_from(region), model.category.is_distinct_from(category)),
    )
    return list(session.scalars(stmt.order_by(model.created_at, model.id)))


def keep_contact(session: Session, values: dict[str, Any]) -> bool:
    """Store a contact unless a copy as new is stored."""
    return _keep(session, Contact, values)


def move_contacts(
    session: Session, from_customer_id: uuid.UUID, to_customer_id: uuid.UUID, now: datetime
) -> int:
    """Contacts of one customer now belong to another (a merge); how many moved."""
    result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(Contact)
        .where(Contact.customer_id == from_customer_id)
        .values(customer_id=to_customer_id, updated_at=now)
    )
    return int(result.rowcount)


def records_of_customer(
    session: Session, model: ScopedModel, customer_id: uuid.UUID
) -> list[ScopedRecord]:
    """Every opportunity, activity, expense, quote, order or contract (``model``) of a
    customer, oldest first."""
    stmt = select(model).where(model.customer_id == customer_id)
    return list(session.scalars(stmt.order_by(model.created_at, model.id)))


# -- org: people, departments, regions ---------------------------------------------------------
def keep_person(session: Session, values: dict[str, Any]) -> bool:
    return _keep(session, Person, values)


def keep_department(session: Session, values: dict[str, Any]) -> bool:
    return _keep(session, Department, values)


def keep_region(session: Session, values: dict[str, Any]) -> bool:
    return _keep(session, Region, values)


def get_person(session: Session, person_id: str) -> Person | None:
    return session.get(Person, person_id)


def person_of_user(session: Session, user_id: str) -> Person | None:
    """The person whose user account ``user_id`` is; should two people claim it for a moment
    (their events crossing), the newer claim."""
    stmt = (
        select(Person)
        .where(Person.user_id == user_id)
        .order_by(Person.source_updated_at.desc().nulls_last(), Person.source_version.desc())
        .limit(1)
    )
    return session.scalar(stmt)


def users_of_people(session: Session, person_ids: Iterable[str]) -> dict[str, str]:
    """Person id → their user id, for the people of ``person_ids`` who have one."""
    wanted = {person_id for person_id in person_ids if person_id}
    if not wanted:
        return {}
    claims = session.execute(
        select(Person.id, Person.user_id).where(Person.id.in_(wanted), Person.user_id.is_not(None))
    ).all()
    users: dict[str, str] = {}
    for person_id, user_id in claims:
        if user_id is None:
            continue
        holder = person_of_user(session, user_id)
        if holder is not None and holder.id == person_id:
            users[person_id] = user_id
    return users


@dataclass(frozen=True)
class ChainLink:
    """One department of a chain from a person's department to the top, with its manager."""

    department_id: str
    parent_id: str | None
    disabled: bool
    manager_person_id: str | None
    manager_user_id: str | None
    manager_active: bool
    """Whether the manager still works here (status active, not disabled)."""


def department_chain(session: Session, department_id: str | None) -> list[ChainLink]:
    """The department, its parent, the parent's parent… up to the top, each with its
    manager's person and user ids; empty for an unknown department."""
    departments: list[Department] = []
    seen: set[str] = set()
    current = department_id
    while current and current not in seen and len(departments) < MAX_CHAIN:
        department = session.get(Department, current)
        if department is None:
            break
        departments.append(department)
        seen.add(current)
        current = department.parent_id
    manager_ids = {d.manager_id for d in departments if d.manager_id}
    managers = {
        person.id: person
        for person in session.scalars(select(Person).where(Person.id.in_(manager_ids)))
    }
    users = users_of_people(session, manager_ids)
    links = []
    for department in departments:
        manager = managers.get(department.manager_id or "")
        links.append(
            ChainLink(
                department_id=department.id,
                parent_id=department.parent_id,
                disabled=department.disabled,
                manager_person_id=department.manager_id,
                manager_user_id=users.get(department.manager_id or ""),
                manager_active=manager is not None
                and manager.status == "active"
                and not manager.disabled,
            )
        )
    return links


# -- catching up from snapshots ----------------------------------------------------------------
def _aware(moment: datetime) -> datetime:
    """SQLite gives timestamps back without their zone: they are UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
