"""Change history: which fields changed, from what to what, as JSON-ready values."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

SET_FIELDS = frozenset({"tags"})
"""Fields whose values are sets: order does not count as a change."""


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: Any
    new: Any

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "old": self.old, "new": self.new}


def jsonable(value: Any) -> Any:
    """A value as it should appear in history and events."""
    if value is None or isinstance(value, bool | int | float | str):
        return None if value == "" else value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, Iterable):
        return [jsonable(v) for v in value]
    return str(value)


def _comparable(field: str, value: Any) -> Any:
    value = jsonable(value)
    if field in SET_FIELDS and isinstance(value, list):
        return sorted(value) or None
    return value


def snapshot(entity: Any, fields: Iterable[str]) -> dict[str, Any]:
    return {name: jsonable(getattr(entity, name)) for name in fields}


def diff(
    before: Mapping[str, Any], after: Mapping[str, Any], fields: Iterable[str]
) -> list[FieldChange]:
    """One change per field whose value differs; an empty string counts as no value."""
    changes = []
    for name in fields:
        old, new = _comparable(name, before.get(name)), _comparable(name, after.get(name))
        if old != new:
            changes.append(FieldChange(name, old, new))
    return changes
