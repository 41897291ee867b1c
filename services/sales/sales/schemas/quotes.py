"""What the quotation use cases accept and return (报价单). Amounts, quantities, percents and
rates travel as decimal strings; the domain (``sales.domain.quotes``) checks their values."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields
from marshmallow.validate import Length, OneOf

from crm_common.schemas import CommaList, StrictSchema, Text, UtcDateTime, describe
from sales.domain.quotes import LABELS, QuoteStatus
from sales.schemas.activities import PageQuerySchema
from sales.schemas.common import RecordSchema, decimal_string

STATUSES = tuple(s.value for s in QuoteStatus)
STATUS_HELP = ", ".join(f"{status.value} {label}" for status, label in LABELS.items())
QUOTE_SORTS = ("created_at", "-created_at", "valid_until", "-valid_until")


def number_field(description: str, example: str, **kwargs: Any) -> fields.Raw:
    """A decimal given as a string (or a whole number); floats are refused by the domain."""
    return fields.Raw(metadata={**describe(description, example), "type": "string"}, **kwargs)


# -- input -----------------------------------------------------------------------------------
class QuoteLineInputSchema(StrictSchema):
    item_code = Text(required=True, validate=Length(min=1, max=40), metadata=describe("存货编码"))
    quantity = number_field("Quantity", "10", required=True)
    unit_price = number_field(
        "Unit price in the quote's price basis; pricing chooses it unless given",
        "48.00",
        allow_none=True,
    )
    discount_percent = number_field("Line discount in percent", "5", allow_none=True)
    discount_amount = number_field("Line discount as an amount", "20.00", allow_none=True)
    tax_rate = number_field(
        "VAT rate: 0.13, 0.09, 0.06 or 0; the item's rate from the ERP when it is one of "
        "those, else 0.13",
        "0.13",
        allow_none=True,
    )
    remark = Text(allow_none=True, validate=Length(max=500))


class QuoteEditSchema(StrictSchema):
    """What a draft may change."""

    title = Text(allow_none=True, validate=Length(max=200))
    contact_id = fields.UUID(allow_none=True, metadata=describe("A contact of the customer"))
    prices_include_tax = fields.Boolean(metadata=describe("含税价: unit prices include VAT"))
    discount_percent = number_field("Document discount in percent", "2", allow_none=True)
    discount_amount = number_field("Document discount as an amount", "100.00", allow_none=True)
    valid_until = fields.Date(metadata=describe("有效期至 (30 days from today unless given)"))
    terms = Text(allow_none=True, validate=Length(max=4000), metadata=describe("条款"))
    remark = Text(allow_none=True, validate=Length(max=2000))
    lines = fields.List(
        fields.Nested(QuoteLineInputSchema),
        validate=Length(min=1, max=500),
        metadata=describe("Every line of the quote (replaces them all)"),
    )


class QuoteInputSchema(QuoteEditSchema):
    customer_id = fields.UUID(
        allow_none=True, metadata=describe("A customer you can see; the opportunity's if left out")
    )
    opportunity_id = fields.UUID(allow_none=True, metadata=describe("An opportunity you can see"))
    currency = Text(allow_none=True, validate=Length(equal=3), metadata=describe("CNY default"))
    lines = fields.List(
        fields.Nested(QuoteLineInputSchema),
        required=True,
        validate=Length(min=1, max=500),
        metadata=describe("The quote's lines"),
    )


class QuoteDecisionSchema(StrictSchema):
    comment = Text(allow_none=True, validate=Length(max=2000), metadata=describe("Why"))
    version = fields.Integer(allow_none=True, metadata=describe("The version you read"))


class QuoteDeclineSchema(StrictSchema):
    reason = Text(required=True, validate=Length(min=1, max=2000), metadata=describe("原因"))
    version = fields.Integer(allow_none=True)


class QuoteAcceptSchema(StrictSchema):
    create_order = fields.Boolean(load_default=False, metadata=describe("Make the order too"))
    order = fields.Dict(
        allow_none=True,
        metadata=describe("order_date, requested_delivery_date, remark of the order made"),
    )
    version = fields.Integer(allow_none=True)


class QuoteRevisionSchema(StrictSchema):
    valid_until = fields.Date(allow_none=True, metadata=describe("The new version's validity"))
    version = fields.Integer(allow_none=True)


class QuoteActionSchema(StrictSchema):
    version = fields.Integer(allow_none=True, metadata=describe("The version you read"))


class QuoteQuerySchema(PageQuerySchema):
    q = Text(
        allow_none=True,
        validate=Length(max=100),
        metadata=describe("Part of the code, the title or the customer's name"),
    )
    status = CommaList(Text(validate=OneOf(STATUSES)), metadata=describe(STATUS_HELP))
    customer_id = fields.UUID(allow_none=True)
    opportunity_id = fields.UUID(allow_none=True)
    owner_id = Text(allow_none=True, validate=Length(max=64))
    awaiting_me = fields.Boolean(
        allow_none=True, metadata=describe("Only the quotes waiting for my approval")
    )
    sort = Text(load_default="-created_at", validate=OneOf(QUOTE_SORTS))


# -- output ----------------------------------------------------------------------------------
class QuoteLineSchema(Schema):
    line_no = fields.Integer()
    item_code = fields.String()
    item_name = fields.String()
    spec = fields.String(allow_none=True)
    unit = fields.String(allow_none=True)
    quantity = decimal_string("Quantity", "10")
    unit_price = decimal_string("Unit price", "48.00")
    reference_unit_price = decimal_string("The price pricing chose", "50.00", allow_none=True)
    price_source = fields.String(allow_none=True, metadata=describe("price_list, list_price"))
    price_list_code = fields.String(allow_none=True)
    discount_kind = fields.String(metadata=describe("percent or amount"))
    discount_value = decimal_string("The line discount as given", "5")
    tax_rate = decimal_string("VAT rate", "0.13")
    amount = decimal_string("Quantity × unit price", "480.00")
    line_discount = decimal_string("The line's own discount", "24.00")
    document_discount = decimal_string("The line's share of the document discount", "0.00")
    net = decimal_string("不含税金额", "456.00")
    tax = decimal_string("税额", "59.28")
    gross = decimal_string("价税合计", "515.28")
    remark = fields.String(allow_none=True)


class QuoteApprovalSchema(Schema):
    level = fields.Integer()
    department_id = fields.String()
    approver_person_id = fields.String()
    approver_user_id = fields.String(allow_none=True)
    decision = fields.String(allow_none=True)
    decided_at = UtcDateTime(allow_none=True)
    comment = fields.String(allow_none=True)


class QuoteSchema(RecordSchema):
    code = fields.String(metadata=describe("QT-2026-000001"))
    version_no = fields.Integer(metadata=describe("The quote's current version (revision)"))
    status = fields.String(metadata=describe(STATUS_HELP))
    status_label = fields.String()
    title = fields.String(allow_none=True)
    customer_id = fields.UUID()
    customer_code = fields.String(allow_none=True)
    customer_name = fields.String(allow_none=True)
    contact_id = fields.UUID(allow_none=True)
    opportunity_id = fields.UUID(allow_none=True)
    owner_id = fields.String()
    department_id = fields.String(allow_none=True)
    region = fields.String(allow_none=True)
    category = fields.String(allow_none=True)
    currency = fields.String()
    prices_include_tax = fields.Boolean()
    discount_kind = fields.String()
    discount_value = decimal_string("The document discount as given", "2")
    valid_until = fields.Date()
    terms = fields.String(allow_none=True)
    remark = fields.String(allow_none=True)
    amount = decimal_string("Sum of quantity × unit price", "10000.00")
    line_discount = decimal_string("Sum of line discounts", "500.00")
    document_discount = decimal_string("Document discount", "190.00")
    net = decimal_string("不含税合计", "9310.00")
    tax = decimal_string("税额合计", "1210.30")
    gross = decimal_string("价税合计", "10520.30")
    reference_amount = decimal_string("The lines at the prices pricing chose", "10000.00")
    effective_discount_percent = decimal_string("Discount below the reference amount", "6.90")
    needs_approval = fields.Boolean(
        metadata=describe(
            "The current version was submitted beyond its submitter's discount authority"
        )
    )
    submitted_at = UtcDateTime(allow_none=True)
    approved_at = UtcDateTime(allow_none=True)
    sent_at = UtcDateTime(allow_none=True)
    closed_at = UtcDateTime(allow_none=True)
    decline_reason = fields.String(allow_none=True)
    order_id = fields.UUID(allow_none=True)
    created_by = fields.String(allow_none=True)
    lines = fields.List(fields.Nested(QuoteLineSchema))
    approvals = fields.List(fields.Nested(QuoteApprovalSchema))
    waiting_for = fields.Nested(QuoteApprovalSchema, allow_none=True)


class QuoteVersionSchema(Schema):
    quote_id = fields.UUID()
    version_no = fields.Integer()
    status = fields.String()
    replaced_at = UtcDateTime(allow_none=True)
    replaced_by = fields.String(allow_none=True)
    quote = fields.Nested(QuoteSchema)


class QuoteAcceptanceSchema(Schema):
    quote = fields.Nested(QuoteSchema)
    opportunity_stage = fields.String(
        allow_none=True, metadata=describe("The stage the opportunity moved to, if it moved")
    )
    opportunity_note = fields.String(allow_none=True)
    order = fields.Dict(allow_none=True, metadata=describe("The order made, as orders show it"))


PUBLIC_SCHEMAS: dict[str, type[Schema]] = {
    # a nested schema comes before the schemas holding it
    "QuoteLine": QuoteLineSchema,
    "QuoteApproval": QuoteApprovalSchema,
    "Quote": QuoteSchema,
    "QuoteVersion": QuoteVersionSchema,
    "QuoteAcceptance": QuoteAcceptanceSchema,
    "QuoteLineInput": QuoteLineInputSchema,
    "QuoteInput": QuoteInputSchema,
    "QuoteEditInput": QuoteEditSchema,
    "QuoteDecisionInput": QuoteDecisionSchema,
    "QuoteDeclineInput": QuoteDeclineSchema,
    "QuoteAcceptInput": QuoteAcceptSchema,
    "QuoteRevisionInput": QuoteRevisionSchema,
    "QuoteActionInput": QuoteActionSchema,
    "QuoteQuery": QuoteQuerySchema,
}
