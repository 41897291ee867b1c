"""Receivables (应收): what each invoice still owes, aging, overdue lists and collections
against a contract's payment milestones.

Invoices and payments come from the ERP and may arrive twice, late or out of order. A document
is known by its number; of two versions of one document the one that occurred later in the ERP
wins, so applying the same stream in any order gives the same balances. An allocation to an
invoice not (yet) known is kept waiting, never dropped and never counted.

An invoice's ``amount`` is the total the customer owes, tax included (价税合计); ``tax_amount``
is the VAT part of it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Protocol, TypeVar

from crm_common.errors import ValidationFailed
from sales.domain.contracts import PaymentMilestone
from sales.domain.money import DEFAULT_CURRENCY

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Invoice:
    invoice_no: str
    customer_id: str
    amount: Decimal
    issued_on: dt.date
    due_date: dt.date
    occurred_at: dt.datetime
    tax_amount: Decimal = ZERO
    currency: str = DEFAULT_CURRENCY
    erp_order_no: str | None = None


@dataclass(frozen=True)
class Allocation:
    invoice_no: str
    amount: Decimal


@dataclass(frozen=True)
class Payment:
    payment_no: str
    customer_id: str
    amount: Decimal
    received_on: dt.date
    occurred_at: dt.datetime
    allocations: tuple[Allocation, ...] = ()
    currency: str = DEFAULT_CURRENCY

    @property
    def unallocated(self) -> Decimal:
        """Money received and not allocated to any invoice (a prepayment, say)."""
        return self.amount - sum((a.amount for a in self.allocations), ZERO)


def check_payment(payment: Payment) -> None:
    """A positive amount, positive allocations, and no more allocated than received."""
    errors: dict[str, list[str]] = {}
    if payment.amount <= 0:
        errors["amount"] = ["must be greater than zero"]
    for number, allocation in enumerate(payment.allocations, start=1):
        if allocation.amount <= 0:
            errors[f"allocations.{number}.amount"] = ["must be greater than zero"]
    if payment.unallocated < 0:
        errors.setdefault("allocations", []).append(
            f"allocate {payment.amount - payment.unallocated}, more than the payment's "
            f"{payment.amount}"
        )
    if errors:
        raise ValidationFailed(f"payment {payment.payment_no} is not valid", {"errors": errors})


# -- versions ------------------------------------------------------------------------------
class Versioned(Protocol):
    @property
    def occurred_at(self) -> dt.datetime: ...


DocumentT = TypeVar("DocumentT", bound=Versioned)


def supersedes(incoming: dt.datetime, current: dt.datetime | None) -> bool:
    """Whether a version that occurred at ``incoming`` replaces the one kept from ``current``
    (``None``: nothing kept yet). A tie keeps what is there, so a redelivery changes nothing."""
    return current is None or incoming > current


def latest_versions(
    documents: Iterable[DocumentT], number: Callable[[DocumentT], str]
) -> dict[str, DocumentT]:
    """One version per document number: the one that occurred last."""
    kept: dict[str, DocumentT] = {}
    for document in documents:
        key = number(document)
        current = kept.get(key)
        if supersedes(document.occurred_at, None if current is None else current.occurred_at):
            kept[key] = document
    return kept


# -- balances ------------------------------------------------------------------------------
@dataclass(frozen=True)
class InvoiceBalance:
    invoice: Invoice
    paid: Decimal

    @property
    def outstanding(self) -> Decimal:
        """Negative when more was allocated than invoiced."""
        return self.invoice.amount - self.paid


class WaitingReason(StrEnum):
    UNKNOWN_INVOICE = "unknown_invoice"
    CURRENCY_MISMATCH = "currency_mismatch"


@dataclass(frozen=True)
class WaitingAllocation:
    payment_no: str
    invoice_no: str
    amount: Decimal
    reason: WaitingReason


@dataclass(frozen=True)
class Receivables:
    balances: Mapping[str, InvoiceBalance]
    """By invoice number."""
    waiting: tuple[WaitingAllocation, ...]
    unallocated: Mapping[str, Decimal]
    """Money received and not allocated, by payment number (only payments that have some)."""

    def outstanding_by_customer(self) -> dict[str, Decimal]:
        totals: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for balance in self.balances.values():
            totals[balance.invoice.customer_id] += balance.outstanding
        return dict(totals)


def receivables(
    invoices: Iterable[Invoice], payments: Iterable[Payment], *, as_of: dt.date | None = None
) -> Receivables:
    """Balances from the latest version of every invoice and payment; with ``as_of``, only
    invoices issued and payments received by that day count."""
    known = latest_versions(invoices, lambda invoice: invoice.invoice_no)
    received = latest_versions(payments, lambda payment: payment.payment_no)
    if as_of is not None:
        known = {no: inv for no, inv in known.items() if inv.issued_on <= as_of}
        received = {no: pay for no, pay in received.items() if pay.received_on <= as_of}
    paid: dict[str, Decimal] = defaultdict(lambda: ZERO)
    waiting: list[WaitingAllocation] = []
    unallocated: dict[str, Decimal] = {}
    for payment_no in sorted(received):
        payment = received[payment_no]
        if payment.unallocated:
            unallocated[payment_no] = payment.unallocated
        for allocation in payment.allocations:
            invoice = known.get(allocation.invoice_no)
            reason = None
            if invoice is None:
                reason = WaitingReason.UNKNOWN_INVOICE
            elif invoice.currency != payment.currency:
                reason = WaitingReason.CURRENCY_MISMATCH
            if reason is None:
                paid[allocation.invoice_no] += allocation.amount
            else:
                waiting.append(
                    WaitingAllocation(payment_no, allocation.invoice_no, allocation.amount, reason)
                )
    return Receivables(
        balances={no: InvoiceBalance(known[no], paid[no]) for no in sorted(known)},
        waiting=tuple(waiting),
        unallocated=unallocated,
    )


# -- aging and overdue ---------------------------------------------------------------------
class AgingBucket(StrEnum):
    NOT_DUE = "not_due"
    DAYS_1_30 = "1-30"
    DAYS_31_60 = "31-60"
    DAYS_61_90 = "61-90"
    OVER_90 = "over_90"


BUCKET_LABELS = {
    AgingBucket.NOT_DUE: "未到期",
    AgingBucket.DAYS_1_30: "逾期1-30天",
    AgingBucket.DAYS_31_60: "逾期31-60天",
    AgingBucket.DAYS_61_90: "逾期61-90天",
    AgingBucket.OVER_90: "逾期90天以上",
}


def days_past_due(due_date: dt.date, as_of: dt.date) -> int:
    """Zero or negative while not due: an invoice is due through its due date."""
    return (as_of - due_date).days


def aging_bucket(due_date: dt.date, as_of: dt.date) -> AgingBucket:
    days = days_past_due(due_date, as_of)
    if days <= 0:
        return AgingBucket.NOT_DUE
    if days <= 30:
        return AgingBucket.DAYS_1_30
    if days <= 60:
        return AgingBucket.DAYS_31_60
    if days <= 90:
        return AgingBucket.DAYS_61_90
    return AgingBucket.OVER_90


@dataclass(frozen=True)
class AgingRow:
    key: str
    amounts: Mapping[AgingBucket, Decimal]
    """Every bucket, zero where nothing is owed."""
    invoice_count: int

    @property
    def total(self) -> Decimal:
        return sum(self.amounts.values(), ZERO)


def aging(
    balances: Iterable[InvoiceBalance],
    as_of: dt.date,
    key: Callable[[Invoice], str] = lambda invoice: invoice.customer_id,
) -> list[AgingRow]:
    """Outstanding amounts by aging bucket, one row per ``key`` (the customer by default; map
    the invoice to an owner or a department for those reports), rows in key order. Only
    invoices that still owe something count."""
    amounts: dict[str, dict[AgingBucket, Decimal]] = {}
    counts: dict[str, int] = defaultdict(int)
    for balance in balances:
        if balance.outstanding <= 0:
            continue
        group = key(balance.invoice)
        row = amounts.setdefault(group, dict.fromkeys(AgingBucket, ZERO))
        row[aging_bucket(balance.invoice.due_date, as_of)] += balance.outstanding
        counts[group] += 1
    return [AgingRow(group, amounts[group], counts[group]) for group in sorted(amounts)]


@dataclass(frozen=True)
class OverdueInvoice:
    invoice_no: str
    customer_id: str
    due_date: dt.date
    outstanding: Decimal
    days_overdue: int
    bucket: AgingBucket


def overdue(
    balances: Iterable[InvoiceBalance], as_of: dt.date, *, min_days: int = 1
) -> list[OverdueInvoice]:
    """Invoices owing something at least ``min_days`` past due, the longest overdue first."""
    found = [
        OverdueInvoice(
            invoice_no=balance.invoice.invoice_no,
            customer_id=balance.invoice.customer_id,
            due_date=balance.invoice.due_date,
            outstanding=balance.outstanding,
            days_overdue=days_past_due(balance.invoice.due_date, as_of),
            bucket=aging_bucket(balance.invoice.due_date, as_of),
        )
        for balance in balances
        if balance.outstanding > 0
        and days_past_due(balance.invoice.due_date, as_of) >= max(min_days, 1)
    ]
    return sorted(found, key=lambda item: (-item.days_overdue, item.invoice_no))


# -- collections against a contract's milestones -------------------------------------------
@dataclass(frozen=True)
class Collection:
    """Money received toward one contract."""

    received_on: dt.date
    amount: Decimal


class MilestoneState(StrEnum):
    COLLECTED = "collected"
    NOT_DUE = "not_due"
    OVERDUE = "overdue"


@dataclass(frozen=True)
class MilestoneProgress:
    milestone: PaymentMilestone
    collected: Decimal
    state: MilestoneState
    collected_on: dt.date | None
    """The day the milestone was collected in full."""

    @property
    def outstanding(self) -> Decimal:
        return self.milestone.amount - self.collected


@dataclass(frozen=True)
class CollectionProgress:
    milestones: tuple[MilestoneProgress, ...]
    planned_to_date: Decimal
    """What the milestones due by ``as_of`` call for."""
    collected: Decimal
    excess: Decimal
    """Collected beyond the whole plan."""

    @property
    def behind(self) -> Decimal:
        """How much collection lags the plan to date; zero when on or ahead of it."""
        return max(self.planned_to_date - self.collected, ZERO)


def collection_progress(
    milestones: Sequence[PaymentMilestone],
    collections: Iterable[Collection],
    as_of: dt.date,
) -> CollectionProgress:
    """Planned vs. actual: money received by ``as_of`` settles milestones in due-date order."""
    received = sorted(
        (c for c in collections if c.received_on <= as_of), key=lambda c: c.received_on
    )
    remaining = deque((c.received_on, c.amount) for c in received)
    progress: list[MilestoneProgress] = []
    for milestone in sorted(milestones, key=lambda m: (m.due_date, m.name)):
        collected: Decimal = ZERO
        collected_on: dt.date | None = None
        while remaining and collected < milestone.amount:
            day, amount = remaining.popleft()
            taken = min(amount, milestone.amount - collected)
            collected += taken
            if collected == milestone.amount:
                collected_on = day
            if amount > taken:
                remaining.appendleft((day, amount - taken))
        if collected == milestone.amount:
            state = MilestoneState.COLLECTED
        elif milestone.due_date < as_of:
            state = MilestoneState.OVERDUE
        else:
            state = MilestoneState.NOT_DUE
        progress.append(MilestoneProgress(milestone, collected, state, collected_on))
    return CollectionProgress(
        milestones=tuple(progress),
        planned_to_date=sum((m.amount for m in milestones if m.due_date <= as_of), ZERO),
        collected=sum((c.amount for c in received), ZERO),
        excess=sum((amount for _day, amount in remaining), ZERO),
    )


@dataclass(frozen=True)
class MonthlyCollection:
    month: str
    """``YYYY-MM``."""
    planned: Decimal
    collected: Decimal


def collections_by_month(
    milestones: Iterable[PaymentMilestone], collections: Iterable[Collection]
) -> list[MonthlyCollection]:
    """Planned (by due date) against collected (by received date), month by month, for every
    month that has either."""
    planned: dict[str, Decimal] = defaultdict(lambda: ZERO)
    collected: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for milestone in milestones:
        planned[milestone.due_date.strftime("%Y-%m")] += milestone.amount
    for collection in collections:
        collected[collection.received_on.strftime("%Y-%m")] += collection.amount
    return [
        MonthlyCollection(month, planned[month], collected[month])
        for month in sorted(planned.keys() | collected.keys())
    ]
