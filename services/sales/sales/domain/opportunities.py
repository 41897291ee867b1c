"""Opportunities (商机): status, stage changes, probability, contacts, competitors, lines.

An opportunity is open until it is won, lost (with a loss reason and optionally the competitor
that won) or abandoned; only someone with ``opportunity:reopen`` may open it again. Its win
probability follows its stage unless the owner overrides it; the override is kept across
moves between open stages and dropped when the opportunity closes (won is 100, otherwise 0).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

from crm_common.errors import Conflict, Forbidden, ValidationFailed
from sales.domain.codes import format_code, parse_code
from sales.domain.money import Money, parse_decimal
from sales.domain.processes import Outcome, Process, Stage, StageMove, plan_move

CODE_PREFIX = "OPP"
REOPEN_PERMISSION = "opportunity:reopen"
MAX_LINES = 200
MAX_TAGS = 20
MAX_TAG_LENGTH = 32


class Status(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"
    ABANDONED = "abandoned"


STATUS_LABELS = {
    Status.OPEN: "进行中",
    Status.WON: "赢单",
    Status.LOST: "输单",
    Status.ABANDONED: "已放弃",
}

CLOSED = (Status.WON, Status.LOST, Status.ABANDONED)


class ContactRole(StrEnum):
    DECISION_MAKER = "decision_maker"
    INFLUENCER = "influencer"
    USER = "user"
    PURCHASER = "purchaser"


CONTACT_ROLE_LABELS = {
    ContactRole.DECISION_MAKER: "决策者",
    ContactRole.INFLUENCER: "影响者",
    ContactRole.USER: "使用者",
    ContactRole.PURCHASER: "采购者",
}


class ThreatLevel(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


# -- codes ---------------------------------------------------------------------------------
def format_opportunity_code(year: int, sequence: int) -> str:
    """``OPP-2026-000001``."""
    return format_code(CODE_PREFIX, year, sequence)


def parse_opportunity_code(code: str) -> tuple[int, int] | None:
    return parse_code(CODE_PREFIX, code)


# -- customer and owner --------------------------------------------------------------------
def check_customer_usable(customer: Mapping[str, Any] | None, field: str = "customer_id") -> None:
    """An opportunity needs a customer that exists and is neither merged nor disabled."""
    if customer is None:
        raise ValidationFailed.on(field, "is not a customer you can see")
    if customer.get("status") == "merged":
        raise Conflict(
            f"customer {customer.get('code')} was merged into another customer",
            {"reason": "customer_merged", "merged_into_id": customer.get("merged_into_id")},
        )
    if customer.get("status") == "disabled":
        raise ValidationFailed.on(field, f"customer {customer.get('code')} is disabled")


def scope_from_customer(
    customer: Mapping[str, Any], user_id: str, department_id: str | None, values: Mapping[str, Any]
) -> dict[str, Any]:
    """Owner and department (the caller's unless given), region and category (the customer's)."""
    return {
        "owner_id": values.get("owner_id") or user_id,
        "department_id": values.get("department_id") or department_id,
        "region": customer.get("region"),
        "category": customer.get("category"),
    }


# -- status --------------------------------------------------------------------------------
def check_open(status: str) -> None:
    """Changes to stage, amount or lines need an open opportunity."""
    if status != Status.OPEN:
        raise Conflict(
            f"the opportunity is {status} ({STATUS_LABELS[Status(status)]}); reopen it first",
            {"reason": "opportunity_closed", "status": status},
        )


def check_transition(current: str, new: str, permissions: Collection[str] = ()) -> None:
    """Won, lost and abandoned only from open; back to open only with ``opportunity:reopen``."""
    old, target = Status(current), Status(new)
    if old is target:
        raise ValidationFailed.on("status", f"the opportunity is already {old.value}")
    if old is Status.OPEN:
        return
    if target is not Status.OPEN:
        raise Conflict(
            f"a {old.value} opportunity cannot become {target.value}; reopen it first",
            {"reason": "opportunity_closed", "status": old.value},
        )
    if REOPEN_PERMISSION not in permissions:
        raise Forbidden(
            f"reopening an opportunity needs {REOPEN_PERMISSION}",
            {"permission": REOPEN_PERMISSION},
        )


def check_loss(
    loss_reason: str | None,
    loss_reasons: Collection[str],
    won_competitor_id: str | None = None,
    competitors: Collection[str] | None = None,
) -> None:
    """A lost opportunity names a reason from the active list, and a known competitor if any."""
    errors: dict[str, list[str]] = {}
    if not (loss_reason or "").strip():
        errors["loss_reason"] = ["is required when an opportunity is lost"]
    elif loss_reason not in loss_reasons:
        errors["loss_reason"] = [
            f"{loss_reason!r} is not a loss reason in use; choose from "
            + ", ".join(sorted(loss_reasons))
        ]
    if won_competitor_id and competitors is not None and won_competitor_id not in competitors:
        errors["won_competitor_id"] = ["is not an active competitor"]
    if errors:
        raise ValidationFailed("the loss is not complete", {"errors": errors})


def check_probability_override(value: object, field: str = "probability_override") -> int | None:
    """A whole percentage from 0 to 100, or None to follow the stage again."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise ValidationFailed.on(field, "must be a whole number from 0 to 100, or null")
    return value


def effective_probability(stage: Stage, override: int | None, status: str) -> int:
    """Won is 100, lost and abandoned 0; open follows the override, else the stage."""
    if status == Status.WON:
        return 100
    if status != Status.OPEN:
        return 0
    return stage.probability if override is None else override


@dataclass(frozen=True)
class StageChange:
    """What a stage move or a close does to an opportunity."""

    stage_code: str
    status: str
    probability: int
    probability_override: int | None
    move: StageMove | None = None
    loss_reason: str | None = None
    won_competitor_id: str | None = None
    reason: str | None = None
    """Why, when a move back or an abandon needed one (for the stage history)."""

    @property
    def closes(self) -> bool:
        return self.status != Status.OPEN


def change_stage(
    process: Process,
    *,
    status: str,
    stage_code: str,
    to_code: str,
    values: Mapping[str, Any],
    reason: str | None = None,
    probability_override: int | None = None,
    loss_reason: str | None = None,
    loss_reasons: Collection[str] = (),
    won_competitor_id: str | None = None,
    competitors: Collection[str] | None = None,
) -> StageChange:
    """Move an open opportunity to ``to_code``; entering the won or a lost stage closes it."""
    check_open(status)
    move = plan_move(process, stage_code, to_code, values, reason)
    new_status = Status(move.status)
    override = None if move.closes else probability_override
    if new_status is Status.LOST:
        check_loss(loss_reason, loss_reasons, won_competitor_id, competitors)
    return StageChange(
        stage_code=move.target.code,
        status=new_status.value,
        probability=effective_probability(move.target, override, new_status),
        probability_override=override,
        move=move,
        loss_reason=loss_reason if new_status is Status.LOST else None,
        won_competitor_id=won_competitor_id if new_status is Status.LOST else None,
        reason=move.reason,
    )


def close(
    process: Process,
    *,
    status: str,
    stage_code: str,
    outcome: str,
    values: Mapping[str, Any],
    reason: str | None = None,
    loss_reason: str | None = None,
    loss_reasons: Collection[str] = (),
    won_competitor_id: str | None = None,
    lost_stage_code: str | None = None,
    competitors: Collection[str] | None = None,
) -> StageChange:
    """Win (into the won stage), lose (into ``lost_stage_code`` or the first lost stage) or
    abandon (the stage stays) an open opportunity."""
    target = Status(outcome) if outcome in tuple(Status) else None
    if target is None or target is Status.OPEN:
        raise ValidationFailed.on("status", "must be one of won, lost, abandoned")
    check_open(status)
    if target is Status.ABANDONED:
        if not (reason or "").strip():
            raise ValidationFailed.on("reason", "is required to abandon an opportunity")
        return StageChange(stage_code, target.value, 0, None, reason=(reason or "").strip())
    if target is Status.WON:
        to_code = process.won_stage.code
    else:
        to_code = lost_stage_code or process.lost_stages[0].code
        if process.stage(to_code).outcome != Outcome.LOST:
            raise ValidationFailed.on("lost_stage_code", f"{to_code!r} is not a lost stage")
    return change_stage(
        process,
        status=status,
        stage_code=stage_code,
        to_code=to_code,
        values=values,
        reason=reason,
        loss_reason=loss_reason,
        loss_reasons=loss_reasons,
        won_competitor_id=won_competitor_id,
        competitors=competitors,
    )


def reopen(
    process: Process,
    *,
    status: str,
    stage_code: str,
    last_open_stage_code: str | None,
    permissions: Collection[str],
) -> StageChange:
    """Open a closed opportunity again, back in the last open stage it was in (the first stage
    of its process when that is unknown); an abandoned one stays in its stage."""
    check_transition(status, Status.OPEN, permissions)
    if process.stage(stage_code).is_open:
        stage = process.stage(stage_code)
    elif last_open_stage_code is not None:
        stage = process.stage(last_open_stage_code)
    else:
        stage = process.first_stage
    return StageChange(stage.code, Status.OPEN.value, stage.probability, None)


# -- contacts, competitors, lines, tags ----------------------------------------------------
@dataclass(frozen=True)
class DealContact:
    contact_id: str
    role: str


def parse_contacts(raw: Sequence[Mapping[str, Any]]) -> tuple[DealContact, ...]:
    """The contacts of a deal with their roles; each contact at most once."""
    errors: dict[str, list[str]] = {}
    contacts: list[DealContact] = []
    seen: set[str] = set()
    roles = ", ".join(ContactRole)
    for index, item in enumerate(raw):
        contact_id = str(item.get("contact_id") or "").strip()
        role = item.get("role")
        if not contact_id:
            errors[f"contacts.{index}.contact_id"] = ["is required"]
        elif contact_id in seen:
            errors[f"contacts.{index}.contact_id"] = ["is listed twice"]
        if role not in tuple(ContactRole):
            errors[f"contacts.{index}.role"] = [f"must be one of {roles}"]
        seen.add(contact_id)
        contacts.append(DealContact(contact_id, str(role)))
    if errors:
        raise ValidationFailed("the contacts are not valid", {"errors": errors})
    return tuple(contacts)


def check_contacts_belong(
    contacts: Iterable[DealContact], customer_contact_ids: Collection[str]
) -> None:
    """Every contact of the deal is a contact of its customer."""
    errors = {
        f"contacts.{index}.contact_id": ["is not a contact of this customer"]
        for index, contact in enumerate(contacts)
        if contact.contact_id not in customer_contact_ids
    }
    if errors:
        raise ValidationFailed("the contacts are not valid", {"errors": errors})


@dataclass(frozen=True)
class CompetitorEntry:
    competitor_id: str
    threat_level: str
    offer: Money | None = None
    notes: str = ""


def parse_competitor_entries(
    raw: Sequence[Mapping[str, Any]], active_competitors: Collection[str]
) -> tuple[CompetitorEntry, ...]:
    """The competitors on a deal: each known and active, at most once, with a threat level."""
    errors: dict[str, list[str]] = {}
    entries: list[CompetitorEntry] = []
    seen: set[str] = set()
    levels = ", ".join(ThreatLevel)
    for index, item in enumerate(raw):
        at = f"competitors.{index}"
        competitor_id = str(item.get("competitor_id") or "").strip()
        if not competitor_id:
            errors[f"{at}.competitor_id"] = ["is required"]
        elif competitor_id in seen:
            errors[f"{at}.competitor_id"] = ["is listed twice"]
        elif competitor_id not in active_competitors:
            errors[f"{at}.competitor_id"] = ["is not an active competitor"]
        seen.add(competitor_id)
        level = item.get("threat_level") or ThreatLevel.MEDIUM
        if level not in tuple(ThreatLevel):
            errors[f"{at}.threat_level"] = [f"must be one of {levels}"]
        offer = None
        if item.get("offer") not in (None, ""):
            try:
                offer = Money.parse(
                    item["offer"],
                    item.get("currency"),
                    field=f"{at}.offer",
                    currency_field=f"{at}.currency",
                )
            except ValidationFailed as exc:
                errors.update(exc.field_errors)
        entries.append(
            CompetitorEntry(competitor_id, str(level), offer, str(item.get("notes") or "").strip())
        )
    if errors:
        raise ValidationFailed("the competitors are not valid", {"errors": errors})
    return tuple(entries)


@dataclass(frozen=True)
class Line:
    """A product of interest, free text until the item master lands."""

    line_no: int
    item_name: str
    spec: str
    quantity: Decimal
    expected_price: Money

    @property
    def amount(self) -> Money:
        return self.expected_price.times(self.quantity)


def parse_lines(raw: Sequence[Mapping[str, Any]], currency: str) -> tuple[Line, ...]:
    """Product lines numbered from 1, priced in the opportunity's currency."""
    if len(raw) > MAX_LINES:
        raise ValidationFailed.on("lines", f"an opportunity has at most {MAX_LINES} lines")
    errors: dict[str, list[str]] = {}
    lines: list[Line] = []
    for index, item in enumerate(raw):
        at = f"lines.{index}"
        name = str(item.get("item_name") or "").strip()
        if not name:
            errors[f"{at}.item_name"] = ["is required"]
        try:
            quantity = parse_decimal(item.get("quantity", 1), f"{at}.quantity")
            if quantity <= 0:
                raise ValidationFailed.on(f"{at}.quantity", "must be more than zero")
            price = Money.parse(
                item.get("expected_price", "0"), currency, field=f"{at}.expected_price"
            )
        except ValidationFailed as exc:
            errors.update(exc.field_errors)
            continue
        lines.append(Line(index + 1, name, str(item.get("spec") or "").strip(), quantity, price))
    if errors:
        raise ValidationFailed("the product lines are not valid", {"errors": errors})
    return tuple(lines)


def lines_total(lines: Iterable[Line], currency: str) -> Money:
    result = Money.zero(currency)
    for line in lines:
        result = result + line.amount
    return result


def normalize_tags(values: Iterable[str]) -> list[str]:
    """Distinct trimmed tags in first-seen order."""
    tags: dict[str, None] = {}
    for value in values:
        tag = " ".join(str(value).split())
        if not tag:
            continue
        if len(tag) > MAX_TAG_LENGTH:
            raise ValidationFailed.on("tags", f"a tag has at most {MAX_TAG_LENGTH} characters")
        tags.setdefault(tag, None)
    if len(tags) > MAX_TAGS:
        raise ValidationFailed.on("tags", f"an opportunity has at most {MAX_TAGS} tags")
    return list(tags)


# -- stage history -------------------------------------------------------------------------
DAY = Decimal("0.1")


@dataclass(frozen=True)
class StageVisit:
    """One stay of an opportunity in a stage (``left_at`` is None while it is still there)."""

    stage_code: str
    entered_at: datetime
    left_at: datetime | None = None


def days_between(start: datetime, end: datetime) -> Decimal:
    """Days from ``start`` to ``end`` to one decimal place."""
    seconds = Decimal((end - start).total_seconds())
    return (seconds / 86_400).quantize(DAY, rounding=ROUND_HALF_UP)


def days_per_stage(visits: Iterable[StageVisit], now: datetime) -> dict[str, Decimal]:
    """Days spent in each stage, a stage visited twice counted once with both stays."""
    seconds: dict[str, Decimal] = {}
    for visit in visits:
        end = visit.left_at or now
        seconds[visit.stage_code] = seconds.get(visit.stage_code, Decimal(0)) + Decimal(
            (end - visit.entered_at).total_seconds()
        )
    return {code: (s / 86_400).quantize(DAY, rounding=ROUND_HALF_UP) for code, s in seconds.items()}


def last_open_stage(visits: Sequence[StageVisit], process: Process) -> str | None:
    """The open stage an opportunity was in last (where a reopen takes it back to)."""
    open_codes = {stage.code for stage in process.open_stages}
    for visit in sorted(visits, key=lambda v: v.entered_at, reverse=True):
        if visit.stage_code in open_codes:
            return visit.stage_code
    return None


def is_overdue_close(expected_close_date: date | None, status: str, today: date) -> bool:
    """An open opportunity whose expected close date has passed."""
    return status == Status.OPEN and expected_close_date is not None and expected_close_date < today
