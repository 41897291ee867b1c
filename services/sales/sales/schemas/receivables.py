"""What the receivable reads (应收) accept and return: invoices with their allocations,
payments, aging, overdue lists, planned vs. actual collections, a customer's receivable
summary, the allocations waiting for their invoice, and the scheduled records notify asks for.
Amounts travel as decimal strings, always with their currency."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validates_schema
from marshmallow.validate import Length, OneOf, Range

from crm_common.schemas import StrictSchema, Text, UtcDateTime, describe
from sales.domain.receivables import AgingBucket
from sales.schemas.activities import PageQuerySchema
from sales.schemas.common import decimal_string

INVOICE_STATUSES = ("open", "paid", "overdue")
INVOICE_STATUS_HELP = (
    "open 未结清 (something still owed), paid 已结清, overdue 逾期 (owed and past its due date)"
)
INVOICE_SORTS = ("issued_at", "-issued_at")
PAYMENT_SORTS = ("received_at", "-received_at")
AGING_DIMENSIONS = ("customer", "owner", "department")
BUCKETS = tuple(bucket.value for bucket in AgingBucket)
DUE_RECORD_KINDS = (
    "idle_opportunities",
    "overdue_invoices",
    "expiring_contracts",
    "pending_expenses",
)


def money(description: str = "Amount", **kwargs: Any) -> fields.Decimal:
    return decimal_string(description, "1280.00", places=2, **kwargs)


def ordered(start: str, end: str) -> Any:
    """A schema check that ``end`` is not before ``start`` when both are given."""

    def check(self: Schema, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get(start) is not None and data.get(end) is not None and data[end] < data[start]:
            raise ValidationError(f"must not be before {start}", end)

    return validates_schema(check)


# -- output ----------------------------------------------------------------------------------
class AllocationSchema(Schema):
    payment_no = fields.String()
    invoice_no = fields.String()
    amount = money()
    currency = fields.String()
    applied = fields.Boolean(
        metadata=describe("true: counted on the invoice; false: waiting (see reason)")
    )
    reason = fields.String(
        allow_none=True,
        metadata=describe("Why it waits: unknown_invoice (not yet received) or currency_mismatch"),
    )
    waiting_since = UtcDateTime(allow_none=True)
    applied_at = UtcDateTime(allow_none=True)


class InvoiceSchema(Schema):
    id = fields.UUID()
    invoice_no = fields.String(metadata=describe("The ERP's invoice number", "INV-2026-000123"))
    erp_order_no = fields.String(allow_none=True)
    customer_id = fields.UUID()
    customer_name = fields.String(allow_none=True)
    owner_id = fields.String(allow_none=True, metadata=describe("The customer's owner"))
    department_id = fields.String(allow_none=True)
    region = fields.String(allow_none=True)
    category = fields.String(allow_none=True)
    issued_at = UtcDateTime()
    due_date = fields.Date()
    amount = money("What the customer owes, tax included (价税合计)")
    tax_amount = money("The VAT part of amount")
    currency = fields.String()
    allocated = money("Payments applied to it")
    outstanding = money("Still owed: amount - allocated, never below zero")
    over_allocated = money("Allocated beyond the amount (reported, to be refunded or moved)")
    status = fields.String(validate=OneOf(INVOICE_STATUSES), metadata=describe(INVOICE_STATUS_HELP))
    days_overdue = fields.Integer(metadata=describe("Days past the due date today; 0 if not due"))
    occurred_at = UtcDateTime(metadata=describe("When the ERP made the version shown"))
    updated_at = UtcDateTime()
    allocations = fields.List(
        fields.Nested(AllocationSchema),
        metadata=describe("Only in the answer of GET /api/receivables/invoices/{invoice_no}"),
    )


class PaymentSchema(Schema):
    id = fields.UUID()
    payment_no = fields.String(metadata=describe("The ERP's receipt number", "RC-2026-000045"))
    customer_id = fields.UUID()
    customer_name = fields.String(allow_none=True)
    owner_id = fields.String(allow_none=True)
    department_id = fields.String(allow_none=True)
    received_at = UtcDateTime()
    amount = money()
    allocated = money("The part allocated to invoices (applied or waiting)")
    unallocated = money("On account (预收): not allocated to any invoice")
    currency = fields.String()
    occurred_at = UtcDateTime()
    allocations = fields.List(fields.Nested(AllocationSchema))


class InvoicePageSchema(Schema):
    items = fields.List(fields.Nested(InvoiceSchema))
    next_cursor = fields.String(allow_none=True)


class PaymentPageSchema(Schema):
    items = fields.List(fields.Nested(PaymentSchema))
    next_cursor = fields.String(allow_none=True)


class AgingRowSchema(Schema):
    key = fields.String(allow_none=True, metadata=describe("Customer id, owner or department"))
    name = fields.String(allow_none=True)
    currency = fields.String()
    buckets = fields.Dict(
        keys=fields.String(validate=OneOf(BUCKETS)),
        values=fields.String(),
        metadata=describe("Outstanding per bucket: " + ", ".join(BUCKETS)),
    )
    total = money()
    invoice_count = fields.Integer()


class AgingSchema(Schema):
    by = fields.String(validate=OneOf(AGING_DIMENSIONS))
    as_of = fields.Date()
    buckets = fields.List(fields.String(), metadata=describe("The bucket keys in order"))
    labels = fields.Dict(keys=fields.String(), values=fields.String())
    rows = fields.List(fields.Nested(AgingRowSchema))
    totals = fields.List(fields.Nested(AgingRowSchema), metadata=describe("One per currency"))


class OverdueInvoiceSchema(InvoiceSchema):
    bucket = fields.String(validate=OneOf(BUCKETS))


class OverdueListSchema(Schema):
    as_of = fields.Date()
    days = fields.Integer()
    items = fields.List(fields.Nested(OverdueInvoiceSchema))
    totals = fields.List(
        fields.Nested(lambda: CurrencyAmountSchema()), metadata=describe("Per currency")
    )
    truncated = fields.Boolean(metadata=describe("true: more invoices than limit are overdue"))


class CurrencyAmountSchema(Schema):
    currency = fields.String()
    amount = money()
    count = fields.Integer()


class MilestoneCollectionSchema(Schema):
    contract_id = fields.String()
    contract_code = fields.String(allow_none=True)
    customer_id = fields.String(allow_none=True)
    due_date = fields.Date()
    amount = money()
    currency = fields.String()
    collected = money("Collected toward it, payments settling milestones in due-date order")
    state = fields.String(validate=OneOf(("collected", "not_due", "overdue")))


class MonthlyCollectionSchema(Schema):
    month = fields.String(metadata=describe("YYYY-MM"))
    currency = fields.String()
    planned = money("Milestones due in the month")
    collected = money("Payments received in the month")


class CollectionsSchema(Schema):
    customer_id = fields.UUID(allow_none=True)
    date_from = fields.Date(data_key="from")
    date_to = fields.Date(data_key="to")
    months = fields.List(fields.Nested(MonthlyCollectionSchema))
    totals = fields.List(fields.Nested(MonthlyCollectionSchema), metadata=describe("Per currency"))
    milestones = fields.List(
        fields.Nested(MilestoneCollectionSchema),
        metadata=describe("With customer_id: each contract milestone due by to"),
    )
    contracts_available = fields.Boolean(
        metadata=describe("false: payment milestones are not recorded in this installation")
    )


class CustomerReceivableSchema(Schema):
    customer_id = fields.UUID()
    customer_name = fields.String(allow_none=True)
    currency = fields.String()
    credit_limit = money("From the ERP; null when it gave none", allow_none=True)
    outstanding = money()
    overdue = money()
    available = money("credit_limit - outstanding; null without a limit", allow_none=True)
    open_invoices = fields.Integer()
    overdue_invoices = fields.Integer()
    on_account = money("Payments not allocated to any invoice (预收)")
    waiting = money("Allocations waiting for their invoice")


class CustomerReceivablesSchema(Schema):
    customer_id = fields.UUID()
    customer_name = fields.String(allow_none=True)
    currencies = fields.List(
        fields.Nested(CustomerReceivableSchema),
        metadata=describe("One per currency: the credit limit's, and any other owed in"),
    )


class WaitingAllocationSchema(AllocationSchema):
    customer_id = fields.UUID()
    received_at = UtcDateTime()


class WaitingAllocationPageSchema(Schema):
    items = fields.List(fields.Nested(WaitingAllocationSchema))
    next_cursor = fields.String(allow_none=True)


class DueRecordSchema(Schema):
    record_type = fields.String()
    record_id = fields.String()
    code = fields.String(allow_none=True)
    owner_id = fields.String(allow_none=True)
    department_id = fields.String(allow_none=True)
    customer_id = fields.String(allow_none=True)
    due_on = fields.String(allow_none=True)
    fields_ = fields.Dict(data_key="fields")


class DueRecordsSchema(Schema):
    items = fields.List(fields.Nested(DueRecordSchema))


# -- queries ---------------------------------------------------------------------------------
class InvoiceQuerySchema(PageQuerySchema):
    customer_id = fields.UUID(allow_none=True)
    status = fields.String(
        allow_none=True, validate=OneOf(INVOICE_STATUSES), metadata=describe(INVOICE_STATUS_HELP)
    )
    owner_id = Text(allow_none=True, metadata=describe("The customer owner's user id"))
    department_id = Text(allow_none=True)
    currency = Text(allow_none=True, validate=Length(equal=3))
    erp_order_no = Text(allow_none=True, validate=Length(max=40))
    due_from = fields.Date(allow_none=True, metadata=describe("Due on or after this day"))
    due_to = fields.Date(allow_none=True, metadata=describe("Due on or before this day"))
    q = Text(allow_none=True, validate=Length(max=40), metadata=describe("Part of the number"))
    over_allocated = fields.Boolean(
        load_default=False,
        metadata=describe("true: only invoices allocated more than their amount (to sort out)"),
    )
    sort = fields.String(load_default="-issued_at", validate=OneOf(INVOICE_SORTS))

    _due_range = ordered("due_from", "due_to")


class PaymentQuerySchema(PageQuerySchema):
    customer_id = fields.UUID(allow_none=True)
    owner_id = Text(allow_none=True)
    department_id = Text(allow_none=True)
    received_from = fields.Date(allow_none=True)
    received_to = fields.Date(allow_none=True)
    q = Text(allow_none=True, validate=Length(max=40), metadata=describe("Part of the number"))
    sort = fields.String(load_default="-received_at", validate=OneOf(PAYMENT_SORTS))

    _received_range = ordered("received_from", "received_to")


class AgingQuerySchema(StrictSchema):
    by = fields.String(
        load_default="customer",
        validate=OneOf(AGING_DIMENSIONS),
        metadata=describe("customer (default), owner or department"),
    )
    as_of = fields.Date(
        allow_none=True,
        metadata=describe(
            "Age as of this day (today if left out); an earlier day shows what was owed at "
            "its end: invoices issued by then less the payments received by then"
        ),
    )
    customer_id = fields.UUID(allow_none=True)
    owner_id = Text(allow_none=True)
    department_id = Text(allow_none=True)
    currency = Text(allow_none=True, validate=Length(equal=3))


class OverdueQuerySchema(StrictSchema):
    days = fields.Integer(
        load_default=1,
        validate=Range(min=1, max=3650),
        metadata=describe("At least this many days past due (1 by default)"),
    )
    as_of = fields.Date(allow_none=True)
    customer_id = fields.UUID(allow_none=True)
    owner_id = Text(allow_none=True)
    department_id = Text(allow_none=True)
    limit = fields.Integer(
        load_default=200, validate=Range(min=1, max=1000), metadata=describe("200 by default")
    )


class CollectionsQuerySchema(StrictSchema):
    customer_id = fields.UUID(allow_none=True)
    date_from = fields.Date(data_key="from", allow_none=True, metadata=describe("First day"))
    date_to = fields.Date(data_key="to", allow_none=True, metadata=describe("Last day"))

    _range = ordered("date_from", "date_to")


class WaitingAllocationQuerySchema(PageQuerySchema):
    invoice_no = Text(allow_none=True, validate=Length(max=40))


class DueQuerySchema(StrictSchema):
    days = fields.Integer(validate=Range(min=0, max=3650), load_default=None, allow_none=True)
    hours = fields.Integer(validate=Range(min=0, max=24 * 365), load_default=None, allow_none=True)
    min_credit_percent = fields.Decimal(
        allow_none=True, load_default=None, validate=Range(min=0, max=10000)
    )
    limit = fields.Integer(load_default=1000, validate=Range(min=1, max=5000))


PUBLIC_SCHEMAS: dict[str, type[Schema]] = {
    # a nested schema comes before the schemas holding it
    "Allocation": AllocationSchema,
    "Invoice": InvoiceSchema,
    "Payment": PaymentSchema,
    "InvoicePage": InvoicePageSchema,
    "PaymentPage": PaymentPageSchema,
    "InvoiceQuery": InvoiceQuerySchema,
    "PaymentQuery": PaymentQuerySchema,
    "AgingRow": AgingRowSchema,
    "Aging": AgingSchema,
    "AgingQuery": AgingQuerySchema,
    "CurrencyAmount": CurrencyAmountSchema,
    "OverdueInvoice": OverdueInvoiceSchema,
    "OverdueList": OverdueListSchema,
    "OverdueQuery": OverdueQuerySchema,
    "MilestoneCollection": MilestoneCollectionSchema,
    "MonthlyCollection": MonthlyCollectionSchema,
    "Collections": CollectionsSchema,
    "CollectionsQuery": CollectionsQuerySchema,
    "CustomerReceivable": CustomerReceivableSchema,
    "CustomerReceivables": CustomerReceivablesSchema,
    "WaitingAllocation": WaitingAllocationSchema,
    "WaitingAllocationPage": WaitingAllocationPageSchema,
    "WaitingAllocationQuery": WaitingAllocationQuerySchema,
}
