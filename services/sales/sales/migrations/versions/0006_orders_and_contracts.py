"""Sales orders, shipments, contracts and payment milestones.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 10:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "erp_order_events_waiting",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=30), nullable=False),
        sa.Column("erp_order_no", sa.String(length=40), nullable=False),
        sa.Column("document_no", sa.String(length=40), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_index(
        "ix_erp_order_events_waiting_erp_order_no", "erp_order_events_waiting", ["erp_order_no"]
    )
    op.create_table(
        "sales_orders",
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("origin", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("opportunity_id", sa.Uuid(), nullable=True),
        sa.Column("quote_id", sa.Uuid(), nullable=True),
        sa.Column("quote_version_no", sa.Integer(), nullable=True),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("department_id", sa.String(length=64), nullable=True),
        sa.Column("region", sa.String(length=100), nullable=True),
        sa.Column("category", sa.String(length=10), nullable=True),
        sa.Column("order_date", sa.Date(), nullable=False),
        sa.Column("requested_delivery_date", sa.Date(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("prices_include_tax", sa.Boolean(), nullable=False),
        sa.Column("document_discount_kind", sa.String(length=10), nullable=True),
        sa.Column("document_discount_value", sa.Numeric(precision=18, scale=4), nullable=True),
        sa.Column("amount", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("discount", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("net", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("tax", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("gross", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("remark", sa.Text(), nullable=True),
        sa.Column("credit_outcome", sa.String(length=30), nullable=True),
        sa.Column("credit_limit", sa.Numeric(precision=18, scale=2), nullable=True),
        sa.Column("credit_exposure", sa.Numeric(precision=18, scale=2), nullable=True),
        sa.Column("approved_by", sa.String(length=64), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("approval_comment", sa.Text(), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.Column("erp_order_no", sa.String(length=40), nullable=True),
        sa.Column("erp_status_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("erp_document_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("erp_reason", sa.Text(), nullable=True),
        sa.Column("salesperson_code", sa.String(length=32), nullable=True),
        sa.Column("department_code", sa.String(length=32), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint("origin in ('crm', 'erp')", name="ck_sales_orders_origin"),
        sa.CheckConstraint(
            "status in ('draft', 'pending_approval', 'confirmed', 'erp_created', 'rejected', "
            "'partially_shipped', 'shipped', 'cancel_requested', 'cancelled')",
            name="ck_sales_orders_status",
        ),
        sa.ForeignKeyConstraint(["opportunity_id"], ["opportunities.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
        sa.UniqueConstraint("erp_order_no"),
    )
    op.create_index("ix_sales_orders_category", "sales_orders", ["category"])
    op.create_index("ix_sales_orders_created_at_id", "sales_orders", ["created_at", "id"])
    op.create_index("ix_sales_orders_customer_id", "sales_orders", ["customer_id"])
    op.create_index(
        "ix_sales_orders_department_status", "sales_orders", ["department_id", "status"]
    )
    op.create_index("ix_sales_orders_opportunity_id", "sales_orders", ["opportunity_id"])
    op.create_index("ix_sales_orders_owner_status", "sales_orders", ["owner_id", "status"])
    op.create_index("ix_sales_orders_quote_id", "sales_orders", ["quote_id"])
    op.create_index("ix_sales_orders_region", "sales_orders", ["region"])
    op.create_index("ix_sales_orders_status_order_date", "sales_orders", ["status", "order_date"])
    op.create_table(
        "contracts",
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("opportunity_id", sa.Uuid(), nullable=True),
        sa.Column("quote_id", sa.Uuid(), nullable=True),
        sa.Column("order_id", sa.Uuid(), nullable=True),
        sa.Column("our_entity", sa.String(length=200), nullable=False),
        sa.Column("customer_signatory", sa.String(length=100), nullable=True),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("department_id", sa.String(length=64), nullable=True),
        sa.Column("region", sa.String(length=100), nullable=True),
        sa.Column("category", sa.String(length=10), nullable=True),
        sa.Column("amount", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("signed_on", sa.Date(), nullable=True),
        sa.Column("terms", sa.Text(), nullable=True),
        sa.Column("attachments", sa.JSON(), nullable=False),
        sa.Column("terminated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("termination_reason", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status in ('draft', 'signed', 'active', 'completed', 'terminated', 'expired')",
            name="ck_contracts_status",
        ),
        sa.CheckConstraint("amount > 0", name="ck_contracts_amount"),
        sa.CheckConstraint("end_date >= start_date", name="ck_contracts_dates"),
        sa.ForeignKeyConstraint(["opportunity_id"], ["opportunities.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["order_id"], ["sales_orders.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_index("ix_contracts_category", "contracts", ["category"])
    op.create_index("ix_contracts_created_at_id", "contracts", ["created_at", "id"])
    op.create_index("ix_contracts_customer_id", "contracts", ["customer_id"])
    op.create_index("ix_contracts_department_status", "contracts", ["department_id", "status"])
    op.create_index("ix_contracts_opportunity_id", "contracts", ["opportunity_id"])
    op.create_index("ix_contracts_order_id", "contracts", ["order_id"])
    op.create_index("ix_contracts_owner_status", "contracts", ["owner_id", "status"])
    op.create_index("ix_contracts_quote_id", "contracts", ["quote_id"])
    op.create_index("ix_contracts_region", "contracts", ["region"])
    op.create_index("ix_contracts_status_end_date", "contracts", ["status", "end_date"])
    op.create_table(
        "sales_order_lines",
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("line_no", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("item_code", sa.String(length=40), nullable=False),
        sa.Column("item_name", sa.String(length=200), nullable=False),
        sa.Column("spec", sa.String(length=200), nullable=True),
        sa.Column("unit", sa.String(length=20), nullable=True),
        sa.Column("quantity", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("unit_price", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("discount_kind", sa.String(length=10), nullable=True),
        sa.Column("discount_value", sa.Numeric(precision=18, scale=4), nullable=True),
        sa.Column("tax_rate", sa.Numeric(precision=5, scale=4), nullable=False),
        sa.Column("amount", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("discount", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("net", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("tax", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("gross", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("shipped", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["sales_orders.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("order_id", "line_no"),
    )
    op.create_table(
        "sales_order_shipments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("shipment_no", sa.String(length=40), nullable=False),
        sa.Column("shipped_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["sales_orders.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("shipment_no"),
    )
    op.create_index("ix_sales_order_shipments_order_id", "sales_order_shipments", ["order_id"])
    op.create_table(
        "contract_milestones",
        sa.Column("contract_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("percent", sa.Numeric(precision=7, scale=4), nullable=True),
        sa.ForeignKeyConstraint(["contract_id"], ["contracts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("contract_id", "seq"),
        sa.UniqueConstraint("contract_id", "name", name="uq_contract_milestones_name"),
    )
    op.create_index("ix_contract_milestones_due_date", "contract_milestones", ["due_date"])
    op.create_table(
        "sales_order_shipment_lines",
        sa.Column("shipment_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("item_code", sa.String(length=40), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("serial_numbers", sa.JSON(), nullable=False),
        sa.Column("issue", sa.String(length=20), nullable=True),
        sa.Column("issue_quantity", sa.Numeric(precision=18, scale=4), nullable=True),
        sa.ForeignKeyConstraint(["shipment_id"], ["sales_order_shipments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("shipment_id", "position"),
    )


def downgrade() -> None:
    op.drop_table("sales_order_shipment_lines")
    op.drop_table("contract_milestones")
    op.drop_table("sales_order_shipments")
    op.drop_table("sales_order_lines")
    op.drop_table("contracts")
    op.drop_table("sales_orders")
    op.drop_table("erp_order_events_waiting")
