"""What the opportunity, process and master-list use cases share: dumping records with their
schemas, and writing field history rows in the call's transaction."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from weakref import WeakKeyDictionary

from marshmallow import Schema

from crm_common.application import UseCaseContext
from crm_common.history import FieldChange, jsonable
from crm_common.reads import RowDumper
from sales.models import HistoryEntry


def dump(schema: Schema, record: Any) -> dict[str, Any]:
    """``record`` serialized by ``schema``; a mapping of values (what most use cases dump)
    through the schema's ``RowDumper``, which gives the same at a fraction of the cost."""
    if isinstance(record, Mapping):
        dumper = _dumper(schema)
        if dumper is not None:
            return dumper.dump_values(record)
    dumped: dict[str, Any] = schema.dump(record)
    return dumped


_DUMPERS: WeakKeyDictionary[Schema, RowDumper | None] = WeakKeyDictionary()


def _dumper(schema: Schema) -> RowDumper | None:
    """The schema's dumper (None for a schema it cannot dump), made once per schema object."""
    if schema in _DUMPERS:
        return _DUMPERS[schema]
    try:
        dumper: RowDumper | None = RowDumper(schema)
    except ValueError:
        dumper = None
    _DUMPERS[schema] = dumper
    return dumper


def record_history(
    context: UseCaseContext,
    entity_type: str,
    entity_id: Any,
    change: str,
    changes: Iterable[FieldChange] = (),
    *,
    old: Any = None,
    new: Any = None,
) -> None:
    """One history row per field change, or one row with whole ``old``/``new`` values."""
    common = {
        "entity_type": entity_type,
        "entity_id": str(entity_id),
        "change": change,
        "actor_id": context.actor_id,
        "at": context.now,
    }
    rows = [HistoryEntry(**common, field=c.field, old=c.old, new=c.new) for c in changes] or [
        HistoryEntry(**common, old=jsonable(old), new=jsonable(new))
    ]
    context.session.add_all(rows)
