"""What the item and price-list reads accept and return: items (存货) and price lists (价格政策)
mirrored from the ERP, and the price pricing chooses for a customer. Amounts travel as decimal
strings."""

from __future__ import annotations

from marshmallow import Schema, fields
from marshmallow.validate import Length

from crm_common.schemas import StrictSchema, Text, UtcDateTime, describe
from sales.schemas.activities import PageQuerySchema
from sales.schemas.common import decimal_string, positive


# -- queries ---------------------------------------------------------------------------------
class ItemQuerySchema(PageQuerySchema):
    q = Text(
        allow_none=True,
        validate=Length(max=100),
        metadata=describe("Part of the code, name or spec (规格型号)", "轴承"),
    )
    active = fields.Boolean(
        allow_none=True, metadata=describe("true: items in use only; false: out of use only")
    )
    category = Text(allow_none=True, validate=Length(max=100), metadata=describe("存货分类"))


class PriceListQuerySchema(PageQuerySchema):
    q = Text(allow_none=True, validate=Length(max=100), metadata=describe("Part of code or name"))
    on = fields.Date(allow_none=True, metadata=describe("Only lists valid on this day"))


class ItemPriceQuerySchema(StrictSchema):
    customer_id = fields.UUID(
        allow_none=True,
        metadata=describe("A customer you can see: their category picks the price; none: list"),
    )
    quantity = fields.Decimal(
        load_default=None,
        allow_none=True,
        validate=positive,
        metadata={"type": "string", **describe("Above 0 (quantity breaks); 1 unless given")},
    )
    on = fields.Date(allow_none=True, metadata=describe("The day; today unless given"))
    currency = Text(allow_none=True, validate=Length(equal=3), metadata=describe("CNY default"))


# -- output ----------------------------------------------------------------------------------
class ItemPriceLineSchema(Schema):
    line_no = fields.Integer()
    price_list_code = fields.String()
    item_code = fields.String()
    customer_category = fields.String(
        allow_none=True, metadata=describe("A customer category; null: every category")
    )
    min_quantity = decimal_string("From this quantity on", "10")
    unit_price = decimal_string("Unit price in the list's currency", "48.00")


class PriceListSchema(Schema):
    price_list_code = fields.String()
    name = fields.String()
    currency = fields.String()
    valid_from = fields.Date(allow_none=True)
    valid_to = fields.Date(allow_none=True)
    source_occurred_at = UtcDateTime(metadata=describe("When the ERP changed it"))
    updated_at = UtcDateTime()
    line_count = fields.Integer()
    lines = fields.List(fields.Nested(ItemPriceLineSchema), metadata=describe("On one list"))


class ItemSchema(Schema):
    item_code = fields.String()
    name = fields.String()
    spec = fields.String(allow_none=True, metadata=describe("规格型号"))
    unit = fields.String(allow_none=True)
    category = fields.String(allow_none=True)
    list_price = decimal_string("The ERP's list price", "52.00", allow_none=True)
    currency = fields.String()
    tax_rate = decimal_string("VAT rate as a fraction", "0.13", allow_none=True)
    active = fields.Boolean()
    source_occurred_at = UtcDateTime(metadata=describe("When the ERP changed it"))
    updated_at = UtcDateTime()
    prices = fields.List(
        fields.Nested(ItemPriceLineSchema),
        metadata=describe("On one item: the price-list lines pricing it (valid lists)"),
    )


class ItemPriceSchema(Schema):
    item_code = fields.String()
    customer_id = fields.UUID(allow_none=True)
    customer_category = fields.String(allow_none=True)
    quantity = decimal_string("The quantity priced", "10")
    on = fields.Date()
    unit_price = decimal_string("The unit price pricing chose", "48.00")
    currency = fields.String()
    source = fields.String(metadata=describe("price_list or list_price"))
    price_list_code = fields.String(allow_none=True)
    line_customer_category = fields.String(
        allow_none=True, metadata=describe("The category the chosen line is for (null: all)")
    )
    min_quantity = decimal_string("The quantity break reached", "10", allow_none=True)


PUBLIC_SCHEMAS: dict[str, type[Schema]] = {
    # a nested schema comes before the schemas holding it
    "ItemPriceLine": ItemPriceLineSchema,
    "Item": ItemSchema,
    "ItemQuery": ItemQuerySchema,
    "PriceList": PriceListSchema,
    "PriceListQuery": PriceListQuerySchema,
    "ItemPrice": ItemPriceSchema,
    "ItemPriceQuery": ItemPriceQuerySchema,
}
