"""What the expense use cases accept and return: submitting, deciding and paying expenses
(费用), their categories, lists and totals. Amounts travel as decimal strings."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validates_schema
from marshmallow.validate import Length, OneOf, Regexp

from crm_common.schemas import CommaList, StrictSchema, Text, UtcDateTime, describe
from sales.domain.expenses import TOTAL_DIMENSIONS, Decision, ExpenseStatus
from sales.schemas.activities import PageQuerySchema
from sales.schemas.common import RecordSchema, decimal_string

STATUSES = tuple(s.value for s in ExpenseStatus)
DECISIONS = tuple(d.value for d in Decision)
EXPENSE_SORTS = ("created_at", "-created_at", "spent_on", "-spent_on")
STATUS_HELP = "submitted 待审批, approved 已批准, rejected 已驳回, paid 已支付"
CATEGORY_CODE = Regexp(r"^[a-z][a-z0-9_]{0,31}$", error="must be lower-case letters, digits, _")


def amount_field(
    description: str = 'A decimal string, e.g. "1280.00"', example: str = "1280.00", **kwargs: Any
) -> fields.Raw:
    """An amount as a decimal string (or a whole number), checked by ``sales.domain.money``."""
    return fields.Raw(metadata={**describe(description, example), "type": "string"}, **kwargs)


def money_text(description: str = "") -> fields.Decimal:
    return decimal_string(description or "Amount", places=2)


# -- input -----------------------------------------------------------------------------------
class ExpenseInputSchema(StrictSchema):
    expense_category = Text(
        required=True, metadata=describe("A category code from /api/expenses/categories")
    )
    amount = amount_field(required=True)
    currency = Text(allow_none=True, metadata=describe("ISO 4217; CNY if left out", "CNY"))
    spent_on = fields.Date(required=True, metadata=describe("The day the money was spent"))
    customer_id = fields.UUID(allow_none=True, metadata=describe("A customer you can see"))
    opportunity_id = fields.UUID(
        allow_none=True, metadata=describe("An opportunity you can see (its customer's)")
    )
    activity_id = fields.UUID(
        allow_none=True, metadata=describe("An activity you can see (its customer's)")
    )
    receipt_no = Text(allow_none=True, validate=Length(max=64), metadata=describe("票据号"))
    remark = Text(allow_none=True, validate=Length(max=2000))


class ExpenseDecisionSchema(StrictSchema):
    comment = Text(
        allow_none=True,
        validate=Length(max=2000),
        metadata=describe("Why; required to reject"),
    )


class ExpenseCategoryInputSchema(StrictSchema):
    code = Text(required=True, validate=CATEGORY_CODE, metadata=describe("Code", "exhibition"))
    name = Text(required=True, validate=Length(min=1, max=100), metadata=describe("名称"))
    active = fields.Boolean(load_default=True)


class ExpenseCategoryUpdateSchema(StrictSchema):
    name = Text(validate=Length(min=1, max=100))
    active = fields.Boolean()


# -- output ----------------------------------------------------------------------------------
class ExpenseApprovalSchema(Schema):
    level = fields.Integer(metadata=describe("1: the submitter's manager; 2: the level above"))
    approver_person_id = fields.String()
    approver_user_id = fields.String(allow_none=True)
    decision = fields.String(allow_none=True, validate=OneOf(DECISIONS))
    decided_at = UtcDateTime(allow_none=True)
    comment = fields.String(allow_none=True)


class ExpenseSchema(RecordSchema):
    code = fields.String(metadata=describe("EXP + year + 6-digit sequence", "EXP-2026-000001"))
    submitter_id = fields.String(metadata=describe("The submitter's user id"))
    department_id = fields.String(allow_none=True)
    region = fields.String(allow_none=True, metadata=describe("The customer's, for scoping"))
    category = fields.String(allow_none=True, metadata=describe("The customer's, for scoping"))
    expense_category = fields.String()
    amount = money_text()
    currency = fields.String()
    spent_on = fields.Date()
    customer_id = fields.UUID(allow_none=True)
    opportunity_id = fields.UUID(allow_none=True)
    activity_id = fields.UUID(allow_none=True)
    receipt_no = fields.String(allow_none=True)
    remark = fields.String(allow_none=True)
    status = fields.String(validate=OneOf(STATUSES), metadata=describe(STATUS_HELP))
    paid_at = UtcDateTime(allow_none=True)
    approvals = fields.List(fields.Nested(ExpenseApprovalSchema))
    waiting_for = fields.Nested(
        ExpenseApprovalSchema,
        allow_none=True,
        metadata=describe("The level whose decision is awaited; null once decided"),
    )


class ExpensePageSchema(Schema):
    items = fields.List(fields.Nested(ExpenseSchema))
    next_cursor = fields.String(allow_none=True)


class ExpenseCategorySchema(Schema):
    code = fields.String()
    name = fields.String()
    active = fields.Boolean()


class ExpenseCategoryListSchema(Schema):
    items = fields.List(fields.Nested(ExpenseCategorySchema))


class ExpenseTotalSchema(Schema):
    key = fields.Dict(
        keys=fields.String(),
        values=fields.String(allow_none=True),
        metadata=describe("The value of each grouping dimension (null: none)"),
    )
    currency = fields.String()
    amount = money_text()
    count = fields.Integer()


class ExpenseTotalsSchema(Schema):
    by = fields.List(fields.String())
    statuses = fields.List(fields.String())
    items = fields.List(fields.Nested(ExpenseTotalSchema))


class CostOfSaleSchema(Schema):
    customer_id = fields.UUID(allow_none=True)
    opportunity_id = fields.UUID(allow_none=True)
    totals = fields.List(
        fields.Nested(ExpenseTotalSchema),
        metadata=describe("Approved and paid expenses per category and currency"),
    )
    total = fields.List(
        fields.Nested(ExpenseTotalSchema), metadata=describe("One line per currency")
    )


# -- queries ---------------------------------------------------------------------------------
class ExpenseFilterSchema(StrictSchema):
    status = CommaList(Text(validate=OneOf(STATUSES)), metadata=describe(STATUS_HELP))
    expense_category = CommaList(Text(), metadata=describe("One or more category codes"))
    submitter_id = Text(allow_none=True, metadata=describe("The submitter's user id"))
    department_id = Text(allow_none=True)
    customer_id = fields.UUID(allow_none=True)
    opportunity_id = fields.UUID(allow_none=True)
    activity_id = fields.UUID(allow_none=True)
    spent_from = fields.Date(allow_none=True, metadata=describe("Spent on or after this day"))
    spent_to = fields.Date(allow_none=True, metadata=describe("Spent on or before this day"))

    @validates_schema
    def range_is_ordered(self, data: dict[str, Any], **kwargs: Any) -> None:
        start, end = data.get("spent_from"), data.get("spent_to")
        if start is not None and end is not None and end < start:
            raise ValidationError("must not be before spent_from", "spent_to")


class ExpenseQuerySchema(ExpenseFilterSchema, PageQuerySchema):
    """A page of expenses; ``mine`` and ``awaiting_me`` narrow it to the caller's."""

    q = Text(
        allow_none=True,
        validate=Length(max=100),
        metadata=describe("Part of the code, receipt number or remark"),
    )
    mine = fields.Boolean(load_default=False, metadata=describe("true: only those I submitted"))
    awaiting_me = fields.Boolean(
        load_default=False,
        metadata=describe("true: only those waiting for my decision (待我审批)"),
    )
    sort = fields.String(load_default="-created_at", validate=OneOf(EXPENSE_SORTS))


class ExpenseTotalsQuerySchema(ExpenseFilterSchema):
    """Sums of the expenses matching the filters, grouped by ``by``; approved and paid
    expenses (the cost of sale) unless ``status`` says otherwise."""

    by = CommaList(
        Text(validate=OneOf(TOTAL_DIMENSIONS)),
        load_default=lambda: ["submitter_id", "month"],
        validate=Length(max=3),
        metadata=describe(
            "Up to three of " + ", ".join(TOTAL_DIMENSIONS) + "; submitter_id,month by default"
        ),
    )


class CostOfSaleQuerySchema(StrictSchema):
    customer_id = fields.UUID(allow_none=True)
    opportunity_id = fields.UUID(allow_none=True)

    @validates_schema
    def one_subject(self, data: dict[str, Any], **kwargs: Any) -> None:
        if (data.get("customer_id") is None) == (data.get("opportunity_id") is None):
            raise ValidationError("give customer_id or opportunity_id", "customer_id")


class ExpenseCategoryQuerySchema(StrictSchema):
    include_inactive = fields.Boolean(load_default=False)


PUBLIC_SCHEMAS: dict[str, type[Schema]] = {
    # a nested schema comes before the schemas holding it
    "ExpenseApproval": ExpenseApprovalSchema,
    "Expense": ExpenseSchema,
    "ExpenseTotal": ExpenseTotalSchema,
    "ExpenseCategory": ExpenseCategorySchema,
    "ExpenseInput": ExpenseInputSchema,
    "ExpenseDecisionInput": ExpenseDecisionSchema,
    "ExpensePage": ExpensePageSchema,
    "ExpenseQuery": ExpenseQuerySchema,
    "ExpenseTotalsQuery": ExpenseTotalsQuerySchema,
    "ExpenseTotals": ExpenseTotalsSchema,
    "CostOfSaleQuery": CostOfSaleQuerySchema,
    "CostOfSale": CostOfSaleSchema,
    "ExpenseCategoryInput": ExpenseCategoryInputSchema,
    "ExpenseCategoryEditInput": ExpenseCategoryUpdateSchema,
    "ExpenseCategoryList": ExpenseCategoryListSchema,
    "ExpenseCategoryQuery": ExpenseCategoryQuerySchema,
}
