"""Who is calling: bearer access tokens signed by org, verified here on each request.

``TokenAuthority`` is shared by every route of a gateway process and by its workers: routes
authenticate requests with it before a worker is spawned, the sign-in routes turn org's
answers into token responses with it, and the org event handlers feed its
:class:`~gateway.revocation.Revocations`.

Revocation survives a restart: when it starts, the gateway asks org, as the service
``gateway``, for the sessions ended and the authorization versions reached while tokens still
valid were issued (``org.revocation_state``), retrying until org answers, while it already
hears the org events. Until then a token issued before the gateway started answers 503: it
may be one that was revoked while the gateway was away.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import eventlet
from nameko.extensions import DependencyProvider, SharedExtension
from werkzeug.wrappers import Request

from crm_common.identity import ServiceCredentials, Trust, VerifiedTokens
from gateway.problems import HttpProblem, unauthenticated
from gateway.revocation import Revocations
from gateway.throttle import SignInThrottle
from gateway.tokens import Caller, InvalidToken, caller_from_claims, token_response

__all__ = ["Caller", "TokenAuthority", "Tokens", "bearer_token"]

SYNC_RETRY_SECONDS = 2.0
SYNC_TIMEOUT_SECONDS = 5.0
SYNCING = "the gateway is still learning which sessions have ended: try again in a moment"

_log = logging.getLogger(__name__)


def bearer_token(request: Request) -> str:
    header = request.headers.get("Authorization")
    if header is None or not header.strip():
        raise unauthenticated("this resource needs a bearer token", error=None)
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthenticated(
            "send the token as 'Authorization: Bearer <token>'", error="invalid_request"
        )
    return token.strip()


class TokenAuthority(SharedExtension):
    """The gateway's keys, revocation list and sign-in throttle, one per gateway process."""

    trust: Trust
    callers: VerifiedTokens[Caller]
    revocations: Revocations
    sign_ins: SignInThrottle
    started_at: int
    synced: bool

    def setup(self) -> None:
        config = self.container.config
        self.trust = Trust.from_config(config, signs=True)
        self.callers = VerifiedTokens(
            self.trust, lambda token, claims: caller_from_claims(claims, token)
        )
        self.credentials = ServiceCredentials(self.trust, self.container.service_name, config)
        self.credentials.context_data()  # without a key of its own the gateway cannot sync
        self.revocations = Revocations(self.trust.ttl + self.trust.leeway)
        self.sign_ins = SignInThrottle.from_config(config)
        self.synced = False

    def start(self) -> None:
        self.started_at = int(time.time())
        self._sync = self.container.spawn_managed_thread(self._sync_revocations)

    def stop(self) -> None:
        self._sync.kill()

    def _sync_revocations(self) -> None:
        """Load org's revocation state, retrying until org answers."""
        while not self.synced:
            try:
                with self.credentials.rpc("org", timeout=SYNC_TIMEOUT_SECONDS) as org:
                    state = org.revocation_state()
            except Exception as exc:  # org down, broker away: the next try may work
                _log.warning("cannot load the revocation state from org yet: %s", exc)
                eventlet.sleep(SYNC_RETRY_SECONDS)
                continue
            self.revocations.load(state)
            self.synced = True
            _log.info("revocation state loaded: %d entries", len(self.revocations))

    def authenticate(self, request: Request) -> Caller:
        """The caller of ``request``; a 401 problem for a missing, invalid or revoked token,
        a 503 for a token older than this process while revocations are not loaded yet.
        The token is verified once (``callers``); revocation is checked on every request."""
        try:
            caller = self.callers(bearer_token(request))
        except InvalidToken as exc:
            raise unauthenticated(exc.reason) from None
        refusal = self.revocations.refusal(
            caller.principal.user_id, caller.version, caller.session_id
        )
        if refusal is not None:
            raise unauthenticated(refusal)
        if not self.synced and caller.issued_at < self.started_at:
            raise HttpProblem(503, "unavailable", SYNCING, headers={"Retry-After": "2"})
        return caller

    def check_sign_in_allowed(self, address: str, username: str) -> None:
        """429 while sign-ins of ``username`` from ``address`` must wait (``gateway.throttle``)."""
        try:
            self.sign_ins.check(address, username)
        except HttpProblem as exc:
            _log.warning("sign-in from %s throttled: %s", address, exc.detail)
            raise

    def issue(self, session: Mapping[str, Any]) -> dict[str, Any]:
        """The token response for org's answer to a sign-in or refresh."""
        return token_response(self.trust, session)

    def end_presented_session(self, request: Request) -> None:
        """Refuse from now on the session of the valid bearer token ``request`` carries, if any."""
        header = request.headers.get("Authorization") or ""
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return
        try:
            caller = self.callers(token.strip())
        except InvalidToken:
            return
        self.revocations.end_session(caller.session_id)


class Tokens(DependencyProvider):
    """Gives a worker the process's :class:`TokenAuthority`."""

    authority = TokenAuthority()

    def get_dependency(self, worker_ctx: Any) -> TokenAuthority:
        return self.authority
