"""Items and price lists mirrored from the ERP (存货, 价格政策); quotations (报价单) with their
lines, earlier versions and discount approvals.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 10:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "items",
        sa.Column("item_code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("spec", sa.String(length=200), nullable=True),
        sa.Column("unit", sa.String(length=20), nullable=True),
        sa.Column("category", sa.String(length=100), nullable=True),
        sa.Column("list_price", sa.Numeric(precision=18, scale=2), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("tax_rate", sa.Numeric(precision=5, scale=4), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("source_occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("item_code"),
    )
    op.create_index("ix_items_active_code", "items", ["active", "item_code"], unique=False)
    op.create_table(
        "price_lists",
        sa.Column("price_list_code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("source_occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("price_list_code"),
    )
    op.create_table(
        "price_list_lines",
        sa.Column("price_list_code", sa.String(length=40), nullable=False),
        sa.Column("line_no", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("item_code", sa.String(length=40), nullable=False),
        sa.Column("customer_category", sa.String(length=10), nullable=True),
        sa.Column("min_quantity", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("unit_price", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.ForeignKeyConstraint(
            ["price_list_code"], ["price_lists.price_list_code"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("price_list_code", "line_no"),
    )
    op.create_index(
        "ix_price_list_lines_item_code", "price_list_lines", ["item_code"], unique=False
    )
    op.create_table(
        "quotes",
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("version_no", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=True),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("contact_id", sa.Uuid(), nullable=True),
        sa.Column("opportunity_id", sa.Uuid(), nullable=True),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("department_id", sa.String(length=64), nullable=True),
        sa.Column("region", sa.String(length=100), nullable=True),
        sa.Column("category", sa.String(length=10), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("prices_include_tax", sa.Boolean(), nullable=False),
        sa.Column("discount_kind", sa.String(length=8), nullable=False),
        sa.Column("discount_value", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("terms", sa.Text(), nullable=True),
        sa.Column("remark", sa.Text(), nullable=True),
        sa.Column("amount", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("line_discount", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("document_discount", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("net", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("tax", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("gross", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("reference_amount", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("effective_discount_percent", sa.Numeric(precision=7, scale=2), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decline_reason", sa.Text(), nullable=True),
        sa.Column("order_id", sa.Uuid(), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "discount_kind in ('percent', 'amount')", name="ck_quotes_discount_kind"
        ),
        sa.CheckConstraint(
            "status in ('draft', 'submitted', 'approved', 'sent', 'accepted', 'rejected', "
            "'expired', 'superseded')",
            name="ck_quotes_status",
        ),
        sa.ForeignKeyConstraint(["opportunity_id"], ["opportunities.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_index("ix_quotes_category", "quotes", ["category"], unique=False)
    op.create_index("ix_quotes_created_at_id", "quotes", ["created_at", "id"], unique=False)
    op.create_index("ix_quotes_customer_id", "quotes", ["customer_id"], unique=False)
    op.create_index(
        "ix_quotes_department_status", "quotes", ["department_id", "status"], unique=False
    )
    op.create_index("ix_quotes_opportunity_id", "quotes", ["opportunity_id"], unique=False)
    op.create_index("ix_quotes_owner_status", "quotes", ["owner_id", "status"], unique=False)
    op.create_index("ix_quotes_region", "quotes", ["region"], unique=False)
    op.create_index(
        "ix_quotes_status_valid_until", "quotes", ["status", "valid_until"], unique=False
    )
    op.create_table(
        "quote_approvals",
        sa.Column("quote_id", sa.Uuid(), nullable=False),
        sa.Column("version_no", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("level", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("department_id", sa.String(length=64), nullable=False),
        sa.Column("approver_person_id", sa.String(length=64), nullable=False),
        sa.Column("approver_user_id", sa.String(length=64), nullable=True),
        sa.Column("decision", sa.String(length=10), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "decision is null or decision in ('approved', 'rejected')",
            name="ck_quote_approvals_decision",
        ),
        sa.ForeignKeyConstraint(["quote_id"], ["quotes.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("quote_id", "version_no", "level"),
    )
    op.create_index(
        "ix_quote_approvals_approver_decision",
        "quote_approvals",
        ["approver_person_id", "decision"],
        unique=False,
    )
    op.create_table(
        "quote_lines",
        sa.Column("quote_id", sa.Uuid(), nullable=False),
        sa.Column("line_no", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("item_code", sa.String(length=40), nullable=False),
        sa.Column("item_name", sa.String(length=200), nullable=False),
        sa.Column("spec", sa.String(length=200), nullable=True),
        sa.Column("unit", sa.String(length=20), nullable=True),
        sa.Column("quantity", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("unit_price", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("reference_unit_price", sa.Numeric(precision=18, scale=2), nullable=True),
        sa.Column("price_source", sa.String(length=12), nullable=True),
        sa.Column("price_list_code", sa.String(length=40), nullable=True),
        sa.Column("discount_kind", sa.String(length=8), nullable=False),
        sa.Column("discount_value", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("tax_rate", sa.Numeric(precision=5, scale=4), nullable=False),
        sa.Column("amount", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("line_discount", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("document_discount", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("net", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("tax", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("gross", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("remark", sa.String(length=500), nullable=True),
        sa.CheckConstraint(
            "discount_kind in ('percent', 'amount')", name="ck_quote_lines_discount_kind"
        ),
        sa.ForeignKeyConstraint(["quote_id"], ["quotes.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("quote_id", "line_no"),
    )
    op.create_table(
        "quote_versions",
        sa.Column("quote_id", sa.Uuid(), nullable=False),
        sa.Column("version_no", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.Column("replaced_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replaced_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["quote_id"], ["quotes.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("quote_id", "version_no"),
    )


def downgrade() -> None:
    op.drop_table("quote_versions")
    op.drop_table("quote_lines")
    op.drop_index("ix_quote_approvals_approver_decision", table_name="quote_approvals")
    op.drop_table("quote_approvals")
    op.drop_index("ix_quotes_status_valid_until", table_name="quotes")
    op.drop_index("ix_quotes_region", table_name="quotes")
    op.drop_index("ix_quotes_owner_status", table_name="quotes")
    op.drop_index("ix_quotes_opportunity_id", table_name="quotes")
    op.drop_index("ix_quotes_department_status", table_name="quotes")
    op.drop_index("ix_quotes_customer_id", table_name="quotes")
    op.drop_index("ix_quotes_created_at_id", table_name="quotes")
    op.drop_index("ix_quotes_category", table_name="quotes")
    op.drop_table("quotes")
    op.drop_index("ix_price_list_lines_item_code", table_name="price_list_lines")
    op.drop_table("price_list_lines")
    op.drop_table("price_lists")
    op.drop_index("ix_items_active_code", table_name="items")
    op.drop_table("items")
