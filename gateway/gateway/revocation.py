"""What the gateway has heard about access tokens that must no longer be honoured.

Access tokens are verified locally, so a change made in the org service reaches the gateway
as an event, broadcast to every gateway process:

* ``grants_changed`` and ``user_changed`` carry a user's new ``authz_version``: a token minted
  with an older ``ver`` describes permissions or grants that no longer hold;
* ``session_revoked`` ends a session (sign-out, refresh-token reuse, password change, disabled
  user): every token with its ``sid`` is refused;
* ``user_changed`` with ``disabled: true`` refuses all of the user's tokens.

An entry is kept for the lifetime of a token (plus leeway) after it was heard, by which time
every token it could refuse has expired anyway. Events published while a gateway is down are
not replayed to it: when it starts it loads instead org's revocation state (:meth:`load`), the
same facts for every token that can still be valid, and hears the events from then on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

_log = logging.getLogger(__name__)

OUTDATED = "the user's permissions have changed since this token was issued: refresh it"
ENDED = "the session of this token has ended: sign in again"
DISABLED = "the user of this token is disabled"

EVENT_TYPES = ("grants_changed", "user_changed", "session_revoked")


class Revocations:
    """Minimum token versions per user, ended sessions and disabled users, each expiring."""

    def __init__(self, retention: float, clock: Callable[[], float] = time.monotonic) -> None:
        if retention <= 0:
            raise ValueError("retention must be positive")
        self.retention = retention
        self.clock = clock
        self._versions: dict[str, tuple[int, float]] = {}
        self._sessions: dict[str, float] = {}
        self._disabled: dict[str, float] = {}
        self._next_sweep = clock() + retention

    def refusal(self, user_id: str, version: int, session_id: str) -> str | None:
        """Why a token of ``user_id`` with ``ver=version`` and ``sid=session_id`` is refused;
        None when nothing is known against it."""
        now = self.clock()
        if self._live(self._sessions.get(session_id), now):
            return ENDED
        if self._live(self._disabled.get(user_id), now):
            return DISABLED
        known = self._versions.get(user_id)
        if known is not None and self._live(known[1], now) and version < known[0]:
            return OUTDATED
        return None

    def raise_version(self, user_id: str, version: int) -> None:
        """Tokens of ``user_id`` older than ``version`` are refused from now on."""
        now = self.clock()
        known = self._versions.get(user_id)
        if known is not None and self._live(known[1], now):
            version = max(version, known[0])
        self._versions[user_id] = (version, now + self.retention)
        self._sweep(now)

    def end_session(self, session_id: str) -> None:
        now = self.clock()
        self._sessions[session_id] = now + self.retention
        self._sweep(now)

    def set_disabled(self, user_id: str, disabled: bool) -> None:
        now = self.clock()
        if disabled:
            self._disabled[user_id] = now + self.retention
        else:
            self._disabled.pop(user_id, None)
        self._sweep(now)

    def __len__(self) -> int:
        return len(self._versions) + len(self._sessions) + len(self._disabled)

    def load(self, state: Any) -> None:
        """Apply org's ``revocation_state``: ended sessions, every user's current version and
        the users who may not act. Merged with what was heard meanwhile (versions only rise)."""
        if not isinstance(state, Mapping):
            raise ValueError("the revocation state is not an object")
        for session_id in state.get("revoked_sessions") or ():
            if isinstance(session_id, str) and session_id:
                self.end_session(session_id)
        for entry in state.get("versions") or ():
            self._user_version("revocation_state", entry)
        for user_id in state.get("disabled_users") or ():
            if isinstance(user_id, str) and user_id:
                self.set_disabled(user_id, True)

    # events ------------------------------------------------------------------------------

    def heard(self, event_type: str, envelope: Any) -> None:
        """Apply one org event (a DESIGN §3 envelope); malformed ones are logged and skipped."""
        data = envelope.get("data") if isinstance(envelope, Mapping) else None
        if not isinstance(data, Mapping):
            _log.warning("ignoring a %s event without data", event_type)
            return
        if event_type == "grants_changed":
            users = data.get("users")
            for entry in users if isinstance(users, list) else [None]:
                self._user_version(event_type, entry)
        elif event_type == "user_changed":
            if self._user_version(event_type, data) and isinstance(data.get("disabled"), bool):
                self.set_disabled(data["user_id"], data["disabled"])
        elif event_type == "session_revoked":
            session_id = data.get("session_id")
            if isinstance(session_id, str) and session_id:
                self.end_session(session_id)
            else:
                _log.warning("ignoring a session_revoked event without a session id")
        else:
            _log.warning("ignoring an event of unknown type %s", event_type)

    def _user_version(self, event_type: str, entry: Any) -> bool:
        user_id = entry.get("user_id") if isinstance(entry, Mapping) else None
        version = entry.get("authz_version") if isinstance(entry, Mapping) else None
        if not isinstance(user_id, str) or not user_id:
            _log.warning("ignoring a %s entry without a user id", event_type)
            return False
        if isinstance(version, int) and not isinstance(version, bool):
            self.raise_version(user_id, version)
        elif version is not None:
            _log.warning("ignoring the authz_version of user %s in %s", user_id, event_type)
        return True

    # expiry ------------------------------------------------------------------------------

    @staticmethod
    def _live(expires_at: float | None, now: float) -> bool:
        return expires_at is not None and expires_at > now

    def _sweep(self, now: float) -> None:
        """Drop expired entries, at most once per retention period."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.retention
        self._versions = {k: v for k, v in self._versions.items() if v[1] > now}
        self._sessions = {k: v for k, v in self._sessions.items() if v > now}
        self._disabled = {k: v for k, v in self._disabled.items() if v > now}
