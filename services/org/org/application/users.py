"""Users: sign-in accounts, their person and roles, password resets and lockouts."""

from __future__ import annotations

from typing import Any

from crm_common.application import UseCaseContext
from crm_common.errors import ValidationFailed
from crm_common.history import FieldChange, jsonable
from org import repository
from org.application.admin import Aggregate
from org.application.sessions import revoke_all
from org.domain.passwords import check_new_password
from org.hashing import Passwords
from org.models import USER_FIELDS, Person, Role, User
from org.schemas import UserInputSchema, UserQuerySchema, UserSchema


class Users(Aggregate):
    kind = "users"
    entity_type = "user"
    fields = USER_FIELDS
    unordered = frozenset({"role_ids"})
    dumper = UserSchema()
    input_schema = UserInputSchema
    query_schema = UserQuerySchema
    disabling_ends_sessions = True

    def __init__(self, context: UseCaseContext, passwords: Passwords) -> None:
        super().__init__(context)
        self.passwords = passwords

    def create(self, values: dict[str, Any]) -> User:
        username = values["username"]
        self.check_free(User.username_key, username.lower(), None, "username")
        password = check_new_password(values.pop("password"), username, "password")
        self._check_person_free(values.get("person_id"), None)
        roles = self._roles(values.pop("role_ids", []))
        user = User(
            **values,
            username_key=username.lower(),
            password_hash=self.passwords.hash(password),
            password_changed_at=self.now,
            roles=roles,
        )
        self.add(user)
        self.announce(user)
        self._relinked([user.person_id])
        return user

    def update(self, user: User, values: dict[str, Any]) -> None:
        if "password" in values:
            raise ValidationFailed.on("password", "set a new password with reset_password")
        if "username" in values:
            self.check_free(User.username_key, values["username"].lower(), user.id, "username")
            values["username_key"] = values["username"].lower()
        if "person_id" in values:
            self._check_person_free(values["person_id"], user.id)
            # Keep the loaded relationship in step: the department comes through it.
            values["person"] = repository.find(self.session, Person, values["person_id"] or None)
        if "role_ids" in values:
            values["roles"] = self._roles(values.pop("role_ids"))
        watched = self.authz.effective([user.id])
        linked_before = user.person_id
        changes = self.edit(user, values)
        if changes:
            self.settle(watched)
            self.announce(user)
            if user.person_id != linked_before:
                self._relinked([linked_before, user.person_id])
            elif any(change.field == "role_ids" for change in changes):
                self._relinked([user.person_id])

    def concerned_users(self, record: User) -> set[str]:
        return {record.id}

    def announce(self, record: User) -> None:
        self.user_changed(record)

    def reset_password(self, user_id: Any, new_password: Any) -> dict[str, Any]:
        """Set a user's password (they forgot it, or it leaked): it also lifts a lockout and
        ends every session of the user."""
        user = repository.get(self.session, self.kind, user_id)
        password = check_new_password(new_password, user.username, "new_password")
        user.password_hash = self.passwords.hash(password)
        user.password_changed_at = self.now
        user.failed_attempts = 0
        user.locked_until = None
        user.updated_at = self.now
        repository.flush(self.session)
        self.audit(self.entity_type, user.id, "password_reset")
        revoke_all(self.session, self.context.outbox, [user.id], "password_reset", self.now)
        return self.dump(user)

    def unlock(self, user_id: Any) -> dict[str, Any]:
        """Lift a lockout and forget the wrong passwords counted so far."""
        user = repository.get(self.session, self.kind, user_id)
        if not user.failed_attempts and user.locked_until is None:
            return self.dump(user)
        changes = [
            FieldChange("failed_attempts", user.failed_attempts, 0),
            FieldChange("locked_until", jsonable(user.locked_until), None),
        ]
        user.failed_attempts = 0
        user.locked_until = None
        user.updated_at = self.now
        repository.flush(self.session)
        self.audit(self.entity_type, user.id, "unlocked", changes)
        return self.dump(user)

    def _relinked(self, person_ids: list[str | None]) -> None:
        """People who got or lost a user account, or whose user's roles changed."""
        self.people_changed_through_users(
            repository.find(self.session, Person, person_id) for person_id in person_ids
        )

    def _check_person_free(self, person_id: str | None, own_id: str | None) -> None:
        if not person_id:
            return
        self.check_exist(Person, [person_id], "person_id")
        self.check_free(User.person_id, person_id, own_id, "person_id")

    def _roles(self, role_ids: list[str]) -> list[Role]:
        self.check_exist(Role, role_ids, "role_ids")
        return repository.roles(self.session, role_ids)
