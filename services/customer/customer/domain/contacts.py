"""A customer has at most one primary contact (主联系人)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, TypeVar


class ContactOnFile(Protocol):
    id: Any
    is_primary: bool


C = TypeVar("C", bound=ContactOnFile)


def new_contact_is_primary(requested: bool | None, customer_has_primary: bool) -> bool:
    """As requested; unless told, a customer's first contact is its primary one."""
    return not customer_has_primary if requested is None else requested


def primaries_to_demote(contacts: Iterable[C], keep: Any = None) -> list[C]:
    """The primary contacts that stop being primary when ``keep`` (or a new one) becomes it."""
    return [c for c in contacts if c.is_primary and c.id != keep]
