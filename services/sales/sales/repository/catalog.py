"""Queries on items (存货) and price lists (价格政策) mirrored from the ERP.

Writes from the ERP are upserts keyed by the ERP's codes that only replace a row holding an
update the ERP made earlier (``source_occurred_at``), so redelivered and late events change
nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, delete, func, insert, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from crm_common.errors import NotFound
from crm_common.pagination import Page, SortKey, keyset_page
from sales.domain.pricing import PriceList as PriceListRule
from sales.domain.pricing import PriceListLine as PriceListLineRule
from sales.models.catalog import Item, PriceList, PriceListLine

ITEMS: Table = Item.__table__  # type: ignore[assignment]
PRICE_LISTS: Table = PriceList.__table__  # type: ignore[assignment]
LINES: Table = PriceListLine.__table__  # type: ignore[assignment]


_UPSERTS: dict[tuple[str, str], Any] = {}


def _newer_upsert_statement(dialect: str, table: Table, key: str) -> Any:
    """INSERT … ON CONFLICT (key) DO UPDATE every column, only over a row holding an older
    ERP update; built once per dialect and table (building it costs more than running it)."""
    found = _UPSERTS.get((dialect, table.name))
    if found is None:
        base = (pg_insert if dialect == "postgresql" else sqlite_insert)(table)
        found = base.on_conflict_do_update(
            index_elements=[key],
            set_={c.name: base.excluded[c.name] for c in table.columns if c.name != key},
            where=table.c.source_occurred_at <= base.excluded.source_occurred_at,
        )
        _UPSERTS[(dialect, table.name)] = found
    return found


def _newer_upsert(session: Session, table: Table, key: str, values: dict[str, Any]) -> bool:
    """Insert the row, or replace the stored one unless it holds a newer ERP update; whether
    the row was written. ``values`` has every column."""
    statement = _newer_upsert_statement(session.get_bind().dialect.name, table, key)
    result = session.connection().execute(statement, values)
    return bool(result.rowcount)


# -- writes from the ERP -----------------------------------------------------------------------
def upsert_item(session: Session, values: dict[str, Any]) -> bool:
    return _newer_upsert(session, ITEMS, "item_code", values)


def upsert_price_list(
    session: Session, values: dict[str, Any], lines: Sequence[dict[str, Any]]
) -> bool:
    """The price list with every line of it, unless a newer update of it is stored."""
    if not _newer_upsert(session, PRICE_LISTS, "price_list_code", values):
        return False
    code = values["price_list_code"]
    connection = session.connection()
    connection.execute(delete(LINES).where(LINES.c.price_list_code == code))
    if lines:
        connection.execute(insert(LINES), [{**line, "price_list_code": code} for line in lines])
    return True


# -- items -------------------------------------------------------------------------------------
def items_page(session: Session, query: dict[str, Any]) -> Page:
    conditions: list[ColumnElement[bool]] = []
    text = query.get("q")
    if text:
        conditions.append(
            or_(
                Item.item_code.icontains(text, autoescape=True),
                Item.name.icontains(text, autoescape=True),
                Item.spec.icontains(text, autoescape=True),
            )
        )
    if query.get("active") is not None:
        conditions.append(Item.active.is_(bool(query["active"])))
    if query.get("category"):
        conditions.append(Item.category == query["category"])
    key = SortKey(Item.item_code, Item.item_code)
    stmt = select(Item).where(*conditions)
    return keyset_page(session, stmt, key, query.get("cursor"), query.get("limit"))


def find_item(session: Session, item_code: str) -> Item | None:
    return session.get(Item, item_code)


def get_item(session: Session, item_code: str) -> Item:
    found = find_item(session, item_code) if isinstance(item_code, str) else None
    if found is None:
        raise NotFound.of("item", item_code)
    return found


def items_by_code(session: Session, codes: Iterable[str]) -> dict[str, Item]:
    wanted = sorted(set(codes))
    if not wanted:
        return {}
    return {i.item_code: i for i in session.scalars(select(Item).where(Item.item_code.in_(wanted)))}


# -- price lists -------------------------------------------------------------------------------
def valid_on(day: dt.date) -> ColumnElement[bool]:
    return or_(PriceList.valid_from.is_(None), PriceList.valid_from <= day) & or_(
        PriceList.valid_to.is_(None), PriceList.valid_to >= day
    )


def price_lists_page(session: Session, query: dict[str, Any]) -> Page:
    conditions: list[ColumnElement[bool]] = []
    text = query.get("q")
    if text:
        conditions.append(
            or_(
                PriceList.price_list_code.icontains(text, autoescape=True),
                PriceList.name.icontains(text, autoescape=True),
            )
        )
    if query.get("on") is not None:
        conditions.append(valid_on(query["on"]))
    key = SortKey(PriceList.price_list_code, PriceList.price_list_code)
    stmt = select(PriceList).where(*conditions)
    return keyset_page(session, stmt, key, query.get("cursor"), query.get("limit"))


def get_price_list(session: Session, code: str) -> PriceList:
    found = session.get(PriceList, code) if isinstance(code, str) else None
    if found is None:
        raise NotFound.of("price list", code)
    return found


def lines_of_list(session: Session, code: str) -> Sequence[PriceListLine]:
    stmt = (
        select(PriceListLine)
        .where(PriceListLine.price_list_code == code)
        .order_by(PriceListLine.line_no)
    )
    return session.scalars(stmt).all()


def line_counts(session: Session, codes: Iterable[str]) -> dict[str, int]:
    wanted = sorted(set(codes))
    if not wanted:
        return {}
    stmt = (
        select(PriceListLine.price_list_code, func.count())
        .where(PriceListLine.price_list_code.in_(wanted))
        .group_by(PriceListLine.price_list_code)
    )
    return {code: int(count) for code, count in session.execute(stmt)}


def price_lines_of_items(
    session: Session, item_codes: Iterable[str], on: dt.date | None = None
) -> list[tuple[PriceList, PriceListLine]]:
    """The price-list lines of these items, with their list (valid on ``on`` if given), in
    list and line order."""
    wanted = sorted(set(item_codes))
    if not wanted:
        return []
    stmt = (
        select(PriceList, PriceListLine)
        .join(PriceListLine, PriceListLine.price_list_code == PriceList.price_list_code)
        .where(PriceListLine.item_code.in_(wanted))
        .order_by(PriceList.price_list_code, PriceListLine.line_no)
    )
    if on is not None:
        stmt = stmt.where(valid_on(on))
    return [(price_list, line) for price_list, line in session.execute(stmt).tuples()]


def pricing_lists(
    session: Session, item_codes: Iterable[str], on: dt.date
) -> tuple[PriceListRule, ...]:
    """The price lists valid on ``on`` as pricing reads them, holding only the lines of
    ``item_codes``."""
    grouped: dict[str, tuple[PriceList, list[PriceListLineRule]]] = {}
    for price_list, line in price_lines_of_items(session, item_codes, on):
        _, lines = grouped.setdefault(price_list.price_list_code, (price_list, []))
        lines.append(
            PriceListLineRule(
                item_code=line.item_code,
                unit_price=line.unit_price,
                min_quantity=line.min_quantity,
                customer_category=line.customer_category,
            )
        )
    return tuple(
        PriceListRule(
            code=price_list.price_list_code,
            lines=tuple(lines),
            currency=price_list.currency,
            valid_from=price_list.valid_from,
            valid_to=price_list.valid_to,
        )
        for price_list, lines in grouped.values()
    )
