"""The sales context's tables (SQLAlchemy 2, typed).

Two kinds of table live here:

- *Read models*: sales' own copy of what it needs from other contexts (``customers``,
  ``contacts`` from ``customer.events``; ``people``, ``departments``, ``regions`` from
  ``org.events``), kept by ``sales.application.read_models`` and never edited by a user. They
  carry the source's ``version`` so that an older event never overwrites a newer row, and no
  foreign keys, since events may arrive in any order.
- The sales pipeline's own records: processes and stages, opportunities (with contacts, lines,
  competitors and stage history), activities, expenses and their approvals, targets, the master
  lists (competitors, loss reasons, expense categories), the field history, code counters.

Every scoped record (opportunities, activities, expenses) carries the four scope columns
``owner_id`` (a user id; an expense's ``submitter_id``), ``department_id``, ``region`` and
``category`` (copied from the customer), filtered with ``crm_common.scope.scope_filter``.
Ids of org records (users, people, departments) are opaque strings; customer and contact ids
and the ids of sales' own records are UUIDs.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from crm_common.idempotency import IdempotencyRecordMixin
from crm_common.models import CatchUpMixin, EntityMixin, InboxMixin, OutboxMixin, utcnow

MONEY = Numeric(18, 2)
QUANTITY = Numeric(18, 4)
COORDINATE = Numeric(9, 6)
DEFAULT_CURRENCY = "CNY"


class Base(DeclarativeBase):
    pass


class OutboxMessage(OutboxMixin, Base):
    pass


class InboxEvent(InboxMixin, Base):
    pass


class IdempotencyRecord(IdempotencyRecordMixin, Base):
    pass


# -- read models -----------------------------------------------------------------------------
class Customer(Base):
    """A customer as ``customer.events`` and the customer snapshot tell it.

    ``source_version`` is the customer record's version: a row is replaced only by a newer one.
    A merged customer stays merged (``status`` ``merged``, ``merged_into_id`` set) whatever
    older event arrives after the merge."""

    __tablename__ = "customers"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    code: Mapped[str] = mapped_column(String(16), index=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    short_name: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))
    category: Mapped[str | None] = mapped_column(String(10), index=True)
    region: Mapped[str | None] = mapped_column(String(100), index=True)
    owner_id: Mapped[str | None] = mapped_column(String(64), index=True)
    department_id: Mapped[str | None] = mapped_column(String(64), index=True)
    erp_code: Mapped[str | None] = mapped_column(String(40), index=True)
    credit_code: Mapped[str | None] = mapped_column(String(40), index=True)
    merged_into_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    source_version: Mapped[int] = mapped_column(Integer, default=0)
    source_updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Contact(Base):
    """A customer's contact as ``customer.events`` and the customer snapshot tell it."""

    __tablename__ = "contacts"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    name: Mapped[str] = mapped_column(String(100))
    title: Mapped[str | None] = mapped_column(String(100))
    mobile: Mapped[str | None] = mapped_column(String(20))
    phone: Mapped[str | None] = mapped_column(String(40))
    source_version: Mapped[int] = mapped_column(Integer, default=0)
    source_updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Person(Base):
    """An employee as org's ``person_changed`` and its people snapshot tell it, with the user
    account linked to them (``user_id``, none for people who do not sign in).

    Org touches a person whenever the user linked to them changes, so ``source_version`` and
    ``source_updated_at`` order the link too; should two people briefly claim one user, the
    newer claim (``source_updated_at``) is the one that counts."""

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


class Department(Base):
    """A department as org's ``department_changed`` and structure snapshot tell it;
    ``manager_id`` is a person id."""

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


class Region(Base):
    """A sales region as org's ``region_changed`` and structure snapshot tell it; ``path``
    (``华东/江苏``) is what customers and sales records carry."""

    __tablename__ = "regions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(50))
    parent_id: Mapped[str | None] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(500), index=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    source_version: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CatchUp(CatchUpMixin, Base):
    """One snapshot (``org.departments``, ``customer.customers``…) read to its end: a fresh
    database catches up from the snapshots once, then events keep it current."""


# -- sales processes -------------------------------------------------------------------------
class SalesProcess(EntityMixin, Base):
    """One revision of a sales process (销售流程). Editing a process adds a new revision of the
    same ``code`` and points the old one at it (``superseded_by``); opportunities keep the id
    of the revision they follow, so history is never rewritten. ``version`` (from
    ``EntityMixin``) is the optimistic lock, ``revision`` the definition's number."""

    __tablename__ = "sales_processes"

    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    revision: Mapped[int] = mapped_column(Integer, default=1)
    allow_skip: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    superseded_by: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("sales_processes.id", ondelete="SET NULL")
    )

    __table_args__ = (UniqueConstraint("code", "revision", name="uq_sales_processes_revision"),)


class SalesStage(Base):
    """A stage of one process revision, in ``position`` order."""

    __tablename__ = "sales_stages"

    process_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("sales_processes.id", ondelete="CASCADE"), primary_key=True
    )
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(Integer)
    probability: Mapped[int] = mapped_column(Integer)
    required_fields: Mapped[list[str]] = mapped_column(JSON, default=list)
    outcome: Mapped[str] = mapped_column(String(10), default="open")

    __table_args__ = (
        UniqueConstraint("process_id", "position", name="uq_sales_stages_position"),
        CheckConstraint("probability between 0 and 100", name="ck_sales_stages_probability"),
        CheckConstraint("outcome in ('open', 'won', 'lost')", name="ck_sales_stages_outcome"),
    )


# -- master lists ----------------------------------------------------------------------------
class Competitor(EntityMixin, Base):
    """竞争对手: the master list opportunities name their competitors from."""

    __tablename__ = "competitors"

    name: Mapped[str] = mapped_column(String(100), unique=True)
    strengths: Mapped[str | None] = mapped_column(Text)
    weaknesses: Mapped[str | None] = mapped_column(Text)
    main_products: Mapped[str | None] = mapped_column(Text)
    price_level: Mapped[str | None] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class LossReason(Base):
    """A reason an opportunity is lost (configurable list)."""

    __tablename__ = "loss_reasons"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class ExpenseCategory(Base):
    """A category of sales expense (travel, entertainment, gift, sample, other; configurable)."""

    __tablename__ = "expense_categories"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


# -- opportunities ---------------------------------------------------------------------------
class Opportunity(EntityMixin, Base):
    """商机. ``region`` and ``category`` are copied from the customer for scoping;
    ``probability`` follows the stage unless ``probability_override`` is set."""

    __tablename__ = "opportunities"

    code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    owner_id: Mapped[str] = mapped_column(String(64))
    department_id: Mapped[str | None] = mapped_column(String(64))
    region: Mapped[str | None] = mapped_column(String(100), index=True)
    category: Mapped[str | None] = mapped_column(String(10), index=True)
    process_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("sales_processes.id"))
    stage_code: Mapped[str] = mapped_column(String(32))
    probability: Mapped[int] = mapped_column(Integer, default=0)
    probability_override: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12), default="open")
    expected_amount: Mapped[Decimal | None] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3), default=DEFAULT_CURRENCY)
    expected_close_date: Mapped[date | None] = mapped_column(Date)
    source_campaign_id: Mapped[str | None] = mapped_column(String(64))
    source_lead_id: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    loss_reason: Mapped[str | None] = mapped_column(String(32), ForeignKey("loss_reasons.code"))
    won_competitor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("competitors.id"))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_activity_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        CheckConstraint(
            "status in ('open', 'won', 'lost', 'abandoned')", name="ck_opportunities_status"
        ),
        CheckConstraint("probability between 0 and 100", name="ck_opportunities_probability"),
        CheckConstraint(
            "probability_override is null or probability_override between 0 and 100",
            name="ck_opportunities_probability_override",
        ),
        Index("ix_opportunities_owner_status", "owner_id", "status"),
        Index("ix_opportunities_department_status", "department_id", "status"),
        Index("ix_opportunities_status_close_date", "status", "expected_close_date"),
        Index("ix_opportunities_status_last_activity", "status", "last_activity_at"),
        Index("ix_opportunities_created_at_id", "created_at", "id"),
    )


class OpportunityContact(Base):
    """A contact of the customer and their role in the deal."""

    __tablename__ = "opportunity_contacts"

    opportunity_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("opportunities.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(20))

    __table_args__ = (
        CheckConstraint(
            "role in ('decision_maker', 'influencer', 'user', 'purchaser')",
            name="ck_opportunity_contacts_role",
        ),
    )


class OpportunityLine(Base):
    """A product of interest, as a free line until the item master lands."""

    __tablename__ = "opportunity_lines"

    opportunity_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("opportunities.id", ondelete="CASCADE"), primary_key=True
    )
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    item_name: Mapped[str] = mapped_column(String(200))
    spec: Mapped[str | None] = mapped_column(String(200))
    quantity: Mapped[Decimal] = mapped_column(QUANTITY)
    expected_price: Mapped[Decimal | None] = mapped_column(MONEY)


class OpportunityCompetitor(Base):
    """A competitor in one deal: their offer, how much of a threat, notes."""

    __tablename__ = "opportunity_competitors"

    opportunity_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("opportunities.id", ondelete="CASCADE"), primary_key=True
    )
    competitor_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("competitors.id"), primary_key=True, index=True
    )
    offer: Mapped[Decimal | None] = mapped_column(MONEY)
    threat_level: Mapped[str] = mapped_column(String(10), default="medium")
    notes: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint(
            "threat_level in ('low', 'medium', 'high')",
            name="ck_opportunity_competitors_threat_level",
        ),
    )


class StageHistory(Base):
    """An opportunity's stay in one stage: entered, left (none while it is there), by whom."""

    __tablename__ = "stage_history"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    opportunity_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("opportunities.id", ondelete="CASCADE")
    )
    process_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    stage_code: Mapped[str] = mapped_column(String(32))
    entered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    left_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    moved_by: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_stage_history_opportunity_entered", "opportunity_id", "entered_at"),
        Index("ix_stage_history_stage_entered", "process_id", "stage_code", "entered_at"),
    )


class CodeCounter(Base):
    """The last sequence handed out per code prefix (``OPP``, ``EXP``…) and year."""

    __tablename__ = "code_counters"

    prefix: Mapped[str] = mapped_column(String(8), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_value: Mapped[int] = mapped_column(Integer, nullable=False)


# -- activities ------------------------------------------------------------------------------
class Activity(EntityMixin, Base):
    """行动: planned (``start_at``, ``duration_minutes``), done (``done_at``, ``result``,
    ``next_step``) or cancelled; ``participants`` is a list of user ids."""

    __tablename__ = "activities"

    type: Mapped[str] = mapped_column(String(10))
    subject: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10), default="planned")
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    contact_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    opportunity_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("opportunities.id", ondelete="SET NULL"), index=True
    )
    owner_id: Mapped[str] = mapped_column(String(64))
    department_id: Mapped[str | None] = mapped_column(String(64))
    region: Mapped[str | None] = mapped_column(String(100), index=True)
    category: Mapped[str | None] = mapped_column(String(10), index=True)
    start_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    duration_minutes: Mapped[int | None] = mapped_column(Integer)
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    result: Mapped[str | None] = mapped_column(Text)
    next_step: Mapped[str | None] = mapped_column(Text)
    checkin_lat: Mapped[Decimal | None] = mapped_column(COORDINATE)
    checkin_lng: Mapped[Decimal | None] = mapped_column(COORDINATE)
    checkin_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    participants: Mapped[list[str]] = mapped_column(JSON, default=list)

    __table_args__ = (
        CheckConstraint(
            "type in ('call', 'visit', 'meeting', 'email', 'demo', 'other')",
            name="ck_activities_type",
        ),
        CheckConstraint("status in ('planned', 'done', 'cancelled')", name="ck_activities_status"),
        Index("ix_activities_owner_start", "owner_id", "start_at"),
        Index("ix_activities_department_start", "department_id", "start_at"),
        Index("ix_activities_status_start", "status", "start_at"),
        Index("ix_activities_created_at_id", "created_at", "id"),
    )


# -- expenses --------------------------------------------------------------------------------
class Expense(EntityMixin, Base):
    """费用: ``submitter_id`` is the submitter's user id (their scope "owner"); ``category``
    is the customer's category, for scoping (none without a customer)."""

    __tablename__ = "expenses"

    code: Mapped[str] = mapped_column(String(20), unique=True)
    submitter_id: Mapped[str] = mapped_column(String(64))
    department_id: Mapped[str | None] = mapped_column(String(64))
    region: Mapped[str | None] = mapped_column(String(100), index=True)
    category: Mapped[str | None] = mapped_column(String(10), index=True)
    expense_category: Mapped[str] = mapped_column(String(32), ForeignKey("expense_categories.code"))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3), default=DEFAULT_CURRENCY)
    spent_on: Mapped[date] = mapped_column(Date)
    customer_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    opportunity_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("opportunities.id", ondelete="SET NULL"), index=True
    )
    activity_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("activities.id", ondelete="SET NULL")
    )
    receipt_no: Mapped[str | None] = mapped_column(String(64))
    remark: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="submitted")
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(
            "status in ('submitted', 'approved', 'rejected', 'paid')", name="ck_expenses_status"
        ),
        CheckConstraint("amount > 0", name="ck_expenses_amount"),
        Index("ix_expenses_submitter_status", "submitter_id", "status"),
        Index("ix_expenses_status_spent_on", "status", "spent_on"),
        Index("ix_expenses_department_spent_on", "department_id", "spent_on"),
        Index("ix_expenses_created_at_id", "created_at", "id"),
    )


class ExpenseApproval(Base):
    """One level of an expense's approval chain: who must decide, and what they decided."""

    __tablename__ = "expense_approvals"

    expense_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("expenses.id", ondelete="CASCADE"), primary_key=True
    )
    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    approver_person_id: Mapped[str] = mapped_column(String(64))
    approver_user_id: Mapped[str | None] = mapped_column(String(64))
    decision: Mapped[str | None] = mapped_column(String(10))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    comment: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint(
            "decision is null or decision in ('approved', 'rejected')",
            name="ck_expense_approvals_decision",
        ),
        Index("ix_expense_approvals_approver_decision", "approver_person_id", "decision"),
    )


# -- targets ---------------------------------------------------------------------------------
class SalesTarget(EntityMixin, Base):
    """销售目标 of a person or a department for a month (``2026-03``) or quarter
    (``2026-Q1``)."""

    __tablename__ = "sales_targets"

    subject_type: Mapped[str] = mapped_column(String(12))
    subject_id: Mapped[str] = mapped_column(String(64))
    period: Mapped[str] = mapped_column(String(7))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3), default=DEFAULT_CURRENCY)

    __table_args__ = (
        UniqueConstraint("subject_type", "subject_id", "period", name="uq_sales_targets_subject"),
        CheckConstraint(
            "subject_type in ('person', 'department')", name="ck_sales_targets_subject_type"
        ),
        Index("ix_sales_targets_period", "period"),
    )


# -- history ---------------------------------------------------------------------------------
class HistoryEntry(Base):
    """Who changed which field of a sales record (``entity_type`` ``opportunity``,
    ``activity``, ``expense``…) and when; values as ``crm_common.history.jsonable`` makes
    them. ``change`` says what happened (``created``, ``updated``, ``customer_merged``…)."""

    __tablename__ = "history"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    entity_type: Mapped[str] = mapped_column(String(20))
    entity_id: Mapped[str] = mapped_column(String(36))
    change: Mapped[str] = mapped_column(String(30))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    field: Mapped[str | None] = mapped_column(String(50))
    old: Mapped[Any] = mapped_column(JSON, nullable=True)
    new: Mapped[Any] = mapped_column(JSON, nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("ix_history_entity_at", "entity_type", "entity_id", "at", "id"),)


# The quote-to-cash and ERP tables live in modules of their own; importing them here puts them
# in ``Base.metadata`` wherever the models are imported.
from sales.models import catalog, erp, orders, quotes, receivables  # noqa: E402, F401
