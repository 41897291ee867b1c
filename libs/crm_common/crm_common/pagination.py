"""Keyset (cursor) pagination: stable pages however deep, no OFFSET scans.

``keyset_page`` runs a statement built for the call. A read path that builds its statements
once instead takes two of them from ``keyset_select`` (the first page, and the pages after a
cursor), runs one with ``page_parameters`` and makes the page with ``rows_page``.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Integer, Select, Uuid, and_, bindparam, or_
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.elements import ColumnElement

from crm_common.errors import ValidationFailed
from crm_common.schemas import unstorable_text

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


AFTER_VALUE = "page_after_value"
AFTER_ID = "page_after_id"
PAGE_LIMIT = "page_limit"


@dataclass(frozen=True)
class SortKey:
    """A NOT NULL sort column and the id breaking its ties: mapped attributes, or the table
    columns of a statement that selects columns."""

    column: InstrumentedAttribute[Any] | ColumnElement[Any]
    id_column: InstrumentedAttribute[Any] | ColumnElement[Any]
    descending: bool = False

    @property
    def order(self) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
        if self.descending:
            return self.column.desc(), self.id_column.desc()
        return self.column.asc(), self.id_column.asc()

    def after(self, value: Any, last_id: Any) -> ColumnElement[bool]:
        """The rows that come after (``value``, ``last_id``) in this order."""
        column, id_column = self.column, self.id_column
        if self.descending:
            return or_(column < value, and_(column == value, id_column < last_id))
        return or_(column > value, and_(column == value, id_column > last_id))

    def decode(self, cursor: str) -> tuple[Any, Any]:
        return _decode(cursor, self.column, uuid_ids=isinstance(self.id_column.type, Uuid))


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next_cursor: str | None


def page_size(limit: int | str | None) -> int:
    if limit is None or limit == "":
        return DEFAULT_PAGE_SIZE
    try:
        value = int(limit)
    except (TypeError, ValueError):
        raise ValidationFailed.on("limit", "must be a whole number") from None
    if value < 1:
        raise ValidationFailed.on("limit", "must be at least 1")
    return min(value, MAX_PAGE_SIZE)


def _encode(value: Any, identifier: Any) -> str:
    if isinstance(value, datetime):
        raw = {"t": "dt", "v": value.isoformat(), "id": str(identifier)}
    elif isinstance(value, date):
        raw = {"t": "d", "v": value.isoformat(), "id": str(identifier)}
    else:
        raw = {"t": "v", "v": value, "id": str(identifier)}
    text = json.dumps(raw, ensure_ascii=False, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(cursor: str, column: Any, uuid_ids: bool) -> tuple[Any, Any]:
    """The sort value and id a cursor holds, checked against the sort column's type: a
    tampered cursor is a 422, never a query the database refuses."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(raw, dict) or not isinstance(raw["id"], str):
            raise TypeError("a cursor is an object with a string id")
        value = raw["v"]
        if raw["t"] == "dt":
            value = datetime.fromisoformat(value)
        elif raw["t"] == "d":
            value = date.fromisoformat(value)
        if not _fits(value, column) or unstorable_text(raw["id"]):
            raise TypeError("the cursor's value does not fit the sort column")
        return value, uuid.UUID(raw["id"]) if uuid_ids else raw["id"]
    except (ValueError, KeyError, TypeError, json.JSONDecodeError):
        raise ValidationFailed.on("cursor", "is not a cursor this list gave out") from None


def _fits(value: Any, column: Any) -> bool:
    try:
        expected = column.type.python_type
    except NotImplementedError:
        return isinstance(value, str | int | float | datetime)
    if isinstance(value, bool) and expected is not bool:
        return False
    if expected is str:
        return isinstance(value, str) and unstorable_text(value) is None
    if expected in (float, Decimal):
        return isinstance(value, int | float)
    return isinstance(value, expected)


def keyset_page(
    session: Session,
    stmt: Select[Any],
    sort: SortKey,
    cursor: str | None = None,
    limit: int | str | None = None,
) -> Page:
    """Run ``stmt`` (selecting one entity) ordered by ``sort``, after ``cursor``, one page long.

    The sort column must be NOT NULL; the id (a UUID or a string) breaks ties so every row
    appears exactly once.
    """
    size = page_size(limit)
    if cursor:
        stmt = stmt.where(sort.after(*sort.decode(cursor)))
    rows = list(session.scalars(stmt.order_by(*sort.order).limit(size + 1)))
    return _page(rows, sort, size)


def keyset_select(stmt: Select[Any], sort: SortKey, *, after_cursor: bool) -> Select[Any]:
    """``stmt`` in ``sort``'s order, one page long (``page_limit``), and with ``after_cursor``
    only the rows after the cursor's (``page_after_value``, ``page_after_id``): a statement to
    build once and run with ``page_parameters``. ``stmt`` selects the sort and id columns
    under their own names."""
    if after_cursor:
        value = bindparam(AFTER_VALUE, type_=sort.column.type)
        last_id = bindparam(AFTER_ID, type_=sort.id_column.type)
        stmt = stmt.where(sort.after(value, last_id))
    return stmt.order_by(*sort.order).limit(bindparam(PAGE_LIMIT, type_=Integer))


def page_parameters(sort: SortKey, cursor: str | None, limit: int | str | None) -> dict[str, Any]:
    """The parameters of a ``keyset_select`` statement (``after_cursor`` when ``cursor``)."""
    values: dict[str, Any] = {PAGE_LIMIT: page_size(limit) + 1}
    if cursor:
        values[AFTER_VALUE], values[AFTER_ID] = sort.decode(cursor)
    return values


def rows_page(rows: list[Any], sort: SortKey, limit: int | str | None) -> Page:
    """The page of the rows a ``keyset_select`` statement gave (one more than a page when
    there is a next one)."""
    return _page(rows, sort, page_size(limit))


def _page(rows: list[Any], sort: SortKey, size: int) -> Page:
    items = rows[:size]
    next_cursor = None
    if len(rows) > size:
        last = items[-1]
        next_cursor = _encode(
            getattr(last, str(sort.column.key)), getattr(last, str(sort.id_column.key))
        )
    return Page(items=items, next_cursor=next_cursor)
