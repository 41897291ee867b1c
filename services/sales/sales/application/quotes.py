"""Quotations (报价单): made for a customer or an opportunity, priced by pricing, edited while
draft, submitted within the salesperson's discount authority (折扣权限) or else approved level
by level up the org chart, sent, accepted (the opportunity moves on and the order can be
made) or declined; revised into new versions while earlier ones stay readable; printed.

Scope: a quote is placed like an opportunity (its owner and their department, the customer's
region and category) and reached only through the caller's data scope (404 outside it); the
managers asked to approve it see it too. Reading needs ``opportunity:read``, changing it
``opportunity:write``; approving needs nothing but being the approver the quote waits for.

Discount authority: config ``QUOTE_DISCOUNT_LIMITS`` (``sales_rep:5,sales_manager:15``) gives
each role the largest discount it may grant, in percent of the reference amount (the lines at
the prices pricing chose, so a unit price typed below it counts as discount too). A submission
beyond the submitter's authority waits for the manager of the owner's department (or the next
one up); an approver whose own authority does not cover it passes it up, and the highest
manager's approval is final. A rejection sends the quote back to draft.

Statuses: draft → submitted → approved → sent → accepted / rejected (the customer declined) /
expired. A live quote past its validity reads as expired at once and is marked so by the
service's periodic sweep (``expire_quotes``). Printing renders ``sales/templates/quote.html``.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from nameko.extensions import DependencyProvider
from sqlalchemy.orm import Session

from crm_common.application import UseCaseContext
from crm_common.errors import Conflict, CrmError, Forbidden, NotFound, ValidationFailed
from crm_common.history import FieldChange, diff, filled, snapshot
from crm_common.ids import BUSINESS_TZ
from crm_common.models import check_version, split_version
from crm_common.schemas import load
from sales import events
from sales.application.activities import SalesUseCases
from sales.application.expenses import approver_of
from sales.application.history import dump
from sales.application.quote_print import PrintedQuote, render_html, render_pdf
from sales.domain import quotes as rules
from sales.domain.codes import format_code
from sales.domain.money import (
    FEN,
    MAX_INTEGER_DIGITS,
    parse_currency,
    parse_decimal,
)
from sales.domain.pricing import ItemPrice, PriceChoice, choose_price
from sales.domain.quotes import QuoteStatus
from sales.models import Customer, Opportunity
from sales.models.quotes import Quote, QuoteApproval, QuoteVersion
from sales.repository import activities as activity_rows
from sales.repository import catalog as catalog_rows
from sales.repository import opportunities as opportunity_rows
from sales.repository import quotes as rows
from sales.repository import read_models
from sales.schemas.quotes import (
    QuoteAcceptSchema,
    QuoteActionSchema,
    QuoteApprovalSchema,
    QuoteDecisionSchema,
    QuoteDeclineSchema,
    QuoteEditSchema,
    QuoteInputSchema,
    QuoteLineSchema,
    QuoteQuerySchema,
    QuoteRevisionSchema,
    QuoteSchema,
)

READ = "opportunity:read"
WRITE = "opportunity:write"
HISTORY_TYPE = "quote"
CODE_PREFIX = "QT"
LIMITS_SETTING = "QUOTE_DISCOUNT_LIMITS"
COMPANY_SETTINGS = {
    "name": "QUOTE_COMPANY_NAME",
    "address": "QUOTE_COMPANY_ADDRESS",
    "phone": "QUOTE_COMPANY_PHONE",
}
DEFAULT_LIMITS = "sales_rep:5,sales_manager:15,branch_manager:20,general_manager:30,admin:100"
QUOTE_EXPIRY_SECONDS = 3600
"""How often the service marks the live quotes past their validity expired."""
QUANTITY_PLACES = Decimal("0.0001")
QUANTITY_DIGITS = 14
RECORD_FIELDS = (
    "title",
    "status",
    "customer_id",
    "contact_id",
    "opportunity_id",
    "owner_id",
    "department_id",
    "currency",
    "prices_include_tax",
    "discount_kind",
    "discount_value",
    "valid_until",
    "terms",
    "remark",
    "net",
    "tax",
    "gross",
    "effective_discount_percent",
    "version_no",
    "order_id",
)

quote_schema = QuoteSchema()
line_schema = QuoteLineSchema()
approval_schema = QuoteApprovalSchema()


# -- settings ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class QuoteSettings:
    limits: dict[str, Decimal]
    company: dict[str, str] = field(default_factory=dict)


def parse_limits(value: Any) -> dict[str, Decimal]:
    """``sales_rep:5,sales_manager:15`` as ``{role: percent}``, checked."""
    text = DEFAULT_LIMITS if value in (None, "") else str(value)
    raw: dict[str, object] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        role, sep, percent = part.partition(":")
        if not sep or not role.strip():
            raise ValidationFailed.on(LIMITS_SETTING, f"{part!r} is not role:percent")
        raw[role.strip()] = percent.strip()
    return rules.discount_limits(raw)


DEFAULT_SETTINGS = QuoteSettings(parse_limits(None))


class QuoteConfig(DependencyProvider):
    """Discount limits per role and the company header of printed quotes, from config."""

    def setup(self) -> None:
        config = self.container.config
        self.settings = QuoteSettings(
            parse_limits(config.get(LIMITS_SETTING)),
            {key: str(config.get(name) or "") for key, name in COMPANY_SETTINGS.items()},
        )

    def get_dependency(self, worker_ctx: Any) -> QuoteSettings:
        return self.settings


# -- expiry sweep ------------------------------------------------------------------------------
def expire_quotes(session: Session, now: dt.datetime) -> int:
    """Mark every live quote past its validity expired (the service's periodic sweep)."""
    return rows.expire_past_validity(session, now.astimezone(BUSINESS_TZ).date(), now)


# -- input parsing -----------------------------------------------------------------------------
def _decimal(value: Any, name: str, places: Decimal, digits: int) -> Decimal:
    number = parse_decimal(value, name)
    if number != number.quantize(places):
        decimals = len(str(places).partition(".")[2])
        raise ValidationFailed.on(name, f"has more than {decimals} decimals")
    if abs(number) >= Decimal(10) ** digits:
        raise ValidationFailed.on(name, "is too large")
    return number


def _optional(value: Any, name: str, places: Decimal = QUANTITY_PLACES) -> Decimal | None:
    return None if value is None else _decimal(value, name, places, MAX_INTEGER_DIGITS)


@dataclass(frozen=True)
class PricedLine:
    rule: rules.QuoteLine
    row: dict[str, Any]


class Quotes(SalesUseCases):
    def __init__(self, context: UseCaseContext, settings: QuoteSettings = DEFAULT_SETTINGS):
        super().__init__(context)
        self.settings = settings
        self._person: Any = None

    # -- helpers -------------------------------------------------------------------------------
    def today(self) -> dt.date:
        return self.context.now.astimezone(BUSINESS_TZ).date()

    def person_id(self) -> str | None:
        if self._person is None:
            person = read_models.person_of_user(self.session, self.principal.user_id)
            self._person = (person.id if person else "",)
        return self._person[0] or None

    def visible(self) -> Any:
        return rows.visible_quotes(self.principal, self.person_id())

    def quote(self, quote_id: Any) -> Quote:
        return rows.get_quote(self.session, quote_id, self.visible())

    def versioned(self, quote_id: Any, expected_version: Any) -> Quote:
        quote = self.quote(quote_id)
        if expected_version is not None:
            check_version(quote, int(expected_version))
        return quote

    def status_of(self, quote: Quote) -> QuoteStatus:
        return rules.effective_status(QuoteStatus(quote.status), quote.valid_until, self.today())

    def require_status(self, quote: Quote, *allowed: QuoteStatus, action: str) -> QuoteStatus:
        status = self.status_of(quote)
        if status is QuoteStatus.EXPIRED and QuoteStatus(quote.status) is not status:
            raise Conflict(
                f"quote {quote.code} was valid until {quote.valid_until.isoformat()}; revise it",
                {"reason": "quote_expired", "valid_until": quote.valid_until.isoformat()},
            )
        if status not in allowed:
            wanted = ", ".join(s.value for s in allowed)
            raise Conflict(
                f"quote {quote.code} is {status.value} ({rules.LABELS[status]}); "
                f"only a quote that is {wanted} can be {action}",
                {"reason": "quote_status", "status": status.value},
            )
        return status

    def authority(self) -> rules.DiscountAuthority:
        return rules.authority_of(self.principal.roles, self.settings.limits)

    def dumped(self, quote: Quote) -> dict[str, Any]:
        customer = rows.customers_by_id(self.session, [quote.customer_id]).get(quote.customer_id)
        approvals = rows.approvals_of(self.session, quote.id, quote.version_no)
        return self.view(quote, customer, list(rows.lines_of(self.session, quote.id)), approvals)

    def view(
        self,
        quote: Quote,
        customer: Customer | None,
        lines: list[Any] | None,
        approvals: Any,
    ) -> dict[str, Any]:
        values: dict[str, Any] = {
            name: getattr(quote, name) for name in (*RECORD_FIELDS, "code", "region", "category")
        }
        status = self.status_of(quote)
        values.update(
            {
                "id": quote.id,
                "status": status.value,
                "status_label": rules.LABELS[status],
                "customer_code": customer.code if customer else None,
                "customer_name": customer.name if customer else None,
                "amount": quote.amount,
                "line_discount": quote.line_discount,
                "document_discount": quote.document_discount,
                "reference_amount": quote.reference_amount,
                "needs_approval": bool(approvals),
                "submitted_at": quote.submitted_at,
                "approved_at": quote.approved_at,
                "sent_at": quote.sent_at,
                "closed_at": quote.closed_at,
                "decline_reason": quote.decline_reason,
                "created_by": quote.created_by,
                "created_at": quote.created_at,
                "updated_at": quote.updated_at,
                "version": quote.version,
            }
        )
        dumped = dump(quote_schema, values)
        if lines is not None:
            dumped["lines"] = [dump(line_schema, line) for line in lines]
        levels = [dump(approval_schema, a) for a in approvals]
        dumped["approvals"] = levels
        waiting = status is QuoteStatus.SUBMITTED
        dumped["waiting_for"] = next((a for a in levels if waiting and not a["decision"]), None)
        return dumped

    def event(self, dumped: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return events.quote_event(dumped, **extra)

    # -- lines and totals ----------------------------------------------------------------------
    def priced_lines(
        self,
        raw_lines: list[dict[str, Any]],
        *,
        customer_category: str | None,
        currency: str,
        prices_include_tax: bool,
        document_discount: rules.Discount,
    ) -> tuple[list[dict[str, Any]], rules.QuoteTotals]:
        """The line rows and totals of input lines: items from the item master, unit prices
        defaulted by pricing, every figure by ``quote_totals``."""
        items = catalog_rows.items_by_code(self.session, (line["item_code"] for line in raw_lines))
        today = self.today()
        price_lists = catalog_rows.pricing_lists(self.session, items, today)
        parsed: list[tuple[dict[str, Any], rules.QuoteLine, PriceChoice | None]] = []
        for number, line in enumerate(raw_lines, start=1):
            prefix = f"lines.{number}"
            item = items.get(line["item_code"])
            if item is None:
                raise ValidationFailed.on(f"{prefix}.item_code", "is not an item of the ERP")
            if not item.active:
                raise ValidationFailed.on(f"{prefix}.item_code", "is an item out of use")
            quantity = _decimal(
                line["quantity"], f"{prefix}.quantity", QUANTITY_PLACES, QUANTITY_DIGITS
            )
            if quantity <= 0:
                raise ValidationFailed.on(f"{prefix}.quantity", "must be greater than zero")
            choice: PriceChoice | None
            try:
                choice = choose_price(
                    ItemPrice(item.item_code, item.list_price, item.currency),
                    quantity,
                    on=today,
                    price_lists=price_lists,
                    customer_category=customer_category,
                    currency=currency,
                )
            except ValidationFailed:
                choice = None
            given_price = _optional(line.get("unit_price"), f"{prefix}.unit_price", FEN)
            if given_price is None:
                if choice is None:
                    raise ValidationFailed.on(
                        f"{prefix}.unit_price",
                        f"no price list or list price prices {item.item_code} in {currency}; "
                        "enter a unit price",
                    )
                given_price = choice.unit_price
            discount = rules.discount_of(
                _optional(line.get("discount_percent"), f"{prefix}.discount"),
                _optional(line.get("discount_amount"), f"{prefix}.discount", FEN),
                f"{prefix}.discount",
            )
            rate = _optional(line.get("tax_rate"), f"{prefix}.tax_rate")
            if rate is None:
                rate = item.tax_rate if item.tax_rate in rules.TAX_RATES else rules.VAT_13
            rules.check_tax_rate(rate, f"{prefix}.tax_rate")
            rule = rules.QuoteLine(
                quantity=quantity,
                unit_price=given_price,
                discount=discount,
                tax_rate=rate,
                reference_unit_price=choice.unit_price if choice else None,
            )
            row = {
                "line_no": number,
                "item_code": item.item_code,
                "item_name": item.name,
                "spec": item.spec,
                "unit": item.unit,
                "quantity": quantity,
                "unit_price": given_price,
                "reference_unit_price": choice.unit_price if choice else None,
                "price_source": choice.source.value if choice else None,
                "price_list_code": choice.price_list_code if choice else None,
                "discount_kind": discount.kind.value,
                "discount_value": discount.value,
                "tax_rate": rate,
                "remark": line.get("remark"),
            }
            parsed.append((row, rule, choice))
        totals = rules.quote_totals(
            [rule for _, rule, _ in parsed],
            prices_include_tax=prices_include_tax,
            document_discount=document_discount,
        )
        result = []
        for (row, _, _), figures in zip(parsed, totals.lines, strict=True):
            result.append(
                {
                    **row,
                    "amount": figures.amount,
                    "line_discount": figures.line_discount,
                    "document_discount": figures.document_discount,
                    "net": figures.net,
                    "tax": figures.tax,
                    "gross": figures.gross,
                }
            )
        return result, totals

    def stored_lines_input(self, quote: Quote) -> list[dict[str, Any]]:
        """The stored lines as input again (to reprice them with a new document discount)."""
        found = []
        for line in rows.lines_of(self.session, quote.id):
            entry: dict[str, Any] = {
                "item_code": line.item_code,
                "quantity": line.quantity,
                "unit_price": line.unit_price,
                "tax_rate": line.tax_rate,
                "remark": line.remark,
            }
            key = "discount_amount" if line.discount_kind == "amount" else "discount_percent"
            entry[key] = line.discount_value
            found.append(entry)
        return found

    def apply_totals(self, quote: Quote, totals: rules.QuoteTotals) -> None:
        quote.amount = totals.amount
        quote.line_discount = totals.line_discount
        quote.document_discount = totals.document_discount
        quote.net = totals.net
        quote.tax = totals.tax
        quote.gross = totals.gross
        quote.reference_amount = totals.reference_amount
        quote.effective_discount_percent = totals.effective_discount_percent

    def document_discount(self, values: dict[str, Any], quote: Quote | None) -> rules.Discount:
        if "discount_percent" in values or "discount_amount" in values:
            return rules.discount_of(
                _optional(values.get("discount_percent"), "discount"),
                _optional(values.get("discount_amount"), "discount", FEN),
                "discount",
            )
        if quote is not None:
            return rules.Discount(rules.DiscountKind(quote.discount_kind), quote.discount_value)
        return rules.NO_DISCOUNT

    def check_valid_until(self, valid_until: dt.date) -> dt.date:
        if valid_until < self.today():
            raise ValidationFailed.on("valid_until", "must not be in the past")
        return valid_until

    # -- create --------------------------------------------------------------------------------
    def create(self, data: Any) -> dict[str, Any]:
        self.principal.require(WRITE)
        values = load(QuoteInputSchema(), data)
        opportunity: Opportunity | None = None
        if values.get("opportunity_id") is not None:
            opportunity = activity_rows.visible_opportunity(
                self.session, values["opportunity_id"], self.principal
            )
            if opportunity is None:
                raise ValidationFailed.on("opportunity_id", "is not an opportunity you can see")
        customer_id = values.get("customer_id")
        if customer_id is None:
            if opportunity is None:
                raise ValidationFailed.on("customer_id", "is required without an opportunity")
            customer_id = opportunity.customer_id
        customer = self.usable_customer(customer_id)
        if opportunity is not None and opportunity.customer_id != customer.id:
            raise ValidationFailed.on(
                "opportunity_id", f"is not an opportunity of customer {customer.code}"
            )
        self.check_contact(values.get("contact_id"), customer)
        owner_id = opportunity.owner_id if opportunity else self.principal.user_id
        placement = {
            "owner_id": owner_id,
            "department_id": opportunity.department_id
            if opportunity
            else self.principal.department_id,
            "region": customer.region,
            "category": customer.category,
        }
        self.check_placement(placement, ["region", "category"], "quote")
        currency = parse_currency(values.get("currency"))
        document_discount = self.document_discount(values, None)
        prices_include_tax = bool(values.get("prices_include_tax", False))
        line_rows, totals = self.priced_lines(
            values["lines"],
            customer_category=customer.category,
            currency=currency,
            prices_include_tax=prices_include_tax,
            document_discount=document_discount,
        )
        valid_until = values.get("valid_until") or (
            self.today() + timedelta(days=rules.DEFAULT_VALIDITY_DAYS)
        )
        year = opportunity_rows.business_year(self.context.now)
        sequence = opportunity_rows.allocate_sequence(self.session, CODE_PREFIX, year)
        quote = Quote(
            id=uuid.uuid4(),
            code=format_code(CODE_PREFIX, year, sequence),
            version_no=1,
            status=QuoteStatus.DRAFT.value,
            title=values.get("title"),
            customer_id=customer.id,
            contact_id=values.get("contact_id"),
            opportunity_id=opportunity.id if opportunity else None,
            currency=currency,
            prices_include_tax=prices_include_tax,
            discount_kind=document_discount.kind.value,
            discount_value=document_discount.value,
            valid_until=self.check_valid_until(valid_until),
            terms=values.get("terms"),
            remark=values.get("remark"),
            created_by=self.context.actor_id,
            created_at=self.context.now,
            updated_at=self.context.now,
            **placement,
        )
        self.apply_totals(quote, totals)
        self.session.add(quote)
        self.session.flush()
        rows.replace_lines(self.session, quote.id, line_rows)
        dumped = self.dumped(quote)
        self.record_history(
            HISTORY_TYPE, quote.id, "created", new=filled(dumped, (*RECORD_FIELDS, "lines"))
        )
        return dumped

    def check_contact(self, contact_id: uuid.UUID | None, customer: Customer) -> None:
        if (
            contact_id is not None
            and activity_rows.contact_of(self.session, contact_id, customer.id) is None
        ):
            raise ValidationFailed.on("contact_id", f"is not a contact of {customer.code}")

    # -- edit ----------------------------------------------------------------------------------
    def update(self, quote_id: Any, changes: Any, expected_version: Any) -> dict[str, Any]:
        """Change a draft: its lines (all of them), discount, validity, terms…"""
        self.principal.require(WRITE)
        raw, version = split_version(changes if changes is not None else {}, expected_version)
        values = load(QuoteEditSchema(), raw, partial=True)
        quote = self.quote(quote_id)
        check_version(quote, version)
        self.require_status(quote, QuoteStatus.DRAFT, action="edited")
        before = snapshot(quote, RECORD_FIELDS)
        customer = rows.customers_by_id(self.session, [quote.customer_id]).get(quote.customer_id)
        if "contact_id" in values and customer is not None:
            self.check_contact(values["contact_id"], customer)
        for name in ("title", "contact_id", "terms", "remark"):
            if name in values:
                setattr(quote, name, values[name])
        if values.get("valid_until") is not None:
            quote.valid_until = self.check_valid_until(values["valid_until"])
        if "prices_include_tax" in values:
            quote.prices_include_tax = bool(values["prices_include_tax"])
        document_discount = self.document_discount(values, quote)
        quote.discount_kind = document_discount.kind.value
        quote.discount_value = document_discount.value
        line_input = values.get("lines") or self.stored_lines_input(quote)
        line_rows, totals = self.priced_lines(
            line_input,
            customer_category=quote.category,
            currency=quote.currency,
            prices_include_tax=quote.prices_include_tax,
            document_discount=document_discount,
        )
        self.apply_totals(quote, totals)
        quote.updated_at = self.context.now
        self.session.flush()
        rows.replace_lines(self.session, quote.id, line_rows)
        changes_made = diff(before, snapshot(quote, RECORD_FIELDS), RECORD_FIELDS)
        if "lines" in values:
            changes_made.append(FieldChange("lines", None, len(line_rows)))
        if changes_made:
            self.record_history(HISTORY_TYPE, quote.id, "updated", changes_made)
        return self.dumped(quote)

    # -- approval ------------------------------------------------------------------------------
    def submit(self, quote_id: Any, data: Any) -> dict[str, Any]:
        """Within the caller's discount authority the quote is approved at once; beyond it,
        it waits for the next manager up from the owner's department."""
        self.principal.require(WRITE)
        values = load(QuoteActionSchema(), data or {})
        quote = self.versioned(quote_id, values.get("version"))
        self.require_status(quote, QuoteStatus.DRAFT, action="submitted")
        if not rows.lines_of(self.session, quote.id):
            raise ValidationFailed.on("lines", "a quote needs at least one line")
        quote.submitted_at = self.context.now
        quote.updated_at = self.context.now
        if not rules.needs_approval(quote.effective_discount_percent, self.authority()):
            return self.approved(quote, "submitted")
        approver = self.next_approver(quote, [])
        if approver is None:
            raise Conflict(
                "nobody above the quote's owner can approve this discount",
                {"reason": "no_approver"},
            )
        self.ask(quote, approver)
        quote.status = QuoteStatus.SUBMITTED.value
        self.session.flush()
        self.record_history(
            HISTORY_TYPE,
            quote.id,
            "submitted",
            [FieldChange("status", QuoteStatus.DRAFT.value, quote.status)],
        )
        dumped = self.dumped(quote)
        self.context.publish(events.QUOTE_SUBMITTED, self.event(dumped))
        return dumped

    def current_round(self, quote: Quote) -> list[QuoteApproval]:
        """The approvals of this submission of the current version (after the last
        rejection)."""
        approvals = list(rows.approvals_of(self.session, quote.id, quote.version_no))
        rejected = [a.level for a in approvals if a.decision == "rejected"]
        after = max(rejected) if rejected else 0
        return [a for a in approvals if a.level > after]

    def next_approver(self, quote: Quote, round_: list[QuoteApproval]) -> rules.Approver | None:
        owner = read_models.person_of_user(self.session, quote.owner_id)
        requester = owner.id if owner else ""
        chain = read_models.department_chain(self.session, quote.department_id)
        return rules.next_approver(
            requester,
            [(link.department_id, approver_of(link)) for link in chain],
            approved_by=[a.approver_person_id for a in round_ if a.decision == "approved"],
        )

    def ask(self, quote: Quote, approver: rules.Approver) -> None:
        levels = [a.level for a in rows.approvals_of(self.session, quote.id, quote.version_no)]
        users = read_models.users_of_people(self.session, [approver.person_id])
        self.session.add(
            QuoteApproval(
                quote_id=quote.id,
                version_no=quote.version_no,
                level=max(levels, default=0) + 1,
                department_id=approver.department_id,
                approver_person_id=approver.person_id,
                approver_user_id=users.get(approver.person_id),
            )
        )
        self.session.flush()

    def approved(self, quote: Quote, change: str) -> dict[str, Any]:
        old = quote.status
        quote.status = QuoteStatus.APPROVED.value
        quote.approved_at = self.context.now
        quote.updated_at = self.context.now
        self.session.flush()
        self.record_history(
            HISTORY_TYPE, quote.id, change, [FieldChange("status", old, quote.status)]
        )
        dumped = self.dumped(quote)
        self.context.publish(events.QUOTE_APPROVED, self.event(dumped))
        return dumped

    def waiting_approval(self, quote: Quote) -> QuoteApproval:
        """The level waiting for the caller's decision; 403 when it waits for someone else."""
        round_ = self.current_round(quote)
        waiting = next((a for a in round_ if a.decision is None), None)
        if waiting is None or waiting.approver_person_id != self.person_id():
            raise Forbidden(
                f"quote {quote.code} is not waiting for your approval",
                {"reason": "not_the_approver"},
            )
        return waiting

    def approve(self, quote_id: Any, data: Any) -> dict[str, Any]:
        values = load(QuoteDecisionSchema(), data or {})
        quote = self.versioned(quote_id, values.get("version"))
        self.require_status(quote, QuoteStatus.SUBMITTED, action="approved")
        waiting = self.waiting_approval(quote)
        waiting.decision = "approved"
        waiting.decided_at = self.context.now
        waiting.comment = values.get("comment")
        self.session.flush()
        covered = not rules.needs_approval(quote.effective_discount_percent, self.authority())
        if not covered:
            following = self.next_approver(quote, self.current_round(quote))
            if following is not None:
                self.ask(quote, following)
                quote.updated_at = self.context.now
                self.session.flush()
                self.record_history(
                    HISTORY_TYPE,
                    quote.id,
                    "approved",
                    [FieldChange(f"approvals.{waiting.level}", None, "approved")],
                )
                dumped = self.dumped(quote)
                self.context.publish(events.QUOTE_SUBMITTED, self.event(dumped))
                return dumped
        return self.approved(quote, "approved")

    def reject(self, quote_id: Any, data: Any) -> dict[str, Any]:
        """The approver sends the quote back to draft, saying why."""
        values = load(QuoteDecisionSchema(), data or {})
        if not (values.get("comment") or "").strip():
            raise ValidationFailed.on("comment", "say why the quote is sent back")
        quote = self.versioned(quote_id, values.get("version"))
        self.require_status(quote, QuoteStatus.SUBMITTED, action="rejected")
        waiting = self.waiting_approval(quote)
        waiting.decision = "rejected"
        waiting.decided_at = self.context.now
        waiting.comment = values["comment"]
        quote.status = QuoteStatus.DRAFT.value
        quote.updated_at = self.context.now
        self.session.flush()
        self.record_history(
            HISTORY_TYPE,
            quote.id,
            "rejected",
            [FieldChange("status", QuoteStatus.SUBMITTED.value, quote.status)],
        )
        dumped = self.dumped(quote)
        self.context.publish(
            events.QUOTE_REJECTED, self.event(dumped, by="approver", reason=values["comment"])
        )
        return dumped

    # -- with the customer ---------------------------------------------------------------------
    def send(self, quote_id: Any, data: Any) -> dict[str, Any]:
        self.principal.require(WRITE)
        values = load(QuoteActionSchema(), data or {})
        quote = self.versioned(quote_id, values.get("version"))
        self.require_status(quote, QuoteStatus.APPROVED, action="sent")
        return self.move(quote, QuoteStatus.SENT, "sent", sent_at=self.context.now)

    def decline(self, quote_id: Any, data: Any) -> dict[str, Any]:
        """The customer turned the quote down."""
        self.principal.require(WRITE)
        values = load(QuoteDeclineSchema(), data or {})
        quote = self.versioned(quote_id, values.get("version"))
        self.require_status(quote, QuoteStatus.SENT, action="declined")
        dumped = self.move(
            quote,
            QuoteStatus.REJECTED,
            "declined",
            closed_at=self.context.now,
            decline_reason=values["reason"],
        )
        self.context.publish(
            events.QUOTE_REJECTED, self.event(dumped, by="customer", reason=values["reason"])
        )
        return dumped

    def accept(self, quote_id: Any, data: Any) -> dict[str, Any]:
        """The customer accepted: the opportunity moves to its next open stage, and with
        ``create_order`` the order is made from the quote."""
        self.principal.require(WRITE)
        values = load(QuoteAcceptSchema(), data or {})
        quote = self.versioned(quote_id, values.get("version"))
        self.require_status(quote, QuoteStatus.SENT, action="accepted")
        dumped = self.move(quote, QuoteStatus.ACCEPTED, "accepted", closed_at=self.context.now)
        stage, note = self.advance_opportunity(quote)
        self.context.publish(events.QUOTE_ACCEPTED, self.event(dumped))
        order = None
        if values.get("create_order"):
            from sales.application.orders import Orders

            order = Orders(self.context).create_from_quote(str(quote.id), values.get("order"))
            dumped = self.dumped(quote)
        return {
            "quote": dumped,
            "opportunity_stage": stage,
            "opportunity_note": note,
            "order": order,
        }

    def advance_opportunity(self, quote: Quote) -> tuple[str | None, str | None]:
        """Move the quote's opportunity to the open stage after the one it is in; a move the
        opportunity's rules refuse (a required field missing, closed…) is left to its owner."""
        if quote.opportunity_id is None:
            return None, None
        from sales.application.opportunities import Opportunities
        from sales.application.processes import Processes

        opportunity = self.session.get(Opportunity, quote.opportunity_id)
        if opportunity is None or opportunity.status != "open":
            return None, "the opportunity is not open"
        process = Processes(self.context).definition_of(opportunity.process_id)
        current = process.stage(opportunity.stage_code)
        later = [s for s in process.open_stages if s.position > current.position]
        if not later:
            return opportunity.stage_code, None
        target = later[0]
        try:
            with self.session.begin_nested():
                Opportunities(self.context).move(
                    opportunity.id,
                    {"stage_code": target.code, "reason": f"报价单 {quote.code} 已被客户接受"},
                    opportunity.version,
                )
        except CrmError as exc:
            return opportunity.stage_code, f"the opportunity stays in its stage: {exc}"
        return target.code, None

    def move(self, quote: Quote, to: QuoteStatus, change: str, **stamps: Any) -> dict[str, Any]:
        old = quote.status
        rules.check_quote_transition(
            QuoteStatus(old), to, valid_until=quote.valid_until, today=self.today()
        )
        quote.status = to.value
        for name, value in stamps.items():
            setattr(quote, name, value)
        quote.updated_at = self.context.now
        self.session.flush()
        self.record_history(HISTORY_TYPE, quote.id, change, [FieldChange("status", old, to.value)])
        return self.dumped(quote)

    # -- revisions -----------------------------------------------------------------------------
    def revise(self, quote_id: Any, data: Any) -> dict[str, Any]:
        """A new draft version of the quote; the version it replaces stays readable."""
        self.principal.require(WRITE)
        values = load(QuoteRevisionSchema(), data or {})
        quote = self.versioned(quote_id, values.get("version"))
        status = self.status_of(quote)
        current = rules.QuoteVersion(quote.version_no, status, quote.valid_until, ())
        revision = rules.revise(current, valid_until=values.get("valid_until"))
        snapshot_ = self.dumped(quote)
        snapshot_["status"] = revision.previous.status.value
        snapshot_["status_label"] = rules.LABELS[revision.previous.status]
        self.session.add(
            QuoteVersion(
                quote_id=quote.id,
                version_no=quote.version_no,
                status=revision.previous.status.value,
                snapshot=snapshot_,
                replaced_at=self.context.now,
                replaced_by=self.context.actor_id,
            )
        )
        valid_until = revision.draft.valid_until
        if valid_until < self.today():
            valid_until = self.today() + timedelta(days=rules.DEFAULT_VALIDITY_DAYS)
        old_version = quote.version_no
        quote.version_no = revision.draft.version
        quote.status = QuoteStatus.DRAFT.value
        quote.valid_until = self.check_valid_until(valid_until)
        for name in ("submitted_at", "approved_at", "sent_at", "closed_at", "decline_reason"):
            setattr(quote, name, None)
        quote.updated_at = self.context.now
        self.session.flush()
        self.record_history(
            HISTORY_TYPE,
            quote.id,
            "revised",
            [FieldChange("version_no", old_version, quote.version_no)],
        )
        return self.dumped(quote)

    # -- reads ---------------------------------------------------------------------------------
    def get(self, quote_id: Any) -> dict[str, Any]:
        self.principal.require(READ)
        return self.dumped(self.quote(quote_id))

    def version_of(self, quote_id: Any, version_no: Any) -> dict[str, Any]:
        """One version of the quote: the current one, or an earlier one as it was."""
        self.principal.require(READ)
        quote = self.quote(quote_id)
        try:
            number = int(version_no)
        except (TypeError, ValueError):
            raise NotFound.of("quote version", version_no) from None
        if number == quote.version_no:
            return {
                "quote_id": str(quote.id),
                "version_no": number,
                "status": self.status_of(quote).value,
                "replaced_at": None,
                "replaced_by": None,
                "quote": self.dumped(quote),
            }
        earlier = rows.earlier_version(self.session, quote.id, number)
        return {
            "quote_id": str(quote.id),
            "version_no": earlier.version_no,
            "status": earlier.status,
            "replaced_at": earlier.replaced_at.isoformat() if earlier.replaced_at else None,
            "replaced_by": earlier.replaced_by,
            "quote": earlier.snapshot,
        }

    def list(self, query: Any) -> dict[str, Any]:
        self.principal.require(READ)
        params = load(QuoteQuerySchema(), query)
        extra = []
        if params.get("awaiting_me"):
            person_id = self.person_id()
            if person_id is None:
                return {"items": [], "next_cursor": None}
            extra.append(rows.awaiting(person_id))
        page = rows.quotes_page(self.session, params, self.visible(), extra, self.today())
        customers = rows.customers_by_id(self.session, (q.customer_id for q in page.items))
        items = []
        for quote in page.items:
            dumped = self.view(quote, customers.get(quote.customer_id), None, [])
            for name in ("approvals", "waiting_for", "needs_approval"):
                dumped.pop(name, None)
            items.append(dumped)
        return {"items": items, "next_cursor": page.next_cursor}

    def history_of(self, quote_id: Any, cursor: Any, limit: Any) -> dict[str, Any]:
        self.principal.require(READ)
        quote = self.quote(quote_id)
        return self.history(HISTORY_TYPE, quote.id, cursor, limit)

    # -- printing ------------------------------------------------------------------------------
    def printed(self, quote_id: Any) -> PrintedQuote:
        """What a printed quote shows: the quote, its contact's and owner's names, the
        company header."""
        self.principal.require(READ)
        quote = self.quote(quote_id)
        contact = None
        if quote.contact_id is not None:
            found = activity_rows.contact_of(self.session, quote.contact_id, quote.customer_id)
            contact = found.name if found else None
        owner = read_models.person_of_user(self.session, quote.owner_id)
        return PrintedQuote(
            self.dumped(quote), self.settings.company, contact, owner.name if owner else None
        )

    def printable(self, quote_id: Any) -> str:
        """The quote as an HTML page to print or send (Chinese labels, 人民币大写)."""
        return render_html(self.printed(quote_id))

    def pdf(self, quote_id: Any) -> dict[str, str]:
        """The quote as a PDF (CJK text in the STSong-Light font every PDF reader supplies),
        base64-encoded with its file name."""
        printed = self.printed(quote_id)
        return {
            "filename": f"{printed.quote['code']}-v{printed.quote['version_no']}.pdf",
            "content_base64": base64.b64encode(render_pdf(printed)).decode("ascii"),
        }
