"""Sign-in, refresh-token rotation and sign-out. Sign-in and refresh answer with a signed
access token (org is its one signer) and a new refresh token.

These use cases open their own transactions on a ``SessionScope``: a refused sign-in must still
commit its failure count, a reused refresh token must still commit the revocation of its
family, and the slow password hashing runs between transactions so it holds no connection.
Failures are logged with the username and the reason, never with a password.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from crm_common.application import EventSink
from crm_common.db import SessionScope
from crm_common.errors import TooManyRequests, Unauthenticated, ValidationFailed
from crm_common.history import FieldChange
from org import repository
from org.application import audit
from org.application.authz import Authz
from org.application.sessions import access_token, revoke
from org.domain.times import aware
from org.domain.tokens import hash_token, new_refresh_token
from org.domain.users import is_active
from org.models import AuthSession, RefreshToken, User
from org.runtime import Runtime

log = logging.getLogger(__name__)

BAD_CREDENTIALS = "the username or password is not correct"
SESSION_ENDED = "the session has ended; sign in again"
MAX_LOGGED = 100
"""Characters of a refused username that go into the log."""


class OwnTransactions:
    """Base of the use cases a user runs on their own credentials, opening their own
    transactions on ``db`` (see the module)."""

    def __init__(self, db: SessionScope, outbox: EventSink, runtime: Runtime) -> None:
        self.db = db
        self.outbox = outbox
        self.runtime = runtime
        self.settings = runtime.settings
        self.passwords = runtime.passwords


class SignIn(OwnTransactions):
    def sign_in(self, username: Any, password: Any) -> dict[str, Any]:
        """A new session for the user, or ``Unauthenticated`` with one message whatever the
        reason: unknown user, wrong password, disabled. While the user's sign-ins wait after
        wrong passwords in a row (``org.domain.lockout``), ``TooManyRequests``."""
        if not isinstance(username, str) or not username.strip():
            raise ValidationFailed.on("username", "is required")
        if not isinstance(password, str) or not password:
            raise ValidationFailed.on("password", "is required")
        with self.db.session() as session:
            found = repository.credentials(session, username.strip())
        # An unknown username is checked against a dummy hash so it answers as slowly.
        user_id, stored = found or (None, self.passwords.dummy_hash)
        correct = self.passwords.verify(stored, password)
        rehashed = (
            self.passwords.hash(password)
            if correct and user_id and self.passwords.needs_rehash(stored)
            else None
        )
        with self.db.session() as session:
            outcome = self._settle_sign_in(
                session, user_id, correct, rehashed, self.runtime.clock()
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
        user = repository.find(session, User, user_id, lock=True)
        if user is None:
            return "unknown username"
        if user.disabled:
            return "the user is disabled"
        if not is_active(user):
            return "the user's person is disabled or has left"
        lockout = self.settings.lockout
        wait = lockout.retry_after(user.locked_until, now)
        if wait:
            log.warning("sign-in of %s held back for %ss after wrong passwords", user.id, wait)
            raise TooManyRequests.retry_in(
                f"too many wrong passwords in a row; try again in {wait} seconds", wait
            )
        if not correct:
            attempts = lockout.after_failure(user.failed_attempts, user.locked_until, now)
            repository.set_sign_in_state(
                session,
                user.id,
                failed_attempts=attempts.failed_attempts,
                locked_until=attempts.locked_until,
            )
            if not attempts.just_locked:
                return f"wrong password ({attempts.failed_attempts} in a row)"
            until = attempts.locked_until.isoformat() if attempts.locked_until else None
            changes = [
                FieldChange("failed_attempts", None, attempts.failed_attempts),
                FieldChange("locked_until", None, until),
            ]
            audit.write(session, "user", user.id, "locked", now, changes=changes)
            return f"wrong password ({attempts.failed_attempts} in a row); waits until {until}"
        values: dict[str, Any] = {
            "failed_attempts": 0,
            "locked_until": None,
            "last_sign_in_at": now,
        }
        if rehashed:
            values["password_hash"] = rehashed
        repository.set_sign_in_state(session, user.id, **values)
        auth = AuthSession(
            user_id=user.id,
            created_at=now,
            expires_at=now + timedelta(seconds=self.settings.session_max_seconds),
        )
        session.add(auth)
        session.flush()
        return self._issue(session, user, auth, now)

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
        principal = Authz(session).effective([user.id])[user.id].principal()
        return {
            **access_token(self.runtime.trust, principal, auth.id, now),
            "principal": principal,
            "session_id": auth.id,
            "refresh_token": token,
            "refresh_expires_at": expires.isoformat(),
        }

    def refresh(self, refresh_token: Any) -> dict[str, Any]:
        """Rotate: the token is spent and the session continues with a new one, carrying the
        user's principal as it is now. A spent token used again ends the whole session."""
        if not isinstance(refresh_token, str) or not refresh_token:
            raise Unauthenticated(SESSION_ENDED)
        with self.db.session() as session:
            outcome = self._refresh(session, refresh_token, self.runtime.clock())
        if isinstance(outcome, str):
            log.warning("refresh refused: %s", outcome)
            raise Unauthenticated(SESSION_ENDED)
        return outcome

    def _refresh(self, session: Session, token: str, now: datetime) -> dict[str, Any] | str:
        row = repository.refresh_token(session, hash_token(token), lock=True)
        if row is None:
            return "unknown refresh token"
        auth = repository.find(session, AuthSession, row.session_id, lock=True)
        if auth is None or auth.revoked_at is not None:
            return "the session was revoked"
        if row.rotated_at is not None:
            revoke(session, self.outbox, auth, "token_reused", now)
            return f"a spent refresh token was used again; session {auth.id} revoked"
        ends = [aware(row.expires_at), aware(auth.expires_at)]
        if any(end is not None and end <= now for end in ends):
            return "the refresh token has expired"
        user = repository.find(session, User, auth.user_id)
        if user is None or not is_active(user):
            revoke(session, self.outbox, auth, "user_inactive", now)
            return "the user is disabled"
        row.rotated_at = now
        return self._issue(session, user, auth, now)

    def sign_out(self, refresh_token: Any) -> None:
        """End the session the token belongs to; an unknown token is no error."""
        if not isinstance(refresh_token, str) or not refresh_token:
            return
        with self.db.session() as session:
            row = repository.refresh_token(session, hash_token(refresh_token))
            auth = repository.find(session, AuthSession, row.session_id, lock=True) if row else None
            if auth is not None:
                revoke(session, self.outbox, auth, "signed_out", self.runtime.clock())
