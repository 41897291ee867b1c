"""Events the sales service publishes on the ``sales.events`` exchange: each name with the
schema of its envelope's ``data`` (published through ``api_events``). Consumers must tolerate
fields they do not know.

Each event has a schema class of its own. Opportunity events carry the opportunity as it is
after the change, ``opportunity_stage_changed`` also the stage it left and the one it entered;
activity and expense events carry the record as the API shows it (``Activity``, ``Expense``).
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields

from sales.schemas.activities import ActivitySchema
from sales.schemas.erp import ORDER_REQUEST_SCHEMAS
from sales.schemas.expenses import ExpenseSchema
from sales.schemas.opportunities import OpportunitySchema
from sales.schemas.orders import ContractSchema, OrderSchema
from sales.schemas.quotes import QuoteSchema
from sales.schemas.receivables import InvoiceSchema, PaymentSchema

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


# -- opportunity events
class FieldChangeSchema(Schema):
    field = fields.String(required=True)
    old = fields.Raw(allow_none=True)
    new = fields.Raw(allow_none=True)


class OpportunityEventSchema(Schema):
    """The opportunity as it is after the change, as ``GET /api/opportunities/{id}`` shows
    it (with its contacts, lines and competitors)."""

    opportunity = fields.Nested(OpportunitySchema, required=True)


class OpportunityCreatedSchema(OpportunityEventSchema):
    pass


class OpportunityUpdatedSchema(OpportunityEventSchema):
    changes = fields.List(fields.Nested(FieldChangeSchema), required=True)


class OpportunityStageChangedSchema(OpportunityEventSchema):
    from_stage = fields.String(required=True)
    to_stage = fields.String(required=True)
    reason = fields.String(allow_none=True)


class OpportunityWonSchema(OpportunityEventSchema):
    pass


class OpportunityLostSchema(OpportunityEventSchema):
    """The loss reason and the competitor that won are the opportunity's ``loss_reason`` and
    ``won_competitor_id``."""


class OpportunityAbandonedSchema(OpportunityEventSchema):
    pass


class OpportunityReopenedSchema(OpportunityEventSchema):
    pass


OPPORTUNITY_EVENT_SCHEMAS: dict[str, type[Schema]] = {
    OPPORTUNITY_CREATED: OpportunityCreatedSchema,
    OPPORTUNITY_UPDATED: OpportunityUpdatedSchema,
    OPPORTUNITY_STAGE_CHANGED: OpportunityStageChangedSchema,
    OPPORTUNITY_WON: OpportunityWonSchema,
    OPPORTUNITY_LOST: OpportunityLostSchema,
    OPPORTUNITY_ABANDONED: OpportunityAbandonedSchema,
    OPPORTUNITY_REOPENED: OpportunityReopenedSchema,
}
STATUS_EVENTS = {
    "won": OPPORTUNITY_WON,
    "lost": OPPORTUNITY_LOST,
    "abandoned": OPPORTUNITY_ABANDONED,
    "open": OPPORTUNITY_REOPENED,
}
"""The event of an opportunity entering each status."""


def opportunity_created(opportunity: dict[str, Any]) -> dict[str, Any]:
    return {"opportunity": opportunity}


def opportunity_updated(
    opportunity: dict[str, Any], changes: list[dict[str, Any]]
) -> dict[str, Any]:
    return {"opportunity": opportunity, "changes": changes}


def opportunity_stage_changed(
    opportunity: dict[str, Any], from_stage: str, to_stage: str, reason: str | None
) -> dict[str, Any]:
    return {
        "opportunity": opportunity,
        "from_stage": from_stage,
        "to_stage": to_stage,
        "reason": reason,
    }


def opportunity_status_changed(opportunity: dict[str, Any]) -> dict[str, Any]:
    """The data of ``opportunity_won``, ``_lost``, ``_abandoned`` and ``_reopened``."""
    return {"opportunity": opportunity}


# -- end opportunity events


# -- activity and expense events
class ActivityEventSchema(Schema):
    activity = fields.Nested(ActivitySchema, required=True)


class ActivityPlannedSchema(ActivityEventSchema):
    """A planned activity was added."""


class ActivityCompletedSchema(ActivityEventSchema):
    """An activity was done: completed, or logged as done straight away."""


class ExpenseEventSchema(Schema):
    expense = fields.Nested(ExpenseSchema, required=True)


class ExpenseSubmittedSchema(ExpenseEventSchema):
    """An expense waits for its first approver (``expense.waiting_for``)."""


class ExpenseApprovedSchema(ExpenseEventSchema):
    """One level approved: ``expense.status`` is ``approved`` after the last level, else
    ``submitted`` with ``waiting_for`` the next approver."""


class ExpenseRejectedSchema(ExpenseEventSchema):
    """An approver rejected the expense, with a comment."""


class ExpensePaidSchema(ExpenseEventSchema):
    """An approved expense was paid."""


ACTIVITY_EVENT_SCHEMAS: dict[str, type[Schema]] = {
    ACTIVITY_PLANNED: ActivityPlannedSchema,
    ACTIVITY_COMPLETED: ActivityCompletedSchema,
    EXPENSE_SUBMITTED: ExpenseSubmittedSchema,
    EXPENSE_APPROVED: ExpenseApprovedSchema,
    EXPENSE_REJECTED: ExpenseRejectedSchema,
    EXPENSE_PAID: ExpensePaidSchema,
}


def activity_event(activity: dict[str, Any]) -> dict[str, Any]:
    return {"activity": activity}


def expense_event(expense: dict[str, Any]) -> dict[str, Any]:
    return {"expense": expense}


# -- end activity and expense events


# -- quote events
QUOTE_SUBMITTED = "quote_submitted"
QUOTE_APPROVED = "quote_approved"
QUOTE_REJECTED = "quote_rejected"
QUOTE_ACCEPTED = "quote_accepted"


class QuoteEventSchema(Schema):
    """The quote as ``GET /api/quotes/{id}`` shows it after the change, with its customer,
    owner and department at the top for routing."""

    quote = fields.Nested(QuoteSchema, required=True)
    customer_id = fields.UUID(required=True)
    owner_id = fields.String(required=True)
    department_id = fields.String(allow_none=True)


class QuoteSubmittedSchema(QuoteEventSchema):
    """A quote's discount waits for a manager's approval (``quote.waiting_for``); sent again
    when one approver passes it to the next manager up."""


class QuoteApprovedSchema(QuoteEventSchema):
    """A quote is approved: within its submitter's authority, or by the last approver."""


class QuoteRejectedSchema(QuoteEventSchema):
    """``by`` ``approver``: sent back to draft by the approver; ``customer``: the customer
    declined it (status rejected). ``reason`` says why."""

    by = fields.String(required=True)
    reason = fields.String(allow_none=True)


class QuoteAcceptedSchema(QuoteEventSchema):
    """The customer accepted the quote."""


QUOTE_EVENT_SCHEMAS: dict[str, type[Schema]] = {
    QUOTE_SUBMITTED: QuoteSubmittedSchema,
    QUOTE_APPROVED: QuoteApprovedSchema,
    QUOTE_REJECTED: QuoteRejectedSchema,
    QUOTE_ACCEPTED: QuoteAcceptedSchema,
}


def quote_event(quote: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "quote": quote,
        "customer_id": quote["customer_id"],
        "owner_id": quote["owner_id"],
        "department_id": quote["department_id"],
        **extra,
    }


# -- end quote events


# -- order and contract events
ORDER_CONFIRMED = "order_confirmed"
ORDER_CANCEL_REQUESTED = "order_cancel_requested"
ORDER_STATUS_CHANGED = "order_status_changed"
CONTRACT_SIGNED = "contract_signed"


class OrderStatusChangedSchema(Schema):
    """An order moved from one status to another (``source`` ``crm``: a person did it;
    ``erp``: an ERP event), with the order as ``GET /api/orders/{id}`` shows it after."""

    order = fields.Nested(OrderSchema, required=True)
    from_status = fields.String(allow_none=True)
    to_status = fields.String(required=True)
    source = fields.String(required=True)
    customer_id = fields.UUID(required=True)
    owner_id = fields.String(required=True)
    department_id = fields.String(allow_none=True)


class ContractSignedSchema(Schema):
    """A contract was signed, as ``GET /api/contracts/{id}`` shows it."""

    contract = fields.Nested(ContractSchema, required=True)
    customer_id = fields.UUID(required=True)
    owner_id = fields.String(required=True)
    department_id = fields.String(allow_none=True)


ORDER_EVENT_SCHEMAS: dict[str, type[Schema]] = {
    ORDER_CONFIRMED: ORDER_REQUEST_SCHEMAS[ORDER_CONFIRMED],
    ORDER_CANCEL_REQUESTED: ORDER_REQUEST_SCHEMAS[ORDER_CANCEL_REQUESTED],
    ORDER_STATUS_CHANGED: OrderStatusChangedSchema,
    CONTRACT_SIGNED: ContractSignedSchema,
}


# -- end order and contract events


# -- receivable events
INVOICE_OVERDUE = "invoice_overdue"
PAYMENT_RECEIVED = "payment_received"


class RoutedEventSchema(Schema):
    """What notify routes a receivable event by: the customer, its owner and department."""

    customer_id = fields.UUID(required=True)
    owner_id = fields.String(allow_none=True)
    department_id = fields.String(allow_none=True)


class InvoiceOverdueSchema(RoutedEventSchema):
    """An invoice still owing something crossed an overdue threshold (1, 30, 60 or 90 days
    past its due date); each threshold of an invoice is announced once."""

    invoice = fields.Nested(InvoiceSchema, required=True)
    days_overdue = fields.Integer(required=True)
    threshold = fields.Integer(required=True)


class PaymentReceivedEventSchema(RoutedEventSchema):
    """A payment from the ERP was applied (or a newer version of it): the payment with its
    allocations, applied or waiting for their invoice."""

    payment = fields.Nested(PaymentSchema, required=True)


RECEIVABLE_EVENT_SCHEMAS: dict[str, type[Schema]] = {
    INVOICE_OVERDUE: InvoiceOverdueSchema,
    PAYMENT_RECEIVED: PaymentReceivedEventSchema,
}


def invoice_overdue(invoice: dict[str, Any], days_overdue: int, threshold: int) -> dict[str, Any]:
    return {
        "invoice": invoice,
        "days_overdue": days_overdue,
        "threshold": threshold,
        "customer_id": invoice["customer_id"],
        "owner_id": invoice["owner_id"],
        "department_id": invoice["department_id"],
    }


def payment_received(payment: dict[str, Any]) -> dict[str, Any]:
    return {
        "payment": payment,
        "customer_id": payment["customer_id"],
        "owner_id": payment["owner_id"],
        "department_id": payment["department_id"],
    }


# -- end receivable events


EVENT_SCHEMAS: dict[str, type[Schema]] = {
    **OPPORTUNITY_EVENT_SCHEMAS,
    **ACTIVITY_EVENT_SCHEMAS,
    **QUOTE_EVENT_SCHEMAS,
    **ORDER_EVENT_SCHEMAS,
    **RECEIVABLE_EVENT_SCHEMAS,
}
