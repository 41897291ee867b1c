"""Queries on quotations (报价单), their lines, earlier versions and approvals; what orders read
of a quote (``quote_for_order``) and how they mark it ordered (``mark_quote_ordered``).

A quote is scoped like an opportunity (owner, department, the customer's region and
category); the managers asked to approve its discount see it too, whatever their grants, so
that the quotes waiting for them can be listed and decided.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, false, or_, select, update
from sqlalchemy.orm import Session

from crm_common.context import Principal
from crm_common.errors import NotFound
from crm_common.ids import lookup_id
from crm_common.pagination import Page, SortKey, keyset_page
from crm_common.scope import ScopeColumns, scope_filter
from sales.domain.quotes import EXPIRABLE, QuoteStatus
from sales.models import Customer
from sales.models.quotes import Quote, QuoteApproval, QuoteLine, QuoteVersion
from sales.repository import read_models

QUOTE_SCOPE = ScopeColumns(
    owner=Quote.owner_id,
    department=Quote.department_id,
    region=Quote.region,
    category=Quote.category,
)


# -- scope -------------------------------------------------------------------------------------
def approves(person_id: str | None) -> ColumnElement[bool]:
    """The person is asked to approve some version of the quote."""
    if person_id is None:
        return false()
    return exists().where(
        QuoteApproval.quote_id == Quote.id, QuoteApproval.approver_person_id == person_id
    )


def visible_quotes(principal: Principal, person_id: str | None = None) -> ColumnElement[bool]:
    """The quotes the caller's grants cover, and those the caller's person is asked to
    approve."""
    return or_(scope_filter(principal, QUOTE_SCOPE), approves(person_id))


def awaiting(person_id: str) -> ColumnElement[bool]:
    """Submitted quotes whose open approval level is the person's."""
    return and_(
        Quote.status == QuoteStatus.SUBMITTED.value,
        exists().where(
            QuoteApproval.quote_id == Quote.id,
            QuoteApproval.version_no == Quote.version_no,
            QuoteApproval.approver_person_id == person_id,
            QuoteApproval.decision.is_(None),
        ),
    )


def get_quote(
    session: Session, quote_id: Any, visible: ColumnElement[bool], *, for_update: bool = False
) -> Quote:
    """The quote if the caller may see it; ``NotFound`` alike when missing or hidden."""
    key = lookup_id(quote_id)
    found = None
    if key is not None:
        stmt = select(Quote).where(Quote.id == key, visible)
        if for_update:
            stmt = stmt.with_for_update()
        found = session.scalar(stmt)
    if found is None:
        raise NotFound.of("quote", quote_id)
    return found


# -- children ----------------------------------------------------------------------------------
def lines_of(session: Session, quote_id: uuid.UUID) -> Sequence[QuoteLine]:
    stmt = select(QuoteLine).where(QuoteLine.quote_id == quote_id).order_by(QuoteLine.line_no)
    return session.scalars(stmt).all()


def replace_lines(session: Session, quote_id: uuid.UUID, rows: Iterable[dict[str, Any]]) -> None:
    session.execute(delete(QuoteLine).where(QuoteLine.quote_id == quote_id))
    session.add_all(QuoteLine(quote_id=quote_id, **row) for row in rows)
    session.flush()


def approvals_of(session: Session, quote_id: uuid.UUID, version_no: int) -> Sequence[QuoteApproval]:
    stmt = (
        select(QuoteApproval)
        .where(QuoteApproval.quote_id == quote_id, QuoteApproval.version_no == version_no)
        .order_by(QuoteApproval.level)
    )
    return session.scalars(stmt).all()


def earlier_version(session: Session, quote_id: uuid.UUID, version_no: int) -> QuoteVersion:
    found = session.get(QuoteVersion, (quote_id, version_no))
    if found is None:
        raise NotFound.of("quote version", version_no)
    return found


def customers_by_id(session: Session, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Customer]:
    wanted = set(ids)
    if not wanted:
        return {}
    return {c.id: c for c in session.scalars(select(Customer).where(Customer.id.in_(wanted)))}


# -- lists -------------------------------------------------------------------------------------
SORT_COLUMNS = {"created_at": Quote.created_at, "valid_until": Quote.valid_until}


def status_in(statuses: Sequence[str], today: dt.date) -> ColumnElement[bool]:
    """Quotes whose status reads as one of ``statuses`` today: a live quote past its validity
    reads as expired before the sweep has stored it so."""
    live = [s.value for s in EXPIRABLE]
    lapsed = and_(Quote.status.in_(live), Quote.valid_until < today)
    wanted = [or_(and_(Quote.status.in_(statuses), ~lapsed))]
    if QuoteStatus.EXPIRED.value in statuses:
        wanted.append(lapsed)
    return or_(*wanted)


def quotes_page(
    session: Session,
    query: dict[str, Any],
    visible: ColumnElement[bool],
    extra: Sequence[ColumnElement[bool]] = (),
    today: dt.date | None = None,
) -> Page:
    conditions: list[ColumnElement[bool]] = []
    if query.get("status"):
        conditions.append(status_in(query["status"], today or dt.date.today()))
    for name in ("customer_id", "opportunity_id", "owner_id"):
        if query.get(name) is not None:
            conditions.append(getattr(Quote, name) == query[name])
    text = query.get("q")
    if text:
        customer_named = exists().where(
            Customer.id == Quote.customer_id,
            or_(
                Customer.name.icontains(text, autoescape=True),
                Customer.short_name.icontains(text, autoescape=True),
            ),
        )
        conditions.append(
            or_(
                Quote.code.icontains(text, autoescape=True),
                Quote.title.icontains(text, autoescape=True),
                customer_named,
            )
        )
    sort: str = query["sort"]
    key = SortKey(SORT_COLUMNS[sort.lstrip("-")], Quote.id, descending=sort.startswith("-"))
    stmt = select(Quote).where(visible, *conditions, *extra)
    return keyset_page(session, stmt, key, query.get("cursor"), query.get("limit"))


# -- expiry ------------------------------------------------------------------------------------
def expire_past_validity(session: Session, today: dt.date, now: dt.datetime) -> int:
    """Mark every live quote valid only before ``today`` expired; how many were."""
    stmt = (
        update(Quote)
        .where(Quote.status.in_([s.value for s in EXPIRABLE]), Quote.valid_until < today)
        .values(
            status=QuoteStatus.EXPIRED.value,
            closed_at=now,
            updated_at=now,
            version=Quote.version + 1,
        )
        .execution_options(synchronize_session=False)
    )
    return int(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


# -- for orders ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class QuoteLineForOrder:
    line_no: int
    item_code: str
    item_name: str
    spec: str | None
    unit: str | None
    quantity: Decimal
    unit_price: Decimal
    discount: Decimal
    """The line's own discount and its share of the document discount."""
    tax_rate: Decimal
    net: Decimal
    tax: Decimal
    gross: Decimal


@dataclass(frozen=True)
class QuoteForOrder:
    id: uuid.UUID
    code: str
    version_no: int
    status: str
    customer_id: uuid.UUID
    opportunity_id: uuid.UUID | None
    currency: str
    prices_include_tax: bool
    owner_id: str
    department_id: str | None
    region: str | None
    category: str | None
    valid_until: dt.date
    net: Decimal
    tax: Decimal
    gross: Decimal
    lines: tuple[QuoteLineForOrder, ...]


def quote_for_order(session: Session, quote_id: uuid.UUID, principal: Principal) -> QuoteForOrder:
    """The quote's current version as an order takes it over; ``NotFound`` outside the
    caller's scope."""
    person = read_models.person_of_user(session, principal.user_id)
    quote = get_quote(session, quote_id, visible_quotes(principal, person.id if person else None))
    lines = tuple(
        QuoteLineForOrder(
            line_no=line.line_no,
            item_code=line.item_code,
            item_name=line.item_name,
            spec=line.spec,
            unit=line.unit,
            quantity=line.quantity,
            unit_price=line.unit_price,
            discount=line.line_discount + line.document_discount,
            tax_rate=line.tax_rate,
            net=line.net,
            tax=line.tax,
            gross=line.gross,
        )
        for line in lines_of(session, quote.id)
    )
    return QuoteForOrder(
        id=quote.id,
        code=quote.code,
        version_no=quote.version_no,
        status=quote.status,
        customer_id=quote.customer_id,
        opportunity_id=quote.opportunity_id,
        currency=quote.currency,
        prices_include_tax=quote.prices_include_tax,
        owner_id=quote.owner_id,
        department_id=quote.department_id,
        region=quote.region,
        category=quote.category,
        valid_until=quote.valid_until,
        net=quote.net,
        tax=quote.tax,
        gross=quote.gross,
        lines=lines,
    )


def mark_quote_ordered(session: Session, quote_id: uuid.UUID, order_id: uuid.UUID) -> None:
    """Remember the order made from the quote (the quote's version moves on)."""
    quote = session.get(Quote, quote_id)
    if quote is None:
        raise NotFound.of("quote", quote_id)
    quote.order_id = order_id
    session.flush()
