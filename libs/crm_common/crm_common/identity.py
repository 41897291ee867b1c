"""Who may be believed: the suite's keys, access tokens, and the identity of services.

**Keys.** Every key is an Ed25519 key written as a JSON Web Key (RFC 8037) and named by its
``kid``: ``<service>`` or ``<service>.<label>`` (``org.2026-06``). The part before the dot
names the service the key belongs to, and that decides what the key may sign:

* an **access token** (a signed-in user) only with a key of ``org``, the one signer of user
  tokens (``ACCESS_TOKEN_SIGNER``);
* a **service token** (subject ``service:<name>``) only with a key of that service.

Two settings carry them, each given as the JSON itself or as the path of a file holding it:

* ``PUBLIC_KEYS`` (every process): a JWK set of the public keys of every service. During a
  rotation it holds the old key and the new one; removing a kid refuses its tokens at once.
* ``PRIVATE_KEYS`` (only processes that sign): a JWK set of the private keys of the services
  the process hosts. A service signs with the first key of its own in the set.

``CRM_ENV`` says where the suite runs (``development`` by default). Every process refuses to
start with a missing or malformed key set or a key that is not Ed25519; outside development it
also refuses development keys (label ``dev…``, as ``make run`` makes them) and a private key
file others may read. ``python -m crm_common.identity DIR SERVICE...`` writes a key pair per
service into ``DIR/private.jwks`` and ``DIR/public.jwks``, keeping the keys already there.

**Tokens.** EdDSA JWTs with ``kid``, ``iss`` (``TOKEN_ISSUER``), ``aud`` (``TOKEN_AUDIENCE``),
``sub``, ``iat`` and ``exp``; any other algorithm (``none``, HS256, RS256…) is refused before
anything else is read. The gateway passes the caller's access token itself to the services in
Nameko context data (``ACCESS_TOKEN_KEY``), and every service verifies it
(``crm_common.context.CallContext``): the services trust the signer, not the gateway. A process
verifies a given token once: :class:`VerifiedTokens` keeps what it read from each token that
verified (the principal, the gateway's caller) until verification would refuse the token for
its age, so a signed-in user's next calls cost a dictionary look-up, not an EdDSA check.

**Service identity.** Event handlers and timers run as their own service. A service calls
another as itself (not as the user whose call it is handling) through the ``ServiceIdentity``
dependency, which mints a short-lived service token with its private key::

    from crm_common.identity import ServiceIdentity

    class CustomerService(kit.ServiceKit):
        identity = ServiceIdentity()

        def _refresh_org_structure(self) -> None:
            with self.identity.rpc("org") as org:       # a proxy calling as "service:customer"
                snapshot = org.structure_snapshot()
            # or, for a proxy of one's own: ServiceRpcProxy("org", config,
            #                                context_data=self.identity.context_data())

The callee sees a principal ``service:customer`` holding exactly the permissions
``SERVICE_PERMISSIONS`` declares for ``customer`` (never what the token says) and an
unrestricted data grant; it checks them as for any caller (``principal.require(...)``). A
process with a ``ServiceIdentity`` needs its service's key in ``PRIVATE_KEYS``.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from nameko.extensions import DependencyProvider, SharedExtension
from nameko.standalone.rpc import ServiceRpcProxy

ALGORITHM = "EdDSA"
ACCESS_TOKEN_SIGNER = "org"
SERVICE_SUBJECT_PREFIX = "service:"
ACCESS_TOKEN_KEY = "access_token"
"""The key of Nameko context data that carries the caller's token from service to service."""
REQUIRED_CLAIMS = ("iss", "aud", "sub", "iat", "exp")
DEVELOPMENT = "development"
DEV_LABEL_PREFIX = "dev"
SERVICE_TOKEN_TTL = 300
VERIFIED_TOKENS_KEPT = 4096
"""How many verified tokens a process keeps what it read from (see :class:`VerifiedTokens`)."""

SERVICE_PERMISSIONS: Mapping[str, tuple[str, ...]] = {
    "gateway": ("org:sessions:read",),
    "customer": ("org:structure:read",),
    "sales": ("org:structure:read", "customer:snapshot:read"),
    "org": (),
    "notify": ("org:structure:read", "sales:due-records:read"),
}
"""What each service may do when it calls another as itself: the one place that says so."""

DEFAULTS: dict[str, Any] = {
    "CRM_ENV": DEVELOPMENT,
    "PUBLIC_KEYS": "",
    "PRIVATE_KEYS": "",
    "TOKEN_ISSUER": "crm",
    "TOKEN_AUDIENCE": "crm-api",
    "TOKEN_TTL": 900,
    "TOKEN_LEEWAY": 30,
}
_RESERVED_CLAIMS = frozenset(REQUIRED_CLAIMS) | {"nbf", "jti"}

T = TypeVar("T")


class KeyConfigurationError(ValueError):
    """A key setting a process cannot start with; the message names the setting to fix."""


class InvalidToken(Exception):
    """A token that must not be trusted; ``reason`` says why in words safe to show the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def setting(config: Mapping[str, Any], key: str) -> Any:
    found = config.get(key)
    return DEFAULTS[key] if found is None or found == "" else found


def key_owner(kid: str) -> str:
    """The service a key belongs to: the part of its kid before the first dot."""
    return kid.partition(".")[0]


def service_subject(service: str) -> str:
    return SERVICE_SUBJECT_PREFIX + service


# -- JSON Web Keys -----------------------------------------------------------------------------
def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise ValueError("a key member is not a string")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_jwk(kid: str, key: Ed25519PublicKey) -> dict[str, str]:
    raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": ALGORITHM, "x": _b64(raw)}


def private_jwk(kid: str, key: Ed25519PrivateKey) -> dict[str, str]:
    return {**public_jwk(kid, key.public_key()), "d": _b64(key.private_bytes_raw())}


def _key_of(jwk: Any, private: bool) -> tuple[str, Ed25519PublicKey | Ed25519PrivateKey]:
    if not isinstance(jwk, Mapping):
        raise ValueError("a key is not a JSON object")
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not key_owner(kid):
        raise ValueError("a key has no kid naming its service")
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise ValueError(f"key {kid} is not an Ed25519 key (only EdDSA is accepted)")
    public = Ed25519PublicKey.from_public_bytes(_unb64(jwk.get("x")))
    if not private:
        return kid, public
    secret = Ed25519PrivateKey.from_private_bytes(_unb64(jwk.get("d")))
    if secret.public_key().public_bytes_raw() != public.public_bytes_raw():
        raise ValueError(f"the private and public parts of key {kid} do not match")
    return kid, secret


def parse_key_set(text: str, *, private: bool = False) -> dict[str, Any]:
    """Keys by kid from a JWK set (``{"keys": [...]}``), in their order."""
    try:
        document = json.loads(text)
        entries = document["keys"] if isinstance(document, Mapping) else None
        if not isinstance(entries, list) or not entries:
            raise ValueError("it holds no keys")
        keys: dict[str, Any] = {}
        for entry in entries:
            kid, key = _key_of(entry, private)
            if kid in keys:
                raise ValueError(f"kid {kid} appears twice")
            keys[kid] = key
        return keys
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not a JWK set of Ed25519 keys: {exc}") from None


def _read(config: Mapping[str, Any], key: str, environment: str) -> str:
    """The JSON of a key setting, given inline or as a file path."""
    raw = setting(config, key)
    if isinstance(raw, Mapping):
        return json.dumps(raw)
    text = str(raw).strip()
    if not text:
        raise KeyConfigurationError(
            f"{key} is not set: point it at a JWK set file (make run writes var/keys/)"
        )
    if text.startswith("{"):
        return text
    path = Path(text)
    if not path.is_file():
        raise KeyConfigurationError(f"{key} names {path}, which is not a readable file")
    shared = path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO)
    if key == "PRIVATE_KEYS" and environment != DEVELOPMENT and shared:
        raise KeyConfigurationError(f"{key} file {path} is readable by others: chmod 600 it")
    return path.read_text(encoding="utf-8")


@dataclass(frozen=True)
class Trust:
    """What one process believes and signs with, read once from its config."""

    public_keys: Mapping[str, Ed25519PublicKey]
    private_keys: Mapping[str, Ed25519PrivateKey]
    issuer: str = "crm"
    audience: str = "crm-api"
    ttl: int = 900
    leeway: int = 30
    environment: str = DEVELOPMENT

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, signs: bool = False) -> Trust:
        """The process's trust; ``KeyConfigurationError`` naming the setting to fix.
        ``signs``: the process must hold a private key (``PRIVATE_KEYS`` is required)."""
        environment = str(setting(config, "CRM_ENV")).strip().lower()
        public = cls._keys(config, "PUBLIC_KEYS", environment, private=False)
        private: dict[str, Any] = {}
        if signs or str(setting(config, "PRIVATE_KEYS")).strip():
            private = cls._keys(config, "PRIVATE_KEYS", environment, private=True)
        for kid, key in private.items():
            known = public.get(kid)
            if known is None or known.public_bytes_raw() != key.public_key().public_bytes_raw():
                raise KeyConfigurationError(
                    f"PRIVATE_KEYS holds key {kid}, which PUBLIC_KEYS lacks or holds differently"
                )
        trust = cls(
            public,
            private,
            issuer=str(setting(config, "TOKEN_ISSUER")),
            audience=str(setting(config, "TOKEN_AUDIENCE")),
            ttl=int(setting(config, "TOKEN_TTL")),
            leeway=int(setting(config, "TOKEN_LEEWAY")),
            environment=environment,
        )
        if trust.ttl <= 0:
            raise KeyConfigurationError("TOKEN_TTL must be a positive number of seconds")
        return trust

    @staticmethod
    def _keys(
        config: Mapping[str, Any], key: str, environment: str, *, private: bool
    ) -> dict[str, Any]:
        try:
            keys = parse_key_set(_read(config, key, environment), private=private)
        except ValueError as exc:
            if isinstance(exc, KeyConfigurationError):
                raise
            raise KeyConfigurationError(f"{key} is {exc}") from None
        if environment != DEVELOPMENT:
            for kid in keys:
                if kid.partition(".")[2].startswith(DEV_LABEL_PREFIX):
                    raise KeyConfigurationError(
                        f"{key} holds the development key {kid}: generate keys of your own "
                        f"for CRM_ENV={environment}"
                    )
        return keys

    def signing_key(self, service: str) -> tuple[str, Ed25519PrivateKey]:
        """The kid and key ``service`` signs with: its first key in ``PRIVATE_KEYS``."""
        for kid, key in self.private_keys.items():
            if key_owner(kid) == service:
                return kid, key
        raise KeyConfigurationError(f"PRIVATE_KEYS holds no key of the {service} service")


# -- tokens ------------------------------------------------------------------------------------
def mint(
    trust: Trust,
    signer: str,
    subject: str,
    *,
    claims: Mapping[str, Any] | None = None,
    ttl: int | None = None,
    now: float | None = None,
) -> str:
    """A token for ``subject`` signed with the current key of the service ``signer``."""
    if not subject:
        raise ValueError("a token needs a subject")
    extra = dict(claims or {})
    clash = _RESERVED_CLAIMS & extra.keys()
    if clash:
        raise ValueError(f"claims {sorted(clash)} are set by mint itself")
    lifetime = trust.ttl if ttl is None else ttl
    if lifetime <= 0:
        raise ValueError("ttl must be positive")
    issued_at = int(time.time() if now is None else now)
    kid, key = trust.signing_key(signer)
    payload = {
        **extra,
        "iss": trust.issuer,
        "aud": trust.audience,
        "sub": subject,
        "iat": issued_at,
        "exp": issued_at + lifetime,
    }
    return jwt.encode(payload, key, algorithm=ALGORITHM, headers={"kid": kid})


def verify(trust: Trust, token: Any) -> dict[str, Any]:
    """The claims of ``token`` if its algorithm, key, signer, signature, issuer, audience and
    times are right; ``InvalidToken`` otherwise."""
    if not isinstance(token, str) or not token:
        raise InvalidToken("the token is empty")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError as exc:
        raise InvalidToken("the token is malformed") from exc
    if header.get("alg") != ALGORITHM:
        raise InvalidToken("the token's algorithm is not accepted")
    kid = header.get("kid")
    key = trust.public_keys.get(kid) if isinstance(kid, str) else None
    if key is None or not isinstance(kid, str):
        raise InvalidToken("the token's signing key is not known")
    claims = _decode(trust, token, key)
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject.strip():
        raise InvalidToken("the token names no subject")
    expected_signer = (
        subject[len(SERVICE_SUBJECT_PREFIX) :]
        if subject.startswith(SERVICE_SUBJECT_PREFIX)
        else ACCESS_TOKEN_SIGNER
    )
    if key_owner(kid) != expected_signer:
        raise InvalidToken("the token is signed by a key that may not sign it")
    return claims


def _decode(trust: Trust, token: str, key: Ed25519PublicKey) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=trust.audience,
            issuer=trust.issuer,
            leeway=trust.leeway,
            options={"require": list(REQUIRED_CLAIMS)},
        )
        return claims
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


class VerifiedTokens(Generic[T]):
    """What ``read(token, claims)`` makes of each token that verified, kept by token.

    A token is a signed string: the same string verifies the same way until it is too old.
    So each token is verified (:func:`verify`) the first time it is presented, and what was
    read from it is answered again until its ``exp`` plus ``TOKEN_LEEWAY``, the moment
    :func:`verify` would refuse it; after that it is verified afresh (and refused). A token
    that fails verification, or that ``read`` refuses with ``InvalidToken``, is never kept.
    Keys come from the process's :class:`Trust`, read once at start, so a removed kid is
    refused after the restart that removes it, as before. Revocation is not a property of
    the token: whoever checks it (the gateway) still checks it on every request. At most
    ``size`` tokens are kept; the one kept longest is dropped first.
    """

    def __init__(
        self,
        trust: Trust,
        read: Callable[[str, dict[str, Any]], T],
        size: int = VERIFIED_TOKENS_KEPT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.trust = trust
        self.read = read
        self.size = size
        self.clock = clock
        self._kept: dict[str, tuple[float, T]] = {}

    def __len__(self) -> int:
        return len(self._kept)

    def __call__(self, token: Any) -> T:
        """What ``token`` says; ``InvalidToken`` when it does not verify."""
        kept = self._kept.get(token) if isinstance(token, str) else None
        if kept is not None:
            if self.clock() < kept[0]:
                return kept[1]
            del self._kept[token]
        claims = verify(self.trust, token)
        value = self.read(token, claims)
        if len(self._kept) >= self.size:
            del self._kept[next(iter(self._kept))]
        self._kept[token] = (claims["exp"] + self.trust.leeway, value)
        return value


# -- Nameko extensions -------------------------------------------------------------------------
class TrustStore(SharedExtension):
    """The process's :class:`Trust`, loaded when its container starts (which fails, naming the
    setting, when the keys are missing or unfit)."""

    trust: Trust

    def setup(self) -> None:
        self.trust = Trust.from_config(self.container.config)


class ServiceIdentity(DependencyProvider):
    """Gives a worker :class:`ServiceCredentials`: the context data and RPC proxies to call
    other services as this service (see the module)."""

    def setup(self) -> None:
        self.credentials = ServiceCredentials(
            Trust.from_config(self.container.config, signs=True),
            self.container.service_name,
            self.container.config,
        )
        self.credentials.context_data()  # no key of its own: refuse to start, not on first use

    def get_dependency(self, worker_ctx: Any) -> ServiceCredentials:
        return self.credentials


class ServiceCredentials:
    """A service's own token, minted on demand and reused for half its lifetime."""

    def __init__(self, trust: Trust, service: str, config: Mapping[str, Any]) -> None:
        self.trust = trust
        self.service = service
        self.config = config
        self._token = ""
        self._renew_at = 0.0

    def token(self) -> str:
        now = time.time()
        if now >= self._renew_at:
            self._token = mint(
                self.trust, self.service, service_subject(self.service), ttl=SERVICE_TOKEN_TTL
            )
            self._renew_at = now + SERVICE_TOKEN_TTL / 2
        return self._token

    def context_data(self) -> dict[str, Any]:
        """Nameko context data that makes a call this service's own."""
        return {ACCESS_TOKEN_KEY: self.token()}

    @contextmanager
    def rpc(self, service: str, timeout: float = 10.0) -> Iterator[Any]:
        """``with identity.rpc("org") as org: org.method(...)``, as this service."""
        with ServiceRpcProxy(
            service, dict(self.config), context_data=self.context_data(), timeout=timeout
        ) as proxy:
            yield proxy


# -- key generation ----------------------------------------------------------------------------
def ensure_keys(directory: Path, services: list[str], label: str) -> list[str]:
    """Add a key ``<service>.<label>`` to ``directory``'s key sets for each service that has
    none yet; returns the kids added. The private set is written readable by its owner only."""
    directory.mkdir(parents=True, exist_ok=True)
    private_path, public_path = directory / "private.jwks", directory / "public.jwks"
    private = json.loads(private_path.read_text()) if private_path.exists() else {"keys": []}
    public = json.loads(public_path.read_text()) if public_path.exists() else {"keys": []}
    owners = {key_owner(entry["kid"]) for entry in private["keys"]}
    added = []
    for service in services:
        if service in owners:
            continue
        kid, key = f"{service}.{label}", Ed25519PrivateKey.generate()
        private["keys"].append(private_jwk(kid, key))
        public["keys"].append(public_jwk(kid, key.public_key()))
        added.append(kid)
    if added:
        descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(private, handle, indent=2)
        os.chmod(private_path, 0o600)
        public_path.write_text(json.dumps(public, indent=2), encoding="utf-8")
    return added


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    label = "key1"
    if args[:1] == ["--label"] and len(args) >= 2:
        label, args = args[1], args[2:]
    if len(args) < 2:
        print("usage: python -m crm_common.identity [--label LABEL] DIR SERVICE...")
        return 2
    for kid in ensure_keys(Path(args[0]), args[1:], label):
        print(f"added key {kid}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
