"""What the forecast (销售预测) answers and the queries it takes. Every figure covers only the
opportunities the caller may see, filtered as the opportunity list filters them; amounts are
summed per currency, never converted."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validates_schema
from marshmallow.validate import OneOf

from crm_common.schemas import StrictSchema, Text, describe
from sales.domain.forecast import GROUPINGS
from sales.schemas.common import decimal_string
from sales.schemas.expenses import money_text
from sales.schemas.targets import SUBJECT_TYPES, period_field

WIN_RATE_GROUPINGS = ("owner", "department")
GROUPING_HELP = (
    "owner (user id), department, month (of the expected close date, 2026-03) or stage (code)"
)


def day(description: str, example: str, key: str) -> fields.Date:
    return fields.Date(allow_none=True, data_key=key, metadata=describe(description, example))


def percent_field(description: str) -> fields.Decimal:
    return decimal_string(description, "42.5", allow_none=True)


class ForecastFilterSchema(StrictSchema):
    """Whose opportunities a figure covers (within the caller's scope)."""

    owner_id = Text(allow_none=True, metadata=describe("The owner's user id"))
    department_id = Text(allow_none=True)
    include_sub_departments = fields.Boolean(
        load_default=True, metadata=describe("With department_id: its sub-departments too")
    )

    @validates_schema
    def range_is_ordered(self, data: dict[str, Any], **kwargs: Any) -> None:
        start, end = data.get("start"), data.get("end")
        if start is not None and end is not None and end < start:
            raise ValidationError("must not be before from", "to")


class PipelineQuerySchema(ForecastFilterSchema):
    """The weighted pipeline of open opportunities, grouped."""

    group_by = fields.String(
        load_default="owner", validate=OneOf(GROUPINGS), metadata=describe(GROUPING_HELP)
    )
    start = day("Expected to close on or after this day", "2026-01-01", "from")
    end = day("Expected to close on or before this day", "2026-06-30", "to")
    process_code = Text(allow_none=True, metadata=describe("Only opportunities of this process"))


class AttainmentQuerySchema(StrictSchema):
    """Won amount (opportunities won in the period) against the target of each subject."""

    period = period_field(required=True)
    subject_type = fields.String(load_default="person", validate=OneOf(SUBJECT_TYPES))
    subject_id = Text(allow_none=True, metadata=describe("One person or department only"))


class FunnelQuerySchema(ForecastFilterSchema):
    """The opportunities created in a period, and how far through the process they got."""

    process_code = Text(allow_none=True, metadata=describe("The process; the default one"))
    start = day("Created on or after this day", "2026-01-01", "from")
    end = day("Created on or before this day", "2026-03-31", "to")


class StageDurationQuerySchema(ForecastFilterSchema):
    """How long opportunities stayed in each stage, over the stays that ended in a period."""

    process_code = Text(allow_none=True, metadata=describe("The process; the default one"))
    start = day("Left the stage on or after this day", "2026-01-01", "from")
    end = day("Left the stage on or before this day", "2026-03-31", "to")


class WinRateQuerySchema(ForecastFilterSchema):
    """Won, lost and abandoned opportunities closed in a period, and why they were lost."""

    by = fields.String(load_default="owner", validate=OneOf(WIN_RATE_GROUPINGS))
    start = day("Closed on or after this day", "2026-01-01", "from")
    end = day("Closed on or before this day", "2026-03-31", "to")


# -- answers ---------------------------------------------------------------------------------
class PipelineGroupSchema(Schema):
    key = fields.String(allow_none=True, metadata=describe("null: no department or no date"))
    name = fields.String(
        allow_none=True, metadata=describe("The person's, department's or stage's")
    )
    currency = fields.String()
    count = fields.Integer()
    amount = money_text("Sum of the expected amounts")
    weighted = money_text("Sum of amount × probability / 100, each rounded to the fen")


class PipelineTotalSchema(Schema):
    currency = fields.String()
    count = fields.Integer()
    amount = money_text()
    weighted = money_text()


class PipelineSchema(Schema):
    group_by = fields.String(validate=OneOf(GROUPINGS))
    groups = fields.List(fields.Nested(PipelineGroupSchema))
    totals = fields.List(fields.Nested(PipelineTotalSchema), metadata=describe("Per currency"))


class AttainmentItemSchema(Schema):
    subject_type = fields.String(validate=OneOf(SUBJECT_TYPES))
    subject_id = fields.String(allow_none=True, metadata=describe("Person or department id"))
    user_id = fields.String(allow_none=True, metadata=describe("A person's user id"))
    name = fields.String(allow_none=True)
    period = fields.String()
    currency = fields.String()
    target = money_text("Set, or for a quarter the sum of its months; null when none")
    won = money_text("Won in the period, in the target's currency")
    percent = percent_field("won / target in percent; null without a target")


class AttainmentSchema(Schema):
    period = fields.String()
    subject_type = fields.String()
    items = fields.List(fields.Nested(AttainmentItemSchema))


class FunnelStepSchema(Schema):
    stage_code = fields.String()
    name = fields.String()
    reached = fields.Integer(metadata=describe("Opportunities that got at least this far"))
    conversion = percent_field("Percent of those that reached the stage before; null first")


class FunnelSchema(Schema):
    process_code = fields.String()
    opportunities = fields.Integer(metadata=describe("Created in the period"))
    steps = fields.List(fields.Nested(FunnelStepSchema))


class StageDurationSchema(Schema):
    stage_code = fields.String()
    name = fields.String(allow_none=True)
    opportunities = fields.Integer()
    average_days = decimal_string("To one decimal", "12.5")


class StageDurationsSchema(Schema):
    process_code = fields.String()
    items = fields.List(fields.Nested(StageDurationSchema))


class WinRateSchema(Schema):
    key = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    won = fields.Integer()
    lost = fields.Integer()
    abandoned = fields.Integer()
    win_rate = percent_field("won / (won + lost); abandoned deals do not count")


class LossShareSchema(Schema):
    loss_reason = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    lost = fields.Integer()
    share = percent_field("Percent of every lost opportunity")


class WinRatesSchema(Schema):
    by = fields.String(validate=OneOf(WIN_RATE_GROUPINGS))
    items = fields.List(fields.Nested(WinRateSchema))
    loss_reasons = fields.List(fields.Nested(LossShareSchema))


PUBLIC_SCHEMAS: dict[str, type[Schema]] = {
    # a nested schema comes before the schemas holding it
    "ForecastGroup": PipelineGroupSchema,
    "ForecastTotal": PipelineTotalSchema,
    "AttainmentItem": AttainmentItemSchema,
    "FunnelStep": FunnelStepSchema,
    "StageDuration": StageDurationSchema,
    "WinRate": WinRateSchema,
    "LossShare": LossShareSchema,
    "ForecastQuery": PipelineQuerySchema,
    "Forecast": PipelineSchema,
    "AttainmentQuery": AttainmentQuerySchema,
    "Attainment": AttainmentSchema,
    "FunnelQuery": FunnelQuerySchema,
    "Funnel": FunnelSchema,
    "StageDurationQuery": StageDurationQuerySchema,
    "StageDurations": StageDurationsSchema,
    "WinRateQuery": WinRateQuerySchema,
    "WinRates": WinRatesSchema,
}
