"""Signed bearer tokens: HS256 JWTs with issuer, audience, subject (the user id), iat and exp.

The gateway verifies tokens locally with the shared secret. ``crm-token`` mints one from the
command line, reading ``TOKEN_SECRET``, ``TOKEN_ISSUER``, ``TOKEN_AUDIENCE`` and ``TOKEN_TTL``
from the environment or from a gateway config file.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Mapping, Sequence
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
    ttl: int = 3600
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


def load_config(path: str) -> dict[str, Any]:
    """A nameko YAML config file with ``${ENV_VAR:default}`` substitution applied."""
    import yaml
    from nameko.cli.main import setup_yaml_parser

    setup_yaml_parser()
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def settings_from_environment(config_path: str | None = None) -> TokenSettings:
    """Environment variables win over the config file, which wins over the built-in defaults."""
    config: dict[str, Any] = load_config(config_path) if config_path else {}
    for key in ("TOKEN_SECRET", "TOKEN_ISSUER", "TOKEN_AUDIENCE", "TOKEN_TTL", "TOKEN_LEEWAY"):
        if os.environ.get(key):
            config[key] = os.environ[key]
    return TokenSettings.from_config(config)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="crm-token",
        description="Print a signed bearer token for a user of the CRM API.",
    )
    parser.add_argument("--user", required=True, help="the user id, e.g. u-sales-01")
    parser.add_argument("--ttl", type=int, default=None, help="lifetime in seconds")
    parser.add_argument(
        "--config",
        default=os.environ.get("CRM_GATEWAY_CONFIG"),
        help="gateway config.yml to read token settings from (default: $CRM_GATEWAY_CONFIG)",
    )
    args = parser.parse_args(argv)
    try:
        token_settings = settings_from_environment(args.config)
        token = mint(token_settings, args.user, ttl=args.ttl)
    except (OSError, ValueError) as exc:
        print(f"crm-token: {exc}", file=sys.stderr)
        return 2
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
