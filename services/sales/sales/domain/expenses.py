"""Sales expenses (费用) and their approval.

An expense is submitted, then approved or rejected, and an approved one is paid. The manager of
the submitter's department approves; above the second-level amount (5000 CNY unless configured)
the manager of a department further up approves too, after the first. Nobody approves their own
expense: where the manager is the submitter, or a department has no manager, the next
department up takes that level, and a person approves one level at most. When nobody is left
above, the expense cannot be submitted and the refusal says so.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from enum import StrEnum

from crm_common.errors import Conflict, Forbidden, ValidationFailed
from sales.domain.codes import format_code, parse_code
from sales.domain.money import DEFAULT_CURRENCY, Money

CODE_PREFIX = "EXP"
DEFAULT_CATEGORIES = ("travel", "entertainment", "gift", "sample", "other")
CATEGORY_LABELS = {
    "travel": "差旅",
    "entertainment": "招待",
    "gift": "礼品",
    "sample": "样品",
    "other": "其他",
}
DEFAULT_SECOND_LEVEL_AMOUNT = Money(Decimal(5000), DEFAULT_CURRENCY)


class ExpenseStatus(StrEnum):
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"
    PAID = "paid"


STATUS_LABELS = {
    ExpenseStatus.SUBMITTED: "待审批",
    ExpenseStatus.APPROVED: "已批准",
    ExpenseStatus.REJECTED: "已驳回",
    ExpenseStatus.PAID: "已支付",
}

TRANSITIONS: dict[ExpenseStatus, frozenset[ExpenseStatus]] = {
    ExpenseStatus.SUBMITTED: frozenset({ExpenseStatus.APPROVED, ExpenseStatus.REJECTED}),
    ExpenseStatus.APPROVED: frozenset({ExpenseStatus.PAID}),
    ExpenseStatus.REJECTED: frozenset(),
    ExpenseStatus.PAID: frozenset(),
}

COST_STATUSES = (ExpenseStatus.APPROVED, ExpenseStatus.PAID)
"""The expenses that count as cost of sale."""


class Decision(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"


def format_expense_code(year: int, sequence: int) -> str:
    """``EXP-2026-000001``."""
    return format_code(CODE_PREFIX, year, sequence)


def parse_expense_code(code: str) -> tuple[int, int] | None:
    return parse_code(CODE_PREFIX, code)


def check_category(code: str, categories: Collection[str]) -> str:
    """``code`` when it is one of the categories in use."""
    if code not in categories:
        raise ValidationFailed.on(
            "expense_category", "must be one of " + ", ".join(sorted(categories))
        )
    return code


def check_spent_on(spent_on: date, today: date) -> None:
    if spent_on > today:
        raise ValidationFailed.on("spent_on", "cannot be in the future")


def check_transition(current: str, new: str) -> None:
    """Submitted → approved or rejected; approved → paid; nothing else."""
    old, target = ExpenseStatus(current), ExpenseStatus(new)
    if target not in TRANSITIONS[old]:
        allowed = ", ".join(sorted(TRANSITIONS[old])) or "none"
        raise Conflict(
            f"an expense that is {old.value} cannot become {target.value} (allowed: {allowed})",
            {"reason": "expense_status", "status": old.value},
        )


def check_payment(status: str) -> None:
    """Only an approved expense is paid."""
    if status != ExpenseStatus.APPROVED:
        raise Conflict(
            f"only an approved expense can be paid; this one is {status}",
            {"reason": "expense_not_approved", "status": status},
        )


# -- approval ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ApprovalStep:
    level: int
    department_id: str
    approver_person_id: str
    decision: str | None = None


def levels_needed(amount: Money, threshold: Money) -> int:
    """Two levels above the threshold; an amount in another currency than the threshold's
    cannot be compared and takes two levels as well."""
    if amount.currency != threshold.currency or amount.amount > threshold.amount:
        return 2
    return 1


def approval_chain(
    submitter_person_id: str,
    department_chain: Sequence[tuple[str, str | None]],
    amount: Money,
    threshold: Money = DEFAULT_SECOND_LEVEL_AMOUNT,
) -> list[ApprovalStep]:
    """Who approves, level by level. ``department_chain`` is the submitter's department and
    then each one above it up to the top, as ``(department_id, manager_person_id)``."""
    needed = levels_needed(amount, threshold)
    steps: list[ApprovalStep] = []
    chosen = {submitter_person_id}
    for department_id, manager in department_chain:
        if manager is None or manager in chosen:
            continue
        chosen.add(manager)
        steps.append(ApprovalStep(len(steps) + 1, department_id, manager))
        if len(steps) == needed:
            return steps
    if not department_chain:
        why = "the submitter belongs to no department"
    elif not steps:
        why = "no department from the submitter's to the top has a manager but the submitter"
    else:
        why = (
            f"above {threshold} a second approver is needed, and no department above "
            f"{steps[0].department_id} has a manager who is not already in the chain"
        )
    raise Conflict(
        f"nobody can approve this expense: {why}",
        {"reason": "no_approver", "levels_needed": needed, "approvers_found": len(steps)},
    )


def pending_step(steps: Sequence[ApprovalStep]) -> ApprovalStep | None:
    """The first level still waiting for a decision."""
    return next((step for step in sorted(steps, key=lambda s: s.level) if not step.decision), None)


@dataclass(frozen=True)
class DecisionResult:
    step: ApprovalStep
    status: str
    next_step: ApprovalStep | None


def apply_decision(
    status: str,
    steps: Sequence[ApprovalStep],
    approver_person_id: str,
    decision: str,
    comment: str | None = None,
) -> DecisionResult:
    """Record ``approver_person_id``'s decision on the level waiting for them. A rejection needs
    a comment and ends the approval; the last approval approves the expense."""
    if decision not in tuple(Decision):
        raise ValidationFailed.on("decision", "must be approved or rejected")
    if status != ExpenseStatus.SUBMITTED:
        raise Conflict(
            f"the expense is {status}: there is nothing left to decide",
            {"reason": "expense_decided", "status": status},
        )
    step = pending_step(steps)
    if step is None:
        raise Conflict("every level has already decided", {"reason": "expense_decided"})
    if step.approver_person_id != approver_person_id:
        mine = [s.level for s in steps if s.approver_person_id == approver_person_id]
        why = (
            f"level {step.level} has not decided yet"
            if mine and mine[0] > step.level
            else "you are not the approver waited for"
        )
        raise Forbidden(
            f"you cannot decide on this expense now: {why}",
            {"reason": "not_the_approver", "level": step.level},
        )
    if decision == Decision.REJECTED and not (comment or "").strip():
        raise ValidationFailed.on("comment", "is required to reject an expense")
    decided = replace(step, decision=str(decision))
    if decision == Decision.REJECTED:
        return DecisionResult(decided, ExpenseStatus.REJECTED.value, None)
    following = pending_step([s for s in steps if s.level > step.level])
    new_status = ExpenseStatus.SUBMITTED if following else ExpenseStatus.APPROVED
    return DecisionResult(decided, new_status.value, following)


# -- totals --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExpenseRow:
    submitter_id: str
    department_id: str | None
    spent_on: date
    amount: Decimal
    currency: str = DEFAULT_CURRENCY
    status: str = ExpenseStatus.APPROVED
    customer_id: str | None = None
    opportunity_id: str | None = None


@dataclass(frozen=True)
class ExpenseTotal:
    key: tuple[str | None, ...]
    currency: str
    amount: Decimal
    count: int


TOTAL_DIMENSIONS = ("submitter_id", "department_id", "month", "customer_id", "opportunity_id")


def _dimension(row: ExpenseRow, name: str) -> str | None:
    if name == "month":
        return f"{row.spent_on:%Y-%m}"
    value: str | None = getattr(row, name)
    return value


def expense_totals(
    rows: Iterable[ExpenseRow],
    by: Sequence[str],
    statuses: Collection[str] = COST_STATUSES,
) -> list[ExpenseTotal]:
    """Sums of the expenses in ``statuses`` grouped by the ``by`` dimensions (from
    ``TOTAL_DIMENSIONS``) and currency, ordered by key."""
    unknown = [name for name in by if name not in TOTAL_DIMENSIONS]
    if unknown:
        raise ValueError(f"cannot total expenses by {', '.join(unknown)}")
    sums: dict[tuple[tuple[str | None, ...], str], tuple[Decimal, int]] = {}
    for row in rows:
        if row.status not in statuses:
            continue
        group = (tuple(_dimension(row, name) for name in by), row.currency)
        amount, count = sums.get(group, (Decimal(0), 0))
        sums[group] = (amount + row.amount, count + 1)
    return sorted(
        (
            ExpenseTotal(key, currency, amount, count)
            for (key, currency), (amount, count) in sums.items()
        ),
        key=lambda total: (tuple((k is None, k or "") for k in total.key), total.currency),
    )
