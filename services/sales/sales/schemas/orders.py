"""What the sales order (销售订单) and contract (合同) use cases accept and return. Amounts,
prices, quantities and tax rates travel as decimal strings (``"1280.00"``, ``"0.13"``)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validates_schema
from marshmallow.validate import Length, OneOf, Range

from crm_common.schemas import CommaList, StrictSchema, Text, UtcDateTime, describe
from sales.domain.contracts import ContractStatus
from sales.domain.orders import OrderStatus
from sales.schemas.activities import PageQuerySchema
from sales.schemas.common import RecordSchema, decimal_string
from sales.schemas.expenses import amount_field

ORDER_STATUSES = tuple(s.value for s in OrderStatus)
CONTRACT_STATUSES = tuple(s.value for s in ContractStatus)
ORDER_STATUS_HELP = (
    "draft 草稿, pending_approval 待审批, confirmed 已确认, erp_created ERP已接单, "
    "rejected ERP已拒绝, partially_shipped 部分发货, shipped 已发货, cancel_requested 申请取消, "
    "cancelled 已取消"
)
CONTRACT_STATUS_HELP = (
    "draft 草稿, signed 已签订, active 执行中, completed 已完成, terminated 已终止, expired 已到期"
)
ORDER_SORTS = ("created_at", "-created_at", "order_date", "-order_date")
CONTRACT_SORTS = ("created_at", "-created_at", "end_date", "-end_date")
DISCOUNT_KINDS = ("percent", "amount")


def decimal_input(description: str, example: str, **kwargs: Any) -> fields.Raw:
    """A decimal as a string (or a whole number); the domain checks its value."""
    return amount_field(description, example, **kwargs)


# -- orders: input ---------------------------------------------------------------------------
class DiscountInputSchema(StrictSchema):
    kind = Text(
        required=True,
        validate=OneOf(DISCOUNT_KINDS),
        metadata=describe("percent: value percent off; amount: value off", "percent"),
    )
    value = decimal_input("The percent or the amount", "5", required=True)


class OrderLineInputSchema(StrictSchema):
    item_code = Text(required=True, validate=Length(max=40), metadata=describe("存货编码"))
    item_name = Text(required=True, validate=Length(max=200), metadata=describe("存货名称"))
    spec = Text(allow_none=True, validate=Length(max=200), metadata=describe("规格型号"))
    unit = Text(required=True, validate=Length(max=20), metadata=describe("计量单位", "台"))
    quantity = decimal_input("Quantity, more than zero", "10", required=True)
    unit_price = decimal_input(
        "Unit price before discounts, in the order's price basis", "1280.00", required=True
    )
    discount = fields.Nested(DiscountInputSchema, allow_none=True)
    tax_rate = decimal_input("VAT as a fraction: 0.13 (default), 0.09, 0.06 or 0", "0.13")


class OrderInputSchema(StrictSchema):
    customer_id = fields.UUID(required=True, metadata=describe("A customer you can see"))
    opportunity_id = fields.UUID(
        allow_none=True, metadata=describe("An opportunity of the customer you can see")
    )
    owner_id = Text(allow_none=True, metadata=describe("The salesperson's user id; you if omitted"))
    order_date = fields.Date(allow_none=True, metadata=describe("Today unless given"))
    requested_delivery_date = fields.Date(allow_none=True, metadata=describe("要求交货日期"))
    currency = Text(allow_none=True, metadata=describe("ISO 4217; CNY if left out", "CNY"))
    prices_include_tax = fields.Boolean(
        load_default=False, metadata=describe("true: unit prices include VAT (含税)")
    )
    document_discount = fields.Nested(DiscountInputSchema, allow_none=True)
    lines = fields.List(
        fields.Nested(OrderLineInputSchema), required=True, validate=Length(min=1, max=500)
    )
    remark = Text(allow_none=True, validate=Length(max=2000))


class OrderUpdateSchema(StrictSchema):
    """What may change while the order is a draft; lines given replace every line."""

    opportunity_id = fields.UUID(allow_none=True)
    order_date = fields.Date()
    requested_delivery_date = fields.Date(allow_none=True)
    currency = Text(allow_none=True)
    prices_include_tax = fields.Boolean()
    document_discount = fields.Nested(DiscountInputSchema, allow_none=True)
    lines = fields.List(fields.Nested(OrderLineInputSchema), validate=Length(min=1, max=500))
    remark = Text(allow_none=True, validate=Length(max=2000))


class OrderFromQuoteSchema(StrictSchema):
    order_date = fields.Date(allow_none=True, metadata=describe("Today unless given"))
    requested_delivery_date = fields.Date(allow_none=True, metadata=describe("要求交货日期"))
    remark = Text(allow_none=True, validate=Length(max=2000))


class OrderDecisionSchema(StrictSchema):
    comment = Text(allow_none=True, validate=Length(max=2000), metadata=describe("Why"))


class OrderCancelSchema(StrictSchema):
    reason = Text(required=True, validate=Length(max=2000), metadata=describe("取消原因"))


# -- orders: output --------------------------------------------------------------------------
class OrderLineSchema(Schema):
    line_no = fields.Integer()
    item_code = fields.String()
    item_name = fields.String()
    spec = fields.String(allow_none=True)
    unit = fields.String(allow_none=True)
    quantity = decimal_string("Quantity")
    unit_price = decimal_string("Unit price before discounts")
    discount_kind = fields.String(allow_none=True)
    discount_value = decimal_string("The line's own discount as entered", allow_none=True)
    tax_rate = decimal_string("VAT as a fraction")
    amount = decimal_string("Quantity × unit price", places=2)
    discount = decimal_string("The line's discount and its share of the order's", places=2)
    net = decimal_string("不含税金额", places=2)
    tax = decimal_string("税额", places=2)
    gross = decimal_string("价税合计", places=2)
    shipped = decimal_string("Shipped so far")


class OrderSchema(RecordSchema):
    code = fields.String(metadata=describe("SO + year + 6-digit sequence", "SO-2026-000123"))
    origin = fields.String(metadata=describe("crm: entered in the CRM; erp: entered in the ERP"))
    status = fields.String(validate=OneOf(ORDER_STATUSES), metadata=describe(ORDER_STATUS_HELP))
    customer_id = fields.UUID()
    customer_code = fields.String(allow_none=True)
    customer_name = fields.String(allow_none=True)
    opportunity_id = fields.UUID(allow_none=True)
    quote_id = fields.UUID(allow_none=True)
    quote_version_no = fields.Integer(allow_none=True)
    owner_id = fields.String()
    department_id = fields.String(allow_none=True)
    region = fields.String(allow_none=True)
    category = fields.String(allow_none=True)
    order_date = fields.Date()
    requested_delivery_date = fields.Date(allow_none=True)
    currency = fields.String()
    prices_include_tax = fields.Boolean()
    document_discount_kind = fields.String(allow_none=True)
    document_discount_value = decimal_string("The order's discount as entered", allow_none=True)
    amount = decimal_string("Sum of the lines' amounts before discounts", places=2)
    discount = decimal_string("Every discount", places=2)
    net = decimal_string("不含税金额", places=2)
    tax = decimal_string("税额", places=2)
    gross = decimal_string("价税合计", places=2)
    remark = fields.String(allow_none=True)
    credit_outcome = fields.String(
        allow_none=True,
        metadata=describe(
            "within_limit, over_limit, no_limit_allowed or no_limit_needs_approval, from the "
            "credit check made on confirming"
        ),
    )
    credit_limit = decimal_string("The credit limit it was checked against", allow_none=True)
    credit_exposure = decimal_string(
        "Receivables outstanding, open orders and this order when checked", allow_none=True
    )
    approved_by = fields.String(allow_none=True)
    approved_at = UtcDateTime(allow_none=True)
    approval_comment = fields.String(allow_none=True)
    confirmed_at = UtcDateTime(allow_none=True)
    cancel_reason = fields.String(allow_none=True)
    erp_order_no = fields.String(allow_none=True)
    erp_status_at = UtcDateTime(allow_none=True)
    erp_reason = fields.String(allow_none=True, metadata=describe("The ERP's reason"))
    salesperson_code = fields.String(allow_none=True)
    department_code = fields.String(allow_none=True)
    created_by = fields.String(allow_none=True)
    lines = fields.List(fields.Nested(OrderLineSchema), metadata=describe("Not in lists"))


class OrderPageSchema(Schema):
    items = fields.List(fields.Nested(OrderSchema))
    next_cursor = fields.String(allow_none=True)


class ShipmentLineSchema(Schema):
    line_no = fields.Integer()
    item_code = fields.String()
    quantity = decimal_string("Quantity shipped")
    serial_numbers = fields.List(fields.String())
    issue = fields.String(
        allow_none=True, metadata=describe("over_shipped, unknown_line or item_mismatch")
    )
    issue_quantity = decimal_string("How much does not fit the order", allow_none=True)


class ShipmentSchema(Schema):
    shipment_no = fields.String()
    shipped_at = UtcDateTime()
    lines = fields.List(fields.Nested(ShipmentLineSchema))


class ShipmentListSchema(Schema):
    order_id = fields.UUID()
    items = fields.List(fields.Nested(ShipmentSchema))


# -- orders: queries -------------------------------------------------------------------------
class OrderQuerySchema(PageQuerySchema):
    q = Text(
        allow_none=True,
        validate=Length(max=100),
        metadata=describe("Part of the order code or the ERP order number"),
    )
    status = CommaList(Text(validate=OneOf(ORDER_STATUSES)), metadata=describe(ORDER_STATUS_HELP))
    customer_id = fields.UUID(allow_none=True)
    opportunity_id = fields.UUID(allow_none=True)
    quote_id = fields.UUID(allow_none=True)
    owner_id = Text(allow_none=True, metadata=describe("The owner's user id"))
    department_id = Text(allow_none=True)
    origin = Text(allow_none=True, validate=OneOf(("crm", "erp")))
    created_from = fields.Date(allow_none=True, metadata=describe("Created on or after"))
    created_to = fields.Date(allow_none=True, metadata=describe("Created on or before"))
    ordered_from = fields.Date(allow_none=True, metadata=describe("Order date on or after"))
    ordered_to = fields.Date(allow_none=True, metadata=describe("Order date on or before"))
    sort = fields.String(load_default="-created_at", validate=OneOf(ORDER_SORTS))

    @validates_schema
    def ranges_are_ordered(self, data: dict[str, Any], **kwargs: Any) -> None:
        for start, end in (("created_from", "created_to"), ("ordered_from", "ordered_to")):
            if data.get(start) and data.get(end) and data[end] < data[start]:
                raise ValidationError(f"must not be before {start}", end)


# -- contracts -------------------------------------------------------------------------------
class MilestoneInputSchema(StrictSchema):
    name = Text(required=True, validate=Length(max=100), metadata=describe("预付款"))
    due_date = fields.Date(required=True)
    amount = decimal_input("The amount due (or give percent)", "30000.00", allow_none=True)
    percent = decimal_input(
        "Percent of the contract amount (or give amount)", "30", allow_none=True
    )

    @validates_schema
    def amount_or_percent(self, data: dict[str, Any], **kwargs: Any) -> None:
        if (data.get("amount") is None) == (data.get("percent") is None):
            raise ValidationError("give either an amount or a percent", "amount")


class ContractInputSchema(StrictSchema):
    title = Text(required=True, validate=Length(max=200), metadata=describe("合同名称"))
    customer_id = fields.UUID(
        allow_none=True, metadata=describe("Required unless the opportunity or quote gives it")
    )
    opportunity_id = fields.UUID(allow_none=True, metadata=describe("A won opportunity"))
    quote_id = fields.UUID(allow_none=True, metadata=describe("An accepted quote"))
    order_id = fields.UUID(allow_none=True, metadata=describe("A sales order of the customer"))
    our_entity = Text(required=True, validate=Length(max=200), metadata=describe("我方签约主体"))
    customer_signatory = Text(allow_none=True, validate=Length(max=100))
    owner_id = Text(allow_none=True, metadata=describe("You if omitted"))
    amount = decimal_input(
        "Contract amount; the quote's total when omitted with a quote", "100000.00", allow_none=True
    )
    currency = Text(allow_none=True, metadata=describe("ISO 4217; CNY if left out", "CNY"))
    start_date = fields.Date(required=True)
    end_date = fields.Date(required=True)
    terms = Text(allow_none=True, validate=Length(max=20000))
    attachments = fields.List(
        Text(validate=Length(max=200)),
        load_default=list,
        validate=Length(max=50),
        metadata=describe("File names of the attachments"),
    )
    milestones = fields.List(
        fields.Nested(MilestoneInputSchema),
        required=True,
        validate=Length(min=1, max=60),
        metadata=describe("回款计划: all by amount, or all by percent adding up to 100"),
    )


class ContractUpdateSchema(StrictSchema):
    """What may change while the contract is a draft; milestones given replace them all."""

    title = Text(validate=Length(max=200))
    our_entity = Text(validate=Length(max=200))
    customer_signatory = Text(allow_none=True, validate=Length(max=100))
    amount = decimal_input("Contract amount", "100000.00")
    currency = Text(allow_none=True)
    start_date = fields.Date()
    end_date = fields.Date()
    terms = Text(allow_none=True, validate=Length(max=20000))
    attachments = fields.List(Text(validate=Length(max=200)), validate=Length(max=50))
    milestones = fields.List(fields.Nested(MilestoneInputSchema), validate=Length(min=1, max=60))


class ContractSignSchema(StrictSchema):
    signed_on = fields.Date(allow_none=True, metadata=describe("Today unless given"))


class ContractTerminateSchema(StrictSchema):
    reason = Text(required=True, validate=Length(max=2000), metadata=describe("终止原因"))


class MilestoneSchema(Schema):
    seq = fields.Integer()
    name = fields.String()
    due_date = fields.Date()
    amount = decimal_string("Amount due", places=2)
    percent = decimal_string("Percent it was planned as", allow_none=True)


class ContractSchema(RecordSchema):
    code = fields.String(metadata=describe("HT + year + 6-digit sequence", "HT-2026-000001"))
    title = fields.String()
    status = fields.String(
        validate=OneOf(CONTRACT_STATUSES), metadata=describe(CONTRACT_STATUS_HELP)
    )
    customer_id = fields.UUID()
    customer_code = fields.String(allow_none=True)
    customer_name = fields.String(allow_none=True)
    opportunity_id = fields.UUID(allow_none=True)
    quote_id = fields.UUID(allow_none=True)
    order_id = fields.UUID(allow_none=True)
    our_entity = fields.String()
    customer_signatory = fields.String(allow_none=True)
    owner_id = fields.String()
    department_id = fields.String(allow_none=True)
    region = fields.String(allow_none=True)
    category = fields.String(allow_none=True)
    amount = decimal_string("Contract amount", places=2)
    currency = fields.String()
    start_date = fields.Date()
    end_date = fields.Date()
    signed_on = fields.Date(allow_none=True)
    terms = fields.String(allow_none=True)
    attachments = fields.List(fields.String())
    terminated_at = UtcDateTime(allow_none=True)
    termination_reason = fields.String(allow_none=True)
    created_by = fields.String(allow_none=True)
    days_to_end = fields.Integer(allow_none=True, metadata=describe("Days until the end date"))
    milestones = fields.List(fields.Nested(MilestoneSchema), metadata=describe("Not in lists"))


class ContractPageSchema(Schema):
    items = fields.List(fields.Nested(ContractSchema))
    next_cursor = fields.String(allow_none=True)


class ContractQuerySchema(PageQuerySchema):
    q = Text(
        allow_none=True, validate=Length(max=100), metadata=describe("Part of the code or title")
    )
    status = CommaList(
        Text(validate=OneOf(CONTRACT_STATUSES)), metadata=describe(CONTRACT_STATUS_HELP)
    )
    customer_id = fields.UUID(allow_none=True)
    opportunity_id = fields.UUID(allow_none=True)
    owner_id = Text(allow_none=True)
    department_id = Text(allow_none=True)
    ends_from = fields.Date(allow_none=True, metadata=describe("Ending on or after"))
    ends_to = fields.Date(allow_none=True, metadata=describe("Ending on or before"))
    sort = fields.String(load_default="-created_at", validate=OneOf(CONTRACT_SORTS))


class ExpiringQuerySchema(PageQuerySchema):
    days = fields.Integer(
        load_default=30,
        validate=Range(min=0, max=3660),
        metadata=describe("Signed or active contracts ending within this many days", 30),
    )
    owner_id = Text(allow_none=True)
    department_id = Text(allow_none=True)
    customer_id = fields.UUID(allow_none=True)


PUBLIC_SCHEMAS: dict[str, type[Schema]] = {
    # a nested schema comes before the schemas holding it
    "OrderLine": OrderLineSchema,
    "Order": OrderSchema,
    "OrderPage": OrderPageSchema,
    "OrderDiscountInput": DiscountInputSchema,
    "OrderLineInput": OrderLineInputSchema,
    "OrderInput": OrderInputSchema,
    "OrderEditInput": OrderUpdateSchema,
    "OrderFromQuoteInput": OrderFromQuoteSchema,
    "OrderDecisionInput": OrderDecisionSchema,
    "OrderCancelInput": OrderCancelSchema,
    "OrderQuery": OrderQuerySchema,
    "OrderShipmentLine": ShipmentLineSchema,
    "OrderShipment": ShipmentSchema,
    "OrderShipmentList": ShipmentListSchema,
    "ContractMilestone": MilestoneSchema,
    "Contract": ContractSchema,
    "ContractPage": ContractPageSchema,
    "ContractMilestoneInput": MilestoneInputSchema,
    "ContractInput": ContractInputSchema,
    "ContractEditInput": ContractUpdateSchema,
    "ContractSignInput": ContractSignSchema,
    "ContractTerminateInput": ContractTerminateSchema,
    "ContractQuery": ContractQuerySchema,
    "ExpiringContractQuery": ExpiringQuerySchema,
}
