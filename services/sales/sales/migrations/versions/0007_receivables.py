"""Invoices, payments, allocations and credit limits.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 10:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(precision=18, scale=2)


def upgrade() -> None:
    op.create_table(
        "invoices",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("invoice_no", sa.String(length=40), nullable=False),
        sa.Column("erp_order_no", sa.String(length=40), nullable=True),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=True),
        sa.Column("department_id", sa.String(length=64), nullable=True),
        sa.Column("region", sa.String(length=100), nullable=True),
        sa.Column("category", sa.String(length=10), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("tax_amount", MONEY, nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("allocated", MONEY, nullable=False),
        sa.Column("outstanding", MONEY, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("outstanding >= 0", name="ck_invoices_outstanding"),
        sa.CheckConstraint("allocated >= 0", name="ck_invoices_allocated"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("invoice_no"),
    )
    op.create_index("ix_invoices_erp_order_no", "invoices", ["erp_order_no"])
    op.create_index("ix_invoices_region", "invoices", ["region"])
    op.create_index("ix_invoices_category", "invoices", ["category"])
    op.create_index("ix_invoices_customer_currency", "invoices", ["customer_id", "currency"])
    op.create_index("ix_invoices_owner_due_date", "invoices", ["owner_id", "due_date"])
    op.create_index("ix_invoices_department_due_date", "invoices", ["department_id", "due_date"])
    op.create_index("ix_invoices_due_date", "invoices", ["due_date"])
    op.create_index("ix_invoices_issued_at_id", "invoices", ["issued_at", "id"])

    op.create_table(
        "payments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("payment_no", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=True),
        sa.Column("department_id", sa.String(length=64), nullable=True),
        sa.Column("region", sa.String(length=100), nullable=True),
        sa.Column("category", sa.String(length=10), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("allocated", MONEY, nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount > 0", name="ck_payments_amount"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("payment_no"),
    )
    for column in ("customer_id", "owner_id", "department_id", "region", "category"):
        op.create_index(f"ix_payments_{column}", "payments", [column])
    op.create_index("ix_payments_received_at_id", "payments", ["received_at", "id"])

    op.create_table(
        "payment_allocations",
        sa.Column("payment_no", sa.String(length=40), nullable=False),
        sa.Column("invoice_no", sa.String(length=40), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("applied", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=True),
        sa.Column("waiting_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("amount > 0", name="ck_payment_allocations_amount"),
        sa.PrimaryKeyConstraint("payment_no", "invoice_no"),
    )
    op.create_index("ix_payment_allocations_invoice_no", "payment_allocations", ["invoice_no"])
    op.create_index(
        "ix_payment_allocations_applied_waiting",
        "payment_allocations",
        ["applied", "waiting_since"],
    )

    op.create_table(
        "credit_limits",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("credit_limit", MONEY, nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("credit_limit >= 0", name="ck_credit_limits_credit_limit"),
        sa.PrimaryKeyConstraint("customer_id"),
    )

    op.create_table(
        "invoice_overdue_notices",
        sa.Column("invoice_no", sa.String(length=40), nullable=False),
        sa.Column("threshold", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("days_overdue", sa.Integer(), nullable=False),
        sa.Column("noticed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("invoice_no", "threshold"),
    )


def downgrade() -> None:
    op.drop_table("invoice_overdue_notices")
    op.drop_table("credit_limits")
    op.drop_index("ix_payment_allocations_applied_waiting", table_name="payment_allocations")
    op.drop_index("ix_payment_allocations_invoice_no", table_name="payment_allocations")
    op.drop_table("payment_allocations")
    op.drop_index("ix_payments_received_at_id", table_name="payments")
    for column in ("customer_id", "owner_id", "department_id", "region", "category"):
        op.drop_index(f"ix_payments_{column}", table_name="payments")
    op.drop_table("payments")
    for name in (
        "ix_invoices_issued_at_id",
        "ix_invoices_due_date",
        "ix_invoices_department_due_date",
        "ix_invoices_owner_due_date",
        "ix_invoices_customer_currency",
        "ix_invoices_category",
        "ix_invoices_region",
        "ix_invoices_erp_order_no",
    ):
        op.drop_index(name, table_name="invoices")
    op.drop_table("invoices")
