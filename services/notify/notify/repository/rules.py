"""Queries of rules, the people read model, alert keys, preferences and the inbox.

Read models (``people``, ``departments``): each ``keep_*`` stores a record as org sent it
unless the stored copy is as new or newer (``source_version``), in one upsert, so repeated and
out-of-order deliveries settle on the newest version. A person's role codes
(``person_roles``) are replaced whenever the stored person is at the version sent, so that
reading the snapshot again fills in those of people copied before org sent role codes.

Alert keys are claimed with an insert that does nothing on a conflict: of two workers matching
one record at once, one alerts.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from crm_common.errors import NotFound
from crm_common.ids import lookup_id
from crm_common.pagination import Page, SortKey, keyset_page
from notify.models.rules import (
    AlertKey,
    AlertRule,
    AlertRuleVersion,
    Department,
    InboxItem,
    NotificationPreference,
    Person,
    PersonRole,
)

MAX_CHAIN = 32
"""The most departments a walk up the chart takes (a guard against a cycle in a damaged copy)."""
RULE_ORDER = SortKey(AlertRule.code, AlertRule.id)
INBOX_ORDER = SortKey(InboxItem.created_at, InboxItem.id, descending=True)


def _insert(session: Session) -> Callable[..., Any]:
    """The dialect's INSERT, which knows ON CONFLICT."""
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


# -- people and departments --------------------------------------------------------------------
@dataclass(frozen=True)
class PersonRow:
    """A person as recipients need them."""

    user_id: str
    name: str
    email: str | None
    mobile: str | None
    department_id: str | None
    active: bool


def _keep(session: Session, model: type[Any], values: dict[str, Any]) -> bool:
    table = model.__table__
    insert = _insert(session)(table).values(**values)
    stmt = insert.on_conflict_do_update(
        index_elements=[table.c.id],
        set_={name: insert.excluded[name] for name in values if name != "id"},
        where=table.c.source_version < insert.excluded.source_version,
    )
    result: CursorResult[Any] = session.execute(stmt)  # type: ignore[assignment]
    return bool(result.rowcount)


def keep_person(session: Session, values: dict[str, Any]) -> bool:
    return _keep(session, Person, values)


def keep_role_codes(session: Session, person_id: str, version: int, codes: Iterable[str]) -> None:
    """Make the person's role codes ``codes`` if the stored person is at ``version`` (a newer
    one keeps its own); adding what is missing and removing the rest, so that equal versions
    applied at once settle on the same set."""
    stored = session.scalar(select(Person.source_version).where(Person.id == person_id))
    if stored != version:
        return
    wanted = sorted(set(codes))
    session.execute(
        delete(PersonRole).where(
            PersonRole.person_id == person_id, PersonRole.role_code.not_in(wanted)
        )
    )
    if wanted:
        rows = [{"person_id": person_id, "role_code": code} for code in wanted]
        session.execute(_insert(session)(PersonRole).values(rows).on_conflict_do_nothing())


def keep_department(session: Session, values: dict[str, Any]) -> bool:
    return _keep(session, Department, values)


def _row(person: Person) -> PersonRow:
    return PersonRow(
        user_id=str(person.user_id),
        name=person.name,
        email=person.email,
        mobile=person.mobile,
        department_id=person.department_id,
        active=person.status == "active" and not person.disabled,
    )


def _claim_age(person: Person) -> tuple[datetime, int]:
    moment = person.source_updated_at
    if moment is None:
        return datetime.min, person.source_version
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment, person.source_version


def _newest_claims(people: Iterable[Person]) -> dict[str, Person]:
    """User id -> the person claiming it; of two claiming one user, the newer claim."""
    found: dict[str, Person] = {}
    for person in people:
        if person.user_id is None:
            continue
        held = found.get(person.user_id)
        if held is None or _claim_age(person) > _claim_age(held):
            found[person.user_id] = person
    return found


def person(session: Session, user_id: str) -> PersonRow | None:
    """The person whose user account ``user_id`` is, or None."""
    return people_of_users(session, [user_id]).get(user_id)


def people_of_users(session: Session, user_ids: Iterable[str]) -> dict[str, PersonRow]:
    wanted = sorted({user_id for user_id in user_ids if user_id})
    if not wanted:
        return {}
    claims = _newest_claims(session.scalars(select(Person).where(Person.user_id.in_(wanted))))
    return {user_id: _row(found) for user_id, found in claims.items()}


def people_in_department(
    session: Session, department_id: str, include_children: bool
) -> list[PersonRow]:
    """The people with a user account in the department (and those below it)."""
    departments = {department_id}
    if include_children:
        children: dict[str, list[str]] = {}
        for child, parent in session.execute(select(Department.id, Department.parent_id)):
            children.setdefault(str(parent), []).append(child)
        waiting = [department_id]
        while waiting and len(departments) < 10_000:
            for child in children.get(waiting.pop(), []):
                if child not in departments:
                    departments.add(child)
                    waiting.append(child)
    stmt = select(Person).where(
        Person.department_id.in_(sorted(departments)), Person.user_id.is_not(None)
    )
    claims = _newest_claims(session.scalars(stmt.order_by(Person.id)))
    return [_row(found) for found in claims.values()]


def people_with_role(session: Session, role_code: str) -> list[PersonRow]:
    """The people with a user account whose user holds the role ``role_code``."""
    stmt = (
        select(Person)
        .join(PersonRole, PersonRole.person_id == Person.id)
        .where(PersonRole.role_code == role_code, Person.user_id.is_not(None))
    )
    claims = _newest_claims(session.scalars(stmt.order_by(Person.id)))
    return [_row(found) for found in claims.values()]


def person_by_id(session: Session, person_id: str) -> Person | None:
    return session.get(Person, person_id)


def manager_of(session: Session, department_id: str | None) -> PersonRow | None:
    """The active manager (with a user account) of the department, or of the nearest one
    above it that has one."""
    seen: set[str] = set()
    current = department_id
    while current and current not in seen and len(seen) < MAX_CHAIN:
        seen.add(current)
        department = session.get(Department, current)
        if department is None:
            return None
        if department.manager_id:
            manager = session.get(Person, department.manager_id)
            if manager is not None and manager.user_id:
                row = _row(manager)
                if row.active:
                    return row
        current = department.parent_id
    return None


# -- rules -------------------------------------------------------------------------------------
def get_rule(session: Session, rule_id: Any) -> AlertRule:
    key = lookup_id(rule_id)
    found = session.get(AlertRule, key) if key else None
    if found is None:
        raise NotFound.of("alert rule", rule_id)
    return found


def rule_by_code(session: Session, code: str) -> AlertRule | None:
    return session.scalar(select(AlertRule).where(AlertRule.code == code))


def rule_page(
    session: Session,
    *,
    enabled: bool | None,
    trigger_type: str | None,
    alert_type: str | None,
    cursor: str | None,
    limit: int | None,
) -> Page:
    stmt = select(AlertRule)
    if enabled is not None:
        stmt = stmt.where(AlertRule.enabled == enabled)
    if trigger_type is not None:
        stmt = stmt.where(AlertRule.trigger_type == trigger_type)
    if alert_type is not None:
        stmt = stmt.where(AlertRule.alert_type == alert_type)
    return keyset_page(session, stmt, RULE_ORDER, cursor, limit)


def rule_versions(session: Session, rule_id: uuid.UUID) -> Sequence[AlertRuleVersion]:
    stmt = select(AlertRuleVersion).where(AlertRuleVersion.rule_id == rule_id)
    return session.scalars(stmt.order_by(AlertRuleVersion.revision.desc())).all()


def rule_version(session: Session, rule_id: uuid.UUID, revision: int) -> AlertRuleVersion:
    found = session.scalar(
        select(AlertRuleVersion).where(
            AlertRuleVersion.rule_id == rule_id, AlertRuleVersion.revision == revision
        )
    )
    if found is None:
        raise NotFound.of("alert rule version", f"{rule_id}/{revision}")
    return found


def rules_stamp(session: Session) -> tuple[int, int, Any]:
    """What changes whenever a rule is saved: the number of rules, the sum of their versions
    and the newest change (one cheap aggregate)."""
    count, versions, newest = session.execute(
        select(
            func.count(AlertRule.id), func.sum(AlertRule.version), func.max(AlertRule.updated_at)
        )
    ).one()
    return int(count or 0), int(versions or 0), newest


def enabled_rules(session: Session, trigger_type: str) -> Sequence[AlertRule]:
    stmt = select(AlertRule).where(
        AlertRule.enabled.is_(True), AlertRule.trigger_type == trigger_type
    )
    return session.scalars(stmt.order_by(AlertRule.code)).all()


def mark_run(session: Session, rule_id: uuid.UUID, at: datetime) -> None:
    """A schedule's last run: not a save, so neither its version nor its ``updated_at``
    moves (nor the rule index's stamp)."""
    session.execute(
        update(AlertRule)
        .where(AlertRule.id == rule_id)
        .values(last_run_at=at, updated_at=AlertRule.updated_at)
    )


# -- alert keys --------------------------------------------------------------------------------
def claim_alert_key(session: Session, values: dict[str, Any]) -> bool:
    """Store one alert's key; False if it was stored before (the alert fired already)."""
    insert = _insert(session)(AlertKey.__table__).values(**values)
    result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        insert.on_conflict_do_nothing(index_elements=[AlertKey.__table__.c.key])
    )
    return bool(result.rowcount)


def prune_alert_keys(session: Session, before: datetime) -> int:
    """Forget the keys of alerts fired before ``before``; how many."""
    result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        delete(AlertKey).where(AlertKey.created_at < before)
    )
    return int(result.rowcount)


# -- preferences -------------------------------------------------------------------------------
def preferences(session: Session, user_id: str) -> NotificationPreference | None:
    return session.get(NotificationPreference, user_id)


def preferences_of(session: Session, user_ids: Iterable[str]) -> dict[str, NotificationPreference]:
    wanted = sorted(set(user_ids))
    if not wanted:
        return {}
    stmt = select(NotificationPreference).where(NotificationPreference.user_id.in_(wanted))
    return {found.user_id: found for found in session.scalars(stmt)}


# -- the inbox ---------------------------------------------------------------------------------
def inbox_page(
    session: Session, user_id: str, unread: bool, cursor: str | None, limit: int | None
) -> Page:
    stmt = select(InboxItem).where(InboxItem.user_id == user_id)
    if unread:
        stmt = stmt.where(InboxItem.read_at.is_(None))
    return keyset_page(session, stmt, INBOX_ORDER, cursor, limit)


def unread_count(session: Session, user_id: str) -> int:
    stmt = select(func.count()).where(InboxItem.user_id == user_id, InboxItem.read_at.is_(None))
    return int(session.scalar(stmt) or 0)


def inbox_item(session: Session, user_id: str, item_id: Any) -> InboxItem:
    """The caller's item; another user's is not found, as one that does not exist."""
    key = lookup_id(item_id)
    found = session.get(InboxItem, key) if key else None
    if found is None or found.user_id != user_id:
        raise NotFound.of("inbox item", item_id)
    return found


def mark_all_read(session: Session, user_id: str, now: datetime) -> int:
    result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(InboxItem)
        .where(InboxItem.user_id == user_id, InboxItem.read_at.is_(None))
        .values(read_at=now)
    )
    return int(result.rowcount)
