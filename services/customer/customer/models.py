"""The customer context's tables (SQLAlchemy 2, typed)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    DDL,
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    event,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from crm_common.idempotency import IdempotencyRecordMixin
from crm_common.models import EntityMixin, InboxMixin, OutboxMixin, utcnow


class Base(DeclarativeBase):
    pass


class OutboxMessage(OutboxMixin, Base):
    pass


class InboxEvent(InboxMixin, Base):
    pass


class IdempotencyRecord(IdempotencyRecordMixin, Base):
    pass


# The fields a client edits, in the order history, events and CSV columns list them.
CUSTOMER_FIELDS = (
    "name",
    "short_name",
    "kind",
    "status",
    "category",
    "industry",
    "region",
    "address",
    "phone",
    "credit_code",
    "erp_code",
    "credit_level",
    "established_on",
    "owner_id",
    "department_id",
    "tags",
    "remark",
)
CONTACT_FIELDS = (
    "name",
    "title",
    "department",
    "mobile",
    "phone",
    "email",
    "birthday",
    "is_primary",
    "purchase_role",
    "remark",
)


class Customer(EntityMixin, Base):
    __tablename__ = "customers"

    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    name_key: Mapped[str] = mapped_column(String(200), index=True)
    short_name: Mapped[str | None] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20), default="enterprise")
    status: Mapped[str] = mapped_column(String(20), default="potential", index=True)
    category: Mapped[str | None] = mapped_column(String(10), index=True)
    industry: Mapped[str | None] = mapped_column(String(100))
    region: Mapped[str | None] = mapped_column(String(100), index=True)
    address: Mapped[str | None] = mapped_column(String(300))
    phone: Mapped[str | None] = mapped_column(String(40))
    phone_key: Mapped[str | None] = mapped_column(String(20), index=True)
    credit_code: Mapped[str | None] = mapped_column(String(18), unique=True)
    credit_level: Mapped[str | None] = mapped_column(String(10))
    erp_code: Mapped[str | None] = mapped_column(String(40))
    """The ERP's code of this customer (客户编码 in U8), by which ERP events may name it;
    unique when set (``uq_customers_erp_code``)."""
    established_on: Mapped[date | None] = mapped_column(Date)
    """成立日期: when the company was founded (its anniversaries are greeted)."""
    owner_id: Mapped[str | None] = mapped_column(String(64), index=True)
    department_id: Mapped[str | None] = mapped_column(String(64), index=True)
    remark: Mapped[str | None] = mapped_column(Text)
    merged_into_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("customers.id", ondelete="SET NULL")
    )
    contact_names: Mapped[str | None] = mapped_column(Text)
    """Its contacts' names (and below, their mobiles) joined by the control character 31, which
    no name or mobile holds, so no search matches across two contacts. Kept by triggers on
    ``contacts`` (``CONTACT_TRIGGERS``): a search looks at one row, not at the contacts of
    every customer it passes."""
    contact_mobiles: Mapped[str | None] = mapped_column(Text)

    tag_rows: Mapped[list[CustomerTag]] = relationship(
        back_populates="customer",
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="CustomerTag.position",
    )

    __table_args__ = (
        CheckConstraint(
            "status in ('potential', 'formal', 'dormant', 'disabled', 'merged')",
            name="ck_customers_status",
        ),
        CheckConstraint("kind in ('enterprise', 'individual')", name="ck_customers_kind"),
        Index("ix_customers_created_at_id", "created_at", "id"),
        # Partial: most customers have no ERP code, and a lookup names one.
        Index(
            "uq_customers_erp_code",
            "erp_code",
            unique=True,
            sqlite_where=text("erp_code IS NOT NULL"),
            postgresql_where=text("erp_code IS NOT NULL"),
        ),
    )

    @property
    def tags(self) -> list[str]:
        return [row.tag for row in self.tag_rows]

    @tags.setter
    def tags(self, values: list[str]) -> None:
        wanted = list(dict.fromkeys(values))
        existing = {row.tag: row for row in self.tag_rows}
        rows = []
        for position, tag in enumerate(wanted):
            row = existing.get(tag) or CustomerTag(tag=tag)
            row.position = position
            rows.append(row)
        self.tag_rows = rows


class CustomerTag(Base):
    """One tag of a customer; "has all of these tags" is one EXISTS per tag in SQL."""

    __tablename__ = "customer_tags"

    customer_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(32), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)

    customer: Mapped[Customer] = relationship(back_populates="tag_rows")

    __table_args__ = (Index("ix_customer_tags_tag", "tag", "customer_id"),)


class CustomerCount(Base):
    """How many customers have each combination of the values that scopes, counts and
    summaries filter on: a count or summary adds up these rows instead of reading every
    customer.

    Triggers on ``customers`` (``COUNT_TRIGGERS``) add a row of +n or -n for every insert,
    delete or move between combinations, in the transaction that makes it, so the sum is exact
    for every reader; ``repository.compact_counts`` folds the rows of a combination into one
    from time to time. A missing value is stored as ``''`` (no dimension value is empty), so
    that rows of one combination compare equal."""

    __tablename__ = "customer_counts"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    status: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(20))
    category: Mapped[str] = mapped_column(String(10))
    region: Mapped[str] = mapped_column(String(100))
    owner_id: Mapped[str] = mapped_column(String(64))
    department_id: Mapped[str] = mapped_column(String(64))
    n: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        # Reads and folding look at live rows only: a bulk load leaves the table large with
        # dead rows (folded away), which an index-only scan does not read.
        Index(
            "ix_customer_counts_combination",
            "status",
            "kind",
            "category",
            "region",
            "owner_id",
            "department_id",
            postgresql_include=["n"],
        ),
    )


SQLITE_COUNT_TRIGGERS = (
    """CREATE TRIGGER IF NOT EXISTS customer_counts_insert AFTER INSERT ON customers
BEGIN
  INSERT INTO customer_counts (status, kind, category, region, owner_id, department_id, n)
  VALUES (NEW.status, NEW.kind, coalesce(NEW.category, ''), coalesce(NEW.region, ''),
          coalesce(NEW.owner_id, ''), coalesce(NEW.department_id, ''), 1);
END""",
    """CREATE TRIGGER IF NOT EXISTS customer_counts_delete AFTER DELETE ON customers
BEGIN
  INSERT INTO customer_counts (status, kind, category, region, owner_id, department_id, n)
  VALUES (OLD.status, OLD.kind, coalesce(OLD.category, ''), coalesce(OLD.region, ''),
          coalesce(OLD.owner_id, ''), coalesce(OLD.department_id, ''), -1);
END""",
    """CREATE TRIGGER IF NOT EXISTS customer_counts_update
AFTER UPDATE OF status, kind, category, region, owner_id, department_id ON customers
WHEN OLD.status IS NOT NEW.status OR OLD.kind IS NOT NEW.kind
  OR OLD.category IS NOT NEW.category OR OLD.region IS NOT NEW.region
  OR OLD.owner_id IS NOT NEW.owner_id OR OLD.department_id IS NOT NEW.department_id
BEGIN
  INSERT INTO customer_counts (status, kind, category, region, owner_id, department_id, n)
  VALUES (OLD.status, OLD.kind, coalesce(OLD.category, ''), coalesce(OLD.region, ''),
          coalesce(OLD.owner_id, ''), coalesce(OLD.department_id, ''), -1);
  INSERT INTO customer_counts (status, kind, category, region, owner_id, department_id, n)
  VALUES (NEW.status, NEW.kind, coalesce(NEW.category, ''), coalesce(NEW.region, ''),
          coalesce(NEW.owner_id, ''), coalesce(NEW.department_id, ''), 1);
END""",
)
"""One row per customer changed: SQLite has no statement-level triggers."""
POSTGRESQL_COUNT_TRIGGERS = (
    """CREATE OR REPLACE FUNCTION customer_counts_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO customer_counts (status, kind, category, region, owner_id, department_id, n)
  SELECT status, kind, coalesce(category, ''), coalesce(region, ''), coalesce(owner_id, ''),
         coalesce(department_id, ''), count(*)
  FROM new_rows GROUP BY 1, 2, 3, 4, 5, 6;
  RETURN NULL;
END
$$""",
    """CREATE OR REPLACE FUNCTION customer_counts_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO customer_counts (status, kind, category, region, owner_id, department_id, n)
  SELECT status, kind, coalesce(category, ''), coalesce(region, ''), coalesce(owner_id, ''),
         coalesce(department_id, ''), -count(*)
  FROM old_rows GROUP BY 1, 2, 3, 4, 5, 6;
  RETURN NULL;
END
$$""",
    """CREATE OR REPLACE FUNCTION customer_counts_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO customer_counts (status, kind, category, region, owner_id, department_id, n)
  SELECT status, kind, coalesce(category, ''), coalesce(region, ''), coalesce(owner_id, ''),
         coalesce(department_id, ''), sum(n)
  FROM (SELECT status, kind, category, region, owner_id, department_id, -1 AS n FROM old_rows
        UNION ALL
        SELECT status, kind, category, region, owner_id, department_id, 1 FROM new_rows) AS moved
  GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(n) <> 0;
  RETURN NULL;
END
$$""",
    """CREATE OR REPLACE FUNCTION customer_counts_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM customer_counts;
  RETURN NULL;
END
$$""",
    """CREATE OR REPLACE TRIGGER customer_counts_insert AFTER INSERT ON customers
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION customer_counts_inserted()""",
    """CREATE OR REPLACE TRIGGER customer_counts_delete AFTER DELETE ON customers
REFERENCING OLD TABLE AS old_rows
FOR EACH STATEMENT EXECUTE FUNCTION customer_counts_deleted()""",
    """CREATE OR REPLACE TRIGGER customer_counts_update AFTER UPDATE ON customers
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION customer_counts_updated()""",
    """CREATE OR REPLACE TRIGGER customer_counts_truncate AFTER TRUNCATE ON customers
FOR EACH STATEMENT EXECUTE FUNCTION customer_counts_truncated()""",
)
"""One set of rows per statement: a bulk load adds one row per combination it touches."""
COUNT_TRIGGERS = {"sqlite": SQLITE_COUNT_TRIGGERS, "postgresql": POSTGRESQL_COUNT_TRIGGERS}
# Created before customers, so emptied after them (their triggers write to it) when tables
# are emptied in reverse dependency order.
Customer.__table__.add_is_dependent_on(CustomerCount.__table__)  # type: ignore[attr-defined]


class CustomerCodeCounter(Base):
    """The last sequence handed out per year; bumped with one atomic upsert per new code."""

    __tablename__ = "customer_code_counters"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_value: Mapped[int] = mapped_column(Integer, nullable=False)


class Contact(EntityMixin, Base):
    __tablename__ = "contacts"

    customer_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100), index=True)
    title: Mapped[str | None] = mapped_column(String(100))
    department: Mapped[str | None] = mapped_column(String(100))
    mobile: Mapped[str | None] = mapped_column(String(11), index=True)
    phone: Mapped[str | None] = mapped_column(String(40))
    email: Mapped[str | None] = mapped_column(String(200))
    birthday: Mapped[date | None] = mapped_column(Date)
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    purchase_role: Mapped[str | None] = mapped_column(String(20))
    remark: Mapped[str | None] = mapped_column(Text)


_SQLITE_CONTACTS_OF = """UPDATE customers SET
    contact_names = (SELECT group_concat(name, char(31)) FROM contacts
                     WHERE customer_id = {row}.customer_id),
    contact_mobiles = (SELECT group_concat(mobile, char(31)) FROM contacts
                       WHERE customer_id = {row}.customer_id)
  WHERE id = {row}.customer_id;"""
SQLITE_CONTACT_TRIGGERS = (
    f"""CREATE TRIGGER IF NOT EXISTS contacts_search_insert AFTER INSERT ON contacts
BEGIN
  {_SQLITE_CONTACTS_OF.format(row="NEW")}
END""",
    f"""CREATE TRIGGER IF NOT EXISTS contacts_search_delete AFTER DELETE ON contacts
BEGIN
  {_SQLITE_CONTACTS_OF.format(row="OLD")}
END""",
    f"""CREATE TRIGGER IF NOT EXISTS contacts_search_update
AFTER UPDATE OF name, mobile, customer_id ON contacts
BEGIN
  {_SQLITE_CONTACTS_OF.format(row="OLD")}
  {_SQLITE_CONTACTS_OF.format(row="NEW")}
END""",
)
_POSTGRESQL_CONTACTS_OF = """UPDATE customers SET
    contact_names = (SELECT string_agg(name, chr(31)) FROM contacts
                     WHERE customer_id = customers.id),
    contact_mobiles = (SELECT string_agg(mobile, chr(31)) FROM contacts
                       WHERE customer_id = customers.id)
  WHERE id IN ({touched});"""
_MOVED = "SELECT customer_id FROM old_rows UNION SELECT customer_id FROM new_rows"
POSTGRESQL_CONTACT_TRIGGERS = (
    f"""CREATE OR REPLACE FUNCTION contacts_search_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  {_POSTGRESQL_CONTACTS_OF.format(touched="SELECT customer_id FROM new_rows")}
  RETURN NULL;
END
$$""",
    f"""CREATE OR REPLACE FUNCTION contacts_search_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  {_POSTGRESQL_CONTACTS_OF.format(touched="SELECT customer_id FROM old_rows")}
  RETURN NULL;
END
$$""",
    f"""CREATE OR REPLACE FUNCTION contacts_search_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  {_POSTGRESQL_CONTACTS_OF.format(touched=_MOVED)}
  RETURN NULL;
END
$$""",
    """CREATE OR REPLACE TRIGGER contacts_search_insert AFTER INSERT ON contacts
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION contacts_search_inserted()""",
    """CREATE OR REPLACE TRIGGER contacts_search_delete AFTER DELETE ON contacts
REFERENCING OLD TABLE AS old_rows
FOR EACH STATEMENT EXECUTE FUNCTION contacts_search_deleted()""",
    """CREATE OR REPLACE TRIGGER contacts_search_update AFTER UPDATE ON contacts
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION contacts_search_updated()""",
)
"""Keep ``Customer.contact_names`` and ``contact_mobiles`` as the contacts are."""
CONTACT_TRIGGERS = {"sqlite": SQLITE_CONTACT_TRIGGERS, "postgresql": POSTGRESQL_CONTACT_TRIGGERS}

for _triggers in (COUNT_TRIGGERS, CONTACT_TRIGGERS):
    for _dialect, _statements in _triggers.items():
        for _statement in _statements:
            ddl = DDL(_statement).execute_if(dialect=_dialect)  # type: ignore[no-untyped-call]
            event.listen(Base.metadata, "after_create", ddl)


Index(
    "uq_contacts_one_primary",
    Contact.customer_id,
    unique=True,
    sqlite_where=Contact.is_primary.is_(True),
    postgresql_where=Contact.is_primary.is_(True),
)


class Relationship(EntityMixin, Base):
    """``to`` customer is ``kind`` of ``from`` customer (see domain.relationships)."""

    __tablename__ = "customer_relationships"

    from_customer_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    to_customer_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(String(500))
    created_by: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        UniqueConstraint("from_customer_id", "to_customer_id", "kind", name="uq_relationship"),
        CheckConstraint("from_customer_id <> to_customer_id", name="ck_relationship_not_self"),
        CheckConstraint(
            "kind in ('parent', 'subsidiary', 'partner', 'influences')",
            name="ck_relationship_kind",
        ),
    )


class CareRecord(EntityMixin, Base):
    """客户关怀: a birthday card, a festival gift, a visit, a call."""

    __tablename__ = "care_records"

    customer_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    contact_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("contacts.id", ondelete="SET NULL")
    )
    kind: Mapped[str] = mapped_column(String(20))
    date: Mapped[date] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(Text)
    by_user_id: Mapped[str | None] = mapped_column(String(64))


class OrgUnit(Base):
    """A department or region of the org service, as its ``department_changed`` /
    ``region_changed`` events and its structure snapshot tell it: what customers may name."""

    __tablename__ = "org_units"

    kind: Mapped[str] = mapped_column(String(12), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    parent_id: Mapped[str | None] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(1000))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=0)
    """The org record's version: an event or snapshot row older than what is stored is
    ignored, so their order of arrival does not matter."""
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        CheckConstraint("kind in ('department', 'region')", name="ck_org_units_kind"),
        Index("ix_org_units_kind_path", "kind", "path"),
    )


class HistoryEntry(Base):
    """Who changed which field of a customer (or of its contacts, links, care) and when."""

    __tablename__ = "history_entries"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    customer_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("customers.id", ondelete="CASCADE")
    )
    entity_type: Mapped[str] = mapped_column(String(20))
    entity_id: Mapped[str] = mapped_column(String(36))
    change: Mapped[str] = mapped_column(String(30))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    field: Mapped[str | None] = mapped_column(String(50))
    old: Mapped[Any] = mapped_column(JSON, nullable=True)
    new: Mapped[Any] = mapped_column(JSON, nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("ix_history_customer_at", "customer_id", "at", "id"),)
