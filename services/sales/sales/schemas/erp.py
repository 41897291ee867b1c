"""The event contract with the ERP, both directions (``deploy/asyncapi.yaml`` documents it).

ERP → CRM: the ERP publishes to the durable topic exchange ``erp.events`` with the event type
as routing key; each message is the suite's envelope (``crm_common.events.EnvelopeSchema``)
with ``source: "erp"``, and ``ERP_EVENT_SCHEMAS`` reads its ``data``. CRM → ERP: sales
publishes ``order_confirmed`` and ``order_cancel_requested`` on ``sales.events``
(``ORDER_REQUEST_SCHEMAS``).

Amounts, prices, quantities and tax rates travel as decimal strings (``"1234.50"``,
``"0.13"``) and load as ``Decimal``; a JSON number is refused, since a float has already lost
the exact value. Tax rates are fractions (13 % VAT is ``"0.13"``). Dates are ISO 8601 dates,
instants ISO 8601 date-times with their offset. Fields a schema does not know are dropped, so
either side may add fields in a minor version. A customer is named by every identifier the
sender knows; the CRM matches it by ``crm_customer_id``, else ``credit_code``, else
``erp_code``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from crm_common.errors import ValidationFailed
from crm_common.schemas import Text
from sales.domain.money import NOT_A_NUMBER, parse_decimal

CURRENCY = validate.Regexp(r"^[A-Z]{3}$", error="must be a three-letter ISO 4217 code")
TAX_RATE = validate.Range(min=0, max=1, max_inclusive=False, error="must be a fraction below 1")


class DecimalString(fields.Decimal):
    """A decimal number written as a JSON string; loads as ``Decimal``, dumps as a string."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(as_string=True, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        if not isinstance(value, str):
            raise ValidationError(NOT_A_NUMBER)
        try:
            return parse_decimal(value, attr or "value")
        except ValidationFailed:
            raise ValidationError(NOT_A_NUMBER) from None


def required_text() -> Text:
    return Text(required=True)


def optional_text() -> Text:
    return Text(allow_none=True, load_default=None)


def required_decimal() -> DecimalString:
    return DecimalString(required=True)


def rate() -> DecimalString:
    return DecimalString(required=True, validate=TAX_RATE)


def currency_code() -> fields.String:
    return fields.String(required=True, validate=CURRENCY)


def instant() -> fields.AwareDateTime:
    return fields.AwareDateTime(required=True)


class ContractSchema(Schema):
    """Tolerates what it does not know: the other side may add fields."""

    class Meta:
        unknown = EXCLUDE


# -- ERP → CRM -----------------------------------------------------------------------------
class ErpCustomerSchema(ContractSchema):
    """A customer as the ERP names it: always by its ERP code, and by the CRM id and the
    unified social credit code when the ERP has them."""

    crm_customer_id = fields.UUID(allow_none=True, load_default=None)
    erp_code = required_text()
    credit_code = optional_text()
    name = required_text()


class ItemUpdatedSchema(ContractSchema):
    """An item of the ERP's item master (存货档案) as it is now."""

    item_code = required_text()
    name = required_text()
    spec = optional_text()
    unit = required_text()
    category = optional_text()
    list_price = DecimalString(allow_none=True, load_default=None)
    tax_rate = rate()
    active = fields.Boolean(required=True)


class PriceListLineSchema(ContractSchema):
    item_code = required_text()
    customer_category = optional_text()
    min_quantity = required_decimal()
    unit_price = required_decimal()


class PriceListUpdatedSchema(ContractSchema):
    """A price list (价格政策) as it is now, every line of it: lines not listed are gone."""

    price_list_code = required_text()
    name = required_text()
    currency = currency_code()
    valid_from = fields.Date(allow_none=True, load_default=None)
    valid_to = fields.Date(allow_none=True, load_default=None)
    lines = fields.List(fields.Nested(PriceListLineSchema), required=True)


class OrderLineSchema(ContractSchema):
    line_no = fields.Integer(required=True, strict=True)
    item_code = required_text()
    item_name = required_text()
    quantity = required_decimal()
    unit = required_text()
    unit_price = required_decimal()
    tax_rate = rate()
    amount = required_decimal()


class OrderCreatedSchema(ContractSchema):
    """An order the ERP booked: the answer to a CRM order (``crm_order_id``) or one entered in
    the ERP (``crm_order_id`` null). Line ``amount`` and ``total_amount`` include tax."""

    erp_order_no = required_text()
    crm_order_id = fields.UUID(allow_none=True, load_default=None)
    customer = fields.Nested(ErpCustomerSchema, required=True)
    order_date = fields.Date(required=True)
    currency = currency_code()
    lines = fields.List(
        fields.Nested(OrderLineSchema), required=True, validate=validate.Length(min=1)
    )
    total_amount = required_decimal()
    salesperson_code = optional_text()
    department_code = optional_text()


class OrderRejectedSchema(ContractSchema):
    """The ERP refused a CRM order."""

    crm_order_id = fields.UUID(required=True)
    reason = required_text()


class ShipmentLineSchema(ContractSchema):
    line_no = fields.Integer(required=True, strict=True)
    item_code = required_text()
    quantity = required_decimal()
    serial_numbers = fields.List(Text(), load_default=list)


class OrderShippedSchema(ContractSchema):
    """One shipment (发货单) of an order; an order may ship in several."""

    erp_order_no = required_text()
    shipment_no = required_text()
    shipped_at = instant()
    lines = fields.List(
        fields.Nested(ShipmentLineSchema), required=True, validate=validate.Length(min=1)
    )


class OrderCancelledSchema(ContractSchema):
    erp_order_no = required_text()
    reason = optional_text()


class InvoiceIssuedSchema(ContractSchema):
    """An invoice (销售发票) as it is now; ``amount`` is what the customer owes, tax included
    (价税合计), ``tax_amount`` the VAT part of it. A later version of one invoice number
    replaces the earlier."""

    invoice_no = required_text()
    erp_order_no = optional_text()
    customer = fields.Nested(ErpCustomerSchema, required=True)
    issued_at = instant()
    due_date = fields.Date(required=True)
    amount = required_decimal()
    tax_amount = required_decimal()
    currency = currency_code()


class AllocationSchema(ContractSchema):
    invoice_no = required_text()
    amount = required_decimal()


class PaymentReceivedSchema(ContractSchema):
    """A payment (收款单) and the invoices it settles; what is not allocated is on account."""

    payment_no = required_text()
    customer = fields.Nested(ErpCustomerSchema, required=True)
    received_at = instant()
    amount = required_decimal()
    currency = currency_code()
    allocations = fields.List(fields.Nested(AllocationSchema), load_default=list)


class CustomerCreditUpdatedSchema(ContractSchema):
    """The customer's credit limit (信用额度) as the ERP now sets it."""

    customer = fields.Nested(ErpCustomerSchema, required=True)
    credit_limit = required_decimal()
    currency = currency_code()


ERP_EVENT_SCHEMAS: dict[str, type[Schema]] = {
    "item_updated": ItemUpdatedSchema,
    "price_list_updated": PriceListUpdatedSchema,
    "order_created": OrderCreatedSchema,
    "order_rejected": OrderRejectedSchema,
    "order_shipped": OrderShippedSchema,
    "order_cancelled": OrderCancelledSchema,
    "invoice_issued": InvoiceIssuedSchema,
    "payment_received": PaymentReceivedSchema,
    "customer_credit_updated": CustomerCreditUpdatedSchema,
}
"""The ``data`` of every event the ERP publishes on ``erp.events``, by event type."""


# -- CRM → ERP -----------------------------------------------------------------------------
class OrderCustomerSchema(ContractSchema):
    """A customer as the CRM names it: always by its CRM id; the ERP code once the customer
    has one, and the credit code when known."""

    crm_customer_id = fields.UUID(required=True)
    erp_code = optional_text()
    credit_code = optional_text()
    name = required_text()


class ConfirmedLineSchema(ContractSchema):
    """A line as confirmed: ``unit_price`` before discounts, ``discount_amount`` the line's
    whole discount (its own and its share of the document's), then the discounted figures,
    each to the fen: ``net_amount`` + ``tax_amount`` = ``amount``."""

    line_no = fields.Integer(required=True, strict=True)
    item_code = required_text()
    item_name = required_text()
    spec = optional_text()
    unit = required_text()
    quantity = required_decimal()
    unit_price = required_decimal()
    discount_amount = required_decimal()
    tax_rate = rate()
    net_amount = required_decimal()
    tax_amount = required_decimal()
    amount = required_decimal()


class OrderConfirmedSchema(ContractSchema):
    """A CRM order for the ERP to book; it answers ``order_created`` or ``order_rejected``
    naming ``crm_order_id``. Totals are the sums of the lines' figures. ``customer_id``,
    ``owner_id`` and ``department_id`` (the CRM's ids of the customer, the salesperson's user
    and their department) let the suite's own consumers route the event; the ERP may ignore
    them."""

    crm_order_id = fields.UUID(required=True)
    crm_order_code = required_text()
    customer = fields.Nested(OrderCustomerSchema, required=True)
    order_date = fields.Date(required=True)
    currency = currency_code()
    prices_include_tax = fields.Boolean(required=True)
    lines = fields.List(
        fields.Nested(ConfirmedLineSchema), required=True, validate=validate.Length(min=1)
    )
    discount_amount = required_decimal()
    net_amount = required_decimal()
    tax_amount = required_decimal()
    total_amount = required_decimal()
    requested_delivery_date = fields.Date(allow_none=True, load_default=None)
    salesperson_code = optional_text()
    department_code = optional_text()
    customer_id = fields.UUID(allow_none=True, load_default=None)
    owner_id = optional_text()
    department_id = optional_text()


class OrderCancelRequestedSchema(ContractSchema):
    """The CRM asks the ERP to cancel an order; the ERP answers ``order_cancelled``, or
    nothing when the order has gone too far (it then ships as usual)."""

    crm_order_id = fields.UUID(required=True)
    crm_order_code = required_text()
    erp_order_no = optional_text()
    reason = required_text()
    customer_id = fields.UUID(allow_none=True, load_default=None)
    owner_id = optional_text()
    department_id = optional_text()


ORDER_REQUEST_SCHEMAS: dict[str, type[Schema]] = {
    "order_confirmed": OrderConfirmedSchema,
    "order_cancel_requested": OrderCancelRequestedSchema,
}
"""The ``data`` of the events sales publishes on ``sales.events`` for the ERP, by type."""
