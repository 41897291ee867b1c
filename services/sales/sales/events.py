"""Events the sales service publishes on the ``sales.events`` exchange: each name with the
schema of its envelope's ``data`` (published through ``api_events``). Consumers must tolerate
fields they do not know.

Opportunity events carry the opportunity as it is after the change; ``opportunity_stage_changed``
also the stage it left and the one it entered. Activity and expense events carry the record.
"""

from __future__ import annotations

from marshmallow import Schema, fields

OPPORTUNITY_CREATED = "opportunity_created"
OPPORTUNITY_UPDATED = "opportunity_updated"
OPPORTUNITY_STAGE_CHANGED = "opportunity_stage_changed"
OPPORTUNITY_WON = "opportunity_won"
OPPORTUNITY_LOST = "opportunity_lost"
OPPORTUNITY_ABANDONED = "opportunity_abandoned"
OPPORTUNITY_REOPENED = "opportunity_reopened"
ACTIVITY_PLANNED = "activity_planned"
ACTIVITY_COMPLETED = "activity_completed"
EXPENSE_SUBMITTED = "expense_submitted"
EXPENSE_APPROVED = "expense_approved"
EXPENSE_REJECTED = "expense_rejected"
EXPENSE_PAID = "expense_paid"


class OpportunityEventSchema(Schema):
    opportunity = fields.Dict(required=True)


class StageChangedSchema(OpportunityEventSchema):
    from_stage = fields.String(required=True)
    to_stage = fields.String(required=True)


class ActivityEventSchema(Schema):
    activity = fields.Dict(required=True)


class ExpenseEventSchema(Schema):
    expense = fields.Dict(required=True)


EVENT_SCHEMAS: dict[str, type[Schema]] = {
    OPPORTUNITY_CREATED: OpportunityEventSchema,
    OPPORTUNITY_UPDATED: OpportunityEventSchema,
    OPPORTUNITY_STAGE_CHANGED: StageChangedSchema,
    OPPORTUNITY_WON: OpportunityEventSchema,
    OPPORTUNITY_LOST: OpportunityEventSchema,
    OPPORTUNITY_ABANDONED: OpportunityEventSchema,
    OPPORTUNITY_REOPENED: OpportunityEventSchema,
    ACTIVITY_PLANNED: ActivityEventSchema,
    ACTIVITY_COMPLETED: ActivityEventSchema,
    EXPENSE_SUBMITTED: ExpenseEventSchema,
    EXPENSE_APPROVED: ExpenseEventSchema,
    EXPENSE_REJECTED: ExpenseEventSchema,
    EXPENSE_PAID: ExpenseEventSchema,
}
