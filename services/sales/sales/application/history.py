"""What the opportunity, process and master-list use cases share: dumping records with their
schemas, and writing field history rows in the call's transaction."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from marshmallow import Schema

from crm_common.application import UseCaseContext
from crm_common.history import FieldChange, jsonable
from sales.models import HistoryEntry


def dump(schema: Schema, record: Any) -> dict[str, Any]:
    """``record`` serialized by ``schema`` (typed: marshmallow's ``dump`` returns Any)."""
    dumped: dict[str, Any] = schema.dump(record)
    return dumped


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
