"""Sales orders and contracts of merged customers move to the survivor (a data repair).

A ``customer_merged`` moves the merged customer's records to the customer that survived the
merge (see ``sales.application.read_models``). Until it moved sales orders and contracts too,
a merge left them on the merged customer. This revision moves each such order and contract,
once, the way a merge does it live: to the survivor (following a survivor that was merged
since), with the survivor's region and category when sales has its copy, a
``customer_merged`` history row per changed field without an actor, a new ``version`` and
``updated_at``.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 04:00:00
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DOCUMENTS = (("sales_orders", "order"), ("contracts", "contract"))
"""Each table a merge did not move before, with its history entity type."""
MOVED_FIELDS = ("customer_id", "region", "category")
CUSTOMER_MERGED = "customer_merged"

customers = sa.table(
    "customers",
    sa.column("id", sa.Uuid()),
    sa.column("region", sa.String()),
    sa.column("category", sa.String()),
    sa.column("source_version", sa.Integer()),
    sa.column("merged_into_id", sa.Uuid()),
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


def _documents(name: str) -> sa.TableClause:
    return sa.table(
        name,
        sa.column("id", sa.Uuid()),
        sa.column("customer_id", sa.Uuid()),
        sa.column("region", sa.String()),
        sa.column("category", sa.String()),
        sa.column("version", sa.Integer()),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )


def upgrade() -> None:
    """Offline (``--sql``) nothing can be read beforehand: the script moves nothing."""
    if op.get_context().as_sql:
        return
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(
            customers.c.id,
            customers.c.region,
            customers.c.category,
            customers.c.source_version,
            customers.c.merged_into_id,
        )
    ).all()
    by_id = {row.id: row for row in rows}
    survivors = {
        row.id: _survivor(row.id, by_id) for row in rows if row.merged_into_id is not None
    }
    if not survivors:
        return
    now = datetime.now(UTC)
    for name, entity_type in DOCUMENTS:
        _move(bind, _documents(name), entity_type, survivors, by_id, now)


def _survivor(customer_id: uuid.UUID, by_id: dict[uuid.UUID, Any]) -> uuid.UUID:
    """The customer ``customer_id`` was merged into, perhaps in several steps."""
    current, seen = customer_id, {customer_id}
    while True:
        row = by_id.get(current)
        merged_into = None if row is None else row.merged_into_id
        if merged_into is None or merged_into in seen:
            return current
        seen.add(merged_into)
        current = merged_into


def _move(
    bind: Any,
    documents: sa.TableClause,
    entity_type: str,
    survivors: dict[uuid.UUID, uuid.UUID],
    by_id: dict[uuid.UUID, Any],
    now: datetime,
) -> None:
    stranded = bind.execute(
        sa.select(
            documents.c.id, documents.c.customer_id, documents.c.region, documents.c.category
        )
        .where(documents.c.customer_id.in_(sorted(survivors)))
        .order_by(documents.c.id)
    ).all()
    entries: list[dict[str, Any]] = []
    for document in stranded:
        survivor_id = survivors[document.customer_id]
        survivor = by_id.get(survivor_id)
        before = {
            "customer_id": str(document.customer_id),
            "region": document.region,
            "category": document.category,
        }
        after = {**before, "customer_id": str(survivor_id)}
        if survivor is not None and survivor.source_version > 0:
            after.update(region=survivor.region, category=survivor.category)
        bind.execute(
            sa.update(documents)
            .where(documents.c.id == document.id)
            .values(
                customer_id=survivor_id,
                region=after["region"],
                category=after["category"],
                version=documents.c.version + 1,
                updated_at=now,
            )
        )
        entries += [
            {
                "id": uuid.uuid4(),
                "entity_type": entity_type,
                "entity_id": str(document.id),
                "change": CUSTOMER_MERGED,
                "actor_id": None,
                "field": field,
                "old": before[field],
                "new": after[field],
                "at": now,
            }
            for field in MOVED_FIELDS
            if before[field] != after[field]
        ]
    if entries:
        op.bulk_insert(history, entries)


def downgrade() -> None:
    """Nothing to undo in the schema; the moves are not undone (the moved documents and their
    history entries stay)."""
