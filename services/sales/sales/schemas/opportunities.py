"""Schemas of opportunities (商机), sales processes (销售流程), competitors (竞争对手) and loss
reasons: what the service accepts and what it returns.

Money goes both ways as decimal strings (``"1234.50"``) with a currency beside it; an amount
sent as a JSON number is accepted only when whole, a fraction must be a string (a float has
already lost the exact value).
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields
from marshmallow.validate import Length, OneOf, Range, Regexp

from crm_common.errors import ValidationFailed
from crm_common.schemas import CommaList, StrictSchema, Text, UtcDateTime, describe
from sales.domain.activities import MAX_IDLE_DAYS
from sales.domain.money import parse_amount, parse_currency, parse_decimal
from sales.domain.opportunities import MAX_TAG_LENGTH, ContactRole, Status, ThreatLevel
from sales.domain.processes import OPPORTUNITY_REQUIRABLE_FIELDS, Outcome
from sales.schemas.common import RecordSchema

STATUSES = tuple(status.value for status in Status)
CONTACT_ROLES = tuple(role.value for role in ContactRole)
THREAT_LEVELS = tuple(level.value for level in ThreatLevel)
OUTCOMES = tuple(outcome.value for outcome in Outcome)
PRICE_LEVELS = ("low", "medium", "high")
SORTS = ("created_at", "-created_at", "updated_at", "-updated_at", "name", "-name", "code", "-code")
CREATE_ONLY = "x-create-only"
"""Marks an input field that a PATCH cannot change (left out of the published patch schema)."""
CODE_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"


def _reasons(exc: ValidationFailed) -> list[str]:
    return [reason for found in exc.field_errors.values() for reason in found]


class Amount(fields.String):
    """A money amount: a decimal string, or a whole number; rounded half up to the fen."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        try:
            return parse_amount(value, attr or "amount")
        except ValidationFailed as exc:
            raise ValidationError(_reasons(exc)) from None


class Quantity(fields.String):
    """A quantity: a decimal string or a whole number, more than zero."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        try:
            quantity = parse_decimal(value, attr or "quantity")
        except ValidationFailed as exc:
            raise ValidationError(_reasons(exc)) from None
        if quantity <= 0:
            raise ValidationError("must be more than zero")
        return quantity


class Currency(fields.String):
    """An ISO 4217 code; empty means CNY."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        try:
            return parse_currency(value, attr or "currency")
        except ValidationFailed as exc:
            raise ValidationError(_reasons(exc)) from None


def decimal_text(description: str, example: str | None = None) -> fields.Decimal:
    """A decimal dumped as a string (never a float)."""
    return fields.Decimal(
        as_string=True,
        allow_none=True,
        metadata={"type": "string", "format": "decimal", **describe(description, example)},
    )


def money_text(description: str, example: str | None = None) -> fields.Decimal:
    return fields.Decimal(
        as_string=True,
        places=2,
        allow_none=True,
        metadata={"type": "string", "format": "decimal", **describe(description, example)},
    )


# -- opportunities: input ----------------------------------------------------------------------
class DealContactInputSchema(StrictSchema):
    contact_id = fields.UUID(required=True, metadata=describe("A contact of the customer"))
    role = fields.String(
        required=True,
        validate=OneOf(CONTACT_ROLES),
        metadata=describe(
            "decision_maker 决策者, influencer 影响者, user 使用者, purchaser 采购者"
        ),
    )


class LineInputSchema(StrictSchema):
    item_name = Text(required=True, validate=Length(max=200), metadata=describe("品名"))
    spec = Text(allow_none=True, validate=Length(max=200), metadata=describe("规格型号"))
    quantity = Quantity(metadata=describe("1 unless given", "10"))
    expected_price = Amount(
        allow_none=True, metadata=describe("Expected unit price, in the currency", "1250.00")
    )


class CompetitorEntryInputSchema(StrictSchema):
    competitor_id = fields.UUID(required=True, metadata=describe("From /api/competitors"))
    offer = Amount(allow_none=True, metadata=describe("Their offer, in the currency"))
    threat_level = fields.String(
        validate=OneOf(THREAT_LEVELS), metadata=describe("medium unless given")
    )
    notes = Text(allow_none=True, validate=Length(max=2000))


class OpportunityInputSchema(StrictSchema):
    """A new opportunity (POST); with ``partial=True`` the changes of an update (PATCH)."""

    name = Text(required=True, validate=Length(max=200), metadata=describe("商机名称"))
    customer_id = fields.UUID(
        required=True,
        metadata={CREATE_ONLY: True, **describe("A customer you can see; cannot be changed")},
    )
    process_id = fields.UUID(
        allow_none=True,
        metadata={
            CREATE_ONLY: True,
            **describe("The sales process; the standard one unless given"),
        },
    )
    owner_id = Text(
        allow_none=True,
        validate=Length(max=64),
        metadata=describe("The owner's user id; the caller unless given"),
    )
    department_id = Text(
        allow_none=True,
        validate=Length(max=64),
        metadata=describe("The owner's department unless given (the caller's when they own it)"),
    )
    expected_amount = Amount(allow_none=True, metadata=describe("预计金额", "250000.00"))
    currency = Currency(allow_none=True, metadata=describe("ISO 4217; CNY unless given", "CNY"))
    expected_close_date = fields.Date(allow_none=True, metadata=describe("预计成交日期"))
    source_campaign_id = Text(allow_none=True, validate=Length(max=64))
    source_lead_id = Text(allow_none=True, validate=Length(max=64))
    description = Text(allow_none=True, validate=Length(max=4000))
    tags = fields.List(Text(validate=Length(max=MAX_TAG_LENGTH)), metadata=describe("≤ 20 tags"))
    probability_override = fields.Integer(
        allow_none=True,
        strict=True,
        validate=Range(0, 100),
        metadata=describe("A win probability kept instead of the stage's; null follows the stage"),
    )
    contacts = fields.List(
        fields.Nested(DealContactInputSchema), metadata=describe("The whole list; replaces it")
    )
    lines = fields.List(
        fields.Nested(LineInputSchema), metadata=describe("Products of interest; replaces them")
    )
    competitors = fields.List(
        fields.Nested(CompetitorEntryInputSchema),
        metadata=describe("Competitors in this deal; replaces them"),
    )


class StageMoveInputSchema(StrictSchema):
    stage_code = Text(required=True, validate=Length(max=32), metadata=describe("Target stage"))
    reason = Text(
        allow_none=True,
        validate=Length(max=1000),
        metadata=describe("Required to move back to an earlier stage"),
    )
    probability_override = fields.Integer(
        allow_none=True,
        strict=True,
        validate=Range(0, 100),
        metadata=describe("Sent: kept instead of the stage's probability (null: follow it)"),
    )
    loss_reason = Text(
        allow_none=True, validate=Length(max=32), metadata=describe("Required into a lost stage")
    )
    won_competitor_id = fields.UUID(
        allow_none=True, metadata=describe("The competitor that won, into a lost stage")
    )


class WinInputSchema(StrictSchema):
    reason = Text(allow_none=True, validate=Length(max=1000))


class LoseInputSchema(StrictSchema):
    loss_reason = Text(
        required=True, validate=Length(max=32), metadata=describe("From /api/sales/loss-reasons")
    )
    won_competitor_id = fields.UUID(allow_none=True, metadata=describe("The competitor that won"))
    lost_stage_code = Text(
        allow_none=True,
        validate=Length(max=32),
        metadata=describe("The process's first lost stage unless given"),
    )
    reason = Text(allow_none=True, validate=Length(max=1000))


class AbandonInputSchema(StrictSchema):
    reason = Text(required=True, validate=Length(max=1000))


class ReopenInputSchema(StrictSchema):
    reason = Text(allow_none=True, validate=Length(max=1000))


# -- opportunities: output ---------------------------------------------------------------------
class DealContactSchema(Schema):
    contact_id = fields.UUID()
    role = fields.String(validate=OneOf(CONTACT_ROLES))
    name = fields.String(allow_none=True)
    title = fields.String(allow_none=True)
    mobile = fields.String(allow_none=True)


class OpportunityLineSchema(Schema):
    line_no = fields.Integer()
    item_name = fields.String()
    spec = fields.String(allow_none=True)
    quantity = decimal_text("Quantity", "10.0000")
    expected_price = money_text("Expected unit price")
    amount = money_text("quantity × expected price, to the fen")


class OpportunityCompetitorSchema(Schema):
    competitor_id = fields.UUID()
    competitor_name = fields.String()
    offer = money_text("Their offer")
    threat_level = fields.String(validate=OneOf(THREAT_LEVELS))
    notes = fields.String(allow_none=True)


class OpportunitySchema(RecordSchema):
    code = fields.String(metadata=describe("OPP-<year>-<6 digits>", "OPP-2026-000001"))
    name = fields.String()
    customer_id = fields.UUID()
    customer_code = fields.String(allow_none=True)
    customer_name = fields.String(allow_none=True)
    owner_id = fields.String()
    department_id = fields.String(allow_none=True)
    region = fields.String(allow_none=True, metadata=describe("The customer's, for scoping"))
    category = fields.String(allow_none=True, metadata=describe("The customer's, for scoping"))
    process_id = fields.UUID(metadata=describe("The process revision the opportunity follows"))
    stage_code = fields.String()
    stage_name = fields.String(allow_none=True)
    probability = fields.Integer(metadata=describe("Win probability in percent (赢率)"))
    probability_override = fields.Integer(
        allow_none=True, metadata=describe("Set when the owner overrode the stage's probability")
    )
    status = fields.String(validate=OneOf(STATUSES))
    expected_amount = money_text("预计金额")
    weighted_amount = money_text("expected amount × probability / 100, to the fen")
    currency = fields.String()
    expected_close_date = fields.Date(allow_none=True)
    source_campaign_id = fields.String(allow_none=True)
    source_lead_id = fields.String(allow_none=True)
    description = fields.String(allow_none=True)
    tags = fields.List(fields.String())
    loss_reason = fields.String(allow_none=True)
    won_competitor_id = fields.UUID(allow_none=True)
    closed_at = UtcDateTime(allow_none=True)
    last_activity_at = UtcDateTime(
        allow_none=True, metadata=describe("When an activity was last done on it")
    )
    created_by = fields.String(allow_none=True)
    contacts = fields.List(
        fields.Nested(DealContactSchema), metadata=describe("Only in a single record")
    )
    lines = fields.List(
        fields.Nested(OpportunityLineSchema), metadata=describe("Only in a single record")
    )
    competitors = fields.List(
        fields.Nested(OpportunityCompetitorSchema), metadata=describe("Only in a single record")
    )
    version = fields.Integer(metadata=describe("Send back as If-Match / version to change it"))


class OpportunityPageSchema(Schema):
    items = fields.List(fields.Nested(OpportunitySchema))
    next_cursor = fields.String(allow_none=True)


class OpportunityQuerySchema(StrictSchema):
    """A page of opportunities: the filters, the order and where the page starts."""

    q = Text(
        allow_none=True,
        validate=Length(max=100),
        metadata=describe("Part of the name or code, or of the customer's name", "机电"),
    )
    status = CommaList(Text(validate=OneOf(STATUSES)), metadata=describe("One or more"))
    stage_code = CommaList(Text(validate=Length(max=32)), metadata=describe("One or more stages"))
    owner_id = Text(allow_none=True, validate=Length(max=64))
    department_id = Text(allow_none=True, validate=Length(max=64))
    include_sub_departments = fields.Boolean(
        load_default=False,
        metadata=describe(
            "With department_id: its sub-departments too, as the forecast counts a department"
        ),
    )
    customer_id = fields.UUID(allow_none=True)
    process_id = fields.UUID(allow_none=True)
    close_from = fields.Date(allow_none=True, metadata=describe("Expected close on or after"))
    close_to = fields.Date(allow_none=True, metadata=describe("Expected close on or before"))
    amount_min = Amount(allow_none=True, metadata=describe("Expected amount at least"))
    amount_max = Amount(allow_none=True, metadata=describe("Expected amount at most"))
    tags = CommaList(
        Text(validate=Length(max=MAX_TAG_LENGTH)),
        metadata=describe("Having all of these tags (repeat it or separate by commas)"),
    )
    idle_days = fields.Integer(
        allow_none=True,
        validate=Range(1, MAX_IDLE_DAYS),
        metadata=describe(
            "Only open opportunities with no activity done for this many days (counted from "
            "creation when none was ever done)"
        ),
    )
    sort = fields.String(load_default="-created_at", validate=OneOf(SORTS))
    cursor = Text(allow_none=True, metadata=describe("next_cursor of the previous page"))
    limit = fields.Integer(
        allow_none=True,
        validate=Range(min=1),
        metadata=describe("Page size: 50 unless given, 200 at most"),
    )


class StageVisitSchema(Schema):
    stage_code = fields.String()
    stage_name = fields.String(allow_none=True)
    process_id = fields.UUID()
    entered_at = UtcDateTime()
    left_at = UtcDateTime(allow_none=True, metadata=describe("None while it is still there"))
    days = decimal_text("Days spent in the stage on this stay, to one decimal", "3.5")
    moved_by = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)


class StageHistorySchema(Schema):
    opportunity_id = fields.UUID()
    items = fields.List(fields.Nested(StageVisitSchema), metadata=describe("Oldest first"))
    days_per_stage = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        metadata=describe("Stage code → days in it over every stay (decimal strings)"),
    )


class HistoryEntrySchema(Schema):
    id = fields.UUID()
    at = UtcDateTime()
    actor_id = fields.String(allow_none=True)
    entity_type = fields.String()
    entity_id = fields.String()
    change = fields.String(
        metadata=describe(
            "created, updated, stage_changed, won, lost, abandoned, reopened, customer_merged…"
        )
    )
    field = fields.String(allow_none=True)
    old = fields.Raw(allow_none=True)
    new = fields.Raw(allow_none=True)


class HistoryPageSchema(Schema):
    items = fields.List(fields.Nested(HistoryEntrySchema))
    next_cursor = fields.String(allow_none=True)


# -- sales processes ---------------------------------------------------------------------------
class StageInputSchema(StrictSchema):
    code = Text(
        required=True,
        validate=Regexp(CODE_PATTERN),
        metadata=describe("Stage code, unique in the process", "proposal"),
    )
    name = Text(
        required=True, validate=Length(max=100), metadata=describe("Stage name", "方案报价")
    )
    position = fields.Integer(
        strict=True, metadata=describe("Order of the stage; 10, 20, 30… unless given")
    )
    probability = fields.Integer(
        required=True,
        strict=True,
        validate=Range(0, 100),
        metadata=describe("Default win probability; 100 for the won stage, 0 for a lost one"),
    )
    required_fields = fields.List(
        fields.String(validate=OneOf(OPPORTUNITY_REQUIRABLE_FIELDS)),
        metadata=describe("Fields an opportunity must have filled to enter the stage"),
    )
    outcome = fields.String(
        validate=OneOf(OUTCOMES),
        metadata=describe("open unless given; exactly one won and at least one lost stage, last"),
    )


class SalesProcessInputSchema(StrictSchema):
    code = Text(
        required=True,
        validate=Regexp(CODE_PATTERN),
        metadata={CREATE_ONLY: True, **describe("Stays the same over revisions", "project")},
    )
    name = Text(
        required=True, validate=Length(max=100), metadata=describe("Process name", "项目型销售")
    )
    stages = fields.List(fields.Nested(StageInputSchema), required=True)
    allow_skip = fields.Boolean(
        metadata=describe("Whether a move may skip stages; false unless given")
    )
    active = fields.Boolean(metadata=describe("Whether new opportunities may follow it"))


class StageSchema(Schema):
    code = fields.String()
    name = fields.String()
    position = fields.Integer()
    probability = fields.Integer()
    required_fields = fields.List(fields.String())
    outcome = fields.String(validate=OneOf(OUTCOMES))


class SalesProcessSchema(RecordSchema):
    code = fields.String()
    name = fields.String()
    revision = fields.Integer(metadata=describe("The definition's number; an edit adds one"))
    allow_skip = fields.Boolean()
    active = fields.Boolean()
    superseded_by = fields.UUID(
        allow_none=True, metadata=describe("The revision that replaced this one, if any")
    )
    stages = fields.List(fields.Nested(StageSchema))
    version = fields.Integer(metadata=describe("Send back as If-Match / version to revise it"))


class SalesProcessQuerySchema(StrictSchema):
    include_inactive = fields.Boolean(load_default=False)


# -- competitors and loss reasons --------------------------------------------------------------
class CompetitorInputSchema(StrictSchema):
    name = Text(
        required=True,
        validate=Length(max=100),
        metadata=describe("Competitor name, unique", "西门子"),
    )
    strengths = Text(allow_none=True, validate=Length(max=2000))
    weaknesses = Text(allow_none=True, validate=Length(max=2000))
    main_products = Text(allow_none=True, validate=Length(max=2000))
    price_level = fields.String(allow_none=True, validate=OneOf(PRICE_LEVELS))
    active = fields.Boolean()


class CompetitorSchema(RecordSchema):
    name = fields.String()
    strengths = fields.String(allow_none=True)
    weaknesses = fields.String(allow_none=True)
    main_products = fields.String(allow_none=True)
    price_level = fields.String(allow_none=True, validate=OneOf(PRICE_LEVELS))
    active = fields.Boolean()
    version = fields.Integer(metadata=describe("Send back as If-Match / version to change it"))


class MasterListQuerySchema(StrictSchema):
    """Which entries of a master list (competitors, loss reasons)."""

    q = Text(allow_none=True, validate=Length(max=100), metadata=describe("Part of the name"))
    include_inactive = fields.Boolean(load_default=False)


class LossReasonInputSchema(StrictSchema):
    code = Text(
        required=True,
        validate=Regexp(CODE_PATTERN),
        metadata={CREATE_ONLY: True, **describe("Loss reason code", "price")},
    )
    name = Text(
        required=True,
        validate=Length(max=100),
        metadata=describe("What people read", "价格没有优势"),
    )
    active = fields.Boolean()


class LossReasonChangesSchema(StrictSchema):
    """The changes to a loss reason; its code stays."""

    name = Text(validate=Length(max=100))
    active = fields.Boolean()


class LossReasonSchema(Schema):
    code = fields.String()
    name = fields.String()
    active = fields.Boolean()


PUBLIC_SCHEMAS: dict[str, type[Schema]] = {
    # a nested schema comes before the schemas holding it
    "DealContact": DealContactSchema,
    "OpportunityLine": OpportunityLineSchema,
    "OpportunityCompetitor": OpportunityCompetitorSchema,
    "Opportunity": OpportunitySchema,
    "OpportunityPage": OpportunityPageSchema,
    "DealContactInput": DealContactInputSchema,
    "LineInput": LineInputSchema,
    "CompetitorEntryInput": CompetitorEntryInputSchema,
    "OpportunityInput": OpportunityInputSchema,
    "OpportunityQuery": OpportunityQuerySchema,
    "StageMoveInput": StageMoveInputSchema,
    "WinInput": WinInputSchema,
    "LoseInput": LoseInputSchema,
    "AbandonInput": AbandonInputSchema,
    "ReopenInput": ReopenInputSchema,
    "StageVisit": StageVisitSchema,
    "StageHistory": StageHistorySchema,
    "HistoryEntry": HistoryEntrySchema,
    "HistoryPage": HistoryPageSchema,
    "Stage": StageSchema,
    "SalesProcess": SalesProcessSchema,
    "StageInput": StageInputSchema,
    "SalesProcessInput": SalesProcessInputSchema,
    "SalesProcessQuery": SalesProcessQuerySchema,
    "Competitor": CompetitorSchema,
    "CompetitorInput": CompetitorInputSchema,
    "MasterListQuery": MasterListQuerySchema,
    "LossReason": LossReasonSchema,
    "LossReasonInput": LossReasonInputSchema,
    "LossReasonChanges": LossReasonChangesSchema,
}
