"""Queries on receivables (应收): invoices, payments, their allocations and credit limits; the
exposure the order credit check reads; and the records notify's schedules ask for (overdue
invoices, idle opportunities, pending expenses).

Invoices and payments are scoped by the customer's dimensions copied onto them, like every
sales record. Sums are taken in whole fen (integers add up exactly on every database) and per
currency: amounts in two currencies are never added.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    and_,
    case,
    cast,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from crm_common.errors import NotFound
from crm_common.pagination import Page, SortKey, keyset_page
from crm_common.scope import ScopeColumns
from sales.domain.money import DEFAULT_CURRENCY
from sales.models import (
    Activity,
    Customer,
    Department,
    Expense,
    ExpenseApproval,
    Opportunity,
    Person,
)
from sales.models.receivables import (
    CreditLimit,
    Invoice,
    InvoiceOverdueNotice,
    Payment,
    PaymentAllocation,
)

ZERO = Decimal("0.00")
INVOICE_SCOPE = ScopeColumns(
    owner=Invoice.owner_id,
    department=Invoice.department_id,
    region=Invoice.region,
    category=Invoice.category,
)
PAYMENT_SCOPE = ScopeColumns(
    owner=Payment.owner_id,
    department=Payment.department_id,
    region=Payment.region,
    category=Payment.category,
)


def fen(amount: Any) -> ColumnElement[int]:
    """An amount in whole fen."""
    return cast(func.round(amount * 100), BigInteger)


def from_fen(value: Any) -> Decimal:
    return (Decimal(int(value or 0)) / 100).quantize(Decimal("0.01"))


# -- the credit check ------------------------------------------------------------------------
@dataclass(frozen=True)
class CustomerExposure:
    """What a customer owes against its credit limit. ``outstanding`` sums the open invoices
    in ``currency`` (the limit's; CNY when the ERP gave no limit); payments on account are not
    subtracted."""

    credit_limit: Decimal | None
    currency: str | None
    outstanding: Decimal


def customer_exposure(
    session: Session, customer_id: uuid.UUID, currency: str | None = None
) -> CustomerExposure:
    """The customer's credit limit and what its open invoices owe in the limit's currency
    (or in ``currency`` when given and there is no limit)."""
    limit = session.get(CreditLimit, customer_id)
    counted = limit.currency if limit is not None else (currency or DEFAULT_CURRENCY)
    owed = session.scalar(
        select(func.sum(fen(Invoice.outstanding))).where(
            Invoice.customer_id == customer_id, Invoice.currency == counted
        )
    )
    return CustomerExposure(
        credit_limit=None if limit is None else limit.credit_limit,
        currency=None if limit is None else limit.currency,
        outstanding=from_fen(owed),
    )


# -- documents by number ---------------------------------------------------------------------
def invoice_by_no(session: Session, invoice_no: str) -> Invoice | None:
    return session.scalar(select(Invoice).where(Invoice.invoice_no == invoice_no))


def invoice_and_waiting(session: Session, invoice_no: str) -> tuple[Invoice | None, bool]:
    """The invoice of that number (None if unknown) and whether allocations name it, in one
    round trip when it is new (the usual case of an ERP stream)."""
    stmt = select(
        select(Invoice.id).where(Invoice.invoice_no == invoice_no).scalar_subquery(),
        select(PaymentAllocation.payment_no)
        .where(PaymentAllocation.invoice_no == invoice_no)
        .exists(),
    )
    row = session.execute(stmt).one()
    invoice = None if row[0] is None else session.get(Invoice, row[0])
    return invoice, bool(row[1])


def allocations_to_invoices(
    session: Session, invoice_nos: Iterable[str]
) -> dict[str, list[PaymentAllocation]]:
    """``allocations_to`` each of these invoice numbers."""
    found: dict[str, list[PaymentAllocation]] = {number: [] for number in invoice_nos}
    if found:
        stmt = (
            select(PaymentAllocation)
            .where(PaymentAllocation.invoice_no.in_(sorted(found)))
            .order_by(PaymentAllocation.invoice_no, PaymentAllocation.payment_no)
        )
        for allocation in session.scalars(stmt):
            found[allocation.invoice_no].append(allocation)
    return found


def payments_by_no(session: Session, payment_nos: Iterable[str]) -> dict[str, Payment]:
    wanted = sorted(set(payment_nos))
    if not wanted:
        return {}
    stmt = select(Payment).where(Payment.payment_no.in_(wanted))
    return {payment.payment_no: payment for payment in session.scalars(stmt)}


def payment_by_no(session: Session, payment_no: str) -> Payment | None:
    return session.scalar(select(Payment).where(Payment.payment_no == payment_no))


def allocations_to(session: Session, invoice_no: str) -> list[PaymentAllocation]:
    """Every allocation naming the invoice, applied or waiting, oldest payment number first."""
    stmt = (
        select(PaymentAllocation)
        .where(PaymentAllocation.invoice_no == invoice_no)
        .order_by(PaymentAllocation.payment_no)
    )
    return list(session.scalars(stmt))


def allocations_of(session: Session, payment_nos: Iterable[str]) -> dict[str, list[Any]]:
    """The allocations of each payment, by invoice number."""
    wanted = sorted(set(payment_nos))
    found: dict[str, list[Any]] = {no: [] for no in wanted}
    if not wanted:
        return found
    stmt = (
        select(PaymentAllocation)
        .where(PaymentAllocation.payment_no.in_(wanted))
        .order_by(PaymentAllocation.payment_no, PaymentAllocation.invoice_no)
    )
    for allocation in session.scalars(stmt):
        found[allocation.payment_no].append(allocation)
    return found


def invoices_by_no(session: Session, invoice_nos: Iterable[str]) -> dict[str, Invoice]:
    wanted = sorted(set(invoice_nos))
    if not wanted:
        return {}
    return {
        invoice.invoice_no: invoice
        for invoice in session.scalars(select(Invoice).where(Invoice.invoice_no.in_(wanted)))
    }


def get_invoice(session: Session, invoice_no: str, visible: ColumnElement[bool]) -> Invoice:
    found = session.scalar(select(Invoice).where(Invoice.invoice_no == invoice_no, visible))
    if found is None:
        raise NotFound.of("invoice", invoice_no)
    return found


def customer_names(session: Session, customer_ids: Iterable[Any]) -> dict[Any, str]:
    wanted = sorted({c for c in customer_ids if c is not None})
    if not wanted:
        return {}
    stmt = select(Customer.id, Customer.name).where(Customer.id.in_(wanted))
    return {row.id: row.name for row in session.execute(stmt)}


def owner_names(session: Session, user_ids: Iterable[Any]) -> dict[Any, str]:
    wanted = sorted({u for u in user_ids if u is not None})
    if not wanted:
        return {}
    stmt = select(Person.user_id, Person.name).where(Person.user_id.in_(wanted))
    return {row.user_id: row.name for row in session.execute(stmt)}


def department_names(session: Session, department_ids: Iterable[Any]) -> dict[Any, str]:
    wanted = sorted({d for d in department_ids if d is not None})
    if not wanted:
        return {}
    stmt = select(Department.id, Department.name).where(Department.id.in_(wanted))
    return {row.id: row.name for row in session.execute(stmt)}


# -- lists -----------------------------------------------------------------------------------
def invoice_conditions(query: dict[str, Any], today: date) -> list[ColumnElement[bool]]:
    """SQL conditions for a validated ``InvoiceQuerySchema`` (or aging/overdue query)."""
    conditions: list[ColumnElement[bool]] = []
    for name in ("customer_id", "owner_id", "department_id", "currency", "erp_order_no"):
        if query.get(name) is not None:
            conditions.append(getattr(Invoice, name) == query[name])
    status = query.get("status")
    if status == "open":
        conditions.append(Invoice.outstanding > 0)
    elif status == "paid":
        conditions.append(Invoice.outstanding == 0)
    elif status == "overdue":
        conditions.append(and_(Invoice.outstanding > 0, Invoice.due_date < today))
    if query.get("due_from") is not None:
        conditions.append(Invoice.due_date >= query["due_from"])
    if query.get("due_to") is not None:
        conditions.append(Invoice.due_date <= query["due_to"])
    if query.get("q"):
        conditions.append(Invoice.invoice_no.icontains(query["q"], autoescape=True))
    if query.get("over_allocated"):
        conditions.append(Invoice.allocated > Invoice.amount)
    return conditions


def invoices_page(
    session: Session, query: dict[str, Any], visible: ColumnElement[bool], today: date
) -> Page:
    sort: str = query["sort"]
    key = SortKey(Invoice.issued_at, Invoice.id, descending=sort.startswith("-"))
    stmt = select(Invoice).where(visible, *invoice_conditions(query, today))
    return keyset_page(session, stmt, key, query.get("cursor"), query.get("limit"))


def payments_page(session: Session, query: dict[str, Any], visible: ColumnElement[bool]) -> Page:
    conditions: list[ColumnElement[bool]] = [visible]
    for name in ("customer_id", "owner_id", "department_id"):
        if query.get(name) is not None:
            conditions.append(getattr(Payment, name) == query[name])
    if query.get("received_start") is not None:
        conditions.append(Payment.received_at >= query["received_start"])
    if query.get("received_end") is not None:
        conditions.append(Payment.received_at < query["received_end"])
    if query.get("q"):
        conditions.append(Payment.payment_no.icontains(query["q"], autoescape=True))
    sort: str = query["sort"]
    key = SortKey(Payment.received_at, Payment.id, descending=sort.startswith("-"))
    stmt = select(Payment).where(*conditions)
    return keyset_page(session, stmt, key, query.get("cursor"), query.get("limit"))


def waiting_page(
    session: Session, query: dict[str, Any]
) -> list[tuple[PaymentAllocation, Any, datetime]]:
    """Allocations waiting for their invoice, with their payment's customer and receipt
    time, the longest waiting first (at most ``limit``; ``cursor`` is a payment number to
    continue after)."""
    stmt = (
        select(PaymentAllocation, Payment.customer_id, Payment.received_at)
        .join(Payment, Payment.payment_no == PaymentAllocation.payment_no)
        .where(PaymentAllocation.applied.is_(False))
    )
    if query.get("invoice_no"):
        stmt = stmt.where(PaymentAllocation.invoice_no == query["invoice_no"])
    cursor = query.get("cursor")
    if cursor:
        payment_no, _, invoice_no = str(cursor).partition("|")
        stmt = stmt.where(
            or_(
                PaymentAllocation.payment_no > payment_no,
                and_(
                    PaymentAllocation.payment_no == payment_no,
                    PaymentAllocation.invoice_no > invoice_no,
                ),
            )
        )
    stmt = stmt.order_by(PaymentAllocation.payment_no, PaymentAllocation.invoice_no)
    found = session.execute(stmt.limit(int(query["size"]) + 1))
    return [(row[0], row[1], row[2]) for row in found]


# -- aging and overdue -----------------------------------------------------------------------
AGING_KEYS: dict[str, Any] = {
    "customer": Invoice.customer_id,
    "owner": Invoice.owner_id,
    "department": Invoice.department_id,
}


def owed_by_due_date(
    session: Session,
    by: str,
    conditions: Sequence[ColumnElement[bool]],
    end: datetime | None = None,
) -> list[tuple[Any, str, date, Decimal, int]]:
    """(key, currency, due date, outstanding, invoices) of the invoices still owing something
    that meet ``conditions``, summed per key, currency and due date (few rows: a report
    buckets them by due date). With ``end``, what was owed just before that instant: invoices
    issued before it, less the allocations of payments received before it (each invoice as
    its latest version tells it); without, what is owed now."""
    key = AGING_KEYS[by]
    if end is None:
        owed: ColumnElement[Any] = fen(Invoice.outstanding)
        where = [Invoice.outstanding > 0, *conditions]
        counted: ColumnElement[Any] = func.count()
        stmt = select(key, Invoice.currency, Invoice.due_date, func.sum(owed), counted).where(
            *where
        )
    else:
        paid = (
            select(
                PaymentAllocation.invoice_no.label("invoice_no"),
                func.sum(fen(PaymentAllocation.amount)).label("paid"),
            )
            .join(Payment, Payment.payment_no == PaymentAllocation.payment_no)
            .where(PaymentAllocation.applied.is_(True), Payment.received_at < end)
            .group_by(PaymentAllocation.invoice_no)
            .subquery()
        )
        left = fen(Invoice.amount) - func.coalesce(paid.c.paid, 0)
        owed = case((left > 0, left), else_=0)
        counted = func.sum(case((left > 0, 1), else_=0))
        stmt = (
            select(key, Invoice.currency, Invoice.due_date, func.sum(owed), counted)
            .select_from(Invoice)
            .outerjoin(paid, paid.c.invoice_no == Invoice.invoice_no)
            .where(Invoice.issued_at < end, *conditions)
        )
    stmt = stmt.group_by(key, Invoice.currency, Invoice.due_date)
    return [
        (row[0], str(row[1]), row[2], from_fen(row[3]), int(row[4] or 0))
        for row in session.execute(stmt)
        if row[3]
    ]


def overdue_invoices(
    session: Session,
    conditions: Sequence[ColumnElement[bool]],
    due_by: date,
    limit: int,
) -> list[Invoice]:
    """Invoices still owing something and due on or before ``due_by``, the longest overdue
    first (at most ``limit``)."""
    stmt = (
        select(Invoice)
        .where(Invoice.outstanding > 0, Invoice.due_date <= due_by, *conditions)
        .order_by(Invoice.due_date, Invoice.invoice_no)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def overdue_totals(
    session: Session, conditions: Sequence[ColumnElement[bool]], due_by: date
) -> list[tuple[str, Decimal, int]]:
    stmt = (
        select(Invoice.currency, func.sum(fen(Invoice.outstanding)), func.count())
        .where(Invoice.outstanding > 0, Invoice.due_date <= due_by, *conditions)
        .group_by(Invoice.currency)
        .order_by(Invoice.currency)
    )
    return [(str(row[0]), from_fen(row[1]), int(row[2])) for row in session.execute(stmt)]


def noticed_thresholds(session: Session, invoice_nos: Iterable[str]) -> dict[str, int]:
    """The highest overdue threshold announced for each invoice."""
    wanted = sorted(set(invoice_nos))
    if not wanted:
        return {}
    stmt = (
        select(InvoiceOverdueNotice.invoice_no, func.max(InvoiceOverdueNotice.threshold))
        .where(InvoiceOverdueNotice.invoice_no.in_(wanted))
        .group_by(InvoiceOverdueNotice.invoice_no)
    )
    return {row[0]: int(row[1]) for row in session.execute(stmt)}


def overdue_after(session: Session, due_by: date, after_no: str | None, size: int) -> list[Invoice]:
    """A batch of every invoice owing something and due on or before ``due_by``, in invoice
    number order after ``after_no`` (the overdue timer walks them all)."""
    stmt = select(Invoice).where(Invoice.outstanding > 0, Invoice.due_date <= due_by)
    if after_no is not None:
        stmt = stmt.where(Invoice.invoice_no > after_no)
    return list(session.scalars(stmt.order_by(Invoice.invoice_no).limit(size)))


# -- a customer's summary --------------------------------------------------------------------
def customer_balances(
    session: Session, customer_id: uuid.UUID, today: date
) -> dict[str, dict[str, Any]]:
    """Per currency: outstanding, overdue, open and overdue invoice counts."""
    overdue_now = and_(Invoice.outstanding > 0, Invoice.due_date < today)
    stmt = (
        select(
            Invoice.currency,
            func.sum(fen(Invoice.outstanding)),
            func.sum(fen(Invoice.outstanding)).filter(overdue_now),
            func.count().filter(Invoice.outstanding > 0),
            func.count().filter(overdue_now),
        )
        .where(Invoice.customer_id == customer_id)
        .group_by(Invoice.currency)
    )
    return {
        str(row[0]): {
            "outstanding": from_fen(row[1]),
            "overdue": from_fen(row[2]),
            "open_invoices": int(row[3] or 0),
            "overdue_invoices": int(row[4] or 0),
        }
        for row in session.execute(stmt)
    }


def customer_on_account(session: Session, customer_id: uuid.UUID) -> dict[str, Decimal]:
    """Per currency: payments' amounts not allocated to any invoice."""
    stmt = (
        select(Payment.currency, func.sum(fen(Payment.amount) - fen(Payment.allocated)))
        .where(Payment.customer_id == customer_id)
        .group_by(Payment.currency)
    )
    return {str(row[0]): from_fen(row[1]) for row in session.execute(stmt)}


def customer_waiting(session: Session, customer_id: uuid.UUID) -> dict[str, Decimal]:
    """Per currency: allocations of the customer's payments still waiting."""
    stmt = (
        select(PaymentAllocation.currency, func.sum(fen(PaymentAllocation.amount)))
        .join(Payment, Payment.payment_no == PaymentAllocation.payment_no)
        .where(Payment.customer_id == customer_id, PaymentAllocation.applied.is_(False))
        .group_by(PaymentAllocation.currency)
    )
    return {str(row[0]): from_fen(row[1]) for row in session.execute(stmt)}


def credit_limits(session: Session, customer_ids: Iterable[uuid.UUID]) -> dict[Any, CreditLimit]:
    wanted = sorted(set(customer_ids))
    if not wanted:
        return {}
    stmt = select(CreditLimit).where(CreditLimit.customer_id.in_(wanted))
    return {limit.customer_id: limit for limit in session.scalars(stmt)}


def outstanding_by_customer(
    session: Session, customer_ids: Iterable[uuid.UUID]
) -> dict[tuple[Any, str], Decimal]:
    wanted = sorted(set(customer_ids))
    if not wanted:
        return {}
    stmt = (
        select(Invoice.customer_id, Invoice.currency, func.sum(fen(Invoice.outstanding)))
        .where(Invoice.customer_id.in_(wanted))
        .group_by(Invoice.customer_id, Invoice.currency)
    )
    return {(row[0], str(row[1])): from_fen(row[2]) for row in session.execute(stmt)}


# -- collections -----------------------------------------------------------------------------
def payments_received(
    session: Session,
    conditions: Sequence[ColumnElement[bool]],
    start: datetime | None,
    end: datetime | None,
) -> list[tuple[Any, datetime, Decimal, str]]:
    """(customer id, received at, amount, currency) of the payments received from ``start``
    (inclusive) to ``end`` (exclusive) meeting ``conditions``."""
    stmt = select(Payment.customer_id, Payment.received_at, Payment.amount, Payment.currency)
    stmt = stmt.where(*conditions)
    if start is not None:
        stmt = stmt.where(Payment.received_at >= start)
    if end is not None:
        stmt = stmt.where(Payment.received_at < end)
    return [(row[0], row[1], row[2], str(row[3])) for row in session.execute(stmt)]


def customers_scope(session: Session, customer_ids: Iterable[Any]) -> dict[Any, Customer]:
    wanted = sorted({c for c in customer_ids if c is not None})
    if not wanted:
        return {}
    return {c.id: c for c in session.scalars(select(Customer).where(Customer.id.in_(wanted)))}


# -- what notify's schedules ask for ---------------------------------------------------------
def idle_opportunities(session: Session, before: datetime, limit: int) -> list[Opportunity]:
    """Open opportunities neither updated nor with an activity (planned, done or logged)
    since ``before``, the longest idle first."""
    recent_activity = (
        select(Activity.id)
        .where(
            Activity.opportunity_id == Opportunity.id,
            or_(Activity.updated_at >= before, Activity.created_at >= before),
        )
        .exists()
    )
    stmt = (
        select(Opportunity)
        .where(
            Opportunity.status == "open",
            Opportunity.updated_at < before,
            or_(Opportunity.last_activity_at.is_(None), Opportunity.last_activity_at < before),
            ~recent_activity,
        )
        .order_by(Opportunity.updated_at, Opportunity.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def pending_expenses(
    session: Session, before: datetime, limit: int
) -> list[tuple[Expense, ExpenseApproval | None]]:
    """Expenses submitted before ``before`` and still waiting, with the level waited for."""
    stmt = (
        select(Expense)
        .where(Expense.status == "submitted", Expense.created_at < before)
        .order_by(Expense.created_at, Expense.id)
        .limit(limit)
    )
    expenses = list(session.scalars(stmt))
    waiting: dict[Any, ExpenseApproval] = {}
    if expenses:
        approvals = session.scalars(
            select(ExpenseApproval)
            .where(
                ExpenseApproval.expense_id.in_([e.id for e in expenses]),
                ExpenseApproval.decision.is_(None),
            )
            .order_by(ExpenseApproval.expense_id, ExpenseApproval.level)
        )
        for approval in approvals:
            waiting.setdefault(approval.expense_id, approval)
    return [(expense, waiting.get(expense.id)) for expense in expenses]


# -- following the customer ------------------------------------------------------------------
SCOPE_FIELDS = ("owner_id", "department_id", "region", "category")
PRESENT_KEY = "receivables.present"


def transaction_root(session: Session) -> Any:
    """The outermost transaction of ``session`` (None outside one): what a per-transaction
    cache in ``session.info`` is keyed by."""
    root = session.get_transaction()
    while root is not None and root.parent is not None:
        root = root.parent
    return root


def receivables_present(session: Session) -> bool:
    """Whether any invoice or payment is stored, asked once per transaction (a fresh
    database catching up from the customer snapshot has none, and then nothing follows)."""
    root = transaction_root(session)
    cached = session.info.get(PRESENT_KEY)
    if cached is None or cached[0] is not root:
        present = session.scalar(
            select(or_(select(Invoice.id).exists(), select(Payment.id).exists()))
        )
        cached = (root, bool(present))
        session.info[PRESENT_KEY] = cached
    return bool(cached[1])


def receivables_added(session: Session) -> None:
    """An invoice or payment was added in this transaction."""
    session.info[PRESENT_KEY] = (transaction_root(session), True)


def follow_customer(session: Session, customer_id: uuid.UUID, scope: dict[str, Any]) -> None:
    """Give the customer's invoices and payments its scope values as they now are (``scope``
    names some of ``owner_id``, ``department_id``, ``region``, ``category``): receivables
    follow the customer's owner and department, as their aging and overdue lists do."""
    values = {name: scope[name] for name in SCOPE_FIELDS if name in scope}
    if not values or not receivables_present(session):
        return
    for model in (Invoice, Payment):
        columns = {name: getattr(model, name) for name in values}
        changed = or_(*(columns[name].is_distinct_from(value) for name, value in values.items()))
        session.execute(
            update(model)
            .where(model.customer_id == customer_id, changed)
            .values(**values)
            .execution_options(synchronize_session="fetch")
        )


# -- serializing writers of one document -----------------------------------------------------
def lock_key(kind: str, number: str) -> int:
    """A signed 64-bit advisory lock key for a document number."""
    digest = hashlib.blake2b(f"receivables:{kind}:{number}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_documents(session: Session, documents: Iterable[tuple[str, str]]) -> None:
    """Hold, until the transaction ends, a lock on each (kind, number) document (PostgreSQL
    advisory locks, taken in one order so that two writers do not wait on each other in a
    circle): an invoice and a payment allocated to it, applied at the same time by two
    consumers, then see each other, so no allocation is left waiting for an invoice that
    arrived, and two payments of one invoice both count. SQLite serializes writers anyway."""
    if session.get_bind().dialect.name != "postgresql":
        return
    keys = sorted({lock_key(kind, number) for kind, number in documents})
    if keys:
        session.execute(LOCK_KEYS, {"keys": keys})


LOCK_KEYS = text(
    "SELECT pg_advisory_xact_lock(key) FROM unnest(CAST(:keys AS bigint[])) AS key ORDER BY key"
)
"""PostgreSQL evaluates the (volatile) lock function after sorting: the locks are taken in
the keys' order."""


def try_lock(session: Session, name: str) -> bool:
    """Whether this transaction got the lock ``name`` (PostgreSQL: an advisory lock held until
    the transaction ends, not waited for: another process holding it is doing the same work).
    Always true on SQLite."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    return bool(session.scalar(select(func.pg_try_advisory_xact_lock(lock_key("job", name)))))


def move_to_survivor(
    session: Session, merged_id: uuid.UUID, survivor_id: uuid.UUID, survivor: Customer | None
) -> int:
    """Give a merged customer's invoices and payments to the customer that survived the merge,
    with its scope values; returns how many moved. Credit limits stay: the ERP sets the
    survivor's."""
    values: dict[str, Any] = {"customer_id": survivor_id}
    if survivor is not None:
        values.update({name: getattr(survivor, name) for name in SCOPE_FIELDS})
    moved = 0
    for model in (Invoice, Payment):
        result = session.execute(
            update(model)
            .where(model.customer_id == merged_id)
            .values(**values)
            .execution_options(synchronize_session="fetch")
        )
        moved += int(getattr(result, "rowcount", 0) or 0)
    return moved
