"""Field-level change lists for the audit log, as JSON-ready values."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any


def jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return str(value)


def snapshot(entity: Any, fields: Iterable[str]) -> dict[str, Any]:
    return {name: jsonable(getattr(entity, name)) for name in fields}


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``[{"field", "old", "new"}]`` for every field whose value differs."""
    return [
        {"field": name, "old": before.get(name), "new": after.get(name)}
        for name in after
        if before.get(name) != after.get(name)
    ]


def created(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The change list of a new record: every field that has a value."""
    return [
        {"field": name, "old": None, "new": value}
        for name, value in values.items()
        if value not in (None, [], "")
    ]
