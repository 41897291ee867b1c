"""Signed bearer tokens: HS256 JWTs with issuer, audience, subject (the user id), iat and exp.

The gateway mints an access token from the session the org service opens at sign-in
(:func:`session_claims` names what it carries) and verifies every token locally with the
shared secret; only the algorithms in ``ALLOWED_ALGORITHMS`` are accepted.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from gateway import settings

ALGORITHM = "HS256"
ALLOWED_ALGORITHMS = (ALGORITHM,)
REQUIRED_CLAIMS = ("iss", "aud", "sub", "iat", "exp")
_RESERVED = frozenset(REQUIRED_CLAIMS) | {"nbf", "jti"}


class InvalidToken(Exception):
    """A token that must not be trusted; ``reason`` says why in words safe to show the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class TokenSettings:
    secret: str
    issuer: str
    audience: str
    ttl: int = 900
    leeway: int = 30

    def __post_init__(self) -> None:
        if not self.secret:
            raise ValueError("TOKEN_SECRET must not be empty")
        if self.ttl <= 0:
            raise ValueError("TOKEN_TTL must be positive")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TokenSettings:
        return cls(
            secret=str(settings.value(config, "TOKEN_SECRET")),
            issuer=str(settings.value(config, "TOKEN_ISSUER")),
            audience=str(settings.value(config, "TOKEN_AUDIENCE")),
            ttl=settings.integer(config, "TOKEN_TTL"),
            leeway=settings.integer(config, "TOKEN_LEEWAY"),
        )


def mint(
    token_settings: TokenSettings,
    user_id: str,
    *,
    ttl: int | None = None,
    claims: Mapping[str, Any] | None = None,
    now: float | None = None,
) -> str:
    """A signed token for ``user_id`` that expires ``ttl`` seconds from ``now``."""
    if not user_id:
        raise ValueError("a token needs a user id")
    issued_at = int(time.time() if now is None else now)
    lifetime = token_settings.ttl if ttl is None else ttl
    if lifetime <= 0:
        raise ValueError("ttl must be positive")
    extra = dict(claims or {})
    clash = _RESERVED & extra.keys()
    if clash:
        raise ValueError(f"claims {sorted(clash)} are set by mint itself")
    payload = {
        **extra,
        "iss": token_settings.issuer,
        "aud": token_settings.audience,
        "sub": str(user_id),
        "iat": issued_at,
        "exp": issued_at + lifetime,
    }
    return jwt.encode(payload, token_settings.secret, algorithm=ALGORITHM)


def session_claims(session: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The user id and the private claims of an access token for an org ``Session``.

    ``username``, ``department_id``, ``roles``, ``permissions`` and the compiled ``grants``
    come from the session's principal, ``ver`` is its ``authz_version`` and ``sid`` the
    session id; a session without user, version or session id is refused with ``ValueError``.
    """
    principal = session.get("principal")
    if not isinstance(principal, Mapping):
        raise ValueError("the session carries no principal")
    user_id = principal.get("user_id")
    version = principal.get("authz_version")
    session_id = session.get("session_id")
    if not isinstance(user_id, str) or not user_id:
        raise ValueError("the session's principal has no user id")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError("the session's principal has no authz_version")
    if not isinstance(session_id, str) or not session_id:
        raise ValueError("the session has no id")
    return user_id, {
        "username": principal.get("username"),
        "department_id": principal.get("department_id"),
        "roles": list(principal.get("roles") or ()),
        "permissions": list(principal.get("permissions") or ()),
        "grants": list(principal.get("grants") or ()),
        "ver": version,
        "sid": session_id,
    }


def verify(token_settings: TokenSettings, token: str) -> dict[str, Any]:
    """The token's claims if its signature, algorithm, issuer, audience and times are right."""
    if not token:
        raise InvalidToken("the token is empty")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError as exc:
        raise InvalidToken("the token is malformed") from exc
    if header.get("alg") not in ALLOWED_ALGORITHMS:
        raise InvalidToken("the token's algorithm is not accepted")
    try:
        claims = jwt.decode(
            token,
            token_settings.secret,
            algorithms=list(ALLOWED_ALGORITHMS),
            audience=token_settings.audience,
            issuer=token_settings.issuer,
            leeway=token_settings.leeway,
            options={"require": list(REQUIRED_CLAIMS)},
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("the token has expired") from exc
    except jwt.InvalidAudienceError as exc:
        raise InvalidToken("the token is meant for another audience") from exc
    except jwt.InvalidIssuerError as exc:
        raise InvalidToken("the token comes from an unknown issuer") from exc
    except jwt.InvalidSignatureError as exc:
        raise InvalidToken("the token's signature does not match") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise InvalidToken(f"the token lacks the {exc.claim!r} claim") from exc
    except jwt.ImmatureSignatureError as exc:
        raise InvalidToken("the token is not valid yet") from exc
    except jwt.InvalidTokenError as exc:
        raise InvalidToken("the token is not valid") from exc
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject.strip():
        raise InvalidToken("the token names no user")
    return claims
