"""Data grants, given to a role or to a user: what records of other contexts they may see."""

from __future__ import annotations

from typing import Any

from org import repository
from org.application.admin import Aggregate
from org.domain.grants import check_holder, merge_references
from org.models import GRANT_FIELDS, DataGrant, Department, Region, Role, User
from org.schemas import GrantInputSchema, GrantQuerySchema, GrantSchema

REFERENCES = (("departments", Department, "department_id"), ("regions", Region, "region_id"))
"""The dimensions naming records of this database: field, model, key of a reference."""


class Grants(Aggregate):
    kind = "grants"
    entity_type = "grant"
    fields = GRANT_FIELDS
    dumper = GrantSchema()
    input_schema = GrantInputSchema
    query_schema = GrantQuerySchema

    def create(self, values: dict[str, Any]) -> DataGrant:
        values = self._checked(values)
        watched = self.authz.effective(self._holders(values.get("role_id"), values.get("user_id")))
        grant = DataGrant(**values)
        self.add(grant)
        self.settle(watched)
        return grant

    def update(self, grant: DataGrant, values: dict[str, Any]) -> None:
        current = {name: getattr(grant, name) for name in GRANT_FIELDS}
        merged = self._checked({**current, **values})
        values = {name: merged[name] for name in values}
        watched = self.authz.effective(
            self._holders(grant.role_id, grant.user_id)
            | self._holders(merged["role_id"], merged["user_id"])
        )
        if self.edit(grant, values):
            self.settle(watched)

    def concerned_users(self, record: DataGrant) -> set[str]:
        return self._holders(record.role_id, record.user_id)

    def _checked(self, values: dict[str, Any]) -> dict[str, Any]:
        """Check a grant as it would be after the change; returns the values, tidied."""
        check_holder(values.get("role_id"), values.get("user_id"))
        self.check_exist(Role, [values.get("role_id")], "role_id")
        self.check_exist(User, [values.get("user_id")], "user_id")
        for field, model, key in REFERENCES:
            refs = values.get(field)
            if refs is None:
                continue
            values[field] = merge_references(refs, key)
            self.check_exist(model, [ref[key] for ref in values[field]], field)
        return values

    def _holders(self, role_id: str | None, user_id: str | None) -> set[str]:
        """The users a grant to this role or user reaches."""
        if user_id:
            return {user_id}
        return repository.holders(self.session, [role_id] if role_id else [])
