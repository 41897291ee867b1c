"""An index of customer_counts by combination (with n on PostgreSQL): a count reads the live
rows of the index, not a table a bulk load left large.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-10 13:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_customer_counts_combination",
        "customer_counts",
        ["status", "kind", "category", "region", "owner_id", "department_id"],
        unique=False,
        postgresql_include=["n"],
    )


def downgrade() -> None:
    op.drop_index("ix_customer_counts_combination", table_name="customer_counts")
