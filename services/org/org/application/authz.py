"""What each user may do and see right now: roles, permissions, department and compiled grants.

Every change that can alter this (roles, grants, a user's roles or person, a person's
department or status, the department and region trees) computes the affected users' effective
principals before and after and bumps ``authz_version`` of exactly those whose principal
differs, announcing them in one ``grants_changed`` event.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from crm_common.application import EventSink
from org import events, repository
from org.domain.conflicts import last_administrator
from org.domain.grants import GrantDefinition, combine, compile_grant
from org.domain.permissions import ORG_ADMIN
from org.domain.trees import Tree
from org.domain.users import is_active
from org.models import DataGrant, Department, Role


@dataclass
class Effective:
    """A user's effective principal. An inactive user (disabled, or their person disabled or
    gone) holds nothing, whatever their roles say."""

    user_id: str
    username: str
    authz_version: int
    active: bool
    department_id: str | None
    roles: list[Role] = field(default_factory=list)
    permissions: list[str] = field(default_factory=list)
    grants: list[tuple[DataGrant, str]] = field(default_factory=list)
    compiled: list[dict[str, Any]] = field(default_factory=list)

    @property
    def authority(self) -> tuple[Any, ...]:
        """What a token carries about the user's rights; a change here bumps the version."""
        if not self.active:
            return (False,)
        return (
            True,
            self.department_id,
            sorted(role.code for role in self.roles),
            self.permissions,
            self.compiled,
        )

    @property
    def administers(self) -> bool:
        """Whether the user is enabled and holds ``org:admin``."""
        return self.active and ORG_ADMIN in self.permissions

    def principal(self) -> dict[str, Any]:
        """The principal a session hands to the gateway (it signs it into access tokens)."""
        return {
            "user_id": self.user_id,
            "username": self.username,
            "department_id": self.department_id,
            "roles": sorted(role.code for role in self.roles),
            "permissions": self.permissions,
            "grants": self.compiled,
            "authz_version": self.authz_version,
        }


class Authz:
    def __init__(self, session: Session) -> None:
        self.session = session

    def effective(self, user_ids: Iterable[str]) -> dict[str, Effective]:
        """The effective principals of these users, computed from the database as it is now."""
        ids = set(user_ids)
        if not ids:
            return {}
        users = repository.users(self.session, ids)
        role_ids = {role.id for user in users for role in user.roles if not role.disabled}
        grants = repository.enabled_grants(self.session, ids, role_ids)
        departments = (
            repository.tree(self.session, Department)
            if any(g.departments is not None for g in grants)
            else Tree({})
        )
        region_ids = {ref["region_id"] for g in grants for ref in g.regions or ()}
        paths = repository.region_paths(self.session, region_ids) if region_ids else {}
        result = {}
        for user in users:
            roles = sorted((r for r in user.roles if not r.disabled), key=lambda r: r.code)
            held = {role.id for role in roles}
            own = [(g, "role") for g in grants if g.role_id in held]
            own += [(g, "user") for g in grants if g.user_id == user.id]
            result[user.id] = Effective(
                user_id=user.id,
                username=user.username,
                authz_version=user.authz_version,
                active=is_active(user),
                department_id=user.department_id,
                roles=roles,
                permissions=sorted({p for role in roles for p in role.permissions}),
                grants=own,
                compiled=combine(compile_grant(definition(g), departments, paths) for g, _ in own),
            )
        return result

    def settle(self, outbox: EventSink, before: dict[str, Effective]) -> dict[str, int]:
        """Bump ``authz_version`` of the users in ``before`` whose principal has changed since,
        and announce them. Returns their new versions. A change that takes ``org:admin`` from
        the last enabled user holding it is refused (``Conflict``)."""
        self.session.flush()
        after = self.effective(before)
        lost_admin = [
            user_id
            for user_id, was in before.items()
            if was.administers and not (user_id in after and after[user_id].administers)
        ]
        if lost_admin:
            self.check_an_administrator_remains(lost_admin)
        changed = sorted(
            user_id
            for user_id, was in before.items()
            if user_id not in after or was.authority != after[user_id].authority
        )
        if not changed:
            return {}
        versions = repository.bump_authz_versions(self.session, changed)
        outbox.add(self.session, events.GRANTS_CHANGED, events.grants_changed(versions))
        return versions

    def check_an_administrator_remains(self, losing: list[str]) -> None:
        """``Conflict`` unless some enabled user still holds ``org:admin``."""
        candidates = repository.holders_of_permission(self.session, ORG_ADMIN)
        if not any(user.administers for user in self.effective(candidates).values()):
            raise last_administrator(sorted(losing))


def definition(grant: DataGrant) -> GrantDefinition:
    return GrantDefinition.from_record(
        grant.departments, grant.regions, grant.categories, grant.owner_self
    )
