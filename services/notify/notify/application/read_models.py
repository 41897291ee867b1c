"""Notify's copy of org's people and departments, kept from ``org.events`` and org's structure
snapshot: who a recipient is (name, email, mobile), which department they are in and who
manages it, and the codes of the roles each person's user holds. Mobiles are kept in the
suite's one 11-digit form (``crm_common.phones.normalize_mobile``); a value that is no mainland
mobile is kept as none, so nobody is texted at a wrong number. Emails are kept trimmed and
lower-cased, none when they hold no ``@``.

Every record carries its source's ``version``: a copy is replaced only by a newer one. A record
notify cannot read raises ``UnusableRecord`` (its event is retried, then dead-lettered).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from marshmallow import Schema, ValidationError
from sqlalchemy.orm import Session

from crm_common.models import utcnow
from crm_common.phones import normalize_mobile
from notify.repository import rules as repository
from notify.schemas.rules import DepartmentCopySchema, PersonCopySchema


class UnusableRecord(ValueError):
    """A record from org that notify cannot apply; retrying will not help."""


def read(schema: Schema, record: Any, what: str) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise UnusableRecord(f"{what} is not an object: {record!r}")
    try:
        loaded: dict[str, Any] = schema.load(record)
    except ValidationError as exc:
        raise UnusableRecord(f"{what} cannot be applied: {exc.messages}") from None
    return loaded


def mobile_or_none(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return normalize_mobile(value)
    except ValueError:
        return None


def email_or_none(value: str | None) -> str | None:
    text = (value or "").strip()
    if "@" not in text or any(c.isspace() for c in text) or len(text) > 200:
        return None
    local, _, domain = text.rpartition("@")
    return f"{local}@{domain.lower()}" if local and domain else None


class ReadModels:
    def __init__(self, session: Session, now: datetime | None = None) -> None:
        self.session = session
        self.now = now or utcnow()

    def keep_person(self, record: Any) -> bool:
        person = read(PersonCopySchema(), record, "the person")
        kept = repository.keep_person(
            self.session,
            {
                "id": person["id"],
                "user_id": person["user_id"],
                "code": person["code"],
                "name": person["name"],
                "department_id": person["department_id"],
                "mobile": mobile_or_none(person["mobile"]),
                "email": email_or_none(person["email"]),
                "status": person["status"],
                "disabled": person["disabled"],
                "source_version": person["version"],
                "source_updated_at": person["updated_at"],
                "updated_at": self.now,
            },
        )
        repository.keep_role_codes(
            self.session, person["id"], person["version"], person["role_codes"]
        )
        return kept

    def keep_department(self, record: Any) -> bool:
        department = read(DepartmentCopySchema(), record, "the department")
        return repository.keep_department(
            self.session,
            {
                "id": department["id"],
                "code": department["code"],
                "name": department["name"],
                "parent_id": department["parent_id"],
                "manager_id": department["manager_id"],
                "path": department["path"],
                "disabled": department["disabled"],
                "source_version": department["version"],
                "updated_at": self.now,
            },
        )
