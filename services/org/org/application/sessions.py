"""Ending sign-in sessions (refresh-token families), with a ``session_revoked`` event each."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.orm import Session

from crm_common.application import EventSink
from org import events, repository
from org.models import AuthSession


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
