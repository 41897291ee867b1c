"""Merging a duplicate customer into the one that survives.

The survivor keeps every value it has and takes from the merged customer only what it lacks;
tags are united; the status becomes the furthest along of the two (formal > dormant >
potential). Contacts, relationships and care records move to the survivor; when the survivor
already has a primary contact, the moved ones are no longer primary.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from crm_common.errors import Conflict, ValidationFailed
from crm_common.history import FieldChange
from customer.domain.status import RANK, Status

FILL_FIELDS = (
    "short_name",
    "industry",
    "region",
    "address",
    "phone",
    "credit_code",
    "erp_code",
    "credit_level",
    "category",
)
UNIQUE_FIELDS = ("credit_code", "erp_code")
"""Fields no two customers share: one the survivor takes is taken away from the merged one."""
OWNERSHIP_FIELDS = ("owner_id", "department_id")
"""Taken together or not at all, so an owner never lands in someone else's department."""

_REFUSED = {
    Status.DISABLED: "a disabled customer cannot take part in a merge; enable it first",
    Status.MERGED: "this customer has already been merged into another",
}


@dataclass
class MergePlan:
    fills: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    status: str | None = None
    demote_moved_primaries: bool = False

    @property
    def moves_credit_code(self) -> bool:
        return "credit_code" in self.fills

    @property
    def moved_unique_fields(self) -> list[str]:
        """The ``UNIQUE_FIELDS`` the survivor takes from the merged customer."""
        return [name for name in UNIQUE_FIELDS if name in self.fills]

    def survivor_values(self, survivor_tags: list[str]) -> dict[str, Any]:
        """The values the survivor takes: the fills, the united tags and the status."""
        values = dict(self.fills)
        if self.tags != survivor_tags:
            values["tags"] = self.tags
        if self.status:
            values["status"] = self.status
        return values

    def merged_away(self, merged: Mapping[str, Any], survivor_id: Any) -> list[FieldChange]:
        """What the merge changes on the merged customer (``merged`` as it was before)."""
        changes = [
            FieldChange("status", merged["status"], Status.MERGED.value),
            FieldChange("merged_into_id", None, str(survivor_id)),
        ]
        for name in self.moved_unique_fields:
            changes.append(FieldChange(name, merged[name], None))
        return changes


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def check_mergeable(survivor: Mapping[str, Any], merged: Mapping[str, Any]) -> None:
    if str(survivor["id"]) == str(merged["id"]):
        raise ValidationFailed.on("merged_id", "a customer cannot be merged into itself")
    for role, customer in (("survivor", survivor), ("merged", merged)):
        reason = _REFUSED.get(Status(customer["status"]))
        if reason:
            raise Conflict(
                f"{role} customer {customer.get('code', customer['id'])}: {reason}",
                {"reason": "not_mergeable", "customer_id": str(customer["id"]), "role": role},
            )


def plan_merge(
    survivor: Mapping[str, Any],
    merged: Mapping[str, Any],
    *,
    survivor_has_primary: bool = False,
) -> MergePlan:
    """What the survivor takes over from the merged customer (checks the rules first)."""
    check_mergeable(survivor, merged)
    plan = MergePlan()
    for name in FILL_FIELDS:
        if _empty(survivor.get(name)) and not _empty(merged.get(name)):
            plan.fills[name] = merged[name]
    if all(_empty(survivor.get(n)) for n in OWNERSHIP_FIELDS):
        for name in OWNERSHIP_FIELDS:
            if not _empty(merged.get(name)):
                plan.fills[name] = merged[name]
    tags = list(survivor.get("tags") or [])
    tags += [t for t in merged.get("tags") or [] if t not in tags]
    plan.tags = tags
    mine, theirs = Status(survivor["status"]), Status(merged["status"])
    if RANK.get(theirs, 0) > RANK.get(mine, 0):
        plan.status = theirs.value
    plan.demote_moved_primaries = survivor_has_primary
    return plan
