"""What a customer's history shows: which of its fields are sets, and which other customers an
entry names (a reader must not learn of customers outside their data scope)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

UNORDERED_FIELDS = frozenset({"tags"})
"""Fields whose values are sets: order does not count as a change."""

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
