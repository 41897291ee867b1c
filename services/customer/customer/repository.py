"""Queries on the customer database. Every filter is SQL; nothing is filtered in Python.

Every query that answers with customers, or with what hangs off them (contacts,
relationships), takes the caller's ``visible`` condition (``visible_to(principal)``): a
customer outside it is answered exactly like one that does not exist.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Row,
    Select,
    and_,
    case,
    exists,
    false,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from crm_common.context import Principal
from crm_common.errors import NotFound, ValidationFailed
from crm_common.pagination import Page, SortKey, keyset_page
from crm_common.phones import is_mobile, normalize_mobile
from crm_common.scope import ScopeColumns, scope_filter
from customer.domain.codes import (
    MAX_SEQUENCE,
    checked_customer_code,
    codes_exhausted,
    first_free_sequence,
    format_customer_code,
    parse_customer_code,
)
from customer.domain.duplicates import SIMILAR_NAME_THRESHOLD
from customer.domain.names import bigrams, length_bounds, normalize_company_name
from customer.domain.org_units import DEPARTMENT, REGION, Unit
from customer.domain.phones import phone_key
from customer.domain.relationships import Link
from customer.domain.status import Status
from customer.models import (
    CareRecord,
    Contact,
    Customer,
    CustomerCodeCounter,
    CustomerTag,
    HistoryEntry,
    OrgUnit,
    Relationship,
)

BUSINESS_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")
"""Customer codes carry the year as it is in China when the customer is created."""

MAX_DUPLICATE_ROWS = 500

CUSTOMER_SCOPE = ScopeColumns(
    owner=Customer.owner_id,
    department=Customer.department_id,
    region=Customer.region,
    category=Customer.category,
)
"""The customer columns that carry the management dimensions its data grants constrain."""


def parse_id(value: Any, field: str = "id") -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError):
        raise ValidationFailed.on(field, "is not a valid id") from None


def lookup_id(value: Any) -> uuid.UUID | None:
    try:
        return parse_id(value)
    except ValidationFailed:
        return None


def visible_to(principal: Principal) -> ColumnElement[bool]:
    """The SQL condition on ``Customer`` selecting the customers ``principal`` may see."""
    return scope_filter(principal, CUSTOMER_SCOPE)


def visible_codes(session: Session, codes: Iterable[str], principal: Principal) -> set[str]:
    """Those of ``codes`` that belong to customers ``principal`` may see."""
    wanted = sorted(set(codes))
    if not wanted:
        return set()
    return set(
        session.scalars(
            select(Customer.code).where(Customer.code.in_(wanted), visible_to(principal))
        )
    )


def _in_scope_flag(visible: ColumnElement[bool]) -> ColumnElement[bool]:
    return case((visible, True), else_=False).label("in_scope")


def find_customer(
    session: Session, customer_id: Any, visible: ColumnElement[bool]
) -> Customer | None:
    key = lookup_id(customer_id)
    if key is None:
        return None
    return session.scalar(select(Customer).where(Customer.id == key, visible))


def get_customer(session: Session, customer_id: Any, visible: ColumnElement[bool]) -> Customer:
    """The visible customer, or ``NotFound`` alike for one that is missing, outside the scope
    or whose id is not even well formed."""
    customer = find_customer(session, customer_id, visible)
    if customer is None:
        raise NotFound.of("customer", customer_id)
    return customer


def get_contact(session: Session, contact_id: Any, visible: ColumnElement[bool]) -> Contact:
    """A contact of a visible customer, or ``NotFound``."""
    key = lookup_id(contact_id)
    contact = (
        session.scalar(
            select(Contact)
            .join(Customer, Contact.customer_id == Customer.id)
            .where(Contact.id == key, visible)
        )
        if key
        else None
    )
    if contact is None:
        raise NotFound.of("contact", contact_id)
    return contact


def is_contact_of(session: Session, contact_id: uuid.UUID, customer_id: uuid.UUID) -> bool:
    return bool(
        session.scalar(
            select(exists().where(Contact.id == contact_id, Contact.customer_id == customer_id))
        )
    )


def find_by_code(session: Session, code: str, visible: ColumnElement[bool]) -> Customer | None:
    return session.scalar(select(Customer).where(Customer.code == code.strip().upper(), visible))


def code_taken(session: Session, code: str) -> bool:
    """Whether any customer, visible or not, has this code (it cannot go to a new one)."""
    return bool(session.scalar(select(exists().where(Customer.code == code.strip().upper()))))


def find_by_credit_code(
    session: Session, credit_code: str, visible: ColumnElement[bool]
) -> Customer | None:
    return session.scalar(select(Customer).where(Customer.credit_code == credit_code, visible))


def credit_code_taken(session: Session, credit_code: str) -> bool:
    """Whether any customer, visible or not, has this credit code."""
    return bool(session.scalar(select(exists().where(Customer.credit_code == credit_code))))


def count_contacts(session: Session, customer_id: uuid.UUID) -> int:
    return (
        session.scalar(
            select(func.count()).select_from(Contact).where(Contact.customer_id == customer_id)
        )
        or 0
    )


def contacts_of(session: Session, customer_id: uuid.UUID) -> Sequence[Contact]:
    """The customer's contacts, the primary one first, then by name."""
    return session.scalars(
        select(Contact)
        .where(Contact.customer_id == customer_id)
        .order_by(Contact.is_primary.desc(), Contact.name, Contact.id)
    ).all()


def primary_contacts(session: Session, customer_id: uuid.UUID) -> Sequence[Contact]:
    return session.scalars(
        select(Contact).where(Contact.customer_id == customer_id, Contact.is_primary.is_(True))
    ).all()


def care_records_of(session: Session, customer_id: uuid.UUID) -> Sequence[CareRecord]:
    """The customer's care records, newest first."""
    return session.scalars(
        select(CareRecord)
        .where(CareRecord.customer_id == customer_id)
        .order_by(CareRecord.date.desc(), CareRecord.created_at.desc(), CareRecord.id)
    ).all()


def history_page(session: Session, customer_id: uuid.UUID, cursor: str | None, limit: Any) -> Page:
    """One page of the customer's history, newest first."""
    return keyset_page(
        session,
        select(HistoryEntry).where(HistoryEntry.customer_id == customer_id),
        SortKey(HistoryEntry.at, HistoryEntry.id, descending=True),
        cursor,
        limit,
    )


def customers_merged_into(session: Session, customer_id: uuid.UUID) -> Sequence[Customer]:
    return session.scalars(select(Customer).where(Customer.merged_into_id == customer_id)).all()


def has_primary_contact(session: Session, customer_id: uuid.UUID) -> bool:
    return bool(
        session.scalar(
            select(exists().where(Contact.customer_id == customer_id, Contact.is_primary.is_(True)))
        )
    )


# -- customer codes ---------------------------------------------------------------------------
def _upsert(session: Session) -> Callable[..., Any]:
    """The dialect's INSERT with ``on_conflict_do_update``."""
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def business_year(now: datetime | None = None) -> int:
    return (now or datetime.now(UTC)).astimezone(BUSINESS_TZ).year


CODE_WINDOW = 200
"""How many sequences one look at the taken codes covers when allocation has to skip some."""


def allocate_code(session: Session, year: int | None = None) -> str:
    """The next free code of the year. The counter moves by one atomic upsert: concurrent
    callers block on the counter row until the first commits, so no two transactions get the
    same sequence. Codes already taken (given by an import) are skipped; a year with no
    sequence left is a ``Conflict``."""
    year = year or business_year()
    sequence = _bump_counter(session, year)
    while sequence is not None:
        end = sequence + CODE_WINDOW - 1
        free = first_free_sequence(sequence, end, _taken_sequences(session, year, sequence, end))
        if free is not None:
            if free != sequence:
                _set_counter(session, year, free)
            return format_customer_code(year, free)
        _set_counter(session, year, min(end, MAX_SEQUENCE))
        sequence = _bump_counter(session, year)
    raise codes_exhausted(year)


def _bump_counter(session: Session, year: int) -> int | None:
    """The year's counter moved on by one, or None when it reached the last sequence."""
    table = CustomerCodeCounter.__table__
    stmt = (
        _upsert(session)(table)
        .values(year=year, last_value=1)
        .on_conflict_do_update(
            index_elements=[table.c.year],
            set_={"last_value": table.c.last_value + 1},
            where=table.c.last_value < MAX_SEQUENCE,
        )
        .returning(table.c.last_value)
    )
    value: int | None = session.execute(stmt).scalar_one_or_none()
    return value


def _set_counter(session: Session, year: int, last_value: int) -> None:
    session.execute(
        update(CustomerCodeCounter)
        .where(CustomerCodeCounter.year == year)
        .values(last_value=last_value)
    )


def _taken_sequences(session: Session, year: int, start: int, end: int) -> set[int]:
    """The sequences of the year from ``start`` to ``end`` that customers' codes hold."""
    low = format_customer_code(year, start)
    high = format_customer_code(year, min(end, MAX_SEQUENCE))
    codes = session.scalars(select(Customer.code).where(Customer.code.between(low, high)))
    parsed = (parse_customer_code(code) for code in codes)
    return {p[1] for p in parsed if p is not None and p[0] == year}


def reserve_code(session: Session, code: str) -> str:
    """Check an explicit code (an import from another system) and take it as it is. The
    counter stays where it is: allocation skips taken codes, so one code near the end of the
    range cannot use up the year."""
    code = checked_customer_code(code)
    if code_taken(session, code):
        raise ValidationFailed.on("code", "is already taken by another customer")
    return code


# -- duplicates ------------------------------------------------------------------------------
def name_taken(session: Session, name: str) -> bool:
    """Whether any customer not merged away, visible or not, has this name (normalized)."""
    key = normalize_company_name(name)
    return bool(
        session.scalar(
            select(exists().where(Customer.name_key == key, Customer.status != Status.MERGED.value))
        )
    )


def duplicate_suspects(
    session: Session,
    name: str,
    credit_code: str | None,
    phone: str | None,
    visible: ColumnElement[bool],
) -> Sequence[Row[uuid.UUID, str, str, str | None, str | None, bool]]:
    """Customers that might be the same as the one described; the domain scores them. Each
    row has the fields scoring reads and ``in_scope``: suspects outside the caller's scope are
    still found (a duplicate is one wherever it is) but must be reported without identity.

    Narrowed in SQL: same credit code, same phone key, or a name key of a length that can
    still be similar enough and sharing a two-character piece with the new one."""
    key = normalize_company_name(name)
    low, high = length_bounds(len(key), SIMILAR_NAME_THRESHOLD)
    pieces = bigrams(key)[:40]
    conditions: list[ColumnElement[bool]] = [Customer.name_key == key]
    if pieces:
        conditions.append(
            and_(
                func.length(Customer.name_key).between(low, high),
                or_(*(Customer.name_key.contains(p, autoescape=True) for p in pieces)),
            )
        )
    if credit_code:
        conditions.append(Customer.credit_code == credit_code)
    key_phone = phone_key(phone)
    if key_phone:
        conditions.append(Customer.phone_key == key_phone)
    stmt = select(
        Customer.id,
        Customer.code,
        Customer.name,
        Customer.credit_code,
        Customer.phone,
        _in_scope_flag(visible),
    ).where(Customer.status != Status.MERGED.value, or_(*conditions))
    return session.execute(stmt.order_by(Customer.code).limit(MAX_DUPLICATE_ROWS)).all()


# -- lists -----------------------------------------------------------------------------------
SORT_COLUMNS = {"name": Customer.name, "created_at": Customer.created_at, "code": Customer.code}


def sort_key(sort: str) -> SortKey:
    descending = sort.startswith("-")
    return SortKey(SORT_COLUMNS[sort.lstrip("-")], Customer.id, descending=descending)


def _digits_of(query: str) -> str | None:
    """The digits of a query that looks like (part of) a phone number."""
    if not re.fullmatch(r"[\d\s\-+()]+", query):
        return None
    if is_mobile(query):
        return normalize_mobile(query)
    digits = re.sub(r"\D", "", query)
    if query.lstrip().startswith("+86"):
        digits = digits[2:]
    return digits if len(digits) >= 3 else None


def _text_search(query: str) -> ColumnElement[bool]:
    conditions: list[ColumnElement[bool]] = [
        Customer.name.icontains(query, autoescape=True),
        Customer.short_name.icontains(query, autoescape=True),
        Customer.code.icontains(query, autoescape=True),
        Customer.phone.icontains(query, autoescape=True),
    ]
    contact_match: list[ColumnElement[bool]] = [Contact.name.icontains(query, autoescape=True)]
    digits = _digits_of(query)
    if digits:
        conditions.append(Customer.phone_key.contains(digits, autoescape=True))
        contact_match.append(Contact.mobile.contains(digits, autoescape=True))
    conditions.append(exists().where(Contact.customer_id == Customer.id, or_(*contact_match)))
    return or_(*conditions)


def filter_conditions(query: dict[str, Any]) -> list[ColumnElement[bool]]:
    """SQL conditions for a validated ``CustomerQuerySchema`` result."""
    conditions: list[ColumnElement[bool]] = []
    statuses = query.get("status") or []
    if statuses:
        conditions.append(Customer.status.in_(statuses))
    else:
        conditions.append(Customer.status != Status.MERGED.value)
    if query.get("q"):
        conditions.append(_text_search(query["q"]))
    if query.get("category"):
        conditions.append(Customer.category.in_(query["category"]))
    if query.get("kind"):
        conditions.append(Customer.kind == query["kind"])
    if query.get("region"):
        region = query["region"]
        conditions.append(
            or_(
                Customer.region == region, Customer.region.startswith(region + "/", autoescape=True)
            )
        )
    if query.get("owner_id"):
        conditions.append(Customer.owner_id == query["owner_id"])
    if query.get("department_id"):
        conditions.append(Customer.department_id == query["department_id"])
    for tag in query.get("tags") or []:
        conditions.append(
            exists().where(CustomerTag.customer_id == Customer.id, CustomerTag.tag == tag)
        )
    return conditions


def customer_select(query: dict[str, Any], visible: ColumnElement[bool]) -> Select[Customer]:
    return select(Customer).where(visible, *filter_conditions(query))


def customers_page(session: Session, query: dict[str, Any], visible: ColumnElement[bool]) -> Page:
    """One page of the visible customers matching a validated ``CustomerQuerySchema`` result."""
    return keyset_page(
        session,
        customer_select(query, visible),
        sort_key(query["sort"]),
        query.get("cursor"),
        query.get("limit"),
    )


def all_customers(
    session: Session, query: dict[str, Any], visible: ColumnElement[bool]
) -> Iterable[Customer]:
    """Every visible customer matching ``query`` in its sort order, fetched in batches."""
    key = sort_key(query["sort"])
    order = (
        (key.column.desc(), key.id_column.desc()) if key.descending else (key.column, key.id_column)
    )
    stmt = customer_select(query, visible).order_by(*order).execution_options(yield_per=500)
    return session.scalars(stmt)


def count_customers(session: Session, query: dict[str, Any], visible: ColumnElement[bool]) -> int:
    stmt = select(func.count()).select_from(Customer).where(visible, *filter_conditions(query))
    return session.scalar(stmt) or 0


def customer_breakdown(
    session: Session, query: dict[str, Any], visible: ColumnElement[bool]
) -> Sequence[Row[str, str | None, str | None, int]]:
    """(status, category, department_id, count) of the visible customers matching ``query``."""
    groups = (Customer.status, Customer.category, Customer.department_id)
    stmt = select(*groups, func.count()).where(visible, *filter_conditions(query)).group_by(*groups)
    return session.execute(stmt).all()


# -- relationships ---------------------------------------------------------------------------
def links_between(session: Session, a: uuid.UUID, b: uuid.UUID) -> list[Link]:
    rows = session.scalars(
        select(Relationship).where(
            or_(
                and_(Relationship.from_customer_id == a, Relationship.to_customer_id == b),
                and_(Relationship.from_customer_id == b, Relationship.to_customer_id == a),
            )
        )
    ).all()
    return [Link(r.id, r.from_customer_id, r.to_customer_id, r.kind) for r in rows]


def visible_relationships(
    session: Session,
    customer_id: uuid.UUID,
    visible: ColumnElement[bool],
    relationship_id: uuid.UUID | None = None,
) -> Sequence[Row[Relationship, Customer]]:
    """The customer's relationships whose other side is visible, each with that customer."""
    other_side = or_(
        and_(
            Relationship.from_customer_id == customer_id, Relationship.to_customer_id == Customer.id
        ),
        and_(
            Relationship.to_customer_id == customer_id, Relationship.from_customer_id == Customer.id
        ),
    )
    stmt = select(Relationship, Customer).join(Customer, other_side).where(visible)
    if relationship_id is not None:
        stmt = stmt.where(Relationship.id == relationship_id)
    return session.execute(stmt.order_by(Relationship.created_at, Relationship.id)).all()


def relationships_of(session: Session, customer_id: uuid.UUID) -> Sequence[Relationship]:
    """Every relationship of the customer, whoever is on the other side (a merge moves all)."""
    return session.scalars(
        select(Relationship)
        .where(
            or_(
                Relationship.from_customer_id == customer_id,
                Relationship.to_customer_id == customer_id,
            )
        )
        .order_by(Relationship.created_at, Relationship.id)
    ).all()


# -- the org structure -----------------------------------------------------------------------
def _unit(row: OrgUnit) -> Unit:
    return Unit(row.id, row.parent_id, row.path, row.disabled)


def department(session: Session, department_id: str) -> Unit | None:
    row = session.get(OrgUnit, (DEPARTMENT, department_id))
    return _unit(row) if row is not None else None


def departments(session: Session) -> list[Unit]:
    return [_unit(r) for r in session.scalars(select(OrgUnit).where(OrgUnit.kind == DEPARTMENT))]


def regions_at(session: Session, paths: Iterable[str]) -> dict[str, Unit]:
    """The known regions whose path is one of ``paths``, by path."""
    wanted = sorted(set(paths))
    if not wanted:
        return {}
    rows = session.scalars(
        select(OrgUnit).where(OrgUnit.kind == REGION, OrgUnit.path.in_(wanted))
    ).all()
    return {row.path: _unit(row) for row in rows}


def org_unit_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(OrgUnit)) or 0


def keep_org_unit(session: Session, kind: str, values: dict[str, Any]) -> bool:
    """Store a department or region unless a newer version of it is stored; whether it was.
    One upsert whose update only applies to an older row, so concurrent deliveries of the
    same unit settle on the highest version."""
    table = OrgUnit.__table__
    insert = _upsert(session)(table).values(kind=kind, **values)
    stmt = insert.on_conflict_do_update(
        index_elements=[table.c.kind, table.c.id],
        set_={name: insert.excluded[name] for name in values if name != "id"},
        where=table.c.version <= insert.excluded.version,
    )
    result: CursorResult[Any] = session.execute(stmt)  # type: ignore[assignment]
    return bool(result.rowcount)


def open_transaction(session: Session) -> None:
    """Make sure the session's transaction has begun in the database before a SAVEPOINT.

    Python's sqlite3 module only sends BEGIN ahead of a data-changing statement, so a first
    SAVEPOINT would otherwise open the transaction itself and its RELEASE would commit it."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(
            update(CustomerCodeCounter)
            .where(false())
            .values(last_value=CustomerCodeCounter.last_value)
        )


# -- the snapshot other services catch up from -----------------------------------------------
SNAPSHOT_MODELS: dict[str, type[Customer] | type[Contact]] = {
    "customers": Customer,
    "contacts": Contact,
}


def snapshot_page(session: Session, kind: str, after: uuid.UUID | None, size: int) -> Page:
    """One page of every customer or contact in id order (the primary key's index), after
    the id ``after``; the next cursor is the page's last id."""
    model = SNAPSHOT_MODELS[kind]
    stmt = select(model).order_by(model.id).limit(size + 1)
    if after is not None:
        stmt = stmt.where(model.id > after)
    rows: list[Customer | Contact] = list(session.scalars(stmt))
    items = rows[:size]
    return Page(items=items, next_cursor=str(items[-1].id) if len(rows) > size else None)
