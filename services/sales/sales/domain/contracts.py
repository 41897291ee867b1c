"""Contracts (合同): statuses, payment milestones (回款计划) and the expiry window.

A contract is drafted, signed, becomes active on its start date and ends completed,
terminated, or expired when its end date passes while it is in force. Its payment milestones
must add up to the contract amount exactly; a plan given in percentages is turned into amounts
with the rounding remainder on the last milestone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from crm_common.errors import ValidationFailed
from sales.domain.money import FEN
from sales.domain.quotes import HUNDRED, allocate


class ContractStatus(StrEnum):
    DRAFT = "draft"
    SIGNED = "signed"
    ACTIVE = "active"
    COMPLETED = "completed"
    TERMINATED = "terminated"
    EXPIRED = "expired"


LABELS = {
    ContractStatus.DRAFT: "草稿",
    ContractStatus.SIGNED: "已签订",
    ContractStatus.ACTIVE: "执行中",
    ContractStatus.COMPLETED: "已完成",
    ContractStatus.TERMINATED: "已终止",
    ContractStatus.EXPIRED: "已到期",
}

TRANSITIONS: dict[ContractStatus, frozenset[ContractStatus]] = {
    ContractStatus.DRAFT: frozenset({ContractStatus.SIGNED}),
    ContractStatus.SIGNED: frozenset(
        {ContractStatus.ACTIVE, ContractStatus.TERMINATED, ContractStatus.EXPIRED}
    ),
    ContractStatus.ACTIVE: frozenset(
        {ContractStatus.COMPLETED, ContractStatus.TERMINATED, ContractStatus.EXPIRED}
    ),
    ContractStatus.COMPLETED: frozenset(),
    ContractStatus.TERMINATED: frozenset(),
    ContractStatus.EXPIRED: frozenset({ContractStatus.COMPLETED}),
}
"""``expired``: the end date passed while the contract was in force, and nobody marked it
completed; it still may be (the last payments collected, say)."""

IN_FORCE = frozenset({ContractStatus.SIGNED, ContractStatus.ACTIVE})
"""Statuses whose end date is watched for expiry."""


def check_contract_transition(current: ContractStatus, new: ContractStatus) -> None:
    if new not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[current])) or "none"
        raise ValidationFailed(
            f"contract status cannot change from {current.value} to {new.value}",
            {
                "errors": {
                    "status": [
                        f"cannot change from {current.value} ({LABELS[current]}) to "
                        f"{new.value} ({LABELS[new]}); allowed: {allowed}"
                    ]
                }
            },
        )


def becomes_active(status: ContractStatus, start_date: dt.date, today: dt.date) -> bool:
    """A signed contract is in effect from its start date on."""
    return status is ContractStatus.SIGNED and today >= start_date


def has_lapsed(status: ContractStatus, end_date: dt.date, today: dt.date) -> bool:
    """A contract in force lapses (``expired``) the day after its end date."""
    return status in IN_FORCE and today > end_date


@dataclass(frozen=True)
class PaymentMilestone:
    name: str
    due_date: dt.date
    amount: Decimal


def check_contract(
    amount: Decimal,
    start_date: dt.date,
    end_date: dt.date,
    milestones: Sequence[PaymentMilestone],
) -> None:
    """A positive amount in fen, an end not before the start, and milestones with distinct
    names and positive amounts that add up to the amount exactly."""
    errors: dict[str, list[str]] = {}
    if amount <= 0 or amount != amount.quantize(FEN):
        errors["amount"] = ["must be a positive amount in fen"]
    if end_date < start_date:
        errors["end_date"] = [f"must not be before the start date {start_date.isoformat()}"]
    if not milestones:
        errors["milestones"] = ["at least one payment milestone is required"]
    seen: set[str] = set()
    for number, milestone in enumerate(milestones, start=1):
        field = f"milestones.{number}"
        name = milestone.name.strip()
        if not name:
            errors[f"{field}.name"] = ["is required"]
        elif name in seen:
            errors[f"{field}.name"] = [f"{name} appears more than once"]
        seen.add(name)
        if milestone.amount <= 0 or milestone.amount != milestone.amount.quantize(FEN):
            errors[f"{field}.amount"] = ["must be a positive amount in fen"]
    planned = sum((milestone.amount for milestone in milestones), Decimal(0))
    if milestones and "amount" not in errors and planned != amount:
        errors.setdefault("milestones", []).append(
            f"add up to {planned}, not the contract amount {amount}"
        )
    if errors:
        raise ValidationFailed("the contract is not valid", {"errors": errors})


def milestones_from_percentages(
    amount: Decimal, plan: Sequence[tuple[str, dt.date, Decimal]]
) -> tuple[PaymentMilestone, ...]:
    """Milestones of ``(name, due_date, percent)`` as amounts of ``amount``; the percentages
    must add up to 100 and the rounding remainder goes to the last milestone."""
    if amount <= 0 or amount != amount.quantize(FEN):
        raise ValidationFailed.on("amount", "must be a positive amount in fen")
    percents = [percent for _name, _due, percent in plan]
    if not plan or any(percent <= 0 for percent in percents):
        raise ValidationFailed.on("milestones", "every milestone needs a positive percentage")
    if sum(percents, Decimal(0)) != HUNDRED:
        raise ValidationFailed.on("milestones", "the percentages must add up to 100")
    amounts = allocate(amount, percents)
    return tuple(
        PaymentMilestone(name, due, share)
        for (name, due, _percent), share in zip(plan, amounts, strict=True)
    )


def expiry_window(today: dt.date, within_days: int) -> tuple[dt.date, dt.date]:
    """The end dates, both inclusive, of contracts expiring within ``within_days``."""
    if within_days < 0:
        raise ValidationFailed.on("within_days", "must not be negative")
    return today, today + dt.timedelta(days=within_days)


def is_expiring(
    status: ContractStatus, end_date: dt.date, today: dt.date, within_days: int
) -> bool:
    first, last = expiry_window(today, within_days)
    return status in IN_FORCE and first <= end_date <= last
