"""Applying the ERP's receivable events: ``invoice_issued``, ``payment_received`` and
``customer_credit_updated``.

``apply_receivable_event`` runs inside the caller's transaction (it never commits). A document
is known by its number: a redelivered or repeated event changes nothing, and of two versions of
one invoice, payment or credit limit the one that occurred later in the ERP wins, whatever order
they arrive in (``sales.domain.receivables.supersedes``). An allocation to an invoice not known
yet (or known in another currency) waits and counts nowhere; it is applied when its invoice
arrives. An invoice keeps what is allocated to it and what it still owes, so nothing is summed
again on a read and nothing is counted twice.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from crm_common.application import EventSink
from crm_common.errors import ValidationFailed
from crm_common.models import utcnow
from sales import events as sales_events
from sales.application.receivables import dump_payment
from sales.domain import receivables as rules
from sales.domain.money import FEN, MAX_INTEGER_DIGITS
from sales.models import Customer
from sales.models.receivables import CreditLimit, Invoice, Payment, PaymentAllocation
from sales.repository import read_models
from sales.repository import receivables as rows
from sales.repository.erp import batch_documents, keep_batch_documents

INVOICE_ISSUED = "invoice_issued"
PAYMENT_RECEIVED = "payment_received"
CUSTOMER_CREDIT_UPDATED = "customer_credit_updated"
RECEIVABLE_EVENTS = frozenset({INVOICE_ISSUED, PAYMENT_RECEIVED, CUSTOMER_CREDIT_UPDATED})
ZERO = Decimal("0.00")

log = logging.getLogger(__name__)


def aware(moment: datetime) -> datetime:
    """SQLite gives timestamps back without their zone: they are UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def exact_amount(value: Decimal, field: str, *, positive: bool = False) -> Decimal:
    """An amount the ERP sent, exact to the fen (never rounded here: a rounded amount would
    no longer add up to what the ERP holds)."""
    if not value.is_finite() or value != value.quantize(FEN):
        raise ValidationFailed.on(field, "must be an amount in fen (two decimal places)")
    if value < 0 or (positive and value == 0):
        raise ValidationFailed.on(
            field, "must be more than zero" if positive else "cannot be negative"
        )
    if abs(value) >= Decimal(10) ** MAX_INTEGER_DIGITS:
        raise ValidationFailed.on(field, f"has more than {MAX_INTEGER_DIGITS} digits")
    return value.quantize(FEN)


@dataclass(frozen=True)
class CustomerFacts:
    """What an invoice or payment copies from sales' copy of its customer: the customer it
    belongs to (the survivor, for a customer merged into another), its name and scope."""

    customer_id: uuid.UUID
    name: str | None
    scope: dict[str, Any]


CUSTOMERS_KEY = "receivables.customers"


def customer_facts(session: Session, customer_id: uuid.UUID) -> CustomerFacts:
    """The customer's name and scope values, read once per transaction (an ERP batch names
    the same customers again and again)."""
    known = _known_customers(session)
    if customer_id not in known:
        customer = session.get(Customer, customer_id)
        if customer is not None and customer.merged_into_id is not None:
            customer = session.get(Customer, read_models.survivor_of(session, customer_id))
        known[customer_id] = _facts(customer, customer_id)
    return known[customer_id]


def _known_customers(session: Session) -> dict[uuid.UUID, CustomerFacts]:
    root = rows.transaction_root(session)
    cached = session.info.get(CUSTOMERS_KEY)
    if cached is None or cached[0] is not root:
        cached = (root, {})
        session.info[CUSTOMERS_KEY] = cached
    known: dict[uuid.UUID, CustomerFacts] = cached[1]
    return known


def _facts(customer: Customer | None, customer_id: uuid.UUID) -> CustomerFacts:
    return CustomerFacts(
        customer.id if customer else customer_id,
        customer.name if customer else None,
        scope_of(customer),
    )


def scope_of(customer: Customer | None) -> dict[str, Any]:
    """The customer's scope values, copied onto its invoices and payments."""
    return {
        "owner_id": customer.owner_id if customer else None,
        "department_id": customer.department_id if customer else None,
        "region": customer.region if customer else None,
        "category": customer.category if customer else None,
    }


DOCUMENTS_KEY = "receivables"


@dataclass
class ReceivableDocuments:
    """What a batch of receivable events reads, loaded and locked in one query per kind
    (``load_receivable_documents``) and kept current as the batch applies. A number missing
    from a mapping was not loaded: it is looked up in the database."""

    invoices: dict[str, Invoice | None]
    allocations: dict[str, list[PaymentAllocation]]
    """The allocations naming each invoice of the batch's invoice events."""
    payments: dict[str, Payment | None]
    credit_limits: dict[uuid.UUID, CreditLimit | None]


def load_receivable_documents(
    session: Session,
    events: Sequence[tuple[str, str, Mapping[str, Any]]],
    customer_ids: Iterable[uuid.UUID],
) -> None:
    """Lock, load and keep for the batch (``sales.repository.erp.keep_batch_documents``) the
    invoices and payments the batch's events (``(event id, type, raw data)``) name, with
    the facts of ``customer_ids`` (those the events matched) and their credit limits."""
    types = {event_type for _, event_type, _ in events}
    if not types & RECEIVABLE_EVENTS:
        return
    wanted = set(customer_ids)
    known = _known_customers(session)
    for customer in rows.customers_scope(session, wanted - set(known)).values():
        if customer.merged_into_id is None:
            known[customer.id] = _facts(customer, customer.id)
    limits = rows.credit_limits(session, wanted) if CUSTOMER_CREDIT_UPDATED in types else {}
    issued: set[str] = set()
    invoice_nos: set[str] = set()
    payment_nos: set[str] = set()
    for _, event_type, data in events:
        if not isinstance(data, Mapping):
            continue
        if event_type == INVOICE_ISSUED and isinstance(data.get("invoice_no"), str):
            issued.add(data["invoice_no"])
        elif event_type == PAYMENT_RECEIVED and isinstance(data.get("payment_no"), str):
            payment_nos.add(data["payment_no"])
            for allocation in data.get("allocations") or ():
                if isinstance(allocation, Mapping) and isinstance(
                    allocation.get("invoice_no"), str
                ):
                    invoice_nos.add(allocation["invoice_no"])
    invoice_nos |= issued
    rows.lock_documents(
        session,
        [
            *(("invoice", number) for number in invoice_nos),
            *(("payment", number) for number in payment_nos),
        ],
    )
    invoices = rows.invoices_by_no(session, invoice_nos)
    payments = rows.payments_by_no(session, payment_nos)
    allocations = rows.allocations_to_invoices(session, issued)
    keep_batch_documents(
        session,
        DOCUMENTS_KEY,
        ReceivableDocuments(
            invoices={number: invoices.get(number) for number in invoice_nos},
            allocations=allocations,
            payments={number: payments.get(number) for number in payment_nos},
            credit_limits={
                customer_id: limits.get(customer_id)
                for customer_id in (wanted if CUSTOMER_CREDIT_UPDATED in types else ())
            },
        ),
    )


def apply_receivable_event(
    session: Session,
    events: EventSink,
    event_type: str,
    data: dict[str, Any],
    occurred_at: datetime,
    event_id: str,
    customer_id: uuid.UUID,
) -> None:
    """Apply one receivable event of the ERP (``data`` as ``ERP_EVENT_SCHEMAS`` loads it) for
    the matched customer; ``ValidationFailed`` for data that can never apply."""
    if event_type == INVOICE_ISSUED:
        keep_invoice(session, data, occurred_at, event_id, customer_id)
    elif event_type == PAYMENT_RECEIVED:
        keep_payment(session, events, data, occurred_at, event_id, customer_id)
    elif event_type == CUSTOMER_CREDIT_UPDATED:
        keep_credit_limit(session, data, occurred_at, event_id, customer_id)
    else:
        raise ValidationFailed.on("type", f"{event_type} is not a receivable event")


# -- invoices --------------------------------------------------------------------------------
def keep_invoice(
    session: Session,
    data: dict[str, Any],
    occurred_at: datetime,
    event_id: str,
    customer_id: uuid.UUID,
) -> Invoice | None:
    """The invoice as this version tells it, if it is newer than the one kept; its balance
    follows from the allocations to it (waiting ones included, now that it is known)."""
    amount = exact_amount(data["amount"], "amount")
    tax_amount = exact_amount(data["tax_amount"], "tax_amount")
    if tax_amount > amount:
        raise ValidationFailed.on("tax_amount", "is more than the invoice's amount")
    number = data["invoice_no"]
    documents: ReceivableDocuments | None = batch_documents(session, DOCUMENTS_KEY)
    allocations: list[PaymentAllocation] | None = None
    if documents is not None and number in documents.allocations:
        invoice, allocations = documents.invoices[number], documents.allocations[number]
        waited_for = bool(allocations)
    else:
        rows.lock_documents(session, [("invoice", number)])
        invoice, waited_for = rows.invoice_and_waiting(session, number)
    if invoice is not None and not rules.supersedes(occurred_at, aware(invoice.occurred_at)):
        return None
    now = utcnow()
    customer = customer_facts(session, customer_id)
    values = {
        "erp_order_no": data.get("erp_order_no"),
        "customer_id": customer.customer_id,
        **customer.scope,
        "issued_at": data["issued_at"],
        "due_date": data["due_date"],
        "amount": amount,
        "tax_amount": tax_amount,
        "currency": data["currency"],
        "occurred_at": occurred_at,
        "event_id": event_id,
        "updated_at": now,
    }
    if invoice is None:
        invoice = Invoice(
            invoice_no=data["invoice_no"], allocated=ZERO, outstanding=amount, **values
        )
        session.add(invoice)
        rows.receivables_added(session)
        if documents is not None:
            documents.invoices[number] = invoice
    else:
        for name, value in values.items():
            setattr(invoice, name, value)
    if waited_for or invoice.allocated:
        settle(session, invoice, now, allocations)
    else:
        set_balance(invoice, ZERO)
    return invoice


def settle(
    session: Session,
    invoice: Invoice,
    now: datetime,
    allocations: list[PaymentAllocation] | None = None,
) -> None:
    """Count on the invoice every allocation to it in its currency (``allocations``, else
    those the database holds); the others wait."""
    allocated = ZERO
    if allocations is None:
        allocations = rows.allocations_to(session, invoice.invoice_no)
    for allocation in allocations:
        if allocation.currency == invoice.currency:
            allocated += allocation.amount
            if not allocation.applied:
                allocation.applied, allocation.reason, allocation.applied_at = True, None, now
        elif allocation.applied or allocation.reason != rules.WaitingReason.CURRENCY_MISMATCH:
            allocation.applied, allocation.applied_at = False, None
            allocation.reason = rules.WaitingReason.CURRENCY_MISMATCH.value
            allocation.waiting_since = allocation.waiting_since or now
    set_balance(invoice, allocated)


def set_balance(invoice: Invoice, allocated: Decimal) -> None:
    invoice.allocated = allocated
    invoice.outstanding = max(invoice.amount - allocated, ZERO)
    if allocated > invoice.amount:
        log.warning(
            "invoice %s is over-allocated: %s allocated to %s %s",
            invoice.invoice_no,
            allocated,
            invoice.amount,
            invoice.currency,
        )


# -- payments --------------------------------------------------------------------------------
def payment_of(
    data: dict[str, Any], occurred_at: datetime, customer_id: uuid.UUID
) -> rules.Payment:
    """The payment checked: exact positive amounts, no more allocated than received; two
    allocations to one invoice are one."""
    amounts: dict[str, Decimal] = {}
    for number, allocation in enumerate(data.get("allocations") or [], start=1):
        amount = exact_amount(allocation["amount"], f"allocations.{number}.amount", positive=True)
        amounts[allocation["invoice_no"]] = amounts.get(allocation["invoice_no"], ZERO) + amount
    payment = rules.Payment(
        payment_no=data["payment_no"],
        customer_id=str(customer_id),
        amount=exact_amount(data["amount"], "amount", positive=True),
        received_on=data["received_at"].date(),
        occurred_at=occurred_at,
        allocations=tuple(rules.Allocation(no, amount) for no, amount in amounts.items()),
        currency=data["currency"],
    )
    rules.check_payment(payment)
    return payment


def keep_payment(
    session: Session,
    events: EventSink,
    data: dict[str, Any],
    occurred_at: datetime,
    event_id: str,
    customer_id: uuid.UUID,
) -> Payment | None:
    """The payment as this version tells it, if newer than the one kept, and its allocations
    applied to the invoices known in its currency; ``payment_received`` announces it."""
    checked = payment_of(data, occurred_at, customer_id)
    documents: ReceivableDocuments | None = batch_documents(session, DOCUMENTS_KEY)
    if documents is not None and (
        checked.payment_no not in documents.payments
        or any(a.invoice_no not in documents.invoices for a in checked.allocations)
    ):
        documents = None
    if documents is None:
        rows.lock_documents(
            session,
            [
                ("payment", checked.payment_no),
                *(("invoice", a.invoice_no) for a in checked.allocations),
            ],
        )
        payment = rows.payment_by_no(session, checked.payment_no)
    else:
        payment = documents.payments[checked.payment_no]
    if payment is not None and not rules.supersedes(occurred_at, aware(payment.occurred_at)):
        return None
    now = utcnow()
    customer = customer_facts(session, customer_id)
    values = {
        "customer_id": customer.customer_id,
        **customer.scope,
        "received_at": data["received_at"],
        "amount": checked.amount,
        "allocated": checked.amount - checked.unallocated,
        "currency": checked.currency,
        "occurred_at": occurred_at,
        "event_id": event_id,
        "updated_at": now,
    }
    touched: set[str] = set()
    if payment is None:
        payment = Payment(id=uuid.uuid4(), payment_no=checked.payment_no, **values)
        session.add(payment)
        rows.receivables_added(session)
        if documents is not None:
            documents.payments[checked.payment_no] = payment
    else:
        for name, value in values.items():
            setattr(payment, name, value)
        earlier = rows.allocations_of(session, [payment.payment_no])[payment.payment_no]
        rows.lock_documents(session, [("invoice", old.invoice_no) for old in earlier])
        for old in earlier:
            touched.add(old.invoice_no)
            session.delete(old)
            if documents is not None:  # read from the database again, as it is now
                documents.allocations.pop(old.invoice_no, None)
        session.flush()
    numbers = [a.invoice_no for a in checked.allocations]
    if documents is None:
        invoices = rows.invoices_by_no(session, numbers)
    else:
        invoices = {n: i for n in numbers if (i := documents.invoices[n]) is not None}
    allocations = []
    for allocation in checked.allocations:
        invoice = invoices.get(allocation.invoice_no)
        reason = None
        if invoice is None:
            reason = rules.WaitingReason.UNKNOWN_INVOICE
        elif invoice.currency != checked.currency:
            reason = rules.WaitingReason.CURRENCY_MISMATCH
        row = PaymentAllocation(
            payment_no=checked.payment_no,
            invoice_no=allocation.invoice_no,
            amount=allocation.amount,
            currency=checked.currency,
            applied=reason is None,
            reason=None if reason is None else reason.value,
            waiting_since=None if reason is None else now,
            applied_at=now if reason is None else None,
        )
        allocations.append(row)
        session.add(row)
        if documents is not None and allocation.invoice_no in documents.allocations:
            documents.allocations[allocation.invoice_no].append(row)
        if invoice is not None and reason is None and allocation.invoice_no not in touched:
            set_balance(invoice, invoice.allocated + allocation.amount)
    if touched:
        session.flush()
        for invoice in rows.invoices_by_no(session, touched).values():
            settle(session, invoice, now)
    names = {customer.customer_id: customer.name} if customer.name is not None else {}
    dumped = dump_payment(payment, allocations, names)
    events.add(session, sales_events.PAYMENT_RECEIVED, sales_events.payment_received(dumped))
    return payment


# -- credit limits ---------------------------------------------------------------------------
def keep_credit_limit(
    session: Session,
    data: dict[str, Any],
    occurred_at: datetime,
    event_id: str,
    customer_id: uuid.UUID,
) -> CreditLimit | None:
    limit_amount = exact_amount(data["credit_limit"], "credit_limit")
    customer_id = customer_facts(session, customer_id).customer_id
    documents: ReceivableDocuments | None = batch_documents(session, DOCUMENTS_KEY)
    if documents is not None and customer_id in documents.credit_limits:
        limit = documents.credit_limits[customer_id]
    else:
        limit = session.get(CreditLimit, customer_id)
    if limit is not None and not rules.supersedes(occurred_at, aware(limit.occurred_at)):
        return None
    values = {
        "credit_limit": limit_amount,
        "currency": data["currency"],
        "occurred_at": occurred_at,
        "event_id": event_id,
        "updated_at": utcnow(),
    }
    if limit is None:
        limit = CreditLimit(customer_id=customer_id, **values)
        session.add(limit)
        if documents is not None:
            documents.credit_limits[customer_id] = limit
    else:
        for name, value in values.items():
            setattr(limit, name, value)
    return limit
