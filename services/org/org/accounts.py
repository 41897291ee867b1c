"""Sign-in, refresh-token rotation, sign-out, the signed-in user's view and password change.

These use cases open their own transactions on a ``SessionScope``: a refused sign-in must still
commit its failure count, a reused refresh token must still commit the revocation of its
family, and the slow password hashing runs between transactions so it holds no connection.
Failures are logged with the username and the reason, never with a password.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from crm_common.context import Principal
from crm_common.db import SessionScope
from crm_common.errors import Unauthenticated, ValidationFailed
from org.authz import Authz, is_active
from org.domain.passwords import policy_problems
from org.domain.times import aware
from org.domain.tokens import hash_token, new_refresh_token
from org.models import AuditEntry, AuthSession, Department, RefreshToken, User
from org.runtime import Runtime
from org.schemas import DepartmentSchema, GrantSchema, PersonSchema, UserSchema
from org.sessions import revoke, revoke_all

log = logging.getLogger(__name__)

BAD_CREDENTIALS = "the username or password is not correct"
SESSION_ENDED = "the session has ended; sign in again"
INACTIVE = "the user is disabled or no longer exists"
MAX_LOGGED = 100
"""Characters of a refused username that go into the log."""


class Accounts:
    def __init__(self, scope: SessionScope, outbox: Any, runtime: Runtime) -> None:
        self.scope = scope
        self.outbox = outbox
        self.runtime = runtime
        self.settings = runtime.settings
        self.passwords = runtime.passwords

    # -- sign-in ----------------------------------------------------------------------------
    def sign_in(self, username: Any, password: Any) -> dict[str, Any]:
        """A new session for the user, or ``Unauthenticated`` with one message whatever the
        reason: unknown user, wrong password, disabled, locked."""
        if not isinstance(username, str) or not username.strip():
            raise ValidationFailed.on("username", "is required")
        if not isinstance(password, str) or not password:
            raise ValidationFailed.on("password", "is required")
        with self.scope.session() as session:
            row = session.execute(
                select(User.id, User.password_hash).where(
                    User.username_key == username.strip().lower()
                )
            ).first()
        # An unknown username is checked against a dummy hash so it answers as slowly.
        correct = self.passwords.verify(
            row.password_hash if row else self.passwords.dummy_hash, password
        )
        rehashed = (
            self.passwords.hash(password)
            if correct and row and self.passwords.needs_rehash(row.password_hash)
            else None
        )
        with self.scope.session() as session:
            outcome = self._settle_sign_in(
                session, row.id if row else None, correct, rehashed, self.runtime.clock()
            )
        if isinstance(outcome, str):
            log.warning("sign-in refused for username %r: %s", username[:MAX_LOGGED], outcome)
            raise Unauthenticated(BAD_CREDENTIALS)
        log.info("user %s signed in", outcome["principal"]["username"])
        return outcome

    def _settle_sign_in(
        self,
        session: Session,
        user_id: str | None,
        correct: bool,
        rehashed: str | None,
        now: datetime,
    ) -> dict[str, Any] | str:
        """The session, or the reason for refusing (for the log only)."""
        user = session.get(User, user_id, with_for_update=True) if user_id else None
        if user is None:
            return "unknown username"
        if user.disabled:
            return "the user is disabled"
        if not is_active(user):
            return "the user's person is disabled or has left"
        lockout = self.settings.lockout
        if lockout.is_locked(user.locked_until, now):
            return "the user is locked"
        if not correct:
            attempts = lockout.after_failure(user.failed_attempts, user.locked_until, now)
            self._bookkeep(
                session,
                user,
                failed_attempts=attempts.failed_attempts,
                locked_until=attempts.locked_until,
            )
            if not attempts.just_locked:
                return f"wrong password ({attempts.failed_attempts} in a row)"
            until = attempts.locked_until.isoformat() if attempts.locked_until else None
            session.add(
                AuditEntry(
                    entity_type="user",
                    entity_id=user.id,
                    action="locked",
                    changes=[
                        {"field": "failed_attempts", "old": None, "new": attempts.failed_attempts},
                        {"field": "locked_until", "old": None, "new": until},
                    ],
                    at=now,
                )
            )
            return f"wrong password ({attempts.failed_attempts} in a row); locked until {until}"
        values: dict[str, Any] = {
            "failed_attempts": 0,
            "locked_until": None,
            "last_sign_in_at": now,
        }
        if rehashed:
            values["password_hash"] = rehashed
        self._bookkeep(session, user, **values)
        auth = AuthSession(
            user_id=user.id,
            created_at=now,
            expires_at=now + timedelta(seconds=self.settings.session_max_seconds),
        )
        session.add(auth)
        session.flush()
        return self._issue(session, user, auth, now)

    @staticmethod
    def _bookkeep(session: Session, user: User, **values: Any) -> None:
        """Sign-in bookkeeping is no edit of the record: its version and updated_at stay."""
        session.execute(
            update(User).where(User.id == user.id).values(updated_at=User.updated_at, **values)
        )

    def _issue(
        self, session: Session, user: User, auth: AuthSession, now: datetime
    ) -> dict[str, Any]:
        """A new refresh token of ``auth`` and the session as the caller sees it."""
        token = new_refresh_token()
        ttl_end = now + timedelta(seconds=self.settings.refresh_ttl_seconds)
        session_end = aware(auth.expires_at)
        expires = min(ttl_end, session_end) if session_end else ttl_end
        session.add(
            RefreshToken(
                session_id=auth.id, token_hash=hash_token(token), created_at=now, expires_at=expires
            )
        )
        session.flush()
        effective = Authz(session).effective([user.id])[user.id]
        return {
            "principal": effective.principal(),
            "session_id": auth.id,
            "refresh_token": token,
            "refresh_expires_at": expires.isoformat(),
        }

    # -- refresh and sign-out ---------------------------------------------------------------
    def refresh(self, refresh_token: Any) -> dict[str, Any]:
        """Rotate: the token is spent and the session continues with a new one, carrying the
        user's principal as it is now. A spent token used again ends the whole session."""
        if not isinstance(refresh_token, str) or not refresh_token:
            raise Unauthenticated(SESSION_ENDED)
        with self.scope.session() as session:
            outcome = self._refresh(session, refresh_token, self.runtime.clock())
        if isinstance(outcome, str):
            log.warning("refresh refused: %s", outcome)
            raise Unauthenticated(SESSION_ENDED)
        return outcome

    def _refresh(self, session: Session, token: str, now: datetime) -> dict[str, Any] | str:
        row = session.scalars(
            select(RefreshToken)
            .where(RefreshToken.token_hash == hash_token(token))
            .with_for_update()
        ).first()
        if row is None:
            return "unknown refresh token"
        auth = session.get(AuthSession, row.session_id, with_for_update=True)
        if auth is None or auth.revoked_at is not None:
            return "the session was revoked"
        if row.rotated_at is not None:
            revoke(session, self.outbox, auth, "token_reused", now)
            return f"a spent refresh token was used again; session {auth.id} revoked"
        ends = [aware(row.expires_at), aware(auth.expires_at)]
        if any(end is not None and end <= now for end in ends):
            return "the refresh token has expired"
        user = session.get(User, auth.user_id)
        if user is None or not is_active(user):
            revoke(session, self.outbox, auth, "user_inactive", now)
            return "the user is disabled"
        row.rotated_at = now
        return self._issue(session, user, auth, now)

    def sign_out(self, refresh_token: Any) -> None:
        """End the session the token belongs to; an unknown token is no error."""
        if not isinstance(refresh_token, str) or not refresh_token:
            return
        with self.scope.session() as session:
            row = session.scalars(
                select(RefreshToken).where(RefreshToken.token_hash == hash_token(refresh_token))
            ).first()
            auth = session.get(AuthSession, row.session_id, with_for_update=True) if row else None
            if auth is not None:
                revoke(session, self.outbox, auth, "signed_out", self.runtime.clock())

    # -- the signed-in user -----------------------------------------------------------------
    def describe_me(self, principal: Principal) -> dict[str, Any]:
        with self.scope.session() as session:
            user = session.get(User, principal.user_id)
            if user is None or not is_active(user):
                raise Unauthenticated(INACTIVE)
            effective = Authz(session).effective([user.id])[user.id]
            department = session.get(Department, user.department_id) if user.department_id else None
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
        with self.scope.session() as session:
            user = session.get(User, principal.user_id)
            if user is None or not is_active(user):
                raise Unauthenticated(INACTIVE)
            username, stored = user.username, user.password_hash
        errors: dict[str, list[str]] = {}
        if not isinstance(new_password, str) or not new_password:
            errors["new_password"] = ["is required"]
        else:
            problems = policy_problems(new_password, username)
            if new_password == current_password:
                problems.append("must differ from the current password")
            if problems:
                errors["new_password"] = problems
        if not isinstance(current_password, str) or not current_password:
            errors["current_password"] = ["is required"]
        elif not self.passwords.verify(stored, current_password):
            errors["current_password"] = ["is not correct"]
        if errors:
            raise ValidationFailed("the password was not changed", {"errors": errors})
        new_hash = self.passwords.hash(new_password)
        now = self.runtime.clock()
        with self.scope.session() as session:
            user = session.get(User, principal.user_id, with_for_update=True)
            user.password_hash = new_hash
            user.password_changed_at = now
            user.updated_at = now
            session.add(
                AuditEntry(
                    entity_type="user",
                    entity_id=user.id,
                    action="password_changed",
                    actor_id=principal.user_id,
                    at=now,
                )
            )
            ended = revoke_all(
                session, self.outbox, [user.id], "password_changed", now, keep=session_id
            )
        log.info("user %s changed their password; %d other session(s) ended", username, ended)
        return {
            "user_id": principal.user_id,
            "password_changed_at": now.isoformat(),
            "revoked_sessions": ended,
        }
