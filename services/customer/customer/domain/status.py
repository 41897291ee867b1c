"""The life of a customer: potential (潜在) → formal (正式) ⇄ dormant (休眠), disabled (停用);
merged (已合并) is terminal and reached only by a merge."""

from __future__ import annotations

from enum import StrEnum

from crm_common.errors import Conflict, ValidationFailed


class Status(StrEnum):
    POTENTIAL = "potential"
    FORMAL = "formal"
    DORMANT = "dormant"
    DISABLED = "disabled"
    MERGED = "merged"


LABELS = {
    Status.POTENTIAL: "潜在",
    Status.FORMAL: "正式",
    Status.DORMANT: "休眠",
    Status.DISABLED: "停用",
    Status.MERGED: "已合并",
}

SETTABLE = (Status.POTENTIAL, Status.FORMAL, Status.DORMANT, Status.DISABLED)
"""Statuses a user may give a customer (``merged`` only comes from a merge)."""

TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.POTENTIAL: frozenset({Status.FORMAL, Status.DISABLED}),
    Status.FORMAL: frozenset({Status.DORMANT, Status.DISABLED}),
    Status.DORMANT: frozenset({Status.FORMAL, Status.DISABLED}),
    Status.DISABLED: frozenset({Status.POTENTIAL, Status.FORMAL}),
    Status.MERGED: frozenset(),
}

# How far along a relationship is; a merge keeps the furthest of the two.
RANK = {Status.POTENTIAL: 1, Status.DORMANT: 2, Status.FORMAL: 3}


def allowed_next(current: str) -> list[str]:
    return sorted(s.value for s in TRANSITIONS[Status(current)])


def check_transition(current: str, new: str) -> None:
    """Accept staying put or a listed move; a merged customer accepts nothing."""
    old, target = Status(current), Status(new)
    if old is Status.MERGED:
        raise Conflict(
            "a merged customer can no longer be changed",
            {"reason": "customer_merged"},
        )
    if old is target:
        return
    if target not in TRANSITIONS[old]:
        allowed = ", ".join(allowed_next(old)) or "none"
        raise ValidationFailed(
            f"status cannot change from {old.value} to {target.value}",
            {
                "errors": {
                    "status": [
                        f"cannot change from {old.value} ({LABELS[old]}) to "
                        f"{target.value} ({LABELS[target]}); allowed: {allowed}"
                    ]
                }
            },
        )


def is_editable(current: str) -> bool:
    return Status(current) is not Status.MERGED
