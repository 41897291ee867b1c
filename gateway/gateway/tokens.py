"""Access tokens as the gateway sees them: signed by org, verified here with the public keys.

The gateway signs nothing: org answers sign-in and refresh with a signed access token
(``crm_common.identity``: EdDSA, key ids, rotation). The gateway checks each bearer token
against ``PUBLIC_KEYS`` and reads what revocation is checked on (``ver``, ``sid``) besides the
principal; the services verify the same token again when the gateway passes it on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from crm_common.context import Principal
from crm_common.identity import SERVICE_SUBJECT_PREFIX, InvalidToken, Trust, verify

TOKEN_RESPONSE_FIELDS = (
    "access_token",
    "token_type",
    "expires_in",
    "refresh_token",
    "refresh_expires_at",
)

__all__ = ["Caller", "InvalidToken", "caller_of", "token_response"]


@dataclass(frozen=True)
class Caller:
    """What a verified access token says: the principal, what revocation is checked on, and
    the token itself, which travels on to the services."""

    principal: Principal
    username: str | None
    version: int
    session_id: str
    issued_at: int
    token: str


def caller_of(trust: Trust, token: str) -> Caller:
    """The signed-in user a bearer token names; ``InvalidToken`` when it is not one."""
    claims = verify(trust, token)
    return caller_from_claims(claims, token)


def caller_from_claims(claims: Mapping[str, Any], token: str = "") -> Caller:
    """The caller verified claims describe; ``InvalidToken`` when any is malformed."""
    if str(claims["sub"]).startswith(SERVICE_SUBJECT_PREFIX):
        raise InvalidToken("a service token does not sign in a user")
    for name in ("ver", "sid"):
        if name not in claims:
            raise InvalidToken(f"the token lacks the {name!r} claim")
    username = claims.get("username")
    version = claims["ver"]
    session_id = claims["sid"]
    if username is not None and not isinstance(username, str):
        raise InvalidToken("the token's username claim is not a string")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise InvalidToken("the token's ver claim is not a version number")
    if not isinstance(session_id, str) or not session_id:
        raise InvalidToken("the token's sid claim is not a session id")
    principal = Principal.from_claims(claims)
    return Caller(principal, username, version, session_id, int(claims["iat"]), token)


def token_response(trust: Trust, session: Mapping[str, Any]) -> dict[str, Any]:
    """The HTTP answer to a sign-in or refresh from org's answer, after checking that the
    access token in it verifies (a misconfigured key set fails here, not on the next call)."""
    missing = [name for name in TOKEN_RESPONSE_FIELDS if name not in session]
    if missing:
        raise ValueError(f"org's session lacks {missing}")
    caller_of(trust, session["access_token"])
    return {name: session[name] for name in TOKEN_RESPONSE_FIELDS}
