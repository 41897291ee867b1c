"""What the sales target use cases accept and return: targets (销售目标) of a person or a
department for a month (``2026-03``) or a quarter (``2026-Q1``)."""

from __future__ import annotations

from marshmallow import Schema, fields
from marshmallow.validate import Length, OneOf

from crm_common.schemas import CommaList, StrictSchema, Text, describe
from sales.domain.targets import PERIOD_FORMAT, SubjectType
from sales.schemas.common import RecordSchema
from sales.schemas.expenses import amount_field, money_text

SUBJECT_TYPES = tuple(s.value for s in SubjectType)
PERIOD_HELP = "A month such as 2026-03 or a quarter such as 2026-Q1"


def period_field(required: bool = False) -> Text:
    return Text(
        required=required, validate=Length(max=7), metadata=describe(PERIOD_HELP, "2026-Q1")
    )


class TargetInputSchema(StrictSchema):
    subject_type = fields.String(required=True, validate=OneOf(SUBJECT_TYPES))
    subject_id = Text(
        required=True,
        validate=Length(max=64),
        metadata=describe("A person id (person) or a department id (department)"),
    )
    period = period_field(required=True)
    amount = amount_field("In CNY, as a decimal string", "500000.00", required=True)


class TargetUpdateSchema(StrictSchema):
    amount = amount_field("In CNY, as a decimal string", "500000.00", required=True)


class TargetSchema(RecordSchema):
    subject_type = fields.String(validate=OneOf(SUBJECT_TYPES))
    subject_id = fields.String()
    subject_name = fields.String(allow_none=True, metadata=describe("The person's or department's"))
    period = fields.String(metadata=describe(PERIOD_HELP))
    amount = money_text()
    currency = fields.String()


class TargetListSchema(Schema):
    items = fields.List(fields.Nested(TargetSchema))


class TargetQuerySchema(StrictSchema):
    """Targets by subject and period; ``year`` lists every month and quarter of a year."""

    subject_type = fields.String(allow_none=True, validate=OneOf(SUBJECT_TYPES))
    subject_id = Text(allow_none=True)
    period = CommaList(Text(), metadata=describe(f"One or more periods ({PERIOD_FORMAT})"))
    year = fields.Integer(allow_none=True, metadata=describe("Every period of this year"))


PUBLIC_SCHEMAS: dict[str, type[Schema]] = {
    # a nested schema comes before the schemas holding it
    "Target": TargetSchema,
    "TargetInput": TargetInputSchema,
    "TargetAmountInput": TargetUpdateSchema,
    "TargetList": TargetListSchema,
    "TargetQuery": TargetQuerySchema,
}
