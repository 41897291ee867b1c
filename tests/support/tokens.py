"""Keys and tokens for tests: one test key pair per service, made fresh for each test run.

``KEYS.config()`` is the trust configuration every test process gets (the root conftest adds
it to Nameko's ``rabbit_config``); ``user_token`` and ``token_for`` sign access tokens as org
would, ``service_token`` a service's own, ``context_of`` the Nameko context data of a call made
with a token. ``KEYS.write(directory)`` puts the key sets into files for processes of their own.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from crm_common.context import REQUEST_ID_KEY, Principal
from crm_common.identity import (
    ACCESS_TOKEN_KEY,
    ACCESS_TOKEN_SIGNER,
    Trust,
    mint,
    private_jwk,
    public_jwk,
    service_subject,
)

ISSUER = "crm-test"
AUDIENCE = "crm-api-test"
SERVICES = ("org", "customer", "sales", "gateway")


class TestKeys:
    """A key pair per service (kid ``<service>.test``); more with ``add``."""

    __test__ = False  # not a test class

    def __init__(self, services: tuple[str, ...] = SERVICES, label: str = "test") -> None:
        self.private: dict[str, Ed25519PrivateKey] = {}
        for service in services:
            self.add(f"{service}.{label}")

    def add(self, kid: str) -> Ed25519PrivateKey:
        key = Ed25519PrivateKey.generate()
        self.private[kid] = key
        return key

    def private_jwks(self, only: tuple[str, ...] | None = None) -> dict[str, Any]:
        return {
            "keys": [
                private_jwk(kid, key)
                for kid, key in self.private.items()
                if only is None or kid in only
            ]
        }

    def public_jwks(self, only: tuple[str, ...] | None = None) -> dict[str, Any]:
        return {
            "keys": [
                public_jwk(kid, key.public_key())
                for kid, key in self.private.items()
                if only is None or kid in only
            ]
        }

    def config(self) -> dict[str, Any]:
        """Nameko config entries: every key public, every key private, the test issuer."""
        return {
            "PUBLIC_KEYS": json.dumps(self.public_jwks()),
            "PRIVATE_KEYS": json.dumps(self.private_jwks()),
            "TOKEN_ISSUER": ISSUER,
            "TOKEN_AUDIENCE": AUDIENCE,
        }

    def trust(self) -> Trust:
        return Trust.from_config(self.config(), signs=True)

    def write(self, directory: Path) -> dict[str, str]:
        """The key sets as files under ``directory``; config entries naming them."""
        directory.mkdir(parents=True, exist_ok=True)
        public, private = directory / "public.jwks", directory / "private.jwks"
        public.write_text(json.dumps(self.public_jwks()), encoding="utf-8")
        private.write_text(json.dumps(self.private_jwks()), encoding="utf-8")
        private.chmod(0o600)
        return {"PUBLIC_KEYS": str(public), "PRIVATE_KEYS": str(private)}


KEYS = TestKeys()
TRUST = KEYS.trust()

SALES_REP_CLAIMS: dict[str, Any] = {
    "username": "sales01",
    "department_id": "d-east-sh",
    "roles": ["sales_rep"],
    "permissions": ["customer:read", "customer:write", "customer:export"],
    "grants": [{"owner": "self"}],
    "ver": 1,
    "sid": "s-test-session",
}


def user_token(
    user: str = "u-sales-01",
    *,
    trust: Trust = TRUST,
    ttl: int | None = None,
    now: float | None = None,
    **claims: Any,
) -> str:
    """An access token as org signs it at sign-in, with ``claims`` changed."""
    return mint(
        trust,
        ACCESS_TOKEN_SIGNER,
        user,
        claims={**SALES_REP_CLAIMS, **claims},
        ttl=ttl,
        now=now,
    )


RUN_LONG = 6 * 3600
"""Lifetime of the tokens of ``token_for`` and ``context_of``, which modules may make when
they are imported: longer than a whole test run."""


def token_for(principal: Principal, **claims: Any) -> str:
    """An access token that describes ``principal`` exactly."""
    claims.setdefault("ttl", RUN_LONG)
    return user_token(
        principal.user_id,
        department_id=principal.department_id,
        roles=list(principal.roles),
        permissions=list(principal.permissions),
        grants=[grant.as_dict() for grant in principal.grants],
        **claims,
    )


def service_token(service: str, *, trust: Trust = TRUST, ttl: int = 300) -> str:
    return mint(trust, service, service_subject(service), ttl=ttl)


def context_of(
    principal_or_token: Principal | str, request_id: str | None = None
) -> dict[str, Any]:
    """Nameko context data of a call made as ``principal_or_token``."""
    token = (
        principal_or_token if isinstance(principal_or_token, str) else token_for(principal_or_token)
    )
    data: dict[str, Any] = {ACCESS_TOKEN_KEY: token}
    if request_id:
        data[REQUEST_ID_KEY] = request_id
    return data


def expired_token(user: str = "u-sales-01") -> str:
    return user_token(user, ttl=10, now=time.time() - 600)
