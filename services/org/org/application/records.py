"""The generic administration entrypoints: list, get, create, update and disable a record of
any administered kind, each passed to the aggregate of that kind."""

from __future__ import annotations

from typing import Any

from crm_common.application import UseCaseContext
from crm_common.history import FieldChange
from crm_common.models import check_version, split_version
from crm_common.schemas import load, parse_flag
from org import repository
from org.application.admin import Aggregate, OrgAdmin
from org.application.departments import Departments
from org.application.grants import Grants
from org.application.people import People
from org.application.regions import Regions
from org.application.roles import Roles
from org.application.sessions import revoke_all
from org.application.users import Users
from org.domain.conflicts import self_disable
from org.hashing import Passwords

AGGREGATES: dict[str, type[Aggregate]] = {
    aggregate.kind: aggregate for aggregate in (Departments, Regions, People, Users, Roles, Grants)
}


class Records(OrgAdmin):
    def __init__(self, context: UseCaseContext, passwords: Passwords) -> None:
        super().__init__(context)
        self.passwords = passwords

    def aggregate(self, kind: Any) -> Aggregate:
        """The use cases of ``kind``, or ``ValidationFailed`` naming the kinds there are."""
        kind = repository.check_kind(kind)
        if kind == Users.kind:
            return Users(self.context, self.passwords)
        return AGGREGATES[kind](self.context)

    def page(self, kind: Any, query: Any) -> dict[str, Any]:
        records = self.aggregate(kind)
        page = repository.page(self.session, records.kind, load(records.query_schema(), query))
        return {
            "items": records.dumper.dump(page.items, many=True),
            "next_cursor": page.next_cursor,
        }

    def get(self, kind: Any, record_id: Any) -> dict[str, Any]:
        records = self.aggregate(kind)
        return records.dump(repository.get(self.session, records.kind, record_id))

    def create(self, kind: Any, data: Any) -> dict[str, Any]:
        records = self.aggregate(kind)
        return records.dump(records.create(load(records.input_schema(), data)))

    def update(
        self, kind: Any, record_id: Any, changes: Any, expected_version: Any
    ) -> dict[str, Any]:
        records = self.aggregate(kind)
        record = repository.get(self.session, records.kind, record_id)
        changes, expected_version = split_version(changes, expected_version)
        check_version(record, expected_version)
        records.update(record, load(records.input_schema(), changes, partial=True))
        return records.dump(record)

    def set_disabled(self, kind: Any, record_id: Any, disabled: Any) -> dict[str, Any]:
        """Disable or enable a record (records are never deleted). Disabling a user or a
        person ends their users' sessions."""
        records = self.aggregate(kind)
        record = repository.get(self.session, records.kind, record_id)
        flag = parse_flag(disabled, "disabled")
        if record.disabled == flag:
            return records.dump(record)
        users = records.concerned_users(record)
        if flag and records.disabling_ends_sessions and self.context.actor_id in users:
            raise self_disable()
        before = self.authz.effective(users)
        record.disabled = flag
        record.updated_at = self.now
        repository.flush(self.session)
        records.audit(
            records.entity_type,
            record.id,
            "disabled" if flag else "enabled",
            [FieldChange("disabled", not flag, flag)],
        )
        if flag and records.disabling_ends_sessions:
            reason = f"{records.entity_type}_disabled"
            revoke_all(self.session, self.context.outbox, users, reason, self.now)
        self.settle(before)
        records.announce(record)
        return records.dump(record)
