"""The customer service's copy of the org structure (departments and regions).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "org_units",
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("parent_id", sa.String(length=64), nullable=True),
        sa.Column("path", sa.String(length=1000), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind in ('department', 'region')", name="ck_org_units_kind"),
        sa.PrimaryKeyConstraint("kind", "id"),
    )
    op.create_index("ix_org_units_kind_path", "org_units", ["kind", "path"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_org_units_kind_path", table_name="org_units")
    op.drop_table("org_units")
