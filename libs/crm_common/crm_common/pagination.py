"""Keyset (cursor) pagination: stable pages however deep, no OFFSET scans."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, Uuid, and_, or_
from sqlalchemy.orm import InstrumentedAttribute, Session

from crm_common.errors import ValidationFailed
from crm_common.schemas import unstorable_text

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


@dataclass(frozen=True)
class SortKey:
    column: InstrumentedAttribute[Any]
    id_column: InstrumentedAttribute[Any]
    descending: bool = False


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
    else:
        raw = {"t": "v", "v": value, "id": str(identifier)}
    text = json.dumps(raw, ensure_ascii=False, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(cursor: str, column: InstrumentedAttribute[Any], uuid_ids: bool) -> tuple[Any, Any]:
    """The sort value and id a cursor holds, checked against the sort column's type: a
    tampered cursor is a 422, never a query the database refuses."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(raw, dict) or not isinstance(raw["id"], str):
            raise TypeError("a cursor is an object with a string id")
        value = datetime.fromisoformat(raw["v"]) if raw["t"] == "dt" else raw["v"]
        if not _fits(value, column) or unstorable_text(raw["id"]):
            raise TypeError("the cursor's value does not fit the sort column")
        return value, uuid.UUID(raw["id"]) if uuid_ids else raw["id"]
    except (ValueError, KeyError, TypeError, json.JSONDecodeError):
        raise ValidationFailed.on("cursor", "is not a cursor this list gave out") from None


def _fits(value: Any, column: InstrumentedAttribute[Any]) -> bool:
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
    column, id_column = sort.column, sort.id_column
    if cursor:
        value, last_id = _decode(cursor, column, uuid_ids=isinstance(id_column.type, Uuid))
        if sort.descending:
            after = or_(column < value, and_(column == value, id_column < last_id))
        else:
            after = or_(column > value, and_(column == value, id_column > last_id))
        stmt = stmt.where(after)
    order = (column.desc(), id_column.desc()) if sort.descending else (column, id_column)
    rows = list(session.scalars(stmt.order_by(*order).limit(size + 1)))
    items = rows[:size]
    next_cursor = None
    if len(rows) > size:
        last = items[-1]
        next_cursor = _encode(getattr(last, column.key), getattr(last, id_column.key))
    return Page(items=items, next_cursor=next_cursor)
