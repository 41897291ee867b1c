"""Whether a user account may act at all."""

from __future__ import annotations

from typing import Protocol

ACTIVE = "active"


class PersonState(Protocol):
    @property
    def disabled(self) -> bool: ...

    @property
    def status(self) -> str: ...


class UserState(Protocol):
    @property
    def disabled(self) -> bool: ...

    @property
    def person(self) -> PersonState | None: ...


def is_active(user: UserState) -> bool:
    """A user acts only while neither they nor their person (if any) is disabled and the
    person has not left. An inactive user holds no rights, whatever their roles say."""
    person = user.person
    return not user.disabled and (
        person is None or (not person.disabled and person.status == ACTIVE)
    )
