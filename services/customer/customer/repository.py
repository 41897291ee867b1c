"""Queries on the customer database. Every filter is SQL; nothing is filtered in Python.

Every query that answers with customers, or with what hangs off them (contacts,
relationships), takes the caller's ``visible`` condition (``visible_to(principal)``): a
customer outside it is answered exactly like one that does not exist.

The reads every screen makes (a customer, a page of a list or search, a count, a summary) run
one statement each, built once per shape of the call (the caller's grants, the filters set,
the sort) and run with the call's values as parameters (``crm_common.reads``); they answer
rows, not objects. Counts and summaries add up ``customer_counts`` rather than read every
customer, unless the query names text or tags; then, on PostgreSQL, one an estimate puts at or
above the service's threshold is answered as that estimate (``estimated_count``,
``estimated_breakdown``).
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    CursorResult,
    Integer,
    Row,
    Select,
    Table,
    and_,
    bindparam,
    case,
    delete,
    exists,
    false,
    func,
    insert,
    literal_column,
    or_,
    select,
    tablesample,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.util import ClauseAdapter

from crm_common.context import Principal
from crm_common.errors import NotFound, ValidationFailed
from crm_common.ids import BUSINESS_TZ, lookup_id
from crm_common.pagination import (
    Page,
    SortKey,
    keyset_page,
    keyset_select,
    page_parameters,
    rows_page,
)
from crm_common.phones import is_mobile, normalize_mobile
from crm_common.reads import value_list
from crm_common.scope import (
    ScopeColumns,
    ScopeShape,
    scope_condition,
    scope_filter,
    scope_parameters,
    scope_shape,
)
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
    CustomerCount,
    CustomerTag,
    HistoryEntry,
    OrgUnit,
    Relationship,
)

MAX_DUPLICATE_ROWS = 500

CUSTOMER_SCOPE = ScopeColumns(
    owner=Customer.owner_id,
    department=Customer.department_id,
    region=Customer.region,
    category=Customer.category,
)
"""The customer columns that carry the management dimensions its data grants constrain."""


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


def find_by_erp_code(
    session: Session, erp_code: str, visible: ColumnElement[bool]
) -> Customer | None:
    return session.scalar(select(Customer).where(Customer.erp_code == erp_code, visible))


def erp_code_taken(session: Session, erp_code: str) -> bool:
    """Whether any customer at all, visible or not, has this ERP code."""
    return bool(session.scalar(select(exists().where(Customer.erp_code == erp_code))))


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


# -- reads: statements built once per shape of the call --------------------------------------
_customers = cast(Table, Customer.__table__)
_tags = cast(Table, CustomerTag.__table__)
_contacts = cast(Table, Contact.__table__)
_counts = cast(Table, CustomerCount.__table__)

SEARCH_COLUMNS = ("name_key", "phone_key", "contact_names", "contact_mobiles")
RECORD_COLUMNS = tuple(column for column in _customers.c if column.key not in SEARCH_COLUMNS)
"""The columns a customer is answered with; its tags come from ``customer_tags``."""
ROW_SCOPE = ScopeColumns(
    owner=_customers.c.owner_id,
    department=_customers.c.department_id,
    region=_customers.c.region,
    category=_customers.c.category,
)
COUNT_SCOPE = ScopeColumns(
    owner=_counts.c.owner_id,
    department=_counts.c.department_id,
    region=_counts.c.region,
    category=_counts.c.category,
)
SORT_COLUMNS = {
    "name": _customers.c.name,
    "created_at": _customers.c.created_at,
    "code": _customers.c.code,
}
ESCAPE = "/"


def sort_key(sort: str) -> SortKey:
    descending = sort.startswith("-")
    return SortKey(SORT_COLUMNS[sort.lstrip("-")], _customers.c.id, descending=descending)


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


def _like_escaped(text: str) -> str:
    """``text`` matched literally by LIKE … ESCAPE '/'."""
    return text.replace(ESCAPE, ESCAPE * 2).replace("%", ESCAPE + "%").replace("_", ESCAPE + "_")


@dataclass(frozen=True)
class FilterShape:
    """Which filters of a validated ``CustomerFilterSchema`` result are set (and how many tags):
    calls of one shape share a statement."""

    statuses: bool
    text: bool
    caseless: bool
    digits: bool
    categories: bool
    kind: bool
    region: bool
    owner: bool
    department: bool
    tags: int
    erp_code: bool = False

    @property
    def countable(self) -> bool:
        """Whether ``customer_counts`` can answer: it holds no names, tags or ERP codes."""
        return not self.text and not self.tags and not self.erp_code


def filter_shape(query: dict[str, Any]) -> FilterShape:
    text = query.get("q")
    return FilterShape(
        statuses=bool(query.get("status")),
        text=bool(text),
        caseless=_caseless(text) if text else False,
        digits=bool(text and _digits_of(text)),
        categories=bool(query.get("category")),
        kind=bool(query.get("kind")),
        region=bool(query.get("region")),
        owner=bool(query.get("owner_id")),
        department=bool(query.get("department_id")),
        tags=len(query.get("tags") or ()),
        erp_code=bool(query.get("erp_code")),
    )


def filter_parameters(query: dict[str, Any]) -> dict[str, Any]:
    """The values of the filters ``filter_conditions`` leaves as parameters."""
    values: dict[str, Any] = {}
    if query.get("status"):
        values["statuses"] = list(query["status"])
    if query.get("q"):
        text = query["q"]
        values["text"] = text if _caseless(text) else _like_escaped(text)
        digits = _digits_of(text)
        if digits:
            values["digits"] = digits
    if query.get("category"):
        values["categories"] = list(query["category"])
    if query.get("kind"):
        values["kind"] = query["kind"]
    if query.get("region"):
        values["region"] = query["region"]
        values["region_below"] = _like_escaped(query["region"] + "/")
    if query.get("owner_id"):
        values["owner"] = query["owner_id"]
    if query.get("department_id"):
        values["department"] = query["department_id"]
    for index, tag in enumerate(query.get("tags") or ()):
        values[f"tag{index}"] = tag
    if query.get("erp_code"):
        values["erp_code"] = query["erp_code"]
    return values


def filter_conditions(shape: FilterShape, table: Table, dialect: str) -> list[ColumnElement[bool]]:
    """SQL conditions of ``shape`` on ``customers``, or on ``customer_counts`` when it is
    ``countable``, with their values left as ``filter_parameters``."""
    columns = table.c
    conditions: list[ColumnElement[bool]] = []
    if shape.statuses:
        conditions.append(columns.status.in_(bindparam("statuses", expanding=True)))
    else:
        conditions.append(columns.status != Status.MERGED.value)
    if shape.text:
        conditions.append(_text_search(shape, dialect))
    if shape.categories:
        conditions.append(columns.category.in_(bindparam("categories", expanding=True)))
    if shape.kind:
        conditions.append(columns.kind == bindparam("kind"))
    if shape.region:
        below = columns.region.startswith(bindparam("region_below"), escape=ESCAPE)
        conditions.append(or_(columns.region == bindparam("region"), below))
    if shape.owner:
        conditions.append(columns.owner_id == bindparam("owner"))
    if shape.department:
        conditions.append(columns.department_id == bindparam("department"))
    if shape.erp_code:
        conditions.append(columns.erp_code == bindparam("erp_code"))
    for index in range(shape.tags):
        conditions.append(
            exists().where(
                _tags.c.customer_id == _customers.c.id, _tags.c.tag == bindparam(f"tag{index}")
            )
        )
    return conditions


def _caseless(text: str) -> bool:
    """Whether ``text`` has no letter with an upper and a lower case (Chinese has none): then
    looking for it needs no case folding."""
    return text.lower() == text.upper()


def _text_search(shape: FilterShape, dialect: str) -> ColumnElement[bool]:
    text: BindParameter[str] = bindparam("text")

    def holds(column: ColumnElement[str], value: BindParameter[str]) -> ColumnElement[bool]:
        """Whether ``column`` holds ``value``, letters in either case: a plain substring
        search when ``value`` has no case (several times faster than LIKE, which folds ASCII
        letters on SQLite and every letter in PostgreSQL's ILIKE)."""
        if shape.caseless or value is not text:
            found = func.strpos if dialect == "postgresql" else func.instr
            return found(column, value) > 0
        if dialect == "postgresql":
            return column.icontains(value, escape=ESCAPE)
        return column.contains(value, escape=ESCAPE)  # SQLite's LIKE folds ASCII letters

    conditions = [
        holds(_customers.c.name, text),
        holds(_customers.c.short_name, text),
        holds(_customers.c.code, text),
        holds(_customers.c.phone, text),
        holds(_customers.c.contact_names, text),
    ]
    if shape.digits:
        number: BindParameter[str] = bindparam("digits")
        conditions.append(holds(_customers.c.phone_key, number))
        conditions.append(holds(_customers.c.contact_mobiles, number))
    return or_(*conditions)


def _tag_list(dialect: str) -> ColumnElement[list[Any]]:
    return value_list(
        dialect, _tags.c.tag, _tags.c.customer_id == _customers.c.id, _tags.c.position
    ).label("tags")


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


@lru_cache(maxsize=64)
def _customer_statement(dialect: str, scope: ScopeShape) -> Select[Any]:
    contacts = (
        select(func.count())
        .select_from(_contacts)
        .where(_contacts.c.customer_id == _customers.c.id)
        .scalar_subquery()
    )
    return select(*RECORD_COLUMNS, _tag_list(dialect), contacts.label("contacts_count")).where(
        _customers.c.id == bindparam("customer_id"), scope_condition(scope, ROW_SCOPE)
    )


def customer_row(session: Session, customer_id: Any, principal: Principal) -> Row[Any]:
    """The customer with its tags and number of contacts, in one statement; ``NotFound`` alike
    for one that is missing, outside the scope or whose id is not even well formed."""
    key = lookup_id(customer_id)
    row = None
    if key is not None:
        stmt = _customer_statement(_dialect(session), scope_shape(principal))
        row = session.execute(stmt, {"customer_id": key, **scope_parameters(principal)}).first()
    if row is None:
        raise NotFound.of("customer", customer_id)
    return row


@lru_cache(maxsize=512)
def _page_statement(
    dialect: str, scope: ScopeShape, filters: FilterShape, sort: str, after_cursor: bool
) -> Select[Any]:
    stmt = select(*RECORD_COLUMNS, _tag_list(dialect)).where(
        scope_condition(scope, ROW_SCOPE), *filter_conditions(filters, _customers, dialect)
    )
    return keyset_select(stmt, sort_key(sort), after_cursor=after_cursor)


def customers_page(session: Session, query: dict[str, Any], principal: Principal) -> Page:
    """One page of the customers ``principal`` may see matching a validated
    ``CustomerQuerySchema`` result, with their tags, in one statement; rows, not objects."""
    sort, cursor, limit = query["sort"], query.get("cursor"), query.get("limit")
    key = sort_key(sort)
    shape = filter_shape(query)
    stmt = _page_statement(_dialect(session), scope_shape(principal), shape, sort, bool(cursor))
    parameters = {
        **scope_parameters(principal),
        **filter_parameters(query),
        **page_parameters(key, cursor, limit),
    }
    return rows_page(list(session.execute(stmt, parameters)), key, limit)


def _customer_entities(
    dialect: str, scope: ScopeShape, filters: FilterShape, sort: str
) -> Select[Any]:
    conditions = filter_conditions(filters, _customers, dialect)
    return (
        select(Customer)
        .where(scope_condition(scope, ROW_SCOPE), *conditions)
        .order_by(*sort_key(sort).order)
    )


def all_customers(
    session: Session, query: dict[str, Any], principal: Principal
) -> Iterable[Customer]:
    """Every customer ``principal`` may see matching ``query``, in its sort order, fetched in
    batches."""
    shape = filter_shape(query)
    stmt = _customer_entities(_dialect(session), scope_shape(principal), shape, query["sort"])
    parameters = {**scope_parameters(principal), **filter_parameters(query)}
    return session.scalars(stmt.execution_options(yield_per=500), parameters)


@lru_cache(maxsize=256)
def _count_statement(dialect: str, scope: ScopeShape, filters: FilterShape) -> Select[Any]:
    if filters.countable:
        return select(func.coalesce(func.sum(_counts.c.n), 0)).where(
            scope_condition(scope, COUNT_SCOPE), *filter_conditions(filters, _counts, dialect)
        )
    conditions = filter_conditions(filters, _customers, dialect)
    return (
        select(func.count())
        .select_from(_customers)
        .where(scope_condition(scope, ROW_SCOPE), *conditions)
    )


def count_customers(session: Session, query: dict[str, Any], principal: Principal) -> int:
    """How many customers ``principal`` may see match ``query``: added up from
    ``customer_counts`` unless the query names text or tags, which only customers hold."""
    stmt = _count_statement(_dialect(session), scope_shape(principal), filter_shape(query))
    parameters = {**scope_parameters(principal), **filter_parameters(query)}
    return int(session.scalar(stmt, parameters) or 0)


SAMPLE_PERCENT = 1
"""The share of the customers table's pages an estimate of a text search's count reads."""


def _sampled(conditions: list[ColumnElement[bool]]) -> tuple[Any, list[ColumnElement[bool]]]:
    """A sample of the customers table's pages (``SAMPLE_PERCENT``, the same pages while the
    table is unchanged) and ``conditions`` on it."""
    sample = tablesample(_customers, func.system(SAMPLE_PERCENT), seed=literal_column("0"))
    adapter = ClauseAdapter(sample)
    return sample, [adapter.traverse(condition) for condition in conditions]


@lru_cache(maxsize=256)
def _estimate_statement(dialect: str, scope: ScopeShape, filters: FilterShape) -> Select[Any]:
    """On PostgreSQL, what estimates a count ``customer_counts`` cannot answer. A text search
    counts its matches in a sample of the table's pages and answers them scaled up: the
    planner cannot estimate a substring match (it guesses 87 % of the rows whatever the
    text). Other filters (tags, ERP code) are for the planner, whose statistics on them are
    close: ``EXPLAIN`` of the selection of ids."""
    conditions = [
        scope_condition(scope, ROW_SCOPE),
        *filter_conditions(filters, _customers, dialect),
    ]
    if not filters.text:
        return select(_customers.c.id).where(*conditions)
    sample, on_sample = _sampled(conditions)
    return select(func.count() * (100 // SAMPLE_PERCENT)).select_from(sample).where(*on_sample)


def estimated_count(
    session: Session, query: dict[str, Any], principal: Principal, above: int
) -> int | None:
    """An estimate of ``count_customers``, when it is at least ``above`` and counting exactly
    would read every customer (PostgreSQL only, a query naming text, tags or an ERP code);
    otherwise None, and the count is to be exact. ``above`` 0 never estimates."""
    dialect = _dialect(session)
    shape = filter_shape(query)
    if not above or dialect != "postgresql" or shape.countable:
        return None
    stmt = _estimate_statement(dialect, scope_shape(principal), shape)
    parameters = {**scope_parameters(principal), **filter_parameters(query)}
    if shape.text:
        estimate = int(session.scalar(stmt, parameters) or 0)
    else:
        compiled = stmt.compile(dialect=session.get_bind().dialect)
        expanded = compiled.construct_expanded_state(parameters)
        explained = session.connection().exec_driver_sql(
            f"EXPLAIN (FORMAT JSON) {expanded.statement}",
            expanded.positional_parameters if compiled.positional else expanded.parameters,
        )
        plan = explained.scalar_one()
        plan = json.loads(plan) if isinstance(plan, str) else plan
        estimate = int(plan[0]["Plan"]["Plan Rows"])
    return estimate if estimate >= above else None


@lru_cache(maxsize=256)
def _breakdown_statement(dialect: str, scope: ScopeShape, filters: FilterShape) -> Select[Any]:
    table, columns = (_counts, COUNT_SCOPE) if filters.countable else (_customers, ROW_SCOPE)
    groups = (table.c.status, table.c.category, table.c.department_id)
    counted = func.sum(_counts.c.n) if filters.countable else func.count()
    return (
        select(*groups, counted)
        .where(scope_condition(scope, columns), *filter_conditions(filters, table, dialect))
        .group_by(*groups)
        .having(counted != 0)
    )


def customer_breakdown(
    session: Session, query: dict[str, Any], principal: Principal
) -> Sequence[Row[str, str, str, int]]:
    """(status, category, department_id, count) of the customers ``principal`` may see
    matching ``query``; no category or department is ``None`` or ``''``."""
    stmt = _breakdown_statement(_dialect(session), scope_shape(principal), filter_shape(query))
    parameters = {**scope_parameters(principal), **filter_parameters(query)}
    return session.execute(stmt, parameters).all()


@lru_cache(maxsize=256)
def _sampled_breakdown_statement(
    dialect: str, scope: ScopeShape, filters: FilterShape
) -> Select[Any]:
    conditions = [
        scope_condition(scope, ROW_SCOPE),
        *filter_conditions(filters, _customers, dialect),
    ]
    sample, on_sample = _sampled(conditions)
    groups = (sample.c.status, sample.c.category, sample.c.department_id)
    scaled = func.count() * (100 // SAMPLE_PERCENT)
    return select(*groups, scaled).where(*on_sample).group_by(*groups)


def estimated_breakdown(
    session: Session, query: dict[str, Any], principal: Principal, above: int
) -> Sequence[Row[str, str, str, int]] | None:
    """An estimate of ``customer_breakdown`` from a sample of the customers' pages, when it
    adds up to at least ``above`` and the query searches text on PostgreSQL (a breakdown
    that would read every customer); otherwise None, and the breakdown is to be exact."""
    dialect = _dialect(session)
    shape = filter_shape(query)
    if not above or dialect != "postgresql" or not shape.text:
        return None
    stmt = _sampled_breakdown_statement(dialect, scope_shape(principal), shape)
    parameters = {**scope_parameters(principal), **filter_parameters(query)}
    rows = session.execute(stmt, parameters).all()
    return rows if sum(row[3] for row in rows) >= above else None


def compact_counts(session: Session) -> int:
    """Fold the rows of each combination in ``customer_counts`` into one (dropping those that
    add up to nothing); how many rows were folded. Exact however many writers run meanwhile:
    the rows deleted are the rows added up, and rows other transactions add stay."""
    key = [column for column in _counts.c if column.key not in ("id", "n")]
    repeated = select(*key).group_by(*key).having(func.count() > 1)
    if session.execute(repeated.limit(1)).first() is None:
        return 0
    moved = session.execute(
        delete(_counts).where(tuple_(*key).in_(repeated)).returning(*key, _counts.c.n)
    ).all()
    sums: Counter[tuple[Any, ...]] = Counter()
    for row in moved:
        sums[tuple(row[:-1])] += row[-1]
    names = [column.key for column in key]
    folded = [{**dict(zip(names, k, strict=True)), "n": n} for k, n in sums.items() if n]
    if folded:
        session.execute(insert(_counts), folded)
    return len(moved)


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


# -- due records (what alert schedules ask for) ----------------------------------------------
NOT_ALERTED = (Status.MERGED.value, Status.DISABLED.value)
"""Customers no alert is about: merged ones (their contacts moved) and disabled ones."""


def _month_day(column: InstrumentedAttribute[Any], dialect: str) -> ColumnElement[int]:
    """A date column's ``MMDD`` as a number (``domain.anniversaries.month_day``)."""
    if dialect == "postgresql":
        return func.to_char(column, "MMDD").cast(Integer)
    return func.strftime("%m%d", column).cast(Integer)


def _in_ranges(
    column: InstrumentedAttribute[Any], ranges: Sequence[tuple[int, int]], dialect: str
) -> ColumnElement[bool]:
    day = _month_day(column, dialect)
    return or_(*(day.between(low, high) for low, high in ranges))


def contacts_with_birthday_in(
    session: Session, ranges: Sequence[tuple[int, int]], visible: ColumnElement[bool]
) -> Sequence[Any]:
    """The contacts (with their customer's code, name, owner and department) whose birthday's
    month-day lies in one of ``ranges``, of customers ``visible`` selects that are neither
    merged nor disabled."""
    stmt = (
        select(
            Contact.id,
            Contact.name,
            Contact.title,
            Contact.mobile,
            Contact.email,
            Contact.birthday,
            Customer.id.label("customer_id"),
            Customer.code.label("customer_code"),
            Customer.name.label("customer_name"),
            Customer.owner_id,
            Customer.department_id,
        )
        .join(Customer, Contact.customer_id == Customer.id)
        .where(
            Contact.birthday.is_not(None),
            _in_ranges(Contact.birthday, ranges, _dialect(session)),
            Customer.status.not_in(NOT_ALERTED),
            visible,
        )
        .order_by(Customer.code, Contact.id)
    )
    return session.execute(stmt).all()


def customers_founded_in(
    session: Session, ranges: Sequence[tuple[int, int]], visible: ColumnElement[bool]
) -> Sequence[Any]:
    """The customers ``visible`` selects, neither merged nor disabled, whose founding date's
    month-day lies in one of ``ranges``."""
    stmt = (
        select(
            Customer.id,
            Customer.code,
            Customer.name,
            Customer.established_on,
            Customer.category,
            Customer.region,
            Customer.owner_id,
            Customer.department_id,
        )
        .where(
            Customer.established_on.is_not(None),
            _in_ranges(Customer.established_on, ranges, _dialect(session)),
            Customer.status.not_in(NOT_ALERTED),
            visible,
        )
        .order_by(Customer.code)
    )
    return session.execute(stmt).all()
