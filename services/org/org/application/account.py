"""The signed-in user's own account: what they may do and see, and changing their password.

Like sign-in, these open their own transactions: the slow password hashing of a change runs
between them, holding no connection.
"""

from __future__ import annotations

import logging
from typing import Any

from crm_common.context import Principal
from crm_common.errors import Unauthenticated, ValidationFailed
from org import repository
from org.application import audit
from org.application.authz import Authz
from org.application.sessions import revoke_all
from org.application.sign_in import OwnTransactions
from org.domain.passwords import change_problems
from org.domain.users import is_active
from org.models import Department, User
from org.schemas import DepartmentSchema, GrantSchema, PersonSchema, UserSchema

log = logging.getLogger(__name__)

INACTIVE = "the user is disabled or no longer exists"


class Account(OwnTransactions):
    def describe(self, principal: Principal) -> dict[str, Any]:
        """The user, their person and department, roles, permissions, grants and scope."""
        with self.db.read() as session:
            user = repository.find(session, User, principal.user_id)
            if user is None or not is_active(user):
                raise Unauthenticated(INACTIVE)
            effective = Authz(session).effective([user.id])[user.id]
            department = repository.find(session, Department, user.department_id)
            grant_schema = GrantSchema()
            return {
                "user": UserSchema().dump(user),
                "person": PersonSchema().dump(user.person) if user.person else None,
                "department": DepartmentSchema().dump(department) if department else None,
                "roles": [{"id": r.id, "code": r.code, "name": r.name} for r in effective.roles],
                "permissions": effective.permissions,
                "grants": [
                    {**grant_schema.dump(grant), "source": source}
                    for grant, source in effective.grants
                ],
                "scope": effective.compiled,
            }

    def change_password(
        self,
        principal: Principal,
        current_password: Any,
        new_password: Any,
        session_id: str | None = None,
    ) -> dict[str, Any]:
        """Change one's own password. Every other session of the user ends (all of them when
        the caller does not say which session it is)."""
        with self.db.session() as session:
            user = repository.find(session, User, principal.user_id)
            if user is None or not is_active(user):
                raise Unauthenticated(INACTIVE)
            username, stored = user.username, user.password_hash
        errors = change_problems(current_password, new_password, username)
        if "current_password" not in errors and not self.passwords.verify(stored, current_password):
            errors["current_password"] = ["is not correct"]
        if errors:
            raise ValidationFailed("the password was not changed", {"errors": errors})
        new_hash = self.passwords.hash(new_password)
        now = self.runtime.clock()
        with self.db.session() as session:
            user = repository.find(session, User, principal.user_id, lock=True)
            if user is None:
                raise Unauthenticated(INACTIVE)
            user.password_hash = new_hash
            user.password_changed_at = now
            user.updated_at = now
            audit.write(session, "user", user.id, "password_changed", now, actor_id=user.id)
            ended = revoke_all(
                session, self.outbox, [user.id], "password_changed", now, keep=session_id
            )
        log.info("user %s changed their password; %d other session(s) ended", username, ended)
        return {
            "user_id": principal.user_id,
            "password_changed_at": now.isoformat(),
            "revoked_sessions": ended,
        }
