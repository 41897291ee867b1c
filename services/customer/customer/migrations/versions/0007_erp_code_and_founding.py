"""The customer's ERP code (unique when set) and founding date.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 10:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("customers", sa.Column("erp_code", sa.String(length=40), nullable=True))
    op.add_column("customers", sa.Column("established_on", sa.Date(), nullable=True))
    op.create_index(
        "uq_customers_erp_code",
        "customers",
        ["erp_code"],
        unique=True,
        sqlite_where=sa.text("erp_code IS NOT NULL"),
        postgresql_where=sa.text("erp_code IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_customers_erp_code", table_name="customers")
    # ALTER TABLE, not a batch copy of the table, which would lose the triggers on customers.
    op.execute("ALTER TABLE customers DROP COLUMN established_on")
    op.execute("ALTER TABLE customers DROP COLUMN erp_code")
