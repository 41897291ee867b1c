"""Data grants: from an administrator's definition to the compiled form principals carry.

A definition names departments and regions by id, each with or without what lies below it.
Compiling resolves them against the current trees: departments become the full list of ids
covered (sub-departments expanded, disabled ones included, since records may still carry
them), regions become their paths. The result is the form ``crm_common.scope`` reads.
A dimension left out (``None``) does not restrict; an empty list restricts to nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from crm_common.errors import ValidationFailed
from crm_common.scope import Grant
from org.domain.trees import Tree

CATEGORIES = ("A", "B", "C", "VIP")


@dataclass(frozen=True)
class Reference:
    """A department or region a grant names, with or without everything below it."""

    id: str
    include_children: bool = False


@dataclass(frozen=True)
class GrantDefinition:
    departments: tuple[Reference, ...] | None = None
    regions: tuple[Reference, ...] | None = None
    categories: tuple[str, ...] | None = None
    owner_self: bool = False

    @classmethod
    def from_record(
        cls,
        departments: Iterable[Mapping[str, Any]] | None,
        regions: Iterable[Mapping[str, Any]] | None,
        categories: Iterable[str] | None,
        owner_self: bool,
    ) -> GrantDefinition:
        """From the stored form: ``[{"department_id", "include_children"}]`` and so on."""
        return cls(
            departments=_references(departments, "department_id"),
            regions=_references(regions, "region_id"),
            categories=None if categories is None else tuple(categories),
            owner_self=bool(owner_self),
        )


def _references(
    items: Iterable[Mapping[str, Any]] | None, key: str
) -> tuple[Reference, ...] | None:
    if items is None:
        return None
    return tuple(Reference(item[key], bool(item.get("include_children"))) for item in items)


def compile_grant(
    definition: GrantDefinition, departments: Tree, region_paths: Mapping[str, str]
) -> dict[str, Any]:
    """The compiled grant (see ``crm_common.scope``). References to unknown ids cover nothing."""
    compiled: dict[str, Any] = {}
    if definition.departments is not None:
        covered: set[str] = set()
        for ref in definition.departments:
            if ref.id in departments:
                covered.update(departments.subtree(ref.id) if ref.include_children else [ref.id])
        compiled["departments"] = sorted(covered)
    if definition.regions is not None:
        rules: dict[str, bool] = {}
        for ref in definition.regions:
            path = region_paths.get(ref.id)
            if path is not None:
                rules[path] = rules.get(path, False) or ref.include_children
        compiled["regions"] = [{"path": p, "subtree": s} for p, s in sorted(rules.items())]
    if definition.categories is not None:
        compiled["categories"] = sorted(set(definition.categories))
    if definition.owner_self:
        compiled["owner"] = "self"
    return Grant.from_dict(compiled).as_dict()


def combine(compiled: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """A principal's grants, deduplicated in a stable order. One unrestricted grant covers
    everything, so it stands alone."""
    unique = {json.dumps(g, sort_keys=True, ensure_ascii=False): g for g in compiled}
    if "{}" in unique:
        return [{}]
    return [unique[key] for key in sorted(unique)]


def check_holder(role_id: str | None, user_id: str | None) -> None:
    """A grant is given to a role or to a user: exactly one of the two."""
    if bool(role_id) == bool(user_id):
        reason = "give exactly one of role_id and user_id"
        raise ValidationFailed(reason, {"errors": {"role_id": [reason], "user_id": [reason]}})


def merge_references(refs: Iterable[Mapping[str, Any]], key: str) -> list[dict[str, Any]]:
    """The stored form of a grant's references, each id once: named twice, it keeps what lies
    below it if either mention did."""
    merged: dict[str, bool] = {}
    for ref in refs:
        merged[ref[key]] = merged.get(ref[key], False) or bool(ref["include_children"])
    return [{key: ref_id, "include_children": below} for ref_id, below in merged.items()]
