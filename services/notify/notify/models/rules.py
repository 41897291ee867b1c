"""Alert rules and their versions, the people read model, preferences, the inbox and the keys
that keep an alert from firing twice.

``people``, ``person_roles`` and ``departments`` are notify's copy of org's (from
``org.events`` and org's structure snapshot): recipients' names, emails and normalised mobiles,
the role codes their users hold, and who manages which department. They carry the source's
``version``, so an older event never overwrites a newer row, and no foreign keys, since events
arrive in any order.
"""

from __future__ import annotations

import uuid
from datetime import datetime, time
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Time,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from crm_common.models import CatchUpMixin, EntityMixin, utcnow
from notify.models import Base


# -- org's people and departments ---------------------------------------------------------------
class Person(Base):
    """An employee as org's ``person_changed`` and people snapshot tell it, with the user
    account linked to them (recipients are users). ``mobile`` is the 11-digit form (null when
    org's value is not a mainland mobile)."""

    __tablename__ = "people"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str | None] = mapped_column(String(64), index=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    department_id: Mapped[str | None] = mapped_column(String(64), index=True)
    mobile: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10), default="active")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    source_version: Mapped[int] = mapped_column(Integer, default=0)
    source_updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PersonRole(Base):
    """A role code the user of a person holds (org's ``role_codes`` of the person): whom a
    ``role`` recipient names. Replaced with the person's row, by the same version."""

    __tablename__ = "person_roles"

    person_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    role_code: Mapped[str] = mapped_column(String(50), primary_key=True, index=True)


class Department(Base):
    """A department as org's ``department_changed`` and structure snapshot tell it;
    ``manager_id`` is a person id, ``path`` the ids from the top (sub-departments share it)."""

    __tablename__ = "departments"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    parent_id: Mapped[str | None] = mapped_column(String(64), index=True)
    manager_id: Mapped[str | None] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(1000))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    source_version: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CatchUp(CatchUpMixin, Base):
    """One snapshot (``org.people``…) read to its end: read once, then events keep it."""


# -- rules -------------------------------------------------------------------------------------
class AlertRule(EntityMixin, Base):
    """An alert rule (消息预警) as it is now. ``definition`` holds its trigger, condition,
    recipients, channels and templates; ``revision`` counts its saved definitions (each kept
    in ``alert_rule_versions``), ``version`` is the optimistic lock. ``source`` and
    ``event_type`` (event triggers) or ``trigger_type`` (schedules) are columns so that the
    rules of an incoming event are found without reading every definition."""

    __tablename__ = "alert_rules"

    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    alert_type: Mapped[str] = mapped_column(String(40), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    built_in: Mapped[bool] = mapped_column(Boolean, default=False)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    trigger_type: Mapped[str] = mapped_column(String(10))
    source: Mapped[str] = mapped_column(String(40))
    event_type: Mapped[str | None] = mapped_column(String(60))
    severity: Mapped[str] = mapped_column(String(10))
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("ix_alert_rules_trigger", "trigger_type", "source", "event_type"),)


class AlertRuleVersion(Base):
    """One saved revision of a rule, as it was saved: readable after later saves."""

    __tablename__ = "alert_rule_versions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    rule_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("alert_rules.id", ondelete="CASCADE")
    )
    revision: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    alert_type: Mapped[str] = mapped_column(String(40))
    description: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    saved_by: Mapped[str | None] = mapped_column(String(64))
    saved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        UniqueConstraint("rule_id", "revision", name="uq_alert_rule_versions_revision"),
    )


class AlertKey(Base):
    """One alert that fired: rule, record, recipient and period, hashed into ``key``. A second
    match of the same record in the same period finds the key and alerts nobody."""

    __tablename__ = "alert_keys"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    rule_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    record_type: Mapped[str] = mapped_column(String(40))
    record_id: Mapped[str] = mapped_column(String(64))
    recipient_id: Mapped[str] = mapped_column(String(64))
    period: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# -- preferences and the inbox ------------------------------------------------------------------
class NotificationPreference(Base):
    """A user's choices: per alert type and channel on/off and digest (``settings``, a list
    of ``{alert_type, channel, enabled, digest}``, ``*`` for every type), time zone and quiet
    hours. A user without a row has the defaults."""

    __tablename__ = "notification_preferences"

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    time_zone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    quiet_start: Mapped[time] = mapped_column(Time, default=time(21, 0))
    quiet_end: Mapped[time] = mapped_column(Time, default=time(8, 0))
    settings: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class InboxItem(Base):
    """One alert in a user's in-app inbox."""

    __tablename__ = "inbox_items"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[str] = mapped_column(String(64))
    rule_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    alert_type: Mapped[str] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(10))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(500))
    record_type: Mapped[str | None] = mapped_column(String(40))
    record_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_inbox_items_user_created", "user_id", "created_at", "id"),
        Index("ix_inbox_items_user_read", "user_id", "read_at"),
    )
