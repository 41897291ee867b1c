"""Receivables (应收): invoices and payments mirrored from the ERP, read by salespeople and
finance within their data scope (``receivable:read``): invoice and payment lists, an invoice
with its allocations, aging by customer, owner or department, overdue lists, planned vs.
actual collections against the contracts' payment milestones, and a customer's receivable
summary against its credit limit. Administrators (``sales:admin``) see the allocations waiting
for their invoice.

``announce_overdue`` is the overdue timer's work: an ``invoice_overdue`` event per invoice and
overdue threshold crossed, once. ``Receivables.due_records`` answers notify's scheduled rules
(overdue invoices, expiring contracts, idle opportunities, pending expenses) for a service
identity holding ``sales:due-records:read`` or a ``sales:admin`` user.

Amounts are summed per currency, never across currencies.
"""

from __future__ import annotations

import importlib
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from nameko.extensions import DependencyProvider
from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from crm_common.application import EventSink, UseCaseContext, UseCases
from crm_common.errors import Forbidden, NotFound, ValidationFailed
from crm_common.ids import BUSINESS_TZ
from crm_common.pagination import page_size
from crm_common.schemas import load
from crm_common.scope import ScopeValues, in_scope, scope_filter
from sales import events
from sales.domain import receivables as rules
from sales.domain.contracts import PaymentMilestone
from sales.domain.money import format_amount
from sales.models.receivables import Invoice, InvoiceOverdueNotice, Payment, PaymentAllocation
from sales.repository import activities as activity_rows
from sales.repository import receivables as rows
from sales.schemas.receivables import (
    DUE_RECORD_KINDS,
    AgingQuerySchema,
    CollectionsQuerySchema,
    DueQuerySchema,
    InvoiceQuerySchema,
    OverdueQuerySchema,
    PaymentQuerySchema,
    WaitingAllocationQuerySchema,
)

READ = "receivable:read"
ADMIN = "sales:admin"
DUE_RECORDS = "sales:due-records:read"
OVERDUE_THRESHOLDS = (1, 30, 60, 90)
"""Days past due at which ``invoice_overdue`` is announced, once each."""
OVERDUE_BATCH = 500
OVERDUE_HOUR_SETTING = "INVOICE_OVERDUE_HOUR"
DEFAULT_OVERDUE_HOUR = 8
OVERDUE_CHECK_SECONDS = 600
DEFAULT_IDLE_DAYS = 30
DEFAULT_EXPIRING_DAYS = 30
DEFAULT_PENDING_HOURS = 48
CONTRACT_FIELDS = (
    "title",
    "name",
    "customer_name",
    "amount",
    "currency",
    "status",
    "start_date",
    "days_to_end",
)

log = logging.getLogger(__name__)


def business_today(now: datetime) -> date:
    return now.astimezone(BUSINESS_TZ).date()


def day_start(day: date) -> datetime:
    """The first instant of ``day`` in the business's time zone."""
    return datetime.combine(day, time(), BUSINESS_TZ).astimezone(UTC)


def amount_text(amount: Decimal | None) -> str | None:
    return None if amount is None else format_amount(amount)


# -- dumping ---------------------------------------------------------------------------------
def dump_allocation(allocation: PaymentAllocation) -> dict[str, Any]:
    return {
        "payment_no": allocation.payment_no,
        "invoice_no": allocation.invoice_no,
        "amount": format_amount(allocation.amount),
        "currency": allocation.currency,
        "applied": bool(allocation.applied),
        "reason": allocation.reason,
        "waiting_since": iso(allocation.waiting_since),
        "applied_at": iso(allocation.applied_at),
    }


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat()


def invoice_status(invoice: Invoice, today: date) -> str:
    if invoice.outstanding <= 0:
        return "paid"
    return "overdue" if invoice.due_date < today else "open"


def dump_invoice(
    invoice: Invoice,
    names: Mapping[Any, str],
    today: date,
    allocations: Iterable[PaymentAllocation] | None = None,
) -> dict[str, Any]:
    dumped: dict[str, Any] = {
        "id": str(invoice.id),
        "invoice_no": invoice.invoice_no,
        "erp_order_no": invoice.erp_order_no,
        "customer_id": str(invoice.customer_id),
        "customer_name": names.get(invoice.customer_id),
        "owner_id": invoice.owner_id,
        "department_id": invoice.department_id,
        "region": invoice.region,
        "category": invoice.category,
        "issued_at": iso(invoice.issued_at),
        "due_date": invoice.due_date.isoformat(),
        "amount": format_amount(invoice.amount),
        "tax_amount": format_amount(invoice.tax_amount),
        "currency": invoice.currency,
        "allocated": format_amount(invoice.allocated),
        "outstanding": format_amount(invoice.outstanding),
        "over_allocated": format_amount(max(invoice.allocated - invoice.amount, rules.ZERO)),
        "status": invoice_status(invoice, today),
        "days_overdue": max(rules.days_past_due(invoice.due_date, today), 0)
        if invoice.outstanding > 0
        else 0,
        "occurred_at": iso(invoice.occurred_at),
        "updated_at": iso(invoice.updated_at),
    }
    if allocations is not None:
        dumped["allocations"] = [dump_allocation(a) for a in allocations]
    return dumped


def dump_payment(
    payment: Payment, allocations: Iterable[PaymentAllocation], names: Mapping[Any, str]
) -> dict[str, Any]:
    return {
        "id": str(payment.id),
        "payment_no": payment.payment_no,
        "customer_id": str(payment.customer_id),
        "customer_name": names.get(payment.customer_id),
        "owner_id": payment.owner_id,
        "department_id": payment.department_id,
        "received_at": iso(payment.received_at),
        "amount": format_amount(payment.amount),
        "allocated": format_amount(payment.allocated),
        "unallocated": format_amount(payment.amount - payment.allocated),
        "currency": payment.currency,
        "occurred_at": iso(payment.occurred_at),
        "allocations": [dump_allocation(a) for a in allocations],
    }


# -- contracts (from the orders and contracts part, when installed) ---------------------------
def contract_milestones(session: Session, customer_id: uuid.UUID | None) -> list[Any] | None:
    """The contracts' payment milestones, or None where contracts are not recorded."""
    try:
        module = importlib.import_module("sales.repository.contracts")
    except ImportError:
        return None
    function = getattr(module, "contract_milestones", None)
    if function is None:
        return None
    return list(function(session, customer_id=customer_id))


def contracts_use_case(context: UseCaseContext) -> Any:
    try:
        module = importlib.import_module("sales.application.contracts")
    except ImportError:
        return None
    use_case = getattr(module, "Contracts", None)
    return None if use_case is None else use_case(context)


def field_of(row: Any, *names: str) -> Any:
    """The first of ``names`` a row (object or mapping) has."""
    for name in names:
        if isinstance(row, Mapping) and name in row:
            return row[name]
        if hasattr(row, name):
            return getattr(row, name)
    return None


def as_date(value: Any) -> date | None:
    if value is None or isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, datetime):
        return value.date()
    return date.fromisoformat(str(value)[:10])


# -- the use cases ---------------------------------------------------------------------------
class Receivables(UseCases):
    def today(self) -> date:
        return business_today(self.context.now)

    def require_read(self) -> None:
        if not self.principal.can(ADMIN):
            self.principal.require(READ)

    def visible_invoices(self) -> ColumnElement[bool]:
        return scope_filter(self.principal, rows.INVOICE_SCOPE)

    def visible_customer(self, customer_id: Any) -> Any:
        customer = activity_rows.visible_customer(self.session, customer_id, self.principal)
        if customer is None:
            raise NotFound.of("customer", customer_id)
        return customer

    # -- invoices and payments ---------------------------------------------------------------
    def list_invoices(self, query: Any) -> dict[str, Any]:
        self.require_read()
        params = load(InvoiceQuerySchema(), query)
        today = self.today()
        page = rows.invoices_page(self.session, params, self.visible_invoices(), today)
        names = rows.customer_names(self.session, [i.customer_id for i in page.items])
        return {
            "items": [dump_invoice(i, names, today) for i in page.items],
            "next_cursor": page.next_cursor,
        }

    def get_invoice(self, invoice_no: Any) -> dict[str, Any]:
        self.require_read()
        invoice = rows.get_invoice(self.session, str(invoice_no), self.visible_invoices())
        names = rows.customer_names(self.session, [invoice.customer_id])
        allocations = rows.allocations_to(self.session, invoice.invoice_no)
        return dump_invoice(invoice, names, self.today(), allocations)

    def list_payments(self, query: Any) -> dict[str, Any]:
        self.require_read()
        params = load(PaymentQuerySchema(), query)
        if params.get("received_from") is not None:
            params["received_start"] = day_start(params["received_from"])
        if params.get("received_to") is not None:
            params["received_end"] = day_start(params["received_to"] + timedelta(days=1))
        visible = scope_filter(self.principal, rows.PAYMENT_SCOPE)
        page = rows.payments_page(self.session, params, visible)
        names = rows.customer_names(self.session, [p.customer_id for p in page.items])
        allocations = rows.allocations_of(self.session, [p.payment_no for p in page.items])
        return {
            "items": [dump_payment(p, allocations[p.payment_no], names) for p in page.items],
            "next_cursor": page.next_cursor,
        }

    # -- aging and overdue -------------------------------------------------------------------
    def aging(self, query: Any) -> dict[str, Any]:
        """Outstanding amounts by aging bucket (not due, 1–30, 31–60, 61–90, over 90 days past
        due as of ``as_of``) per customer, owner or department and currency, and a totals row
        per currency. Before today, the amounts are what was owed at the end of ``as_of``
        (invoices issued by then, less the payments received by then)."""
        self.require_read()
        params = load(AgingQuerySchema(), query)
        today = self.today()
        as_of = params.get("as_of") or today
        by = params["by"]
        conditions = [self.visible_invoices(), *rows.invoice_conditions(params, as_of)]
        end = day_start(as_of + timedelta(days=1)) if as_of < today else None
        grouped = rows.owed_by_due_date(self.session, by, conditions, end)
        table: dict[tuple[Any, str], dict[rules.AgingBucket, Decimal]] = {}
        counts: dict[tuple[Any, str], int] = defaultdict(int)
        for key, currency, due_date, amount, count in grouped:
            row = table.setdefault((key, currency), dict.fromkeys(rules.AgingBucket, rules.ZERO))
            row[rules.aging_bucket(due_date, as_of)] += amount
            counts[(key, currency)] += count
        names = self.names_of(by, [key for key, _ in table])
        result_rows = [
            aging_row(
                None if key is None else str(key),
                names.get(key),
                currency,
                amounts,
                counts[(key, currency)],
            )
            for (key, currency), amounts in sorted(
                table.items(), key=lambda item: (str(item[0][0] or "~"), item[0][1])
            )
        ]
        totals: dict[str, dict[rules.AgingBucket, Decimal]] = {}
        total_counts: dict[str, int] = defaultdict(int)
        for (_key, currency), amounts in table.items():
            total = totals.setdefault(currency, dict.fromkeys(rules.AgingBucket, rules.ZERO))
            for bucket, amount in amounts.items():
                total[bucket] += amount
            total_counts[currency] += counts[(_key, currency)]
        return {
            "by": by,
            "as_of": as_of.isoformat(),
            "buckets": [bucket.value for bucket in rules.AgingBucket],
            "labels": {bucket.value: label for bucket, label in rules.BUCKET_LABELS.items()},
            "rows": result_rows,
            "totals": [
                aging_row(None, None, currency, totals[currency], total_counts[currency])
                for currency in sorted(totals)
            ],
        }

    def names_of(self, by: str, keys: Iterable[Any]) -> dict[Any, str]:
        if by == "customer":
            return rows.customer_names(self.session, keys)
        if by == "owner":
            return rows.owner_names(self.session, keys)
        return rows.department_names(self.session, keys)

    def overdue(self, query: Any) -> dict[str, Any]:
        """Invoices still owing something at least ``days`` past due as of ``as_of``, the
        longest overdue first, with the totals per currency."""
        self.require_read()
        params = load(OverdueQuerySchema(), query)
        as_of = params.get("as_of") or self.today()
        due_by = as_of - timedelta(days=params["days"])
        conditions = [self.visible_invoices(), *rows.invoice_conditions(params, as_of)]
        found = rows.overdue_invoices(self.session, conditions, due_by, params["limit"] + 1)
        shown = found[: params["limit"]]
        names = rows.customer_names(self.session, [i.customer_id for i in shown])
        items = []
        for invoice in shown:
            dumped = dump_invoice(invoice, names, as_of)
            dumped["bucket"] = rules.aging_bucket(invoice.due_date, as_of).value
            items.append(dumped)
        return {
            "as_of": as_of.isoformat(),
            "days": params["days"],
            "items": items,
            "totals": [
                {"currency": currency, "amount": format_amount(amount), "count": count}
                for currency, amount, count in rows.overdue_totals(self.session, conditions, due_by)
            ],
            "truncated": len(found) > len(shown),
        }

    # -- collections -------------------------------------------------------------------------
    def collections(self, query: Any) -> dict[str, Any]:
        """Planned (contract payment milestones by due date) against actual (payments by day
        received), month by month and per currency, from ``from`` to ``to`` (this year by
        default); with ``customer_id`` also each milestone's state, payments settling the
        customer's milestones in due-date order."""
        self.require_read()
        params = load(CollectionsQuerySchema(), query)
        today = self.today()
        date_from = params.get("date_from") or date(today.year, 1, 1)
        date_to = params.get("date_to") or date(today.year, 12, 31)
        if date_from > date_to:
            raise ValidationFailed.on("from", "must not be after to")
        customer_id = params.get("customer_id")
        payment_conditions = [scope_filter(self.principal, rows.PAYMENT_SCOPE)]
        if customer_id is not None:
            self.visible_customer(customer_id)
            payment_conditions.append(Payment.customer_id == customer_id)
        received = rows.payments_received(
            self.session,
            payment_conditions,
            day_start(date_from),
            day_start(date_to + timedelta(days=1)),
        )
        milestones = contract_milestones(self.session, customer_id)
        planned = self.visible_milestones(milestones or [])
        currencies = sorted({m["currency"] for m in planned} | {r[3] for r in received})
        months: list[dict[str, Any]] = []
        totals: list[dict[str, Any]] = []
        for currency in currencies:
            in_range = [
                PaymentMilestone(m["contract_code"] or m["contract_id"], m["due_date"], m["amount"])
                for m in planned
                if m["currency"] == currency and date_from <= m["due_date"] <= date_to
            ]
            collected = [
                rules.Collection(business_today(as_utc(at)), amount)
                for _customer, at, amount, cur in received
                if cur == currency
            ]
            for month in rules.collections_by_month(in_range, collected):
                months.append(
                    {
                        "month": month.month,
                        "currency": currency,
                        "planned": format_amount(month.planned),
                        "collected": format_amount(month.collected),
                    }
                )
            totals.append(
                {
                    "month": f"{date_from:%Y-%m}..{date_to:%Y-%m}",
                    "currency": currency,
                    "planned": format_amount(sum((m.amount for m in in_range), rules.ZERO)),
                    "collected": format_amount(sum((c.amount for c in collected), rules.ZERO)),
                }
            )
        months.sort(key=lambda item: (item["month"], item["currency"]))
        return {
            "customer_id": None if customer_id is None else str(customer_id),
            "from": date_from.isoformat(),
            "to": date_to.isoformat(),
            "months": months,
            "totals": totals,
            "milestones": self.milestone_states(customer_id, planned, date_to),
            "contracts_available": milestones is not None,
        }

    def visible_milestones(self, milestones: list[Any]) -> list[dict[str, Any]]:
        """Milestones as plain values, those of contracts within the caller's scope."""
        found = [
            {
                "contract_id": str(field_of(m, "contract_id", "id")),
                "contract_code": field_of(m, "contract_code", "code"),
                "customer_id": field_of(m, "customer_id"),
                "owner_id": field_of(m, "owner_id", "owner"),
                "department_id": field_of(m, "department_id", "department"),
                "due_date": as_date(field_of(m, "due_date")),
                "amount": Decimal(str(field_of(m, "amount"))),
                "currency": field_of(m, "currency") or "CNY",
            }
            for m in milestones
        ]
        customers = rows.customers_scope(self.session, [m["customer_id"] for m in found])
        visible = []
        for milestone, row in zip(found, milestones, strict=True):
            customer = customers.get(milestone["customer_id"])
            region, category = field_of(row, "region"), field_of(row, "category")
            record = ScopeValues(
                owner_id=milestone["owner_id"],
                department_id=milestone["department_id"],
                region=region if region is not None else customer.region if customer else None,
                category=(
                    category if category is not None else customer.category if customer else None
                ),
            )
            if milestone["due_date"] is not None and in_scope(self.principal, record):
                visible.append(milestone)
        return visible

    def milestone_states(
        self, customer_id: uuid.UUID | None, planned: list[dict[str, Any]], as_of: date
    ) -> list[dict[str, Any]]:
        if customer_id is None:
            return []
        states = []
        for currency in sorted({m["currency"] for m in planned}):
            mine = sorted(
                (m for m in planned if m["currency"] == currency),
                key=lambda m: (m["due_date"], m["contract_id"]),
            )
            received = rows.payments_received(
                self.session,
                [Payment.customer_id == customer_id, Payment.currency == currency],
                None,
                day_start(as_of + timedelta(days=1)),
            )
            progress = rules.collection_progress(
                [
                    PaymentMilestone(f"{index:06d}", m["due_date"], m["amount"])
                    for index, m in enumerate(mine)
                ],
                [rules.Collection(business_today(as_utc(r[1])), r[2]) for r in received],
                as_of,
            )
            for milestone, state in zip(mine, progress.milestones, strict=True):
                states.append(
                    {
                        "contract_id": milestone["contract_id"],
                        "contract_code": milestone["contract_code"],
                        "customer_id": str(milestone["customer_id"]),
                        "due_date": milestone["due_date"].isoformat(),
                        "amount": format_amount(milestone["amount"]),
                        "currency": currency,
                        "collected": format_amount(state.collected),
                        "state": state.state.value,
                    }
                )
        return states

    # -- a customer's receivable -------------------------------------------------------------
    def customer_receivable(self, customer_id: Any) -> dict[str, Any]:
        """What the customer owes per currency, what is overdue, its credit limit and what
        remains available under it."""
        self.require_read()
        customer = self.visible_customer(customer_id)
        today = self.today()
        balances = rows.customer_balances(self.session, customer.id, today)
        on_account = rows.customer_on_account(self.session, customer.id)
        waiting = rows.customer_waiting(self.session, customer.id)
        limit = rows.credit_limits(self.session, [customer.id]).get(customer.id)
        currencies = set(balances) | set(on_account) | set(waiting)
        currencies.add(limit.currency if limit is not None else "CNY")
        lines = []
        for currency in sorted(currencies):
            balance = balances.get(currency, {})
            outstanding = balance.get("outstanding", rules.ZERO)
            credit = limit.credit_limit if limit and limit.currency == currency else None
            lines.append(
                {
                    "customer_id": str(customer.id),
                    "customer_name": customer.name,
                    "currency": currency,
                    "credit_limit": amount_text(credit),
                    "outstanding": format_amount(outstanding),
                    "overdue": format_amount(balance.get("overdue", rules.ZERO)),
                    "available": amount_text(None if credit is None else credit - outstanding),
                    "open_invoices": balance.get("open_invoices", 0),
                    "overdue_invoices": balance.get("overdue_invoices", 0),
                    "on_account": format_amount(on_account.get(currency, rules.ZERO)),
                    "waiting": format_amount(waiting.get(currency, rules.ZERO)),
                }
            )
        return {
            "customer_id": str(customer.id),
            "customer_name": customer.name,
            "currencies": lines,
        }

    # -- administration ----------------------------------------------------------------------
    def waiting_allocations(self, query: Any) -> dict[str, Any]:
        """Allocations of payments waiting for their invoice (unknown yet, or in another
        currency), for an administrator to follow up."""
        self.principal.require(ADMIN)
        params = load(WaitingAllocationQuerySchema(), query)
        size = page_size(params.get("limit"))
        found = rows.waiting_page(self.session, {**params, "size": size})
        shown = found[:size]
        items = []
        for allocation, customer_id, received_at in shown:
            dumped = dump_allocation(allocation)
            dumped["customer_id"] = str(customer_id)
            dumped["received_at"] = iso(received_at)
            items.append(dumped)
        last = shown[-1][0] if shown and len(found) > size else None
        return {
            "items": items,
            "next_cursor": None if last is None else f"{last.payment_no}|{last.invoice_no}",
        }

    # -- notify's schedules ------------------------------------------------------------------
    def due_records(self, kind: Any, query: Any) -> dict[str, Any]:
        """The records a scheduled rule of notify is about, with who they belong to."""
        allowed = (self.principal.is_service and self.principal.can(DUE_RECORDS)) or (
            not self.principal.is_service and self.principal.can(ADMIN)
        )
        if not allowed:
            raise Forbidden(
                "only notify's service identity or a sales administrator reads due records",
                {"permission": DUE_RECORDS},
            )
        if kind not in DUE_RECORD_KINDS:
            raise ValidationFailed.on("kind", f"is one of {', '.join(DUE_RECORD_KINDS)}")
        params = load(DueQuerySchema(), query)
        if kind == "overdue_invoices":
            items = self.due_invoices(params)
        elif kind == "idle_opportunities":
            items = self.idle_opportunities(params)
        elif kind == "pending_expenses":
            items = self.pending_expenses(params)
        else:
            items = self.expiring_contracts(params)
        return {"items": items}

    def due_invoices(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        today = self.today()
        days = params["days"] if params.get("days") is not None else 1
        due_by = today - timedelta(days=max(days, 1))
        found = rows.overdue_invoices(self.session, [], due_by, params["limit"])
        customers = {i.customer_id for i in found}
        names = rows.customer_names(self.session, customers)
        minimum = params.get("min_credit_percent")
        limits = rows.credit_limits(self.session, customers)
        owed = rows.outstanding_by_customer(self.session, customers)
        items = []
        for invoice in found:
            limit = limits.get(invoice.customer_id)
            used = None
            if limit is not None and limit.credit_limit > 0:
                total = owed.get((invoice.customer_id, limit.currency), rules.ZERO)
                used = (total * 100 / limit.credit_limit).quantize(Decimal("0.01"))
            if minimum is not None and (used is None or used < minimum):
                continue
            dumped = dump_invoice(invoice, names, today)
            items.append(
                due_record(
                    "invoice",
                    invoice.invoice_no,
                    invoice.invoice_no,
                    invoice.owner_id,
                    invoice.department_id,
                    invoice.customer_id,
                    invoice.due_date.isoformat(),
                    {
                        **{
                            name: dumped[name]
                            for name in (
                                "customer_name",
                                "amount",
                                "outstanding",
                                "currency",
                                "days_overdue",
                                "erp_order_no",
                            )
                        },
                        "credit_used_percent": None if used is None else str(used),
                    },
                )
            )
        return items

    def idle_opportunities(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        days = params["days"] if params.get("days") is not None else DEFAULT_IDLE_DAYS
        before = self.context.now - timedelta(days=days)
        found = rows.idle_opportunities(self.session, before, params["limit"])
        names = rows.customer_names(self.session, [o.customer_id for o in found])
        return [
            due_record(
                "opportunity",
                str(o.id),
                o.code,
                o.owner_id,
                o.department_id,
                o.customer_id,
                None if o.expected_close_date is None else o.expected_close_date.isoformat(),
                {
                    "name": o.name,
                    "customer_name": names.get(o.customer_id),
                    "stage_code": o.stage_code,
                    "expected_amount": amount_text(o.expected_amount),
                    "currency": o.currency,
                    "last_activity_at": iso(o.last_activity_at),
                    "updated_at": iso(o.updated_at),
                    "idle_days": (
                        self.context.now - as_utc(o.last_activity_at or o.updated_at)
                    ).days,
                },
            )
            for o in found
        ]

    def pending_expenses(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        hours = params["hours"] if params.get("hours") is not None else DEFAULT_PENDING_HOURS
        before = self.context.now - timedelta(hours=hours)
        found = rows.pending_expenses(self.session, before, params["limit"])
        return [
            due_record(
                "expense",
                str(expense.id),
                expense.code,
                expense.submitter_id,
                expense.department_id,
                expense.customer_id,
                None,
                {
                    "amount": format_amount(expense.amount),
                    "currency": expense.currency,
                    "expense_category": expense.expense_category,
                    "submitted_at": iso(expense.created_at),
                    "pending_hours": int(
                        (self.context.now - as_utc(expense.created_at)).total_seconds() // 3600
                    ),
                    "approver_user_id": None if waiting is None else waiting.approver_user_id,
                    "approver_person_id": None if waiting is None else waiting.approver_person_id,
                    "level": None if waiting is None else waiting.level,
                },
            )
            for expense, waiting in found
        ]

    def expiring_contracts(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Signed and active contracts ending within ``days``, read page by page through the
        contract use cases (which scope and authorise them)."""
        contracts = contracts_use_case(self.context)
        if contracts is None:
            return []
        days = params["days"] if params.get("days") is not None else DEFAULT_EXPIRING_DAYS
        query: dict[str, Any] = {"days": days, "limit": min(params["limit"], 200)}
        found: list[Any] = []
        while len(found) < params["limit"]:
            answer = contracts.expiring(query)
            found.extend(answer.get("items", []))
            if not answer.get("next_cursor"):
                break
            query["cursor"] = answer["next_cursor"]
        items = []
        for contract in found[: params["limit"]]:
            end = field_of(contract, "end_date", "ends_on", "due_on")
            facts = {
                name: jsonable(field_of(contract, name))
                for name in CONTRACT_FIELDS
                if field_of(contract, name) is not None
            }
            facts.setdefault("name", facts.get("title"))
            items.append(
                due_record(
                    "contract",
                    str(field_of(contract, "id")),
                    field_of(contract, "code"),
                    field_of(contract, "owner_id"),
                    field_of(contract, "department_id"),
                    field_of(contract, "customer_id"),
                    None if end is None else str(end)[:10],
                    facts,
                )
            )
        return items


def jsonable(value: Any) -> Any:
    """A value as JSON carries it (dates as ISO text, decimals as strings)."""
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    return value


def as_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def due_record(
    record_type: str,
    record_id: str,
    code: str | None,
    owner_id: str | None,
    department_id: str | None,
    customer_id: Any,
    due_on: str | None,
    fields: dict[str, Any],
) -> dict[str, Any]:
    return {
        "record_type": record_type,
        "record_id": record_id,
        "code": code,
        "owner_id": owner_id,
        "department_id": department_id,
        "customer_id": None if customer_id is None else str(customer_id),
        "due_on": due_on,
        "fields": fields,
    }


def aging_row(
    key: str | None,
    name: str | None,
    currency: str,
    amounts: Mapping[rules.AgingBucket, Decimal],
    count: int,
) -> dict[str, Any]:
    return {
        "key": key,
        "name": name,
        "currency": currency,
        "buckets": {bucket.value: format_amount(amounts[bucket]) for bucket in rules.AgingBucket},
        "total": format_amount(sum(amounts.values(), rules.ZERO)),
        "invoice_count": count,
    }


# -- the overdue timer -----------------------------------------------------------------------
class OverdueSchedule(DependencyProvider):
    """When the overdue timer announces: once when the service starts, then daily at the hour
    (business time) config ``INVOICE_OVERDUE_HOUR`` says (8 unless set)."""

    def setup(self) -> None:
        self.hour = parse_hour(self.container.config.get(OVERDUE_HOUR_SETTING))
        self.last_run: date | None = None

    def get_dependency(self, worker_ctx: Any) -> OverdueSchedule:
        return self

    def due(self, now: datetime) -> bool:
        local = now.astimezone(BUSINESS_TZ)
        if self.last_run is None or (local.hour >= self.hour and self.last_run < local.date()):
            self.last_run = local.date()
            return True
        return False


def parse_hour(value: Any) -> int:
    if value in (None, ""):
        return DEFAULT_OVERDUE_HOUR
    try:
        hour = int(value)
    except (TypeError, ValueError):
        hour = -1
    if not 0 <= hour <= 23:
        raise ValidationFailed.on(OVERDUE_HOUR_SETTING, "must be an hour from 0 to 23")
    return hour


def thresholds_crossed(days_overdue: int) -> list[int]:
    return [t for t in OVERDUE_THRESHOLDS if days_overdue >= t]


def announce_overdue(session: Session, outbox: EventSink, now: datetime) -> int:
    """``invoice_overdue`` for every invoice still owing something that crossed an overdue
    threshold not announced yet: one event per invoice, for the highest threshold crossed
    (the lower ones it skipped are remembered as announced with it). Returns the events
    written."""
    if not rows.try_lock(session, "invoice_overdue"):
        log.info("another process is announcing overdue invoices")
        return 0
    today = business_today(now)
    due_by = today - timedelta(days=OVERDUE_THRESHOLDS[0])
    written = 0
    after: str | None = None
    while True:
        batch = rows.overdue_after(session, due_by, after, OVERDUE_BATCH)
        if not batch:
            return written
        after = batch[-1].invoice_no
        noticed = rows.noticed_thresholds(session, [i.invoice_no for i in batch])
        names = rows.customer_names(session, [i.customer_id for i in batch])
        for invoice in batch:
            days = rules.days_past_due(invoice.due_date, today)
            new = [t for t in thresholds_crossed(days) if t > noticed.get(invoice.invoice_no, 0)]
            if not new:
                continue
            session.add_all(
                InvoiceOverdueNotice(
                    invoice_no=invoice.invoice_no, threshold=t, days_overdue=days, noticed_at=now
                )
                for t in new
            )
            dumped = dump_invoice(invoice, names, today)
            outbox.add(
                session, events.INVOICE_OVERDUE, events.invoice_overdue(dumped, days, new[-1])
            )
            written += 1
        session.flush()
