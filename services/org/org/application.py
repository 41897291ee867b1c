"""The org administration use cases: validate, apply, audit, keep principals and events right.

Service entrypoints construct an ``OrgAdmin`` per call; it refuses callers without
``org:admin``. Tests can build one with a plain session and an outbox writer.

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
from datetime import datetime
from typing import Any

from marshmallow import Schema
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute

from crm_common.context import Principal
from crm_common.errors import Conflict, ValidationFailed
from crm_common.models import check_version, split_version
from crm_common.pagination import keyset_page
from crm_common.schemas import load, parse_flag
from org import events, repository
from org.authz import Authz
from org.domain.audit import created, diff, jsonable, snapshot
from org.domain.passwords import policy_problems
from org.domain.permissions import ORG_ADMIN, catalog
from org.domain.trees import DEPARTMENT_PATH_SEPARATOR, REGION_PATH_SEPARATOR, child_path
from org.models import (
    DEPARTMENT_FIELDS,
    GRANT_FIELDS,
    PERSON_FIELDS,
    REGION_FIELDS,
    ROLE_FIELDS,
    USER_FIELDS,
    AuditEntry,
    DataGrant,
    Department,
    OrgRecord,
    Person,
    Region,
    Role,
    User,
)
from org.runtime import Runtime
from org.schemas import (
    AuditEntrySchema,
    AuditQuerySchema,
    DepartmentInputSchema,
    DepartmentSchema,
    GrantInputSchema,
    GrantQuerySchema,
    GrantSchema,
    PersonInputSchema,
    PersonQuerySchema,
    PersonSchema,
    QuerySchema,
    RegionInputSchema,
    RegionSchema,
    RoleInputSchema,
    RoleSchema,
    TreeQuerySchema,
    UserInputSchema,
    UserQuerySchema,
    UserSchema,
)
from org.sessions import revoke_all

DUMPERS: dict[str, Schema] = {
    "departments": DepartmentSchema(),
    "regions": RegionSchema(),
    "people": PersonSchema(),
    "users": UserSchema(),
    "roles": RoleSchema(),
    "grants": GrantSchema(),
}
INPUTS: dict[str, type[Schema]] = {
    "departments": DepartmentInputSchema,
    "regions": RegionInputSchema,
    "people": PersonInputSchema,
    "users": UserInputSchema,
    "roles": RoleInputSchema,
    "grants": GrantInputSchema,
}
QUERIES: dict[str, type[Schema]] = {
    "departments": TreeQuerySchema,
    "regions": TreeQuerySchema,
    "people": PersonQuerySchema,
    "users": UserQuerySchema,
    "roles": QuerySchema,
    "grants": GrantQuerySchema,
}
FIELDS = {
    "departments": DEPARTMENT_FIELDS,
    "regions": REGION_FIELDS,
    "people": PERSON_FIELDS,
    "users": USER_FIELDS,
    "roles": ROLE_FIELDS,
    "grants": GRANT_FIELDS,
}
ENTITY_NAMES: dict[type[OrgRecord], str] = {
    Department: "department",
    Region: "region",
    Person: "person",
    User: "user",
    Role: "role",
}
audit_schema = AuditEntrySchema()


def check_new_password(password: Any, username: str | None, field: str) -> str:
    if not isinstance(password, str) or not password:
        raise ValidationFailed.on(field, "is required")
    problems = policy_problems(password, username)
    if problems:
        raise ValidationFailed(f"{field}: {'; '.join(problems)}", {"errors": {field: problems}})
    return password


def dump(kind: str, record: Any) -> dict[str, Any]:
    return DUMPERS[kind].dump(record)


class OrgAdmin:
    def __init__(self, session: Any, outbox: Any, principal: Principal, runtime: Runtime) -> None:
        principal.require(ORG_ADMIN)
        self.session = session
        self.outbox = outbox
        self.runtime = runtime
        self.actor_id = principal.user_id
        self.now: datetime = runtime.clock()
        self.authz = Authz(session)

    # -- helpers ----------------------------------------------------------------------------
    def _audit(
        self,
        entity_type: str,
        entity_id: str,
        action: str,
        changes: list[dict[str, Any]] | None = None,
    ) -> None:
        self.session.add(
            AuditEntry(
                entity_type=entity_type,
                entity_id=entity_id,
                action=action,
                changes=changes,
                actor_id=self.actor_id,
                at=self.now,
            )
        )

    def _flush(self) -> None:
        """Flush; a unique key taken by a concurrent transaction is a conflict, not a crash."""
        try:
            self.session.flush()
        except IntegrityError:
            raise Conflict(
                "the change clashes with a record saved meanwhile; reload and retry",
                {"reason": "integrity"},
            ) from None

    def _check_free(
        self, column: InstrumentedAttribute[Any], value: Any, own_id: str | None, field: str
    ) -> None:
        holder = repository.holder_of(self.session, column, value, own_id)
        if holder is not None:
            raise Conflict(
                f"{field} {value} is already used",
                {
                    "reason": "duplicate",
                    "id": holder.id,
                    "errors": {field: [f"is already used by {holder.id}"]},
                },
            )

    def _check_exist(self, model: type[OrgRecord], ids: Iterable[str | None], field: str) -> None:
        missing = repository.missing_ids(self.session, model, [i for i in ids if i])
        if missing:
            raise ValidationFailed.on(field, f"no such {ENTITY_NAMES[model]}: {', '.join(missing)}")

    def _edit(
        self, record: Any, entity_type: str, fields: tuple[str, ...], values: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Apply validated values; record what changed in the audit log."""
        before = snapshot(record, fields)
        for name, value in values.items():
            setattr(record, name, value)
        changes = diff(before, snapshot(record, fields))
        if changes:
            record.updated_at = self.now
            self._flush()
            self._audit(entity_type, record.id, "updated", changes)
        return changes

    def _created(self, record: Any, entity_type: str, fields: tuple[str, ...]) -> None:
        self.session.add(record)
        self._flush()
        self._audit(entity_type, record.id, "created", created(snapshot(record, fields)))

    def _path_of(self, model: type[Department] | type[Region], values: dict[str, Any]) -> str:
        """The path of a new node with these values."""
        parent = self.session.get(model, values["parent_id"]) if values.get("parent_id") else None
        separator = DEPARTMENT_PATH_SEPARATOR if model is Department else REGION_PATH_SEPARATOR
        return child_path(parent.path if parent else None, values["name"], separator)

    def _repath(self, model: type[Department] | type[Region], root_id: str) -> list[Any]:
        """Recompute the stored paths below ``root_id`` (whose own path is set already);
        returns the records whose path changed."""
        self._flush()
        tree = repository.tree(self.session, model)
        separator = DEPARTMENT_PATH_SEPARATOR if model is Department else REGION_PATH_SEPARATOR
        paths = tree.paths(repository.names(self.session, model), separator, tree.subtree(root_id))
        changed = []
        for node_id, path in paths.items():
            record = self.session.get(model, node_id)
            if record.path != path:
                record.path = path
                changed.append(record)
        self._flush()
        return changed

    def _department_changed(self, departments: Iterable[Department]) -> None:
        for department in departments:
            self.outbox.add(
                self.session,
                events.DEPARTMENT_CHANGED,
                events.department_changed(dump("departments", department)),
            )

    def _user_changed(self, user: User) -> None:
        self.outbox.add(
            self.session,
            events.USER_CHANGED,
            events.user_changed(user.id, user.username, user.disabled, user.authz_version),
        )

    def _grant_targets(self, role_id: str | None, user_id: str | None) -> set[str]:
        if user_id:
            return {user_id}
        return repository.holders(self.session, [role_id] if role_id else [])

    # -- generic ----------------------------------------------------------------------------
    def list_records(self, kind: Any, query: Any) -> dict[str, Any]:
        kind = repository.check_kind(kind)
        params = load(QUERIES[kind](), query)
        page = keyset_page(
            self.session,
            repository.list_statement(kind, params),
            repository.ORDERS[kind],
            params.get("cursor"),
            params.get("limit"),
        )
        return {"items": DUMPERS[kind].dump(page.items, many=True), "next_cursor": page.next_cursor}

    def get_record(self, kind: Any, record_id: Any) -> dict[str, Any]:
        kind = repository.check_kind(kind)
        return dump(kind, repository.get(self.session, kind, record_id))

    def create_record(self, kind: Any, data: Any) -> dict[str, Any]:
        kind = repository.check_kind(kind)
        values = load(INPUTS[kind](), data)
        record = getattr(self, f"_create_{repository.ENTITY_TYPES[kind]}")(values)
        return dump(kind, record)

    def update_record(
        self, kind: Any, record_id: Any, changes: Any, expected_version: Any
    ) -> dict[str, Any]:
        kind = repository.check_kind(kind)
        record = repository.get(self.session, kind, record_id)
        changes, expected_version = split_version(changes, expected_version)
        check_version(record, expected_version)
        values = load(INPUTS[kind](), changes, partial=True)
        getattr(self, f"_update_{repository.ENTITY_TYPES[kind]}")(record, values)
        return dump(kind, record)

    def set_disabled(self, kind: Any, record_id: Any, disabled: Any) -> dict[str, Any]:
        kind = repository.check_kind(kind)
        record = repository.get(self.session, kind, record_id)
        flag = parse_flag(disabled, "disabled")
        if record.disabled == flag:
            return dump(kind, record)
        if kind == "users":
            watched = {record.id}
        elif kind == "people":
            watched = repository.users_of_people(self.session, [record.id])
        elif kind == "roles":
            watched = repository.holders(self.session, [record.id])
        elif kind == "grants":
            watched = self._grant_targets(record.role_id, record.user_id)
        else:
            watched = set()
        before = self.authz.effective(watched)
        record.disabled = flag
        record.updated_at = self.now
        self._flush()
        entity_type = repository.ENTITY_TYPES[kind]
        self._audit(
            entity_type,
            record.id,
            "disabled" if flag else "enabled",
            [{"field": "disabled", "old": not flag, "new": flag}],
        )
        if flag and kind in ("users", "people"):
            revoke_all(self.session, self.outbox, watched, f"{entity_type}_disabled", self.now)
        self.authz.settle(self.outbox, before)
        if kind == "departments":
            self._department_changed([record])
        elif kind == "users":
            self._user_changed(record)
        return dump(kind, record)

    # -- departments ------------------------------------------------------------------------
    def _check_department_refs(self, values: dict[str, Any]) -> None:
        self._check_exist(Department, [values.get("parent_id")], "parent_id")
        self._check_exist(Person, [values.get("manager_id")], "manager_id")

    def _create_department(self, values: dict[str, Any]) -> Department:
        self._check_free(Department.code, values["code"], None, "code")
        self._check_department_refs(values)
        watched = self.authz.effective(
            repository.users_with_grants_on(self.session, DataGrant.departments)
            if values.get("parent_id")
            else ()
        )
        department = Department(**values, path=self._path_of(Department, values))
        self._created(department, "department", DEPARTMENT_FIELDS)
        self.authz.settle(self.outbox, watched)
        self._department_changed([department])
        return department

    def _update_department(self, department: Department, values: dict[str, Any]) -> None:
        if "code" in values:
            self._check_free(Department.code, values["code"], department.id, "code")
        self._check_department_refs(values)
        moved = "parent_id" in values and values["parent_id"] != department.parent_id
        if moved and repository.tree(self.session, Department).would_cycle(
            department.id, values["parent_id"]
        ):
            raise ValidationFailed.on(
                "parent_id", "a department cannot move under itself or one of its sub-departments"
            )
        watched = self.authz.effective(
            repository.users_with_grants_on(self.session, DataGrant.departments) if moved else ()
        )
        values["path"] = self._path_of(
            Department,
            {
                "parent_id": values.get("parent_id", department.parent_id),
                "name": values.get("name", department.name),
            },
        )
        changes = self._edit(department, "department", DEPARTMENT_FIELDS, values)
        if not changes:
            return
        repathed = self._repath(Department, department.id)
        self.authz.settle(self.outbox, watched)
        self._department_changed([department, *(d for d in repathed if d is not department)])

    # -- regions ----------------------------------------------------------------------------
    def _check_sibling_name(self, name: str, parent_id: str | None, own_id: str | None) -> None:
        same_parent = (
            Region.parent_id.is_(None) if parent_id is None else Region.parent_id == parent_id
        )
        stmt = select(Region.id).where(Region.name == name, same_parent)
        if own_id is not None:
            stmt = stmt.where(Region.id != own_id)
        holder = self.session.scalar(stmt.limit(1))
        if holder is not None:
            raise Conflict(
                f"a region named {name} already exists there",
                {
                    "reason": "duplicate",
                    "id": holder,
                    "errors": {"name": [f"is already used by {holder} at the same level"]},
                },
            )

    def _create_region(self, values: dict[str, Any]) -> Region:
        self._check_free(Region.code, values["code"], None, "code")
        self._check_exist(Region, [values.get("parent_id")], "parent_id")
        self._check_sibling_name(values["name"], values.get("parent_id"), None)
        region = Region(**values, path=self._path_of(Region, values))
        self._created(region, "region", REGION_FIELDS)
        return region

    def _update_region(self, region: Region, values: dict[str, Any]) -> None:
        if "code" in values:
            self._check_free(Region.code, values["code"], region.id, "code")
        parent_id = values.get("parent_id", region.parent_id)
        if "parent_id" in values:
            self._check_exist(Region, [parent_id], "parent_id")
            if repository.tree(self.session, Region).would_cycle(region.id, parent_id):
                raise ValidationFailed.on(
                    "parent_id", "a region cannot move under itself or one of its sub-regions"
                )
        self._check_sibling_name(values.get("name", region.name), parent_id, region.id)
        reshaped = values.get("name", region.name) != region.name or parent_id != region.parent_id
        watched = self.authz.effective(
            repository.users_with_grants_on(self.session, DataGrant.regions) if reshaped else ()
        )
        values["path"] = self._path_of(
            Region, {"parent_id": parent_id, "name": values.get("name", region.name)}
        )
        if self._edit(region, "region", REGION_FIELDS, values):
            self._repath(Region, region.id)
            self.authz.settle(self.outbox, watched)

    # -- people -----------------------------------------------------------------------------
    def _create_person(self, values: dict[str, Any]) -> Person:
        self._check_free(Person.code, values["code"], None, "code")
        self._check_exist(Department, [values.get("department_id")], "department_id")
        person = Person(**values)
        self._created(person, "person", PERSON_FIELDS)
        return person

    def _update_person(self, person: Person, values: dict[str, Any]) -> None:
        if "code" in values:
            self._check_free(Person.code, values["code"], person.id, "code")
        self._check_exist(Department, [values.get("department_id")], "department_id")
        users = repository.users_of_people(self.session, [person.id])
        watched = self.authz.effective(users)
        was_active = person.status == "active"
        if not self._edit(person, "person", PERSON_FIELDS, values):
            return
        if was_active and person.status != "active":
            revoke_all(self.session, self.outbox, users, "person_left", self.now)
        self.authz.settle(self.outbox, watched)

    # -- users ------------------------------------------------------------------------------
    def _check_person_free(self, person_id: str | None, own_id: str | None) -> None:
        if not person_id:
            return
        self._check_exist(Person, [person_id], "person_id")
        self._check_free(User.person_id, person_id, own_id, "person_id")

    def _roles(self, role_ids: list[str]) -> list[Role]:
        self._check_exist(Role, role_ids, "role_ids")
        if not role_ids:
            return []
        return list(self.session.scalars(select(Role).where(Role.id.in_(role_ids))))

    def _create_user(self, values: dict[str, Any]) -> User:
        username = values["username"]
        self._check_free(User.username_key, username.lower(), None, "username")
        password = check_new_password(values.pop("password"), username, "password")
        self._check_person_free(values.get("person_id"), None)
        roles = self._roles(values.pop("role_ids", []))
        user = User(
            **values,
            username_key=username.lower(),
            password_hash=self.runtime.passwords.hash(password),
            password_changed_at=self.now,
            roles=roles,
        )
        self._created(user, "user", USER_FIELDS)
        self._user_changed(user)
        return user

    def _update_user(self, user: User, values: dict[str, Any]) -> None:
        if "password" in values:
            raise ValidationFailed.on("password", "set a new password with reset_password")
        if "username" in values:
            self._check_free(User.username_key, values["username"].lower(), user.id, "username")
            values["username_key"] = values["username"].lower()
        if "person_id" in values:
            self._check_person_free(values["person_id"], user.id)
            # Keep the loaded relationship in step: the department comes through it.
            values["person"] = (
                self.session.get(Person, values["person_id"]) if values["person_id"] else None
            )
        if "role_ids" in values:
            values["roles"] = self._roles(values.pop("role_ids"))
        watched = self.authz.effective([user.id])
        if self._edit(user, "user", USER_FIELDS, values):
            self.authz.settle(self.outbox, watched)
            self._user_changed(user)

    def reset_password(self, user_id: Any, new_password: Any) -> dict[str, Any]:
        """Set a user's password (they forgot it, or it leaked): it also lifts a lockout and
        ends every session of the user."""
        user = repository.get(self.session, "users", user_id)
        password = check_new_password(new_password, user.username, "new_password")
        user.password_hash = self.runtime.passwords.hash(password)
        user.password_changed_at = self.now
        user.failed_attempts = 0
        user.locked_until = None
        user.updated_at = self.now
        self._flush()
        self._audit("user", user.id, "password_reset")
        revoke_all(self.session, self.outbox, [user.id], "password_reset", self.now)
        return dump("users", user)

    def unlock_user(self, user_id: Any) -> dict[str, Any]:
        user = repository.get(self.session, "users", user_id)
        if not user.failed_attempts and user.locked_until is None:
            return dump("users", user)
        changes = [
            {"field": "failed_attempts", "old": user.failed_attempts, "new": 0},
            {"field": "locked_until", "old": jsonable(user.locked_until), "new": None},
        ]
        user.failed_attempts = 0
        user.locked_until = None
        user.updated_at = self.now
        self._flush()
        self._audit("user", user.id, "unlocked", changes)
        return dump("users", user)

    # -- roles ------------------------------------------------------------------------------
    def _create_role(self, values: dict[str, Any]) -> Role:
        self._check_free(Role.code, values["code"], None, "code")
        values["permissions"] = sorted(set(values.get("permissions", [])))
        role = Role(**values)
        self._created(role, "role", ROLE_FIELDS)
        return role

    def _update_role(self, role: Role, values: dict[str, Any]) -> None:
        if "code" in values:
            self._check_free(Role.code, values["code"], role.id, "code")
        if "permissions" in values:
            values["permissions"] = sorted(set(values["permissions"]))
        watched = self.authz.effective(repository.holders(self.session, [role.id]))
        if self._edit(role, "role", ROLE_FIELDS, values):
            self.authz.settle(self.outbox, watched)

    # -- grants -----------------------------------------------------------------------------
    def _check_grant(self, values: dict[str, Any]) -> dict[str, Any]:
        """Check a grant as it would be after the change; returns the values, tidied."""
        if bool(values.get("role_id")) == bool(values.get("user_id")):
            reason = "give exactly one of role_id and user_id"
            raise ValidationFailed(reason, {"errors": {"role_id": [reason], "user_id": [reason]}})
        self._check_exist(Role, [values.get("role_id")], "role_id")
        self._check_exist(User, [values.get("user_id")], "user_id")
        for field, model, key in (
            ("departments", Department, "department_id"),
            ("regions", Region, "region_id"),
        ):
            refs = values.get(field)
            if refs is None:
                continue
            merged: dict[str, bool] = {}
            for ref in refs:
                merged[ref[key]] = merged.get(ref[key], False) or ref["include_children"]
            self._check_exist(model, merged, field)
            values[field] = [{key: i, "include_children": c} for i, c in merged.items()]
        return values

    def _create_grant(self, values: dict[str, Any]) -> DataGrant:
        values = self._check_grant(values)
        watched = self.authz.effective(
            self._grant_targets(values.get("role_id"), values.get("user_id"))
        )
        grant = DataGrant(**values)
        self._created(grant, "grant", GRANT_FIELDS)
        self.authz.settle(self.outbox, watched)
        return grant

    def _update_grant(self, grant: DataGrant, values: dict[str, Any]) -> None:
        current = {name: getattr(grant, name) for name in GRANT_FIELDS}
        merged = self._check_grant({**current, **values})
        values = {name: merged[name] for name in values}
        watched = self.authz.effective(
            self._grant_targets(grant.role_id, grant.user_id)
            | self._grant_targets(merged["role_id"], merged["user_id"])
        )
        if self._edit(grant, "grant", GRANT_FIELDS, values):
            self.authz.settle(self.outbox, watched)

    # -- catalog and audit ------------------------------------------------------------------
    def list_permissions(self) -> list[dict[str, str]]:
        return catalog()

    def audit_log(self, query: Any) -> dict[str, Any]:
        params = load(AuditQuerySchema(), query)
        conditions = [
            getattr(AuditEntry, key) == params[key]
            for key in ("entity_type", "entity_id", "actor_id")
            if params.get(key)
        ]
        page = keyset_page(
            self.session,
            select(AuditEntry).where(*conditions),
            repository.AUDIT_ORDER,
            params.get("cursor"),
            params.get("limit"),
        )
        return {
            "items": audit_schema.dump(page.items, many=True),
            "next_cursor": page.next_cursor,
        }
