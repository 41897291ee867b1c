"""The caller of a worker: who they are (the principal) and which request they belong to.

The gateway puts the caller's signed access token and the request id into Nameko context data;
Nameko carries them through every RPC and event header. ``CallContext`` verifies the token
(``crm_common.identity``: signature, key, signer, expiry, issuer, audience) and binds the
principal it describes and the request id to the worker's green thread, so domain-facing code
and log records can read them without a handle on the worker. A principal merely written into
the context data is never believed.

Which caller a worker runs as depends on its entrypoint:

* an RPC runs as the verified caller of its token; without one it is refused with
  ``Unauthenticated``, unless its method is marked ``@public``
  (``crm_common.entrypoints.public``), where it runs with the verified caller or none;
* an HTTP route (the gateway) runs as the verified caller of its token, if any: the route
  authenticates the request itself;
* anything else (event handlers, timers) runs as its own service
  (:meth:`Principal.for_service`), whatever principal the message came with.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from nameko.extensions import DependencyProvider
from nameko.rpc import Rpc
from nameko.web.handlers import HttpRequestHandler

from crm_common import identity
from crm_common.errors import Forbidden, Unauthenticated
from crm_common.scope import Grant, MalformedGrant, parse_grants

REQUEST_ID_KEY = "request_id"
PUBLIC_ATTRIBUTE = "crm_public"
"""Set on an entrypoint's function by ``crm_common.entrypoints.public``."""

_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "principal", default=None
)
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


@dataclass(frozen=True)
class Principal:
    """A signed-in user as the services see them: function permissions (``resource:action``)
    and data grants (see ``crm_common.scope``). Without grants a principal sees no records."""

    user_id: str
    department_id: str | None = None
    roles: tuple[str, ...] = ()
    permissions: tuple[str, ...] = ()
    grants: tuple[Grant, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "grants", parse_grants(self.grants))

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> Principal:
        """The principal a verified token describes: a user from the claims org signed, or a
        service with the permissions ``identity.SERVICE_PERMISSIONS`` gives it.
        ``InvalidToken`` when a user's claim is missing or malformed."""
        subject = str(claims["sub"])
        if subject.startswith(identity.SERVICE_SUBJECT_PREFIX):
            return cls.for_service(subject[len(identity.SERVICE_SUBJECT_PREFIX) :])
        for name in ("roles", "permissions", "grants"):
            if name not in claims:
                raise identity.InvalidToken(f"the token lacks the {name!r} claim")
        department = claims.get("department_id")
        if department is not None and not isinstance(department, str):
            raise identity.InvalidToken("the token's department_id claim is not a string")
        try:
            grants = parse_grants(_listed(claims, "grants", object))
        except MalformedGrant as exc:
            raise identity.InvalidToken(f"the token carries a malformed grant: {exc}") from None
        return cls(
            user_id=subject,
            department_id=department,
            roles=tuple(_listed(claims, "roles", str)),
            permissions=tuple(_listed(claims, "permissions", str)),
            grants=grants,
        )

    @classmethod
    def for_service(cls, service: str) -> Principal:
        """A service acting as itself: the permissions declared for it, every record."""
        return cls(
            user_id=identity.service_subject(service),
            permissions=tuple(identity.SERVICE_PERMISSIONS.get(service, ())),
            grants=(Grant(),),
        )

    @property
    def is_service(self) -> bool:
        return self.user_id.startswith(identity.SERVICE_SUBJECT_PREFIX)

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    def require(self, permission: str) -> None:
        """``Forbidden`` unless the principal holds ``permission``."""
        if permission not in self.permissions:
            raise Forbidden(f"this needs the permission {permission}", {"permission": permission})


def current_principal() -> Principal:
    """The caller of the running worker; ``Unauthenticated`` when the call carried none."""
    principal = _principal.get()
    if principal is None:
        raise Unauthenticated("the call carries no principal")
    return principal


def optional_principal() -> Principal | None:
    return _principal.get()


def current_request_id() -> str | None:
    return _request_id.get()


def bind(principal: Principal | None = None, request_id: str | None = None) -> None:
    """Set the caller for the current green thread (workers do this through ``CallContext``)."""
    _principal.set(principal)
    _request_id.set(request_id)


def _listed(claims: Mapping[str, Any], name: str, kind: type) -> list[Any]:
    value = claims[name]
    if not isinstance(value, list) or not all(isinstance(item, kind) for item in value):
        raise identity.InvalidToken(f"the token's {name} claim is malformed")
    return value


def is_public(function: Any) -> bool:
    return bool(getattr(function, PUBLIC_ATTRIBUTE, False))


class CallContext(DependencyProvider):
    """Binds the verified caller and request id of each worker's call to its green thread
    (see the module for who a worker runs as). A token is verified, and its principal read,
    once per process (``identity.VerifiedTokens``)."""

    store = identity.TrustStore()

    @cached_property
    def principals(self) -> identity.VerifiedTokens[Principal]:
        return identity.VerifiedTokens(
            self.store.trust, lambda _token, claims: Principal.from_claims(claims)
        )

    def worker_setup(self, worker_ctx: Any) -> None:
        request_id = worker_ctx.data.get(REQUEST_ID_KEY)
        entrypoint = worker_ctx.entrypoint
        if not isinstance(entrypoint, (Rpc, HttpRequestHandler)):
            bind(Principal.for_service(self.container.service_name), request_id)
            return
        principal, refusal = self._caller(worker_ctx.data.get(identity.ACCESS_TOKEN_KEY))
        bind(principal, request_id)
        method = entrypoint.method_name
        protected = not is_public(getattr(type(worker_ctx.service), method, None))
        if refusal and isinstance(entrypoint, Rpc) and protected:
            setattr(worker_ctx.service, method, _refuse(refusal))

    def _caller(self, token: Any) -> tuple[Principal | None, str | None]:
        if token is None:
            return None, "the call carries no access token"
        try:
            return self.principals(token), None
        except identity.InvalidToken as exc:
            return None, exc.reason

    def worker_teardown(self, worker_ctx: Any) -> None:
        bind(None, None)

    def get_dependency(self, worker_ctx: Any) -> None:
        return None


def _refuse(reason: str) -> Any:
    """Stands in for a protected method whose call brought no verifiable caller: Nameko looks
    the method up after the workers' setup, so the call is answered with the refusal."""

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise Unauthenticated(reason)

    return refused
