"""The conflicts an administrative change can run into, with the payloads clients act on.

``reason`` says which kind of conflict it is; ``errors`` names the fields to correct, as a
validation error does, and ``id`` the record already holding the value.
"""

from __future__ import annotations

from typing import Any

from crm_common.errors import Conflict


def already_used(field: str, value: Any, holder_id: str) -> Conflict:
    """``value`` of the unique ``field`` belongs to the record ``holder_id``."""
    return Conflict(
        f"{field} {value} is already used",
        {
            "reason": "duplicate",
            "id": holder_id,
            "errors": {field: [f"is already used by {holder_id}"]},
        },
    )


def sibling_name_taken(name: str, holder_id: str) -> Conflict:
    """A region of the same parent is already called ``name``."""
    return Conflict(
        f"a region named {name} already exists there",
        {
            "reason": "duplicate",
            "id": holder_id,
            "errors": {"name": [f"is already used by {holder_id} at the same level"]},
        },
    )


def saved_meanwhile() -> Conflict:
    """A unique key was taken by a transaction that committed while this one ran."""
    return Conflict(
        "the change clashes with a record saved meanwhile; reload and retry",
        {"reason": "integrity"},
    )


def last_administrator(user_ids: list[str]) -> Conflict:
    """The change would leave no enabled user holding ``org:admin``."""
    return Conflict(
        "this change would leave no enabled user holding org:admin: give the permission to "
        "another user first",
        {"reason": "last_administrator", "users": user_ids},
    )


def self_disable() -> Conflict:
    """An administrator may not disable their own user or person."""
    return Conflict(
        "you cannot disable yourself: ask another administrator",
        {"reason": "self_disable"},
    )
