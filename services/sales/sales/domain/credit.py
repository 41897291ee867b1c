"""The credit check (信用检查) of a sales order against the customer's credit limit from the ERP.

The customer's exposure is what it owes (receivables outstanding), what it has ordered and not
yet been invoiced for (confirmed open orders, when the caller counts them) and this order. An
exposure up to the limit passes; beyond it the order needs approval. A limit of zero is a real
limit (no credit); a customer the ERP gave no limit for is decided by configuration.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from crm_common.errors import ValidationFailed
from sales.domain.money import DEFAULT_CURRENCY


class WhenNoLimit(StrEnum):
    """What an order of a customer without a known credit limit gets."""

    ALLOW = "allow"
    REQUIRE_APPROVAL = "require_approval"


class CreditOutcome(StrEnum):
    WITHIN_LIMIT = "within_limit"
    OVER_LIMIT = "over_limit"
    NO_LIMIT_ALLOWED = "no_limit_allowed"
    NO_LIMIT_NEEDS_APPROVAL = "no_limit_needs_approval"


NEEDS_APPROVAL = frozenset({CreditOutcome.OVER_LIMIT, CreditOutcome.NO_LIMIT_NEEDS_APPROVAL})


@dataclass(frozen=True)
class CreditLimit:
    amount: Decimal
    currency: str = DEFAULT_CURRENCY


@dataclass(frozen=True)
class CreditCheck:
    outcome: CreditOutcome
    currency: str
    outstanding: Decimal
    open_orders: Decimal
    order_amount: Decimal
    credit_limit: Decimal | None

    @property
    def needs_approval(self) -> bool:
        return self.outcome in NEEDS_APPROVAL

    @property
    def exposure(self) -> Decimal:
        return self.outstanding + self.open_orders + self.order_amount

    @property
    def available(self) -> Decimal | None:
        """Credit left after this order; negative by how much it is over the limit."""
        return None if self.credit_limit is None else self.credit_limit - self.exposure


def parse_when_no_limit(value: str) -> WhenNoLimit:
    """The configured policy for customers without a limit, checked."""
    try:
        return WhenNoLimit(value)
    except ValueError:
        allowed = ", ".join(policy.value for policy in WhenNoLimit)
        raise ValidationFailed.on("credit_when_no_limit", f"must be one of {allowed}") from None


def check_credit(
    *,
    order_amount: Decimal,
    outstanding: Decimal,
    credit_limit: CreditLimit | None,
    when_no_limit: WhenNoLimit,
    open_orders: Decimal = Decimal(0),
    currency: str = DEFAULT_CURRENCY,
) -> CreditCheck:
    """Check ``order_amount`` (tax included, like receivables) in ``currency``.

    ``outstanding`` and ``open_orders`` must already be in ``currency``; a limit in another
    currency cannot be compared and is refused rather than guessed at.
    """
    if order_amount < 0:
        raise ValidationFailed.on("order_amount", "must not be negative")
    if credit_limit is not None and credit_limit.currency != currency:
        raise ValidationFailed.on(
            "currency",
            f"the credit limit is in {credit_limit.currency}, the order in {currency}",
        )
    if credit_limit is None:
        outcome = (
            CreditOutcome.NO_LIMIT_ALLOWED
            if when_no_limit is WhenNoLimit.ALLOW
            else CreditOutcome.NO_LIMIT_NEEDS_APPROVAL
        )
    elif outstanding + open_orders + order_amount > credit_limit.amount:
        outcome = CreditOutcome.OVER_LIMIT
    else:
        outcome = CreditOutcome.WITHIN_LIMIT
    return CreditCheck(
        outcome=outcome,
        currency=currency,
        outstanding=outstanding,
        open_orders=open_orders,
        order_amount=order_amount,
        credit_limit=None if credit_limit is None else credit_limit.amount,
    )
