"""Who is calling: bearer access tokens, minted at sign-in and verified locally on each request.

``TokenAuthority`` is shared by every route of a gateway process and by its workers: routes
authenticate requests with it before a worker is spawned, the sign-in routes mint tokens with
it, and the org event handlers feed its :class:`~gateway.revocation.Revocations`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nameko.extensions import DependencyProvider, SharedExtension
from werkzeug.wrappers import Request

from crm_common.context import Principal
from crm_common.scope import MalformedGrant, parse_grants
from gateway import settings
from gateway.problems import HttpProblem, unauthenticated
from gateway.revocation import Revocations
from gateway.throttle import SignInThrottle
from gateway.tokens import InvalidToken, TokenSettings, mint, session_claims, verify

TOKEN_TYPE = "Bearer"

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Caller:
    """What a verified access token says: the principal, and what revocation is checked on."""

    principal: Principal
    username: str | None
    version: int
    session_id: str


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


def caller_from_claims(claims: Mapping[str, Any]) -> Caller:
    """The caller an access token's claims describe; ``InvalidToken`` when any is malformed."""
    for name in ("roles", "permissions", "grants", "ver", "sid"):
        if name not in claims:
            raise InvalidToken(f"the token lacks the {name!r} claim")
    department = claims.get("department_id")
    username = claims.get("username")
    version = claims["ver"]
    session_id = claims["sid"]
    if department is not None and not isinstance(department, str):
        raise InvalidToken("the token's department_id claim is not a string")
    if username is not None and not isinstance(username, str):
        raise InvalidToken("the token's username claim is not a string")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise InvalidToken("the token's ver claim is not a version number")
    if not isinstance(session_id, str) or not session_id:
        raise InvalidToken("the token's sid claim is not a session id")
    try:
        grants = parse_grants(_listed(claims, "grants", object))
    except MalformedGrant as exc:
        raise InvalidToken(f"the token carries a malformed grant: {exc}") from None
    principal = Principal(
        user_id=claims["sub"],
        department_id=department,
        roles=tuple(_listed(claims, "roles", str)),
        permissions=tuple(_listed(claims, "permissions", str)),
        grants=grants,
    )
    return Caller(principal, username, version, session_id)


def _listed(claims: Mapping[str, Any], name: str, kind: type) -> list[Any]:
    value = claims[name]
    if not isinstance(value, list) or not all(isinstance(item, kind) for item in value):
        raise InvalidToken(f"the token's {name} claim is malformed")
    return value


class TokenAuthority(SharedExtension):
    """The gateway's token settings and revocation list, one per gateway process."""

    token_settings: TokenSettings
    revocations: Revocations
    sign_ins: SignInThrottle

    def setup(self) -> None:
        config = self.container.config
        self.token_settings = TokenSettings.from_config(config)
        self.revocations = Revocations(self.token_settings.ttl + self.token_settings.leeway)
        self.sign_ins = SignInThrottle.from_config(config)
        if self.token_settings.secret == settings.DEV_TOKEN_SECRET:
            _log.warning("TOKEN_SECRET is the development default: set it before going live")

    def authenticate(self, request: Request) -> Caller:
        """The caller of ``request``; a 401 problem for a missing, invalid or revoked token."""
        try:
            caller = caller_from_claims(verify(self.token_settings, bearer_token(request)))
        except InvalidToken as exc:
            raise unauthenticated(exc.reason) from None
        refusal = self.revocations.refusal(
            caller.principal.user_id, caller.version, caller.session_id
        )
        if refusal is not None:
            raise unauthenticated(refusal)
        return caller

    def check_sign_in_allowed(self, address: str, username: str) -> None:
        """429 while sign-ins of ``username`` from ``address`` must wait (``gateway.throttle``)."""
        try:
            self.sign_ins.check(address, username)
        except HttpProblem as exc:
            _log.warning("sign-in from %s throttled: %s", address, exc.detail)
            raise

    def issue(self, session: Mapping[str, Any]) -> dict[str, Any]:
        """The token response for an org ``Session``: a new access token and its refresh token."""
        user_id, claims = session_claims(session)
        caller_from_claims({**claims, "sub": user_id})
        return {
            "access_token": mint(self.token_settings, user_id, claims=claims),
            "token_type": TOKEN_TYPE,
            "expires_in": self.token_settings.ttl,
            "refresh_token": session["refresh_token"],
            "refresh_expires_at": session["refresh_expires_at"],
        }

    def end_presented_session(self, request: Request) -> None:
        """Refuse from now on the session of the valid bearer token ``request`` carries, if any."""
        header = request.headers.get("Authorization") or ""
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return
        try:
            caller = caller_from_claims(verify(self.token_settings, token.strip()))
        except InvalidToken:
            return
        self.revocations.end_session(caller.session_id)


class Tokens(DependencyProvider):
    """Gives a worker the process's :class:`TokenAuthority`."""

    authority = TokenAuthority()

    def get_dependency(self, worker_ctx: Any) -> TokenAuthority:
        return self.authority
