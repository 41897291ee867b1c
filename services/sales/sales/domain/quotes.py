"""Quotations (报价单): totals, discount authority (折扣权限), statuses and revisions.

Totals. Every amount is in the quote's price basis: tax-exclusive (不含税) unit prices, or
tax-inclusive (含税) ones when ``prices_include_tax``; discounts given as amounts are in the
same basis. Per line, quantity × unit price less the line discount is rounded half-up to the
fen once; the document discount is then shared across lines in proportion to those amounts,
each share rounded to the fen and the remainder put on the last line, so the shares sum to the
document discount exactly. From the discounted line amount the line's tax is rounded once
(tax-exclusive: tax = net × rate; tax-inclusive: net = gross ÷ (1 + rate)) and the third figure
is the difference, so net + tax = gross on every line. Document totals are sums of line figures.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from enum import StrEnum

from crm_common.errors import Conflict, ValidationFailed
from sales.domain.money import DEFAULT_CURRENCY, FEN, quantize_fen

HUNDRED = Decimal(100)

VAT_13 = Decimal("0.13")
TAX_RATES = (VAT_13, Decimal("0.09"), Decimal("0.06"), Decimal(0))
"""The VAT rates a quote line may carry; 13 % is the default for goods."""


# -- discounts -----------------------------------------------------------------------------
class DiscountKind(StrEnum):
    PERCENT = "percent"
    AMOUNT = "amount"


@dataclass(frozen=True)
class Discount:
    """A discount of ``value`` percent, or of ``value`` off the whole line or document."""

    kind: DiscountKind
    value: Decimal

    @classmethod
    def percent(cls, value: Decimal | str) -> Discount:
        return cls(DiscountKind.PERCENT, Decimal(value))

    @classmethod
    def amount(cls, value: Decimal | str) -> Discount:
        return cls(DiscountKind.AMOUNT, Decimal(value))

    def check(self, field: str, applies_to: Decimal) -> None:
        """Refuse a discount below zero, above 100 %, above the amount it applies to, or of
        an amount finer than a fen."""
        if self.value < 0:
            raise ValidationFailed.on(field, "must not be negative")
        if self.kind is DiscountKind.PERCENT and self.value > HUNDRED:
            raise ValidationFailed.on(field, "must not exceed 100 percent")
        if self.kind is DiscountKind.AMOUNT:
            if self.value != self.value.quantize(FEN):
                raise ValidationFailed.on(field, "must be a whole number of fen")
            if self.value > applies_to:
                raise ValidationFailed.on(field, f"must not exceed the amount {applies_to}")

    def apply(self, exact_amount: Decimal) -> Decimal:
        """``exact_amount`` less this discount, unrounded."""
        if self.kind is DiscountKind.PERCENT:
            return exact_amount * (HUNDRED - self.value) / HUNDRED
        return exact_amount - self.value


NO_DISCOUNT = Discount(DiscountKind.PERCENT, Decimal(0))


def allocate(total: Decimal, weights: Sequence[Decimal]) -> tuple[Decimal, ...]:
    """``total`` (in fen) shared across ``weights`` in proportion, each share rounded half-up
    to the fen and the remainder on the last share, so the shares sum to ``total`` exactly.

    When rounding many tiny shares the same way would push the remainder below zero or past
    the last weight, shares are rounded on the running total instead, which keeps every share
    between zero and its weight.
    """
    if not weights:
        if total:
            raise ValueError("a non-zero total needs at least one weight to go to")
        return ()
    whole = sum(weights, Decimal(0))
    if whole == 0:
        if total:
            raise ValueError("a non-zero total cannot be shared across zero weights")
        return tuple(Decimal("0.00") for _ in weights)
    shares = [quantize_fen(total * weight / whole) for weight in weights[:-1]]
    remainder = total - sum(shares, Decimal(0))
    if remainder >= 0 and (total > whole or remainder <= weights[-1]):
        return (*shares, remainder)
    running: list[Decimal] = []
    previous, cumulative = Decimal("0.00"), Decimal(0)
    for weight in weights[:-1]:
        cumulative += weight
        reached = quantize_fen(total * cumulative / whole)
        running.append(reached - previous)
        previous = reached
    return (*running, total - previous)


# -- totals --------------------------------------------------------------------------------
@dataclass(frozen=True)
class QuoteLine:
    quantity: Decimal
    unit_price: Decimal
    discount: Discount = NO_DISCOUNT
    tax_rate: Decimal = VAT_13
    reference_unit_price: Decimal | None = None
    """The price pricing chose, in the same tax basis; a unit price typed below it counts
    toward the effective discount. ``None``: the unit price itself."""


@dataclass(frozen=True)
class LineTotals:
    amount: Decimal
    """Quantity × unit price, in the quote's price basis."""
    line_discount: Decimal
    document_discount: Decimal
    net: Decimal
    tax: Decimal
    gross: Decimal
    reference_amount: Decimal

    @property
    def discounted(self) -> Decimal:
        """The line's amount after both discounts, in the quote's price basis."""
        return self.amount - self.line_discount - self.document_discount


@dataclass(frozen=True)
class QuoteTotals:
    lines: tuple[LineTotals, ...]
    amount: Decimal
    line_discount: Decimal
    document_discount: Decimal
    net: Decimal
    tax: Decimal
    gross: Decimal
    reference_amount: Decimal
    effective_discount_percent: Decimal
    """How far the discounted total lies below the reference amount, in percent, rounded up
    to the hundredth so a discount just over a limit never reads as within it; negative when
    quoted above the reference prices."""

    @property
    def discount(self) -> Decimal:
        return self.line_discount + self.document_discount


def check_tax_rate(rate: Decimal, field: str = "tax_rate") -> None:
    if rate not in TAX_RATES:
        allowed = ", ".join(f"{(rate * HUNDRED).normalize():f} %" for rate in TAX_RATES)
        raise ValidationFailed.on(field, f"must be one of {allowed}")


def quote_totals(
    lines: Sequence[QuoteLine],
    *,
    prices_include_tax: bool = False,
    document_discount: Discount = NO_DISCOUNT,
) -> QuoteTotals:
    amounts: list[Decimal] = []
    after_line_discount: list[Decimal] = []
    references: list[Decimal] = []
    for number, line in enumerate(lines, start=1):
        field = f"lines.{number}"
        if line.quantity <= 0:
            raise ValidationFailed.on(f"{field}.quantity", "must be greater than zero")
        if line.unit_price < 0:
            raise ValidationFailed.on(f"{field}.unit_price", "must not be negative")
        check_tax_rate(line.tax_rate, f"{field}.tax_rate")
        exact = line.quantity * line.unit_price
        line.discount.check(f"{field}.discount", quantize_fen(exact))
        amounts.append(quantize_fen(exact))
        after_line_discount.append(quantize_fen(line.discount.apply(exact)))
        reference_price = line.unit_price
        if line.reference_unit_price is not None:
            reference_price = line.reference_unit_price
        references.append(quantize_fen(line.quantity * reference_price))

    base = sum(after_line_discount, Decimal(0))
    document_discount.check("document_discount", base)
    shares = allocate(quantize_fen(base - document_discount.apply(base)), after_line_discount)

    figures = [
        _line_figures(amount, after, share, line.tax_rate, prices_include_tax, reference)
        for line, amount, after, share, reference in zip(
            lines, amounts, after_line_discount, shares, references, strict=True
        )
    ]
    reference_amount = sum((f.reference_amount for f in figures), Decimal(0))
    discounted = sum((f.discounted for f in figures), Decimal(0))
    effective = Decimal("0.00")
    if reference_amount:
        effective = ((reference_amount - discounted) * HUNDRED / reference_amount).quantize(
            FEN, rounding=ROUND_CEILING
        )
    return QuoteTotals(
        lines=tuple(figures),
        amount=sum((f.amount for f in figures), Decimal(0)),
        line_discount=sum((f.line_discount for f in figures), Decimal(0)),
        document_discount=sum((f.document_discount for f in figures), Decimal(0)),
        net=sum((f.net for f in figures), Decimal(0)),
        tax=sum((f.tax for f in figures), Decimal(0)),
        gross=sum((f.gross for f in figures), Decimal(0)),
        reference_amount=reference_amount,
        effective_discount_percent=effective,
    )


def _line_figures(
    amount: Decimal,
    after_line_discount: Decimal,
    document_share: Decimal,
    tax_rate: Decimal,
    prices_include_tax: bool,
    reference_amount: Decimal,
) -> LineTotals:
    discounted = after_line_discount - document_share
    if prices_include_tax:
        gross = discounted
        net = quantize_fen(gross / (1 + tax_rate))
        tax = gross - net
    else:
        net = discounted
        tax = quantize_fen(net * tax_rate)
        gross = net + tax
    return LineTotals(
        amount=amount,
        line_discount=amount - after_line_discount,
        document_discount=document_share,
        net=net,
        tax=tax,
        gross=gross,
        reference_amount=reference_amount,
    )


# -- discount authority --------------------------------------------------------------------
def discount_limits(raw: Mapping[str, object]) -> dict[str, Decimal]:
    """The configured ``{role: maximum discount percent}`` mapping, checked: every limit a
    number from 0 to 100."""
    limits: dict[str, Decimal] = {}
    for role, value in raw.items():
        field = f"discount_limits.{role}"
        if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
            raise ValidationFailed.on(field, "must be a percent from 0 to 100")
        try:
            limit = Decimal(str(value))
        except InvalidOperation:
            raise ValidationFailed.on(field, "must be a percent from 0 to 100") from None
        if not limit.is_finite() or not 0 <= limit <= HUNDRED:
            raise ValidationFailed.on(field, "must be a percent from 0 to 100")
        limits[role] = limit
    return limits


@dataclass(frozen=True)
class DiscountAuthority:
    max_percent: Decimal
    role: str | None = None
    """The role that grants ``max_percent``; ``None`` when no role grants any discount."""


def authority_of(roles: Iterable[str], limits: Mapping[str, Decimal]) -> DiscountAuthority:
    """The widest discount any of ``roles`` may grant; none configured: no discount at all."""
    granted = [DiscountAuthority(limits[role], role) for role in roles if role in limits]
    if not granted:
        return DiscountAuthority(Decimal(0))
    return max(granted, key=lambda authority: (authority.max_percent, authority.role or ""))


def needs_approval(effective_discount_percent: Decimal, authority: DiscountAuthority) -> bool:
    return effective_discount_percent > authority.max_percent


@dataclass(frozen=True)
class Approver:
    department_id: str
    person_id: str


def next_approver(
    requester_person_id: str,
    department_chain: Sequence[tuple[str, str | None]],
    *,
    approved_by: Iterable[str] = (),
) -> Approver | None:
    """The manager who approves next, or ``None`` when no one is left above.

    ``department_chain`` runs from the requester's department up to the root, as
    ``(department_id, manager_person_id)``. The walk starts above the highest department whose
    manager already approved and skips departments without a manager, managed by the requester
    (nobody approves their own discount) or by someone who already approved. When the approver's
    own authority does not cover the discount, ask again with them in ``approved_by``.
    """
    done = set(approved_by)
    start = 0
    for index, (_department, manager) in enumerate(department_chain):
        if manager is not None and manager in done:
            start = index + 1
    for department_id, manager in department_chain[start:]:
        if manager is None or manager == requester_person_id or manager in done:
            continue
        return Approver(department_id, manager)
    return None


# -- statuses and revisions ----------------------------------------------------------------
class QuoteStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    SENT = "sent"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    EXPIRED = "expired"
    SUPERSEDED = "superseded"


LABELS = {
    QuoteStatus.DRAFT: "草稿",
    QuoteStatus.SUBMITTED: "待审批",
    QuoteStatus.APPROVED: "已审批",
    QuoteStatus.SENT: "已发送",
    QuoteStatus.ACCEPTED: "已接受",
    QuoteStatus.REJECTED: "已拒绝",
    QuoteStatus.EXPIRED: "已过期",
    QuoteStatus.SUPERSEDED: "已修订",
}

TRANSITIONS: dict[QuoteStatus, frozenset[QuoteStatus]] = {
    QuoteStatus.DRAFT: frozenset({QuoteStatus.SUBMITTED, QuoteStatus.APPROVED}),
    QuoteStatus.SUBMITTED: frozenset(
        {QuoteStatus.APPROVED, QuoteStatus.DRAFT, QuoteStatus.EXPIRED}
    ),
    QuoteStatus.APPROVED: frozenset({QuoteStatus.SENT, QuoteStatus.EXPIRED}),
    QuoteStatus.SENT: frozenset({QuoteStatus.ACCEPTED, QuoteStatus.REJECTED, QuoteStatus.EXPIRED}),
    QuoteStatus.ACCEPTED: frozenset(),
    QuoteStatus.REJECTED: frozenset(),
    QuoteStatus.EXPIRED: frozenset(),
    QuoteStatus.SUPERSEDED: frozenset(),
}
"""``submitted → draft`` is an approver sending the quote back; ``draft → approved`` is a
submission within the salesperson's own authority."""

EXPIRABLE = frozenset({QuoteStatus.SUBMITTED, QuoteStatus.APPROVED, QuoteStatus.SENT})
"""Statuses that lapse to ``expired`` once the validity date has passed."""

LIVE = EXPIRABLE
"""Statuses a revision supersedes: the earlier version can no longer move on."""

REVISABLE = LIVE | {QuoteStatus.REJECTED, QuoteStatus.EXPIRED}


def is_past_validity(valid_until: dt.date, today: dt.date) -> bool:
    """A quote is valid through its ``valid_until`` day."""
    return today > valid_until


def lapses(status: QuoteStatus, valid_until: dt.date, today: dt.date) -> bool:
    """Whether a quote in ``status`` is now due to become ``expired``."""
    return status in EXPIRABLE and is_past_validity(valid_until, today)


def status_after_submit(approval_needed: bool) -> QuoteStatus:
    return QuoteStatus.SUBMITTED if approval_needed else QuoteStatus.APPROVED


def check_quote_transition(
    current: QuoteStatus, new: QuoteStatus, *, valid_until: dt.date, today: dt.date
) -> None:
    """Accept a listed move; sending or accepting a quote past its validity is a conflict, and
    only such a quote may be marked expired."""
    if new not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[current])) or "none"
        raise ValidationFailed(
            f"quote status cannot change from {current.value} to {new.value}",
            {
                "errors": {
                    "status": [
                        f"cannot change from {current.value} ({LABELS[current]}) to "
                        f"{new.value} ({LABELS[new]}); allowed: {allowed}"
                    ]
                }
            },
        )
    past = is_past_validity(valid_until, today)
    if new in (QuoteStatus.SENT, QuoteStatus.ACCEPTED) and past:
        raise Conflict(
            f"the quote was valid until {valid_until.isoformat()}; revise it first",
            {"reason": "quote_expired", "valid_until": valid_until.isoformat()},
        )
    if new is QuoteStatus.EXPIRED and not past:
        raise ValidationFailed.on("status", f"the quote is valid until {valid_until.isoformat()}")


@dataclass(frozen=True)
class QuoteVersion:
    """One version of a quote: what the customer was offered."""

    version: int
    status: QuoteStatus
    valid_until: dt.date
    lines: tuple[QuoteLine, ...]
    prices_include_tax: bool = False
    document_discount: Discount = NO_DISCOUNT
    currency: str = DEFAULT_CURRENCY
    terms: str = ""

    def totals(self) -> QuoteTotals:
        return quote_totals(
            self.lines,
            prices_include_tax=self.prices_include_tax,
            document_discount=self.document_discount,
        )


@dataclass(frozen=True)
class Revision:
    previous: QuoteVersion
    """The earlier version as it stays readable: superseded if it was still live."""
    draft: QuoteVersion


def revise(current: QuoteVersion, *, valid_until: dt.date | None = None) -> Revision:
    """Copy ``current`` into the next version, a draft; a new validity date is optional."""
    if current.status not in REVISABLE:
        raise Conflict(
            f"a quote version that is {current.status.value} cannot be revised",
            {"reason": "not_revisable", "status": current.status.value},
        )
    previous = current
    if current.status in LIVE:
        previous = dataclasses.replace(current, status=QuoteStatus.SUPERSEDED)
    draft = dataclasses.replace(
        current,
        version=current.version + 1,
        status=QuoteStatus.DRAFT,
        valid_until=valid_until or current.valid_until,
    )
    return Revision(previous=previous, draft=draft)


# -- input ---------------------------------------------------------------------------------
def discount_of(percent: Decimal | None, amount: Decimal | None, field: str) -> Discount:
    """The discount a line or the document was given: a percent or an amount, not both."""
    if percent is not None and amount is not None:
        raise ValidationFailed.on(field, "give a discount percent or an amount, not both")
    if amount is not None:
        return Discount.amount(amount)
    if percent is not None:
        return Discount.percent(percent)
    return NO_DISCOUNT


DEFAULT_VALIDITY_DAYS = 30
"""How long a quote is valid unless its ``valid_until`` says otherwise."""


def effective_status(status: QuoteStatus, valid_until: dt.date, today: dt.date) -> QuoteStatus:
    """The status a reader sees: a live quote past its validity reads as expired even before
    the periodic sweep has marked it so."""
    return QuoteStatus.EXPIRED if lapses(status, valid_until, today) else status


# -- 人民币大写 ------------------------------------------------------------------------------
_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_SMALL_UNITS = ("", "拾", "佰", "仟")
_GROUP_UNITS = ("", "万", "亿", "万亿")


def _group_text(group: int) -> str:
    """A number from 1 to 9999 in capital figures, zeros inside read once (壹仟零伍)."""
    text, zero = "", False
    for position in range(3, -1, -1):
        digit = group // 10**position % 10
        if digit == 0:
            zero = bool(text)
            continue
        if zero:
            text += "零"
            zero = False
        text += _DIGITS[digit] + _SMALL_UNITS[position]
    return text


def rmb_upper(amount: Decimal) -> str:
    """The amount in 人民币大写 as written on Chinese commercial documents, e.g. 1005.30 →
    ``壹仟零伍元叁角整``, 0.05 → ``伍分``, 100 → ``壹佰元整``; a negative amount is preceded by
    负. Amounts of 10^16 yuan or more are refused."""
    fen_total = int(quantize_fen(abs(amount)) * 100)
    yuan, jiao, fen = fen_total // 100, fen_total // 10 % 10, fen_total % 10
    if yuan >= 10**16:
        raise ValueError("amount too large for 人民币大写")
    if fen_total == 0:
        return "零元整"
    text = ""
    if yuan:
        groups = []
        rest = yuan
        while rest:
            groups.append(rest % 10000)
            rest //= 10000
        pending_zero = False
        for index in range(len(groups) - 1, -1, -1):
            group = groups[index]
            if group == 0:
                pending_zero = bool(text)
                continue
            if text and (pending_zero or group < 1000):
                text += "零"
            pending_zero = False
            text += _group_text(group) + _GROUP_UNITS[index]
        text += "元"
    if jiao == 0 and fen == 0:
        text += "整"
    else:
        if jiao:
            text += _DIGITS[jiao] + "角"
        elif yuan:
            text += "零"
        if fen:
            text += _DIGITS[fen] + "分"
        else:
            text += "整"
    return ("负" if amount < 0 else "") + text
