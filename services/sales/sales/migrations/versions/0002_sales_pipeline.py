"""The sales pipeline: read models of customers, contacts, people, departments and regions;
processes and stages, opportunities, activities, expenses, targets, master lists and history.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 07:16:03.474272
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "catch_ups",
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source"),
    )
    op.create_table(
        "code_counters",
        sa.Column("prefix", sa.String(length=8), nullable=False),
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("prefix", "year"),
    )
    op.create_table(
        "competitors",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("strengths", sa.Text(), nullable=True),
        sa.Column("weaknesses", sa.Text(), nullable=True),
        sa.Column("main_products", sa.Text(), nullable=True),
        sa.Column("price_level", sa.String(length=20), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "contacts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=True),
        sa.Column("mobile", sa.String(length=20), nullable=True),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column("source_version", sa.Integer(), nullable=False),
        sa.Column("source_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_contacts_customer_id", "contacts", ["customer_id"])

    op.create_table(
        "customers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("short_name", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("category", sa.String(length=10), nullable=True),
        sa.Column("region", sa.String(length=100), nullable=True),
        sa.Column("owner_id", sa.String(length=64), nullable=True),
        sa.Column("department_id", sa.String(length=64), nullable=True),
        sa.Column("erp_code", sa.String(length=40), nullable=True),
        sa.Column("merged_into_id", sa.Uuid(), nullable=True),
        sa.Column("source_version", sa.Integer(), nullable=False),
        sa.Column("source_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_customers_category", "customers", ["category"])
    op.create_index("ix_customers_code", "customers", ["code"])
    op.create_index("ix_customers_department_id", "customers", ["department_id"])
    op.create_index("ix_customers_name", "customers", ["name"])
    op.create_index("ix_customers_owner_id", "customers", ["owner_id"])
    op.create_index("ix_customers_region", "customers", ["region"])

    op.create_table(
        "departments",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("parent_id", sa.String(length=64), nullable=True),
        sa.Column("manager_id", sa.String(length=64), nullable=True),
        sa.Column("path", sa.String(length=1000), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("source_version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_departments_parent_id", "departments", ["parent_id"])

    op.create_table(
        "expense_categories",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "history",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("entity_type", sa.String(length=20), nullable=False),
        sa.Column("entity_id", sa.String(length=36), nullable=False),
        sa.Column("change", sa.String(length=30), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=True),
        sa.Column("field", sa.String(length=50), nullable=True),
        sa.Column("old", sa.JSON(), nullable=True),
        sa.Column("new", sa.JSON(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_history_entity_at", "history", ["entity_type", "entity_id", "at", "id"])

    op.create_table(
        "loss_reasons",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "people",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("department_id", sa.String(length=64), nullable=True),
        sa.Column("mobile", sa.String(length=20), nullable=True),
        sa.Column("email", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("source_version", sa.Integer(), nullable=False),
        sa.Column("source_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_people_department_id", "people", ["department_id"])
    op.create_index("ix_people_user_id", "people", ["user_id"])

    op.create_table(
        "regions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("parent_id", sa.String(length=64), nullable=True),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("source_version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_regions_path", "regions", ["path"])

    op.create_table(
        "sales_processes",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("allow_skip", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("superseded_by", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["superseded_by"], ["sales_processes.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code", "revision", name="uq_sales_processes_revision"),
    )
    op.create_table(
        "sales_targets",
        sa.Column("subject_type", sa.String(length=12), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("amount", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "subject_type in ('person', 'department')", name="ck_sales_targets_subject_type"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "subject_type", "subject_id", "period", name="uq_sales_targets_subject"
        ),
    )
    op.create_index("ix_sales_targets_period", "sales_targets", ["period"])

    op.create_table(
        "opportunities",
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("department_id", sa.String(length=64), nullable=True),
        sa.Column("region", sa.String(length=100), nullable=True),
        sa.Column("category", sa.String(length=10), nullable=True),
        sa.Column("process_id", sa.Uuid(), nullable=False),
        sa.Column("stage_code", sa.String(length=32), nullable=False),
        sa.Column("probability", sa.Integer(), nullable=False),
        sa.Column("probability_override", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("expected_amount", sa.Numeric(precision=18, scale=2), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("expected_close_date", sa.Date(), nullable=True),
        sa.Column("source_campaign_id", sa.String(length=64), nullable=True),
        sa.Column("source_lead_id", sa.String(length=64), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("loss_reason", sa.String(length=32), nullable=True),
        sa.Column("won_competitor_id", sa.Uuid(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_activity_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status in ('open', 'won', 'lost', 'abandoned')", name="ck_opportunities_status"
        ),
        sa.CheckConstraint("probability between 0 and 100", name="ck_opportunities_probability"),
        sa.CheckConstraint(
            "probability_override is null or probability_override between 0 and 100",
            name="ck_opportunities_probability_override",
        ),
        sa.ForeignKeyConstraint(
            ["loss_reason"],
            ["loss_reasons.code"],
        ),
        sa.ForeignKeyConstraint(
            ["process_id"],
            ["sales_processes.id"],
        ),
        sa.ForeignKeyConstraint(
            ["won_competitor_id"],
            ["competitors.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_index("ix_opportunities_category", "opportunities", ["category"])
    op.create_index("ix_opportunities_created_at_id", "opportunities", ["created_at", "id"])
    op.create_index("ix_opportunities_customer_id", "opportunities", ["customer_id"])
    op.create_index(
        "ix_opportunities_department_status", "opportunities", ["department_id", "status"]
    )
    op.create_index("ix_opportunities_owner_status", "opportunities", ["owner_id", "status"])
    op.create_index("ix_opportunities_region", "opportunities", ["region"])
    op.create_index(
        "ix_opportunities_status_close_date", "opportunities", ["status", "expected_close_date"]
    )
    op.create_index(
        "ix_opportunities_status_last_activity", "opportunities", ["status", "last_activity_at"]
    )

    op.create_table(
        "sales_stages",
        sa.Column("process_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("probability", sa.Integer(), nullable=False),
        sa.Column("required_fields", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.CheckConstraint("outcome in ('open', 'won', 'lost')", name="ck_sales_stages_outcome"),
        sa.CheckConstraint("probability between 0 and 100", name="ck_sales_stages_probability"),
        sa.ForeignKeyConstraint(["process_id"], ["sales_processes.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("process_id", "code"),
        sa.UniqueConstraint("process_id", "position", name="uq_sales_stages_position"),
    )
    op.create_table(
        "activities",
        sa.Column("type", sa.String(length=10), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("contact_id", sa.Uuid(), nullable=True),
        sa.Column("opportunity_id", sa.Uuid(), nullable=True),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("department_id", sa.String(length=64), nullable=True),
        sa.Column("region", sa.String(length=100), nullable=True),
        sa.Column("category", sa.String(length=10), nullable=True),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_minutes", sa.Integer(), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("next_step", sa.Text(), nullable=True),
        sa.Column("checkin_lat", sa.Numeric(precision=9, scale=6), nullable=True),
        sa.Column("checkin_lng", sa.Numeric(precision=9, scale=6), nullable=True),
        sa.Column("checkin_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("participants", sa.JSON(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status in ('planned', 'done', 'cancelled')", name="ck_activities_status"
        ),
        sa.CheckConstraint(
            "type in ('call', 'visit', 'meeting', 'email', 'demo', 'other')",
            name="ck_activities_type",
        ),
        sa.ForeignKeyConstraint(["opportunity_id"], ["opportunities.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_activities_category", "activities", ["category"])
    op.create_index("ix_activities_created_at_id", "activities", ["created_at", "id"])
    op.create_index("ix_activities_customer_id", "activities", ["customer_id"])
    op.create_index("ix_activities_department_start", "activities", ["department_id", "start_at"])
    op.create_index("ix_activities_opportunity_id", "activities", ["opportunity_id"])
    op.create_index("ix_activities_owner_start", "activities", ["owner_id", "start_at"])
    op.create_index("ix_activities_region", "activities", ["region"])
    op.create_index("ix_activities_status_start", "activities", ["status", "start_at"])

    op.create_table(
        "opportunity_competitors",
        sa.Column("opportunity_id", sa.Uuid(), nullable=False),
        sa.Column("competitor_id", sa.Uuid(), nullable=False),
        sa.Column("offer", sa.Numeric(precision=18, scale=2), nullable=True),
        sa.Column("threat_level", sa.String(length=10), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "threat_level in ('low', 'medium', 'high')",
            name="ck_opportunity_competitors_threat_level",
        ),
        sa.ForeignKeyConstraint(
            ["competitor_id"],
            ["competitors.id"],
        ),
        sa.ForeignKeyConstraint(["opportunity_id"], ["opportunities.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("opportunity_id", "competitor_id"),
    )
    op.create_index(
        "ix_opportunity_competitors_competitor_id", "opportunity_competitors", ["competitor_id"]
    )

    op.create_table(
        "opportunity_contacts",
        sa.Column("opportunity_id", sa.Uuid(), nullable=False),
        sa.Column("contact_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.CheckConstraint(
            "role in ('decision_maker', 'influencer', 'user', 'purchaser')",
            name="ck_opportunity_contacts_role",
        ),
        sa.ForeignKeyConstraint(["opportunity_id"], ["opportunities.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("opportunity_id", "contact_id"),
    )
    op.create_index("ix_opportunity_contacts_contact_id", "opportunity_contacts", ["contact_id"])

    op.create_table(
        "opportunity_lines",
        sa.Column("opportunity_id", sa.Uuid(), nullable=False),
        sa.Column("line_no", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("item_name", sa.String(length=200), nullable=False),
        sa.Column("spec", sa.String(length=200), nullable=True),
        sa.Column("quantity", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("expected_price", sa.Numeric(precision=18, scale=2), nullable=True),
        sa.ForeignKeyConstraint(["opportunity_id"], ["opportunities.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("opportunity_id", "line_no"),
    )
    op.create_table(
        "stage_history",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("opportunity_id", sa.Uuid(), nullable=False),
        sa.Column("process_id", sa.Uuid(), nullable=False),
        sa.Column("stage_code", sa.String(length=32), nullable=False),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("moved_by", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["opportunity_id"], ["opportunities.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_stage_history_opportunity_entered", "stage_history", ["opportunity_id", "entered_at"]
    )
    op.create_index(
        "ix_stage_history_stage_entered",
        "stage_history",
        ["process_id", "stage_code", "entered_at"],
    )

    op.create_table(
        "expenses",
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("submitter_id", sa.String(length=64), nullable=False),
        sa.Column("department_id", sa.String(length=64), nullable=True),
        sa.Column("region", sa.String(length=100), nullable=True),
        sa.Column("category", sa.String(length=10), nullable=True),
        sa.Column("expense_category", sa.String(length=32), nullable=False),
        sa.Column("amount", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("spent_on", sa.Date(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=True),
        sa.Column("opportunity_id", sa.Uuid(), nullable=True),
        sa.Column("activity_id", sa.Uuid(), nullable=True),
        sa.Column("receipt_no", sa.String(length=64), nullable=True),
        sa.Column("remark", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status in ('submitted', 'approved', 'rejected', 'paid')", name="ck_expenses_status"
        ),
        sa.CheckConstraint("amount > 0", name="ck_expenses_amount"),
        sa.ForeignKeyConstraint(["activity_id"], ["activities.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(
            ["expense_category"],
            ["expense_categories.code"],
        ),
        sa.ForeignKeyConstraint(["opportunity_id"], ["opportunities.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_index("ix_expenses_category", "expenses", ["category"])
    op.create_index("ix_expenses_created_at_id", "expenses", ["created_at", "id"])
    op.create_index("ix_expenses_customer_id", "expenses", ["customer_id"])
    op.create_index("ix_expenses_department_spent_on", "expenses", ["department_id", "spent_on"])
    op.create_index("ix_expenses_opportunity_id", "expenses", ["opportunity_id"])
    op.create_index("ix_expenses_region", "expenses", ["region"])
    op.create_index("ix_expenses_status_spent_on", "expenses", ["status", "spent_on"])
    op.create_index("ix_expenses_submitter_status", "expenses", ["submitter_id", "status"])

    op.create_table(
        "expense_approvals",
        sa.Column("expense_id", sa.Uuid(), nullable=False),
        sa.Column("level", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("approver_person_id", sa.String(length=64), nullable=False),
        sa.Column("approver_user_id", sa.String(length=64), nullable=True),
        sa.Column("decision", sa.String(length=10), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "decision is null or decision in ('approved', 'rejected')",
            name="ck_expense_approvals_decision",
        ),
        sa.ForeignKeyConstraint(["expense_id"], ["expenses.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("expense_id", "level"),
    )
    op.create_index(
        "ix_expense_approvals_approver_decision",
        "expense_approvals",
        ["approver_person_id", "decision"],
    )


def downgrade() -> None:
    op.drop_table("expense_approvals")
    op.drop_table("expenses")
    op.drop_table("stage_history")
    op.drop_table("opportunity_lines")
    op.drop_table("opportunity_contacts")
    op.drop_table("opportunity_competitors")
    op.drop_table("activities")
    op.drop_table("sales_stages")
    op.drop_table("opportunities")
    op.drop_table("sales_targets")
    op.drop_table("sales_processes")
    op.drop_table("regions")
    op.drop_table("people")
    op.drop_table("loss_reasons")
    op.drop_table("history")
    op.drop_table("expense_categories")
    op.drop_table("departments")
    op.drop_table("customers")
    op.drop_table("contacts")
    op.drop_table("competitors")
    op.drop_table("code_counters")
    op.drop_table("catch_ups")
