"""What the ERP administration use cases accept and return: ERP events whose customer matched
no CRM customer (kept, listed, applied once the ERP customer is mapped)."""

from __future__ import annotations

from marshmallow import Schema, fields
from marshmallow.validate import Length, OneOf, Range

from crm_common.pagination import MAX_PAGE_SIZE
from crm_common.schemas import StrictSchema, Text, describe
from sales.models.erp import APPLIED, WAITING

STATUSES = (WAITING, APPLIED)


class UnmatchedEventQuerySchema(StrictSchema):
    status = fields.String(
        load_default=WAITING,
        validate=OneOf(STATUSES),
        metadata=describe("waiting (the default) or applied"),
    )
    event_type = Text(allow_none=True, validate=Length(max=40))
    erp_code = Text(allow_none=True, validate=Length(max=40), metadata=describe("ERP customer"))
    cursor = fields.String(allow_none=True)
    limit = fields.Integer(allow_none=True, validate=Range(min=1, max=MAX_PAGE_SIZE))


class ApplyUnmatchedSchema(StrictSchema):
    customer_id = fields.UUID(
        required=True,
        metadata=describe(
            "The CRM customer the event's ERP customer is; every waiting event "
            "of that ERP customer is applied to it"
        ),
    )


class UnmatchedEventSchema(Schema):
    id = fields.UUID()
    event_id = fields.String()
    event_type = fields.String()
    occurred_at = fields.DateTime()
    erp_code = fields.String(allow_none=True)
    credit_code = fields.String(allow_none=True)
    crm_customer_id = fields.UUID(allow_none=True)
    customer_name = fields.String(allow_none=True)
    status = fields.String(validate=OneOf(STATUSES))
    attempts = fields.Integer(metadata=describe("Its arrival and each later try that failed"))
    last_error = fields.String(allow_none=True)
    first_seen_at = fields.DateTime()
    last_seen_at = fields.DateTime()
    applied_at = fields.DateTime(allow_none=True)
    customer_id = fields.UUID(allow_none=True, metadata=describe("The customer it applied to"))
    data = fields.Dict(metadata=describe("The event's data as the ERP sent it"))


class UnmatchedEventListSchema(Schema):
    items = fields.List(fields.Nested(UnmatchedEventSchema))
    next_cursor = fields.String(allow_none=True)


class AppliedMappingSchema(Schema):
    erp_code = fields.String()
    customer_id = fields.UUID()
    applied = fields.Integer(metadata=describe("Waiting events applied to the customer"))
    failed = fields.Integer(metadata=describe("Waiting events that failed and still wait"))
    items = fields.List(fields.Nested(UnmatchedEventSchema))


PUBLIC_SCHEMAS: dict[str, type[Schema]] = {
    "ErpUnmatchedEvent": UnmatchedEventSchema,
    "ErpUnmatchedEventList": UnmatchedEventListSchema,
    "ErpUnmatchedEventQuery": UnmatchedEventQuerySchema,
    "ErpCustomerMappingInput": ApplyUnmatchedSchema,
    "ErpCustomerMapping": AppliedMappingSchema,
}
