"""Records whose region or category went stale take their customer's again (a data repair).

Opportunities, activities, expenses, quotes, sales orders and contracts copy the region and
category of their customer for scoping. Until a newer customer copy made them follow (see
``sales.application.read_models``), a customer's new region or category did not reach them, so
rows written before that kept the old values. This revision sets each such row's region and
category from its customer's row in the ``customers`` read model, once, in the way following
does it live: a ``customer_updated`` history row per changed field without an actor, a new
``version`` (a client holding the old one gets a conflict) and ``updated_at``. A placeholder of a
merged customer sales never heard of (``source_version`` 0) carries no scope: rows naming it are
left as they are.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 20:30:00
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RECORDS = (
    ("opportunities", "opportunity"),
    ("activities", "activity"),
    ("expenses", "expense"),
    ("quotes", "quote"),
    ("sales_orders", "order"),
    ("contracts", "contract"),
)
"""Each table scoped by its customer's region and category, with its history entity type."""
SCOPE_FIELDS = ("region", "category")
CUSTOMER_UPDATED = "customer_updated"

customers = sa.table(
    "customers",
    sa.column("id", sa.Uuid()),
    sa.column("region", sa.String()),
    sa.column("category", sa.String()),
    sa.column("source_version", sa.Integer()),
)
history = sa.table(
    "history",
    sa.column("id", sa.Uuid()),
    sa.column("entity_type", sa.String()),
    sa.column("entity_id", sa.String()),
    sa.column("change", sa.String()),
    sa.column("actor_id", sa.String()),
    sa.column("field", sa.String()),
    sa.column("old", sa.JSON()),
    sa.column("new", sa.JSON()),
    sa.column("at", sa.DateTime(timezone=True)),
)


def _records(name: str) -> sa.TableClause:
    return sa.table(
        name,
        sa.column("id", sa.Uuid()),
        sa.column("customer_id", sa.Uuid()),
        sa.column("region", sa.String()),
        sa.column("category", sa.String()),
        sa.column("version", sa.Integer()),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )


def _stale(records: sa.TableClause) -> sa.ColumnElement[bool]:
    """The record's customer is a real copy whose region or category differs from its own
    (correlated: to be used in a query of ``records``)."""
    return sa.and_(
        customers.c.id == records.c.customer_id,
        customers.c.source_version > 0,
        sa.or_(
            records.c.region.is_distinct_from(customers.c.region),
            records.c.category.is_distinct_from(customers.c.category),
        ),
    )


def upgrade() -> None:
    """Offline (``--sql``) the stale rows cannot be read beforehand: the script repairs them
    without history rows."""
    offline = op.get_context().as_sql
    now = datetime.now(UTC)
    for name, entity_type in RECORDS:
        records = _records(name)
        if not offline:
            _record_history(records, entity_type, now)
        op.execute(
            sa.update(records)
            .where(sa.exists().where(_stale(records)))
            .values(
                region=_of_customer(records, "region"),
                category=_of_customer(records, "category"),
                version=records.c.version + 1,
                updated_at=now,
            )
        )


def _of_customer(records: sa.TableClause, column: str) -> Any:
    """The record's customer's ``column`` (correlated)."""
    return (
        sa.select(customers.c[column])
        .where(customers.c.id == records.c.customer_id)
        .scalar_subquery()
    )


def _record_history(records: sa.TableClause, entity_type: str, now: datetime) -> None:
    """A ``customer_updated`` history row for each field of a stale record that changes."""
    stale = (
        op.get_bind()
        .execute(
            sa.select(
                records.c.id,
                records.c.region,
                records.c.category,
                customers.c.region.label("new_region"),
                customers.c.category.label("new_category"),
            )
            .select_from(records)
            .join(customers, _stale(records))
            .order_by(records.c.id)
        )
        .all()
    )
    entries: list[dict[str, Any]] = [
        {
            "id": uuid.uuid4(),
            "entity_type": entity_type,
            "entity_id": str(row.id),
            "change": CUSTOMER_UPDATED,
            "actor_id": None,
            "field": field,
            "old": getattr(row, field),
            "new": getattr(row, f"new_{field}"),
            "at": now,
        }
        for row in stale
        for field in SCOPE_FIELDS
        if getattr(row, field) != getattr(row, f"new_{field}")
    ]
    if entries:
        op.bulk_insert(history, entries)


def downgrade() -> None:
    """Nothing to undo in the schema; the data repair is not undone (the stale values are not
    kept, and the repaired rows and their history entries stay)."""
