"""Sign-in sessions: the access tokens they hand out, ending them (with a ``session_revoked``
event each), and what a gateway must refuse when it starts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_common import identity
from crm_common.application import EventSink
from org import events, repository
from org.domain.users import is_active
from org.models import AuthSession, User

TOKEN_TYPE = "Bearer"


def access_token(
    trust: identity.Trust, principal: Mapping[str, Any], session_id: str, now: datetime
) -> dict[str, Any]:
    """A signed access token for a session's principal (as ``Effective.principal`` makes it):
    the user as subject, what they may do and see, ``ver`` (their ``authz_version``, which
    gateways compare with the latest they heard of) and ``sid``, the session."""
    claims = {
        "username": principal["username"],
        "department_id": principal["department_id"],
        "roles": list(principal["roles"]),
        "permissions": list(principal["permissions"]),
        "grants": list(principal["grants"]),
        "ver": principal["authz_version"],
        "sid": session_id,
    }
    token = identity.mint(
        trust,
        identity.ACCESS_TOKEN_SIGNER,
        principal["user_id"],
        claims=claims,
        now=now.timestamp(),
    )
    return {"access_token": token, "token_type": TOKEN_TYPE, "expires_in": trust.ttl}


def revocation_state(session: Session, now: datetime, lifetime_seconds: int) -> dict[str, Any]:
    """What a gateway that starts now must refuse among the access tokens that can still be
    valid: sessions revoked within ``lifetime_seconds``, every user's current
    ``authz_version`` (older tokens are outdated) and the users who may not act."""
    since = now - timedelta(seconds=lifetime_seconds)
    revoked = session.scalars(
        select(AuthSession.id).where(AuthSession.revoked_at >= since).order_by(AuthSession.id)
    )
    users = list(session.scalars(select(User).order_by(User.id)))
    return {
        "revoked_sessions": list(revoked),
        "versions": [{"user_id": user.id, "authz_version": user.authz_version} for user in users],
        "disabled_users": [user.id for user in users if not is_active(user)],
    }


def revoke(
    session: Session, outbox: EventSink, auth_session: AuthSession, reason: str, now: datetime
) -> bool:
    """End one session; ``False`` when it had already ended."""
    if auth_session.revoked_at is not None:
        return False
    auth_session.revoked_at = now
    auth_session.revoked_reason = reason
    outbox.add(
        session,
        events.SESSION_REVOKED,
        events.session_revoked(auth_session.id, auth_session.user_id, reason),
    )
    return True


def revoke_all(
    session: Session,
    outbox: EventSink,
    user_ids: Iterable[str],
    reason: str,
    now: datetime,
    keep: str | None = None,
) -> int:
    """End every open (unexpired, unrevoked) session of these users but ``keep``; returns how
    many were ended."""
    wanted = set(user_ids)
    if not wanted:
        return 0
    return sum(
        revoke(session, outbox, auth_session, reason, now)
        for auth_session in repository.open_sessions(session, wanted, now, keep)
    )
