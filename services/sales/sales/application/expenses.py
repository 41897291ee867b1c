"""Sales expenses (费用): submit, approve or reject level by level, pay; lists (mine, awaiting my
decision, by status), totals per person, department and month, cost of sale per opportunity
and customer; the configurable expense categories.

The approvers of an expense are chosen when it is submitted, from sales' copy of the org chart
(``sales.domain.expenses.approval_chain``): the manager of the submitter's department, and
above the second-level amount (config ``EXPENSE_SECOND_LEVEL_AMOUNT``, 5000 CNY unless set) a
manager further up. A manager who has left, has no user account or heads a disabled
department cannot approve, and the level passes to the next department up.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

from nameko.extensions import DependencyProvider

from crm_common.application import UseCaseContext
from crm_common.errors import Forbidden, NotFound, ValidationFailed
from crm_common.history import FieldChange, filled
from crm_common.ids import BUSINESS_TZ
from crm_common.schemas import load
from sales import events
from sales.application.activities import SalesUseCases
from sales.application.history import dump
from sales.domain import expenses as rules
from sales.domain.money import DEFAULT_CURRENCY, Money
from sales.models import Customer, Expense, ExpenseApproval, ExpenseCategory
from sales.repository import activities as activity_rows
from sales.repository import expenses as rows
from sales.repository import opportunities as opportunity_rows
from sales.repository import read_models
from sales.repository.read_models import ChainLink
from sales.schemas.expenses import (
    CostOfSaleQuerySchema,
    ExpenseApprovalSchema,
    ExpenseCategoryInputSchema,
    ExpenseCategoryQuerySchema,
    ExpenseCategorySchema,
    ExpenseCategoryUpdateSchema,
    ExpenseDecisionSchema,
    ExpenseInputSchema,
    ExpenseQuerySchema,
    ExpenseSchema,
    ExpenseTotalsQuerySchema,
)

READ = "expense:read"
SUBMIT = "expense:submit"
APPROVE = "expense:approve"
PAY = "expense:pay"
ADMIN = "sales:admin"
SECOND_LEVEL_SETTING = "EXPENSE_SECOND_LEVEL_AMOUNT"

EXPENSE_FIELDS = (
    "code",
    "submitter_id",
    "department_id",
    "region",
    "category",
    "expense_category",
    "amount",
    "currency",
    "spent_on",
    "customer_id",
    "opportunity_id",
    "activity_id",
    "receipt_no",
    "remark",
    "status",
    "paid_at",
)

expense_schema = ExpenseSchema()
approval_schema = ExpenseApprovalSchema()
category_schema = ExpenseCategorySchema()


class SecondLevelAmount(DependencyProvider):
    """The amount above which an expense needs a second approver: config
    ``EXPENSE_SECOND_LEVEL_AMOUNT`` as ``"5000"`` or ``"5000 CNY"``."""

    def setup(self) -> None:
        self.threshold = parse_threshold(self.container.config.get(SECOND_LEVEL_SETTING))

    def get_dependency(self, worker_ctx: Any) -> Money:
        return self.threshold


def parse_threshold(value: Any) -> Money:
    if value in (None, ""):
        return rules.DEFAULT_SECOND_LEVEL_AMOUNT
    amount, _, currency = str(value).strip().partition(" ")
    return Money.parse(amount, currency or DEFAULT_CURRENCY, field=SECOND_LEVEL_SETTING)


def approver_of(link: ChainLink) -> str | None:
    """The manager who can approve for this department: one still working here, with a user
    account to sign in with, of a department not disabled."""
    if link.disabled or not link.manager_active or link.manager_user_id is None:
        return None
    return link.manager_person_id


def dump_expense(expense: Expense, approvals: list[ExpenseApproval]) -> dict[str, Any]:
    """The expense with its approval levels and the one waited for."""
    dumped = dump(expense_schema, expense)
    levels = [dump(approval_schema, approval) for approval in approvals]
    dumped["approvals"] = levels
    waiting = expense.status == rules.ExpenseStatus.SUBMITTED
    dumped["waiting_for"] = next((a for a in levels if waiting and not a["decision"]), None)
    return dumped


def steps_of(approvals: list[ExpenseApproval]) -> list[rules.ApprovalStep]:
    """The stored levels as the domain's approval steps (the department a level was chosen
    from is not stored, and deciding does not need it)."""
    return [rules.ApprovalStep(a.level, "", a.approver_person_id, a.decision) for a in approvals]


class Expenses(SalesUseCases):
    def __init__(
        self, context: UseCaseContext, second_level: Money = rules.DEFAULT_SECOND_LEVEL_AMOUNT
    ) -> None:
        super().__init__(context)
        self.second_level = second_level

    def person_id(self) -> str | None:
        """The caller's person in sales' copy of the org chart."""
        person = read_models.person_of_user(self.session, self.principal.user_id)
        return person.id if person else None

    def expense(self, expense_id: Any) -> Expense:
        visible = rows.visible_expenses(self.principal, self.person_id())
        return rows.get_expense(self.session, expense_id, visible)

    def dumped(self, expense: Expense) -> dict[str, Any]:
        return dump_expense(expense, rows.approvals_of(self.session, [expense.id])[expense.id])

    def today(self) -> date:
        return self.context.now.astimezone(BUSINESS_TZ).date()

    # -- submit ------------------------------------------------------------------------------
    def submit(self, data: Any) -> dict[str, Any]:
        self.principal.require(SUBMIT)
        values = load(ExpenseInputSchema(), data)
        money = Money.parse(values["amount"], values.get("currency"), allow_zero=False)
        rules.check_category(values["expense_category"], rows.active_category_codes(self.session))
        rules.check_spent_on(values["spent_on"], self.today())
        customer = self.linked_customer(values)
        person = read_models.person_of_user(self.session, self.principal.user_id)
        if person is None:
            raise ValidationFailed.on(
                "submitter_id", "your user account belongs to no person of the org chart"
            )
        department_id = person.department_id or self.principal.department_id
        chain = read_models.department_chain(self.session, department_id)
        steps = rules.approval_chain(
            person.id,
            [(link.department_id, approver_of(link)) for link in chain],
            money,
            self.second_level,
        )
        placement = {
            "owner_id": self.principal.user_id,
            "department_id": department_id,
            "region": customer.region if customer else None,
            "category": customer.category if customer else None,
        }
        self.check_placement(placement, ["region", "category"], "expense")
        year = self.context.now.astimezone(BUSINESS_TZ).year
        sequence = opportunity_rows.allocate_sequence(self.session, rules.CODE_PREFIX, year)
        expense = Expense(
            code=rules.format_expense_code(year, sequence),
            submitter_id=self.principal.user_id,
            department_id=department_id,
            region=placement["region"],
            category=placement["category"],
            expense_category=values["expense_category"],
            amount=money.amount,
            currency=money.currency,
            spent_on=values["spent_on"],
            customer_id=customer.id if customer else None,
            opportunity_id=values.get("opportunity_id"),
            activity_id=values.get("activity_id"),
            receipt_no=values.get("receipt_no"),
            remark=values.get("remark"),
            status=rules.ExpenseStatus.SUBMITTED.value,
        )
        self.session.add(expense)
        self.session.flush()
        users = read_models.users_of_people(self.session, [s.approver_person_id for s in steps])
        approvals = [
            ExpenseApproval(
                expense_id=expense.id,
                level=step.level,
                approver_person_id=step.approver_person_id,
                approver_user_id=users.get(step.approver_person_id),
            )
            for step in steps
        ]
        self.session.add_all(approvals)
        self.session.flush()
        dumped = dump_expense(expense, approvals)
        self.record_history("expense", expense.id, "submitted", new=filled(dumped, EXPENSE_FIELDS))
        self.context.publish(events.EXPENSE_SUBMITTED, events.expense_event(dumped))
        return dumped

    def linked_customer(self, values: dict[str, Any]) -> Customer | None:
        """The customer the expense is for: the one given, else the opportunity's or the
        activity's; each link visible to the caller and of that one customer."""
        customer_ids: list[tuple[str, uuid.UUID]] = []
        if values.get("customer_id") is not None:
            customer_ids.append(("customer_id", values["customer_id"]))
        if values.get("opportunity_id") is not None:
            opportunity = activity_rows.visible_opportunity(
                self.session, values["opportunity_id"], self.principal
            )
            if opportunity is None:
                raise ValidationFailed.on("opportunity_id", "is not an opportunity you can see")
            customer_ids.append(("opportunity_id", opportunity.customer_id))
        if values.get("activity_id") is not None:
            visible = activity_rows.visible_activities(self.principal)
            activity = activity_rows.find_activity(self.session, values["activity_id"], visible)
            if activity is None:
                raise ValidationFailed.on("activity_id", "is not an activity you can see")
            customer_ids.append(("activity_id", activity.customer_id))
        if not customer_ids:
            return None
        field, customer_id = customer_ids[0]
        for other, other_id in customer_ids[1:]:
            if other_id != customer_id:
                raise ValidationFailed.on(other, f"belongs to another customer than {field}")
        return self.usable_customer(customer_id, field)

    # -- decide and pay ----------------------------------------------------------------------
    def approve(self, expense_id: Any, data: Any) -> dict[str, Any]:
        return self.decide(expense_id, rules.Decision.APPROVED, data)

    def reject(self, expense_id: Any, data: Any) -> dict[str, Any]:
        return self.decide(expense_id, rules.Decision.REJECTED, data)

    def decide(self, expense_id: Any, decision: str, data: Any) -> dict[str, Any]:
        """The caller's decision on the level waiting for them."""
        self.principal.require(APPROVE)
        values = load(ExpenseDecisionSchema(), data)
        person_id = self.person_id()
        expense = rows.get_expense(
            self.session, expense_id, rows.visible_expenses(self.principal, person_id)
        )
        if expense.submitter_id == self.principal.user_id:
            raise Forbidden(
                "nobody approves their own expense", {"reason": "own_expense", "level": None}
            )
        approvals = rows.approvals_of(self.session, [expense.id])[expense.id]
        result = rules.apply_decision(
            expense.status, steps_of(approvals), person_id or "", decision, values.get("comment")
        )
        approval = next(a for a in approvals if a.level == result.step.level)
        approval.decision = result.step.decision
        approval.decided_at = self.context.now
        approval.comment = values.get("comment")
        old_status, expense.status = expense.status, result.status
        expense.updated_at = self.context.now
        self.session.flush()
        changes = [FieldChange(f"approvals.{approval.level}", None, approval.decision)]
        if old_status != expense.status:
            changes.append(FieldChange("status", old_status, expense.status))
        self.record_history("expense", expense.id, str(decision), changes)
        dumped = dump_expense(expense, approvals)
        event = (
            events.EXPENSE_REJECTED
            if decision == rules.Decision.REJECTED
            else events.EXPENSE_APPROVED
        )
        self.context.publish(event, events.expense_event(dumped))
        return dumped

    def pay(self, expense_id: Any) -> dict[str, Any]:
        """Mark an approved expense paid."""
        self.principal.require(PAY)
        expense = self.expense(expense_id)
        rules.check_payment(expense.status)
        rules.check_transition(expense.status, rules.ExpenseStatus.PAID)
        expense.status = rules.ExpenseStatus.PAID.value
        expense.paid_at = self.context.now
        expense.updated_at = self.context.now
        self.session.flush()
        self.record_history(
            "expense",
            expense.id,
            "paid",
            [FieldChange("status", rules.ExpenseStatus.APPROVED.value, expense.status)],
        )
        dumped = self.dumped(expense)
        self.context.publish(events.EXPENSE_PAID, events.expense_event(dumped))
        return dumped

    # -- reads -------------------------------------------------------------------------------
    def require_read(self) -> None:
        """Reading expenses needs ``expense:read``; a submitter reads with ``expense:submit``."""
        if not (self.principal.can(READ) or self.principal.can(SUBMIT)):
            self.principal.require(READ)

    def get(self, expense_id: Any) -> dict[str, Any]:
        self.require_read()
        return self.dumped(self.expense(expense_id))

    def list(self, query: Any) -> dict[str, Any]:
        """A page of expenses; ``mine`` only the caller's, ``awaiting_me`` those waiting for
        the caller's decision."""
        self.require_read()
        params = load(ExpenseQuerySchema(), query)
        person_id = self.person_id()
        extra = []
        if params.get("mine"):
            extra.append(Expense.submitter_id == self.principal.user_id)
        if params.get("awaiting_me"):
            extra.append(rows.awaiting(person_id) if person_id else rows.approves(None))
        page = rows.expenses_page(
            self.session, params, rows.visible_expenses(self.principal, person_id), extra
        )
        approvals = rows.approvals_of(self.session, [e.id for e in page.items])
        return {
            "items": [dump_expense(e, approvals[e.id]) for e in page.items],
            "next_cursor": page.next_cursor,
        }

    def totals(self, query: Any) -> dict[str, Any]:
        """Sums of the visible expenses matching the filters, grouped by ``by`` (approved and
        paid ones unless ``status`` is given)."""
        self.require_read()
        params = load(ExpenseTotalsQuerySchema(), query)
        statuses = params.pop("status", None) or [s.value for s in rules.COST_STATUSES]
        by: list[str] = params["by"]
        conditions = [
            rows.visible_expenses(self.principal, self.person_id()),
            *rows.filter_conditions(params),
        ]
        found = rows.totals(self.session, by, conditions, statuses)
        return {
            "by": by,
            "statuses": sorted(statuses),
            "items": [
                total_item(by, key, currency, amount, count)
                for key, currency, amount, count in found
            ],
        }

    def cost_of_sale(self, query: Any) -> dict[str, Any]:
        """Approved and paid expenses on one opportunity or customer the caller can see, per
        category and currency, and per currency."""
        self.require_read()
        params = load(CostOfSaleQuerySchema(), query)
        subject: dict[str, Any] = {"customer_id": None, "opportunity_id": None}
        if params.get("opportunity_id") is not None:
            opportunity = opportunity_rows.get_opportunity(
                self.session,
                params["opportunity_id"],
                opportunity_rows.visible_opportunities(self.principal),
            )
            subject["opportunity_id"] = str(opportunity.id)
            subject["customer_id"] = str(opportunity.customer_id)
            condition = Expense.opportunity_id == opportunity.id
        else:
            customer = activity_rows.visible_customer(
                self.session, params["customer_id"], self.principal
            )
            if customer is None:
                raise NotFound.of("customer", params["customer_id"])
            subject["customer_id"] = str(customer.id)
            condition = Expense.customer_id == customer.id
        visible = rows.visible_expenses(self.principal, self.person_id())
        statuses = [s.value for s in rules.COST_STATUSES]
        by_category = rows.totals(
            self.session, ["expense_category"], [visible, condition], statuses
        )
        overall = rows.totals(self.session, [], [visible, condition], statuses)
        return {
            **subject,
            "totals": [
                total_item(["expense_category"], key, currency, amount, count)
                for key, currency, amount, count in by_category
            ],
            "total": [total_item([], key, c, amount, n) for key, c, amount, n in overall],
        }

    def history_of(self, expense_id: Any, cursor: Any, limit: Any) -> dict[str, Any]:
        self.require_read()
        expense = self.expense(expense_id)
        return self.history("expense", expense.id, cursor, limit)


def total_item(
    by: list[str], key: tuple[str | None, ...], currency: str, amount: Decimal, count: int
) -> dict[str, Any]:
    return {
        "key": dict(zip(by, key, strict=True)),
        "currency": currency,
        "amount": f"{amount:.2f}",
        "count": count,
    }


class ExpenseCategories(SalesUseCases):
    """The configurable list of expense categories; changed by holders of ``sales:admin``."""

    def list(self, query: Any) -> dict[str, Any]:
        params = load(ExpenseCategoryQuerySchema(), query)
        include_inactive = params["include_inactive"] and self.principal.can(ADMIN)
        found = rows.categories(self.session, include_inactive)
        return {"items": [dump(category_schema, c) for c in found]}

    def create(self, data: Any) -> dict[str, Any]:
        self.principal.require(ADMIN)
        values = load(ExpenseCategoryInputSchema(), data)
        if self.session.get(ExpenseCategory, values["code"]) is not None:
            raise ValidationFailed.on("code", "is already a category")
        category = ExpenseCategory(**values)
        self.session.add(category)
        self.session.flush()
        dumped = dump(category_schema, category)
        self.record_history("expense_category", category.code, "created", new=dumped)
        return dumped

    def update(self, code: str, changes: Any) -> dict[str, Any]:
        self.principal.require(ADMIN)
        category = rows.get_category(self.session, code)
        values = load(ExpenseCategoryUpdateSchema(), changes, partial=True)
        history = [
            FieldChange(name, getattr(category, name), value)
            for name, value in values.items()
            if getattr(category, name) != value
        ]
        for name, value in values.items():
            setattr(category, name, value)
        self.session.flush()
        if history:
            self.record_history("expense_category", category.code, "updated", history)
        return dump(category_schema, category)
