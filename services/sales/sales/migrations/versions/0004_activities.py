"""The default expense categories (travel, entertainment, gift, sample, other), which holders
of sales:admin may rename, take out of use or add to.

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-02 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULT_CATEGORIES = (
    ("travel", "差旅"),
    ("entertainment", "招待"),
    ("gift", "礼品"),
    ("sample", "样品"),
    ("other", "其他"),
)
categories = sa.table(
    "expense_categories",
    sa.column("code", sa.String),
    sa.column("name", sa.String),
    sa.column("active", sa.Boolean),
)
expenses = sa.table("expenses", sa.column("expense_category", sa.String))


def upgrade() -> None:
    present = set(op.get_bind().scalars(sa.select(categories.c.code)))
    missing = [
        {"code": code, "name": name, "active": True}
        for code, name in DEFAULT_CATEGORIES
        if code not in present
    ]
    if missing:
        op.bulk_insert(categories, missing)


def downgrade() -> None:
    """Remove the default categories no expense uses."""
    used = sa.select(expenses.c.expense_category).where(
        expenses.c.expense_category == categories.c.code
    )
    op.execute(
        categories.delete().where(
            categories.c.code.in_([code for code, _ in DEFAULT_CATEGORIES]), ~sa.exists(used)
        )
    )
