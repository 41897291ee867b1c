"""The base of the administrative use cases (``org:admin``) and of each administered aggregate.

Which users get a new ``authz_version`` (and a ``grants_changed`` event): for each change the
candidates are computed first — a role's holders; a grant's user or its role's holders (before
and after a change of target); the user edited; the users of the person edited; for a move in
the department tree (or a new department) every user with a department grant, for a rename
or move in the region tree every user with a region grant — then their effective principals
are compared before and after, and only those whose principal really differs are bumped.
Disabling a department or region changes no principal: compiled grants keep disabled ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from marshmallow import Schema
from sqlalchemy.orm import InstrumentedAttribute

from crm_common.application import UseCaseContext, UseCases
from crm_common.errors import ValidationFailed
from crm_common.history import FieldChange, created, diff, snapshot
from org import events, repository
from org.application import audit
from org.application.authz import Authz
from org.application.structure import shared_people
from org.domain.conflicts import already_used
from org.domain.permissions import ORG_ADMIN
from org.domain.trees import child_path
from org.models import Department, OrgRecord, Person, Region, Role, User
from org.schemas import DepartmentSchema, QuerySchema, RegionSchema

ENTITY_NAMES: dict[type[OrgRecord], str] = {
    Department: "department",
    Region: "region",
    Person: "person",
    User: "user",
    Role: "role",
}
department_schema = DepartmentSchema()
region_schema = RegionSchema()


class OrgAdmin(UseCases):
    """Use cases only an org administrator may run."""

    def __init__(self, context: UseCaseContext) -> None:
        context.principal.require(ORG_ADMIN)
        super().__init__(context)
        self.now = context.now
        self.authz = Authz(self.session)

    def settle(self, before: dict[str, Any]) -> None:
        """Bump and announce the users of ``before`` whose rights changed (see the module)."""
        self.authz.settle(self.context.outbox, before)

    def audit(
        self,
        entity_type: str,
        entity_id: str,
        action: str,
        changes: Iterable[FieldChange] | None = None,
    ) -> None:
        audit.write(
            self.session,
            entity_type,
            entity_id,
            action,
            self.now,
            actor_id=self.context.actor_id,
            changes=changes,
        )

    def department_changed(self, departments: Iterable[Department]) -> None:
        for department in departments:
            self.context.publish(
                events.DEPARTMENT_CHANGED,
                events.department_changed(department_schema.dump(department)),
            )

    def region_changed(self, regions: Iterable[Region]) -> None:
        for region in regions:
            self.context.publish(
                events.REGION_CHANGED, events.region_changed(region_schema.dump(region))
            )

    def person_changed(self, people: Iterable[Person]) -> None:
        for person in shared_people(self.session, people):
            self.context.publish(events.PERSON_CHANGED, events.person_changed(person))

    def people_changed_through_users(self, people: Iterable[Person | None]) -> None:
        """People whose user account, or that user's roles, changed although none of their
        own fields did: touched, so that their version moves on, and announced as they are
        now."""
        touched = list({person.id: person for person in people if person is not None}.values())
        for person in touched:
            repository.touch(self.session, person, self.now)
        self.person_changed(touched)

    def user_changed(self, user: User) -> None:
        self.context.publish(
            events.USER_CHANGED,
            events.user_changed(user.id, user.username, user.disabled, user.authz_version),
        )


class Aggregate(OrgAdmin):
    """The use cases of one kind of administered record. ``records.Records`` reaches them by
    kind for the generic entrypoints (list, get, create, update, disable)."""

    kind: ClassVar[str]
    """The kind as entrypoints and routes name it (``departments``)."""
    entity_type: ClassVar[str]
    """The name of one record in the audit log and errors (``department``)."""
    fields: ClassVar[tuple[str, ...]]
    """The fields an administrator edits, in the order the audit log lists them."""
    unordered: ClassVar[frozenset[str]] = frozenset()
    """Fields holding sets: their order is no change."""
    dumper: ClassVar[Schema]
    input_schema: ClassVar[type[Schema]]
    query_schema: ClassVar[type[Schema]] = QuerySchema
    disabling_ends_sessions: ClassVar[bool] = False
    """Whether disabling a record ends the sign-in sessions of the users it concerns."""

    def dump(self, record: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.dumper.dump(record)
        return result

    def create(self, values: dict[str, Any]) -> Any:
        """A new record from validated input."""
        raise NotImplementedError

    def update(self, record: Any, values: dict[str, Any]) -> None:
        """Apply validated (partial) input to ``record``."""
        raise NotImplementedError

    def concerned_users(self, record: Any) -> set[str]:
        """The users whose rights may change when ``record`` is disabled or enabled."""
        return set()

    def announce(self, record: Any) -> None:
        """Publish what other contexts hear of a change of ``record`` (nothing by default)."""

    # -- helpers of the aggregates ----------------------------------------------------------
    def check_free(
        self, column: InstrumentedAttribute[Any], value: Any, own_id: str | None, field: str
    ) -> None:
        holder = repository.holder_of(self.session, column, value, own_id)
        if holder is not None:
            raise already_used(field, value, holder.id)

    def check_exist(self, model: type[OrgRecord], ids: Iterable[str | None], field: str) -> None:
        missing = repository.missing_ids(self.session, model, [i for i in ids if i])
        if missing:
            raise ValidationFailed.on(field, f"no such {ENTITY_NAMES[model]}: {', '.join(missing)}")

    def edit(self, record: Any, values: dict[str, Any]) -> list[FieldChange]:
        """Apply validated values; record what changed in the audit log."""
        before = snapshot(record, self.fields)
        for name, value in values.items():
            setattr(record, name, value)
        changes = diff(before, snapshot(record, self.fields), self.fields, unordered=self.unordered)
        if changes:
            record.updated_at = self.now
            repository.flush(self.session)
            self.audit(self.entity_type, record.id, "updated", changes)
        return changes

    def add(self, record: Any) -> None:
        """Save a new record; record it in the audit log."""
        self.session.add(record)
        repository.flush(self.session)
        self.audit(self.entity_type, record.id, "created", created(snapshot(record, self.fields)))


class TreeAggregate(Aggregate):
    """Departments and regions: records in a tree, each storing its path of names."""

    model: ClassVar[type[Department] | type[Region]]
    separator: ClassVar[str]

    def path_of(self, parent_id: str | None, name: str) -> str:
        """The path of a node named ``name`` under ``parent_id``."""
        parent = repository.find(self.session, self.model, parent_id)
        return child_path(parent.path if parent else None, name, self.separator)

    def repath(self, root_id: str) -> list[Any]:
        """Recompute the stored paths below ``root_id`` (whose own path is set already);
        returns the records whose path changed."""
        repository.flush(self.session)
        tree = repository.tree(self.session, self.model)
        names = repository.names(self.session, self.model)
        changed = []
        for node_id, path in tree.paths(names, self.separator, tree.subtree(root_id)).items():
            record = repository.find(self.session, self.model, node_id)
            if record is not None and record.path != path:
                record.path = path
                changed.append(record)
        repository.flush(self.session)
        return changed
