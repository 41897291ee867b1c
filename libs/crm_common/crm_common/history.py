"""Change history for every service: which fields of a record changed, from what to what.

One set of rules, used by every history or audit log in the suite:

- Values are recorded as JSON-ready values (``jsonable``): ids, decimals and enums as strings,
  dates as ISO text, sets as sorted lists.
- *No value* is one thing: ``None``, an empty string and an empty list or mapping all read as
  ``None``. Going from ``""`` to ``None`` is no change, and a change list never reports ``""``.
- Fields whose values are sets (tags, role lists) are declared per call as ``unordered``: their
  order is no change, and their values are reported sorted.

Typical use in a use case::

    before = snapshot(record, FIELDS)
    ...apply the validated values...
    changes = diff(before, snapshot(record, FIELDS), FIELDS, unordered={"tags"})
    if changes:
        write_history_rows([c.as_dict() for c in changes])

and ``created(snapshot(record, FIELDS))`` (or ``filled`` for one mapping) for a new record.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: Any
    new: Any

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "old": self.old, "new": self.new}


def jsonable(value: Any) -> Any:
    """``value`` as history and events show it; empty values become ``None``."""
    if isinstance(value, str):
        return value or None
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Enum):
        return jsonable(value.value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()} or None
    if isinstance(value, set | frozenset):
        return _sorted([jsonable(v) for v in value]) or None
    if isinstance(value, Iterable):
        return [jsonable(v) for v in value] or None
    return str(value)


def snapshot(entity: Any, fields: Iterable[str]) -> dict[str, Any]:
    """The JSON-ready values of ``fields`` read from ``entity``'s attributes."""
    return {name: jsonable(getattr(entity, name)) for name in fields}


def diff(
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    fields: Iterable[str] | None = None,
    *,
    unordered: Collection[str] = (),
) -> list[FieldChange]:
    """One change per field whose value differs, in the order of ``fields`` (by default the
    keys of ``after``); a field missing from a side has no value there."""
    changes = []
    for name in after if fields is None else fields:
        old = _comparable(before.get(name), name in unordered)
        new = _comparable(after.get(name), name in unordered)
        if old != new:
            changes.append(FieldChange(name, old, new))
    return changes


def filled(values: Mapping[str, Any], fields: Iterable[str] | None = None) -> dict[str, Any]:
    """The fields of ``values`` (by default all) that have a value, JSON-ready."""
    names = values.keys() if fields is None else fields
    present = ((name, jsonable(values.get(name))) for name in names)
    return {name: value for name, value in present if value is not None}


def created(values: Mapping[str, Any], fields: Iterable[str] | None = None) -> list[FieldChange]:
    """The change list of a new record: each field that has a value, from no value."""
    return [FieldChange(name, None, value) for name, value in filled(values, fields).items()]


def _comparable(value: Any, unordered: bool) -> Any:
    value = jsonable(value)
    if unordered and isinstance(value, list):
        return _sorted(value)
    return value


def _sorted(values: list[Any]) -> list[Any]:
    """``values`` in their natural order, or by type and text where they do not compare."""
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=lambda v: (type(v).__name__, str(v)))
