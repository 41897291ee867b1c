"""ERP events waiting for their customer; ERP codes on the customer read model.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 10:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("credit_code", sa.String(length=40), nullable=True))
    op.create_index("ix_customers_erp_code", "customers", ["erp_code"])
    op.create_index("ix_customers_credit_code", "customers", ["credit_code"])

    op.create_table(
        "erp_unmatched_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("event_type", sa.String(length=40), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("erp_code", sa.String(length=40), nullable=True),
        sa.Column("credit_code", sa.String(length=40), nullable=True),
        sa.Column("crm_customer_id", sa.Uuid(), nullable=True),
        sa.Column("customer_name", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("customer_id", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_index(
        "ix_erp_unmatched_events_status_seen",
        "erp_unmatched_events",
        ["status", "first_seen_at", "id"],
    )
    op.create_index(
        "ix_erp_unmatched_events_erp_code", "erp_unmatched_events", ["erp_code", "status"]
    )
    op.create_index(
        "ix_erp_unmatched_events_credit_code", "erp_unmatched_events", ["credit_code", "status"]
    )

    op.create_table(
        "erp_customer_mappings",
        sa.Column("erp_code", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("mapped_by", sa.String(length=64), nullable=True),
        sa.Column("mapped_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("erp_code"),
    )


def downgrade() -> None:
    op.drop_table("erp_customer_mappings")
    op.drop_index("ix_erp_unmatched_events_credit_code", table_name="erp_unmatched_events")
    op.drop_index("ix_erp_unmatched_events_erp_code", table_name="erp_unmatched_events")
    op.drop_index("ix_erp_unmatched_events_status_seen", table_name="erp_unmatched_events")
    op.drop_table("erp_unmatched_events")
    op.drop_index("ix_customers_credit_code", table_name="customers")
    op.drop_index("ix_customers_erp_code", table_name="customers")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("credit_code")
