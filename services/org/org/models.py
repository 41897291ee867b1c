"""The org context's tables (SQLAlchemy 2, typed).

Ids are opaque strings (new records get a UUID; the demo data uses readable ids). Records are
never deleted, only disabled, because customers and history elsewhere keep pointing at them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from crm_common.idempotency import IdempotencyRecordMixin
from crm_common.models import EntityMixin, OutboxMixin, utcnow


def new_id() -> str:
    return str(uuid.uuid4())


class Base(DeclarativeBase):
    pass


class OutboxMessage(OutboxMixin, Base):
    pass


class IdempotencyRecord(IdempotencyRecordMixin, Base):
    pass


class OrgRecord(EntityMixin):
    """A record an administrator edits: string id, timestamps, checked version, disabled flag."""

    # Org ids are opaque strings (readable ones in the demo), not the UUIDs of EntityMixin.
    id: Mapped[str] = mapped_column(  # type: ignore[assignment]
        String(64), primary_key=True, default=new_id
    )
    disabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


# The fields an administrator edits, in the order the audit log lists them.
DEPARTMENT_FIELDS = ("code", "name", "type", "parent_id", "manager_id", "city")
REGION_FIELDS = ("code", "name", "parent_id")
PERSON_FIELDS = (
    "code",
    "name",
    "department_id",
    "position",
    "mobile",
    "email",
    "is_salesperson",
    "is_service_engineer",
    "status",
)
USER_FIELDS = ("username", "person_id", "role_ids")
ROLE_FIELDS = ("code", "name", "permissions", "description")
GRANT_FIELDS = ("name", "role_id", "user_id", "departments", "regions", "categories", "owner_self")

DEPARTMENT_TYPES = ("sales", "marketing", "business", "service", "operations")
PERSON_STATUSES = ("active", "left")


class Department(OrgRecord, Base):
    """部门档案: head office, branches, regional offices. ``path`` is kept up to date with the
    names from the root (``总部 › 华东分公司 › 上海办事处``)."""

    __tablename__ = "departments"

    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(20))
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("departments.id"), index=True)
    # No foreign key: people belong to departments, so the two tables would reference each
    # other. The application checks that the manager is a known person.
    manager_id: Mapped[str | None] = mapped_column(String(64))
    city: Mapped[str | None] = mapped_column(String(50))
    path: Mapped[str] = mapped_column(String(1000))

    __table_args__ = (
        CheckConstraint(
            "type in ('sales', 'marketing', 'business', 'service', 'operations')",
            name="ck_departments_type",
        ),
    )


class Region(OrgRecord, Base):
    """A sales region (华东 › 江苏); ``path`` (``华东/江苏``) is what customers carry."""

    __tablename__ = "regions"

    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(50))
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("regions.id"), index=True)
    path: Mapped[str] = mapped_column(String(500), unique=True)


class Person(OrgRecord, Base):
    """人员档案: an employee, whether or not they have a user account."""

    __tablename__ = "people"

    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    department_id: Mapped[str | None] = mapped_column(ForeignKey("departments.id"), index=True)
    position: Mapped[str | None] = mapped_column(String(100))
    mobile: Mapped[str | None] = mapped_column(String(11))
    email: Mapped[str | None] = mapped_column(String(200))
    is_salesperson: Mapped[bool] = mapped_column(Boolean, default=False)
    is_service_engineer: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(10), default="active")

    __table_args__ = (CheckConstraint("status in ('active', 'left')", name="ck_people_status"),)


user_roles = Table(
    "user_roles",
    Base.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("role_id", ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Role(OrgRecord, Base):
    """A named set of function permissions from the catalog."""

    __tablename__ = "roles"

    code: Mapped[str] = mapped_column(String(50), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    permissions: Mapped[list[str]] = mapped_column(JSON, default=list)
    description: Mapped[str | None] = mapped_column(Text)


class User(OrgRecord, Base):
    """A sign-in account. ``username_key`` (lower case) makes usernames unique regardless of
    case; ``authz_version`` counts changes of what the user may do and see."""

    __tablename__ = "users"

    username: Mapped[str] = mapped_column(String(64))
    username_key: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    person_id: Mapped[str | None] = mapped_column(ForeignKey("people.id"), unique=True)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_sign_in_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    authz_version: Mapped[int] = mapped_column(Integer, default=1)

    roles: Mapped[list[Role]] = relationship(secondary=user_roles, lazy="selectin")
    person: Mapped[Person | None] = relationship(lazy="selectin")

    @property
    def role_ids(self) -> list[str]:
        return sorted(role.id for role in self.roles)

    @property
    def department_id(self) -> str | None:
        return self.person.department_id if self.person else None


class DataGrant(OrgRecord, Base):
    """A data grant given to a role or to a user (exactly one). ``departments`` is a list of
    ``{"department_id", "include_children"}``, ``regions`` of ``{"region_id",
    "include_children"}``, ``categories`` of customer categories; null leaves a dimension
    unrestricted."""

    __tablename__ = "grants"

    name: Mapped[str | None] = mapped_column(String(100))
    role_id: Mapped[str | None] = mapped_column(ForeignKey("roles.id"), index=True)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), index=True)
    departments: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON(none_as_null=True))
    regions: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON(none_as_null=True))
    categories: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True))
    owner_self: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        CheckConstraint("(role_id IS NULL) <> (user_id IS NULL)", name="ck_grants_role_xor_user"),
    )


class AuthSession(Base):
    """A signed-in session: the family of refresh tokens issued since one sign-in. It ends
    at ``expires_at`` however often it is refreshed, or when revoked."""

    __tablename__ = "auth_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_reason: Mapped[str | None] = mapped_column(String(30))


class RefreshToken(Base):
    """One refresh token of a session, stored as its SHA-256 digest. A token is good for one
    use: refreshing marks it ``rotated_at`` and issues the next one."""

    __tablename__ = "refresh_tokens"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    session_id: Mapped[str] = mapped_column(
        ForeignKey("auth_sessions.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    rotated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditEntry(Base):
    """Who changed what in the org data, and when. Never holds a password or a hash."""

    __tablename__ = "audit_entries"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    entity_type: Mapped[str] = mapped_column(String(20))
    entity_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(30))
    changes: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON(none_as_null=True))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        Index("ix_audit_entity", "entity_type", "entity_id", "at"),
        Index("ix_audit_actor", "actor_id", "at"),
        Index("ix_audit_at_id", "at", "id"),
    )
