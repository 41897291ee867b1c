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


RELATIONSHIP_CODE_KEYS = ("from", "to")
MERGED_KEYS = ("merged_id", "merged_code", "name")


def codes_named(entries: Iterable[Mapping[str, Any]]) -> set[str]:
    """The codes of other customers that dumped history entries name (relationship ends,
    merged customers)."""
    codes: set[str] = set()
    for entry in entries:
        for value in (entry.get("old"), entry.get("new")):
            if not isinstance(value, Mapping):
                continue
            if entry.get("entity_type") == "relationship":
                codes.update(value[k] for k in RELATIONSHIP_CODE_KEYS if value.get(k))
            elif value.get("merged_code"):
                codes.add(value["merged_code"])
    return codes


def hide_customers(entry: dict[str, Any], hidden: set[str]) -> dict[str, Any]:
    """The entry with every mention of a customer whose code is in ``hidden`` blanked out:
    a customer's history must not show customers its reader may not see."""
    for side in ("old", "new"):
        value = entry.get(side)
        if not isinstance(value, Mapping):
            continue
        if entry.get("entity_type") == "relationship":
            entry[side] = {
                k: None if k in RELATIONSHIP_CODE_KEYS and v in hidden else v
                for k, v in value.items()
            }
        elif value.get("merged_code") in hidden:
            entry[side] = {k: None if k in MERGED_KEYS else v for k, v in value.items()}
    return entry
