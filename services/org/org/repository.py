"""Queries on the org database: the only module that reads or writes it with SQL. Every filter
is SQL; nothing is filtered in Python."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, exists, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.orm.attributes import flag_modified

from crm_common.errors import NotFound, ValidationFailed
from crm_common.pagination import Page, SortKey, keyset_page
from org.domain.conflicts import saved_meanwhile
from org.domain.trees import Tree
from org.models import (
    AuditEntry,
    AuthSession,
    DataGrant,
    Department,
    OrgRecord,
    Person,
    RefreshToken,
    Region,
    Role,
    User,
    user_roles,
)

T = TypeVar("T")

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


def find(
    session: Session, model: type[T], record_id: str | None, *, lock: bool = False
) -> T | None:
    """The record with this primary key, if any; ``lock`` holds it for update."""
    if record_id is None:
        return None
    return session.get(model, record_id, with_for_update=lock)


def flush(session: Session) -> None:
    """Flush; a unique key taken by a concurrent transaction is a conflict, not a crash."""
    try:
        session.flush()
    except IntegrityError:
        raise saved_meanwhile() from None


def touch(session: Session, record: OrgRecord, now: datetime) -> None:
    """Save ``record`` as changed at ``now`` although none of its own fields changed (what
    others see of it did): its version moves on."""
    record.updated_at = now
    flag_modified(record, "updated_at")
    flush(session)


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


def region_named(session: Session, name: str, parent_id: str | None, own_id: str | None) -> Any:
    """The id of a region other than ``own_id`` called ``name`` under the same parent."""
    same_parent = Region.parent_id.is_(None) if parent_id is None else Region.parent_id == parent_id
    stmt = select(Region.id).where(Region.name == name, same_parent)
    if own_id is not None:
        stmt = stmt.where(Region.id != own_id)
    return session.scalar(stmt.limit(1))


def roles(session: Session, role_ids: Iterable[str]) -> list[Role]:
    wanted = set(role_ids)
    if not wanted:
        return []
    return list(session.scalars(select(Role).where(Role.id.in_(wanted))))


def tree(session: Session, model: type[Department] | type[Region]) -> Tree:
    return Tree(dict(session.execute(select(model.id, model.parent_id)).tuples().all()))


def names(session: Session, model: type[Department] | type[Region]) -> dict[str, str]:
    return dict(session.execute(select(model.id, model.name)).tuples().all())


def region_paths(session: Session, ids: Iterable[str] | None = None) -> dict[str, str]:
    stmt = select(Region.id, Region.path)
    if ids is not None:
        stmt = stmt.where(Region.id.in_(set(ids)))
    return dict(session.execute(stmt).tuples().all())


# -- who is affected by a change ---------------------------------------------------------------
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


def user_of_each_person(session: Session, person_ids: Iterable[str]) -> dict[str, str]:
    """Person id → the id of the user account linked to that person (people without one are
    left out)."""
    wanted = set(person_ids)
    if not wanted:
        return {}
    stmt = select(User.person_id, User.id).where(User.person_id.in_(wanted))
    return {person_id: user_id for person_id, user_id in session.execute(stmt) if person_id}


def enabled_role_codes(session: Session, user_ids: Iterable[str]) -> dict[str, list[str]]:
    """User id → the sorted codes of the enabled roles the user holds (users without one are
    left out)."""
    wanted = set(user_ids)
    if not wanted:
        return {}
    stmt = (
        select(user_roles.c.user_id, Role.code)
        .join(Role, Role.id == user_roles.c.role_id)
        .where(user_roles.c.user_id.in_(wanted), Role.disabled.is_(False))
        .order_by(Role.code)
    )
    codes: dict[str, list[str]] = {}
    for user_id, code in session.execute(stmt):
        codes.setdefault(user_id, []).append(code)
    return codes


def users_with_grants_on(session: Session, column: InstrumentedAttribute[Any]) -> set[str]:
    """Users with a grant (their own or a role's) constraining the dimension ``column``."""
    rows = session.execute(
        select(DataGrant.user_id, DataGrant.role_id).where(column.is_not(None))
    ).all()
    users = {user_id for user_id, _ in rows if user_id}
    return users | holders(session, {role_id for _, role_id in rows if role_id})


def holders_of_permission(session: Session, permission: str) -> set[str]:
    """Ids of the users holding an enabled role that grants ``permission``."""
    roles = session.scalars(select(Role).where(Role.disabled.is_(False)))
    return holders(session, [role.id for role in roles if permission in (role.permissions or ())])


# -- effective rights --------------------------------------------------------------------------
def users(session: Session, user_ids: Iterable[str]) -> list[User]:
    return list(session.scalars(select(User).where(User.id.in_(set(user_ids)))))


def enabled_grants(
    session: Session, user_ids: Iterable[str], role_ids: Iterable[str]
) -> list[DataGrant]:
    """The enabled grants given to any of these users or roles, oldest first."""
    return list(
        session.scalars(
            select(DataGrant)
            .where(
                DataGrant.disabled.is_(False),
                or_(DataGrant.user_id.in_(set(user_ids)), DataGrant.role_id.in_(set(role_ids))),
            )
            .order_by(DataGrant.created_at, DataGrant.id)
        )
    )


def bump_authz_versions(session: Session, user_ids: list[str]) -> dict[str, int]:
    """Count one more change of these users' rights (their records are not edited: their
    ``updated_at`` stays); returns their new versions."""
    session.execute(
        update(User)
        .where(User.id.in_(user_ids))
        .values(authz_version=User.authz_version + 1, updated_at=User.updated_at)
        .execution_options(synchronize_session="fetch")
    )
    stmt = select(User.id, User.authz_version).where(User.id.in_(user_ids))
    return dict(session.execute(stmt).tuples().all())


# -- sign-in -----------------------------------------------------------------------------------
def credentials(session: Session, username: str) -> tuple[str, str] | None:
    """The id and password hash of the user signing in as ``username`` (any case)."""
    stmt = select(User.id, User.password_hash).where(User.username_key == username.lower())
    return session.execute(stmt).tuples().first()


def set_sign_in_state(session: Session, user_id: str, **values: Any) -> None:
    """Sign-in bookkeeping is no edit of the record: its version and updated_at stay."""
    session.execute(
        update(User).where(User.id == user_id).values(updated_at=User.updated_at, **values)
    )


def refresh_token(session: Session, token_hash: str, *, lock: bool = False) -> RefreshToken | None:
    stmt = select(RefreshToken).where(RefreshToken.token_hash == token_hash)
    return session.scalars(stmt.with_for_update() if lock else stmt).first()


def open_sessions(
    session: Session, user_ids: Iterable[str], now: datetime, keep: str | None = None
) -> list[AuthSession]:
    """The unexpired, unrevoked sessions of these users but ``keep``, oldest first."""
    stmt = select(AuthSession).where(
        AuthSession.user_id.in_(set(user_ids)),
        AuthSession.revoked_at.is_(None),
        AuthSession.expires_at > now,
    )
    if keep:
        stmt = stmt.where(AuthSession.id != keep)
    return list(session.scalars(stmt.order_by(AuthSession.created_at, AuthSession.id)))


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
AUDIT_FILTERS = ("entity_type", "entity_id", "actor_id")


def _text(query: str, *columns: InstrumentedAttribute[Any]) -> ColumnElement[bool]:
    return or_(*(column.icontains(query, autoescape=True) for column in columns))


def list_statement(kind: str, params: Mapping[str, Any]) -> Select[Any]:
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


def page(session: Session, kind: str, params: Mapping[str, Any]) -> Page:
    """One page of the records of ``kind`` matching validated list parameters."""
    return keyset_page(
        session,
        list_statement(kind, params),
        ORDERS[kind],
        params.get("cursor"),
        params.get("limit"),
    )


def audit_page(session: Session, params: Mapping[str, Any]) -> Page:
    """One page of the audit log, newest first, filtered by validated parameters."""
    conditions = [
        getattr(AuditEntry, key) == params[key] for key in AUDIT_FILTERS if params.get(key)
    ]
    return keyset_page(
        session,
        select(AuditEntry).where(*conditions),
        AUDIT_ORDER,
        params.get("cursor"),
        params.get("limit"),
    )
