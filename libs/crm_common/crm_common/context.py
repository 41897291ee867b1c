"""The caller of a worker: who they are (the principal) and which request they belong to.

The gateway puts both into Nameko context data; Nameko carries them through every RPC and
event header. ``CallContext`` copies them into context variables for the worker's green thread,
so domain-facing code and log records can read them without a handle on the worker.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Any

from nameko.extensions import DependencyProvider

from crm_common.errors import Forbidden, Unauthenticated
from crm_common.scope import Grant, MalformedGrant, parse_grants

PRINCIPAL_KEY = "principal"
REQUEST_ID_KEY = "request_id"

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
    def from_context(cls, data: dict[str, Any]) -> Principal:
        user_id = data.get("user_id")
        if not user_id:
            raise Unauthenticated("the call carries no user")
        try:
            return cls(
                user_id=str(user_id),
                department_id=data.get("department_id"),
                roles=tuple(data.get("roles") or ()),
                permissions=tuple(data.get("permissions") or ()),
                grants=parse_grants(data.get("grants") or ()),
            )
        except MalformedGrant as exc:
            raise Unauthenticated(f"the call carries a malformed grant: {exc}") from None

    def as_context(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "department_id": self.department_id,
            "roles": list(self.roles),
            "permissions": list(self.permissions),
            "grants": [grant.as_dict() for grant in self.grants],
        }

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


class CallContext(DependencyProvider):
    """Binds the principal and request id of each worker's call to its green thread."""

    def worker_setup(self, worker_ctx: Any) -> None:
        raw = worker_ctx.data.get(PRINCIPAL_KEY)
        principal = Principal.from_context(raw) if isinstance(raw, dict) and raw else None
        bind(principal, worker_ctx.data.get(REQUEST_ID_KEY))

    def worker_teardown(self, worker_ctx: Any) -> None:
        bind(None, None)

    def get_dependency(self, worker_ctx: Any) -> None:
        return None
