"""Queries on the org database. Every filter is SQL; nothing is filtered in Python."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from crm_common.errors import NotFound, ValidationFailed
from crm_common.pagination import SortKey
from org.domain.trees import Tree
from org.models import (
    AuditEntry,
    DataGrant,
    Department,
    OrgRecord,
    Person,
    Region,
    Role,
    User,
    user_roles,
)

MODELS: dict[str, type[OrgRecord]] = {
    "departments": Department,
    "regions": Region,
    "people": Person,
    "users": User,
    "roles": Role,
    "grants": DataGrant,
}
ENTITY_TYPES = {
    "departments": "department",
    "regions": "region",
    "people": "person",
    "users": "user",
    "roles": "role",
    "grants": "grant",
}


def check_kind(kind: Any) -> str:
    if kind not in MODELS:
        raise ValidationFailed.on("kind", f"must be one of {', '.join(MODELS)}")
    return str(kind)


def get(session: Session, kind: str, record_id: Any) -> Any:
    """The record, or ``NotFound`` (also for an id that is not even a string)."""
    record = session.get(MODELS[kind], record_id) if isinstance(record_id, str) else None
    if record is None:
        raise NotFound.of(ENTITY_TYPES[kind], record_id)
    return record


def missing_ids(session: Session, model: type[OrgRecord], ids: Iterable[str]) -> list[str]:
    wanted = set(ids)
    if not wanted:
        return []
    found = set(session.scalars(select(model.id).where(model.id.in_(wanted))))
    return sorted(wanted - found)


def holder_of(
    session: Session, column: InstrumentedAttribute[Any], value: Any, own_id: str | None
) -> Any:
    """The record other than ``own_id`` whose ``column`` equals ``value``, if any."""
    model = column.class_
    stmt = select(model).where(column == value)
    if own_id is not None:
        stmt = stmt.where(model.id != own_id)
    return session.scalars(stmt.limit(1)).first()


def tree(session: Session, model: type[Department] | type[Region]) -> Tree:
    return Tree(dict(session.execute(select(model.id, model.parent_id)).tuples().all()))


def names(session: Session, model: type[Department] | type[Region]) -> dict[str, str]:
    return dict(session.execute(select(model.id, model.name)).tuples().all())


def region_paths(session: Session, ids: Iterable[str] | None = None) -> dict[str, str]:
    stmt = select(Region.id, Region.path)
    if ids is not None:
        stmt = stmt.where(Region.id.in_(set(ids)))
    return dict(session.execute(stmt).tuples().all())


def holders(session: Session, role_ids: Iterable[str]) -> set[str]:
    """Ids of the users holding any of ``role_ids``."""
    wanted = set(role_ids)
    if not wanted:
        return set()
    stmt = select(user_roles.c.user_id).where(user_roles.c.role_id.in_(wanted))
    return set(session.scalars(stmt))


def users_of_people(session: Session, person_ids: Iterable[str]) -> set[str]:
    wanted = set(person_ids)
    if not wanted:
        return set()
    return set(session.scalars(select(User.id).where(User.person_id.in_(wanted))))


def users_with_grants_on(session: Session, column: InstrumentedAttribute[Any]) -> set[str]:
    """Users with a grant (their own or a role's) constraining the dimension ``column``."""
    rows = session.execute(
        select(DataGrant.user_id, DataGrant.role_id).where(column.is_not(None))
    ).all()
    users = {user_id for user_id, _ in rows if user_id}
    return users | holders(session, {role_id for _, role_id in rows if role_id})


# -- lists -------------------------------------------------------------------------------------
ORDERS: dict[str, SortKey] = {
    "departments": SortKey(Department.code, Department.id),
    "regions": SortKey(Region.path, Region.id),
    "people": SortKey(Person.code, Person.id),
    "users": SortKey(User.username_key, User.id),
    "roles": SortKey(Role.code, Role.id),
    "grants": SortKey(DataGrant.created_at, DataGrant.id),
}
AUDIT_ORDER = SortKey(AuditEntry.at, AuditEntry.id, descending=True)


def _text(query: str, *columns: InstrumentedAttribute[Any]) -> ColumnElement[bool]:
    return or_(*(column.icontains(query, autoescape=True) for column in columns))


def list_statement(kind: str, params: dict[str, Any]) -> Select[Any]:
    """The records of ``kind`` matching validated list parameters."""
    model: Any = MODELS[kind]
    conditions: list[ColumnElement[bool]] = []
    if params.get("disabled") is not None:
        conditions.append(model.disabled.is_(params["disabled"]))
    q = params.get("q")
    if q:
        if kind == "departments":
            conditions.append(_text(q, Department.code, Department.name, Department.path))
        elif kind == "regions":
            conditions.append(_text(q, Region.code, Region.name, Region.path))
        elif kind == "people":
            conditions.append(_text(q, Person.code, Person.name, Person.mobile, Person.email))
        elif kind == "users":
            person_match = exists().where(
                Person.id == User.person_id, Person.name.icontains(q, autoescape=True)
            )
            conditions.append(or_(User.username.icontains(q, autoescape=True), person_match))
        elif kind == "roles":
            conditions.append(_text(q, Role.code, Role.name))
        else:
            conditions.append(_text(q, DataGrant.name))
    for key in ("parent_id", "department_id", "user_id"):
        if params.get(key):
            conditions.append(getattr(model, key) == params[key])
    if params.get("role_id"):
        if kind == "users":
            conditions.append(
                exists().where(
                    user_roles.c.user_id == User.id, user_roles.c.role_id == params["role_id"]
                )
            )
        else:
            conditions.append(DataGrant.role_id == params["role_id"])
    return select(model).where(and_(*conditions))
