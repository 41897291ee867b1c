"""Roles: named sets of function permissions from the catalog."""

from __future__ import annotations

from typing import Any

from org import repository
from org.application.admin import Aggregate
from org.domain.permissions import catalog
from org.models import ROLE_FIELDS, Role
from org.schemas import RoleInputSchema, RoleSchema


class Roles(Aggregate):
    kind = "roles"
    entity_type = "role"
    fields = ROLE_FIELDS
    unordered = frozenset({"permissions"})
    dumper = RoleSchema()
    input_schema = RoleInputSchema

    def create(self, values: dict[str, Any]) -> Role:
        self.check_free(Role.code, values["code"], None, "code")
        values["permissions"] = sorted(set(values.get("permissions", [])))
        role = Role(**values)
        self.add(role)
        return role

    def update(self, role: Role, values: dict[str, Any]) -> None:
        if "code" in values:
            self.check_free(Role.code, values["code"], role.id, "code")
        if "permissions" in values:
            values["permissions"] = sorted(set(values["permissions"]))
        watched = self.authz.effective(self.concerned_users(role))
        changes = self.edit(role, values)
        if changes:
            self.settle(watched)
            if any(change.field == "code" for change in changes):
                self.announce(role)

    def concerned_users(self, record: Role) -> set[str]:
        return repository.holders(self.session, [record.id])

    def announce(self, record: Role) -> None:
        """The people of the role's holders carry its code while it is enabled: announced
        again when it is renamed, disabled or enabled."""
        holders = repository.users(self.session, self.concerned_users(record))
        self.people_changed_through_users(
            user.person for user in sorted(holders, key=lambda user: user.id)
        )

    def permissions(self) -> list[dict[str, str]]:
        """The catalog roles pick their permissions from."""
        return catalog()
