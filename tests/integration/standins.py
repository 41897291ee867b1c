"""Stand-ins of the "customer" and "org" services, and a harness that runs the gateway
in front of them on the real broker.

The stand-ins answer from canned data but otherwise as the real services would: the same RPC
signatures, the real services' published schemas (``api_schemas``), queries validated by the
real query schemas, and results valid against the real result schemas.
``test_gateway_standin.py`` checks all of that against the real service classes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import eventlet
import requests
from nameko.events import EventDispatcher
from nameko.rpc import rpc
from nameko.testing.utils import find_free_port, get_container, get_extension

from crm_common.context import (
    CallContext,
    Principal,
    current_principal,
    current_request_id,
    optional_principal,
)
from crm_common.entrypoints import public
from crm_common.errors import (
    EXPECTED_ERRORS,
    Conflict,
    Forbidden,
    NotFound,
    Unauthenticated,
    Unavailable,
    ValidationFailed,
)
from crm_common.events import make_envelope
from crm_common.models import utcnow
from crm_common.schemas import json_schemas, load
from customer import schemas as customer_schemas
from gateway.auth import TokenAuthority
from gateway.service import GatewayService
from org import schemas as org_schemas
from org.application.sessions import access_token as signed_access_token
from tests.support.polling import eventually
from tests.support.tokens import KEYS, TRUST, user_token

USER = "u-sales-01"
SLOW_SECONDS = 3.0
CUSTOMER_ID = "8a1e3c52-0000-4000-8000-000000000001"


def access_token(
    user: str = USER, *, ttl: int | None = None, now: float | None = None, **claims: Any
) -> str:
    """An access token as org signs it at sign-in, with ``claims`` changed."""
    return user_token(user, ttl=ttl, now=now, **claims)


def customer(**overrides: Any) -> dict[str, Any]:
    return {
        "id": CUSTOMER_ID,
        "code": "C2026000001",
        "name": "华东机电设备有限公司",
        "kind": "enterprise",
        "status": "formal",
        "region": "华东",
        "tags": ["重点客户"],
        "owner_id": USER,
        "department_id": "d-east-sh",
        "created_at": "2026-01-05T08:00:00+00:00",
        "updated_at": "2026-01-06T08:00:00+00:00",
        "version": 3,
        **overrides,
    }


def contact(contact_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "id": contact_id,
        "customer_id": CUSTOMER_ID,
        "name": "张伟",
        "is_primary": False,
        "version": 1,
        **overrides,
    }


def relationship(relationship_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "id": relationship_id,
        "customer_id": CUSTOMER_ID,
        "related_customer_id": "8a1e3c52-0000-4000-8000-000000000002",
        "related_customer_code": "C2026000002",
        "related_customer_name": "华南五金",
        "kind": "partner",
        "direction": "outgoing",
        "created_at": "2026-01-06T08:00:00+00:00",
        **overrides,
    }


def care_record(record_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "id": record_id,
        "customer_id": CUSTOMER_ID,
        "kind": "visit",
        "date": "2026-02-17",
        "created_at": "2026-02-17T08:00:00+00:00",
        **overrides,
    }


def query_of(schema: Any, query: dict[str, Any] | None) -> dict[str, Any]:
    """``query`` as it came, once the real service's query schema has accepted it."""
    load(schema, query)
    return query or {}


READS = ("get_", "list_", "count_", "summarize_", "customer_history", "export_")


class StandInCustomer:
    """Answers like the customer service would, from canned data; records who called.

    Reading needs ``customer:read`` and writing ``customer:write``, as in the real service.
    """

    name = "customer"
    context = CallContext()
    calls: list[dict[str, Any]] = []
    principals: list[Principal | None] = []

    def _seen(self, method: str, **arguments: Any) -> None:
        principal = optional_principal()
        StandInCustomer.principals.append(principal)
        StandInCustomer.calls.append(
            {
                "method": method,
                "principal": principal.user_id if principal else None,
                "request_id": current_request_id(),
                **arguments,
            }
        )
        permission = "customer:read" if method.startswith(READS) else "customer:write"
        if principal is not None:
            principal.require(permission)

    @rpc
    @public
    def ping(self) -> str:
        return "pong"

    @rpc
    @public
    def api_schemas(self) -> dict[str, Any]:
        return json_schemas("customer", customer_schemas.PUBLIC_SCHEMAS)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def get_customer(self, customer_id: str) -> dict[str, Any]:
        self._seen("get_customer", customer_id=customer_id)
        if customer_id == "missing":
            raise NotFound.of("customer", customer_id)
        if customer_id == "hidden":
            raise Forbidden("this customer belongs to another department")
        if customer_id == "anonymous":
            raise Unauthenticated("the call carries no principal")
        if customer_id == "degraded":
            raise Unavailable("the customer database is not reachable", {"dependency": "db"})
        if customer_id == "slow":
            eventlet.sleep(SLOW_SECONDS)
        if customer_id == "crash":
            raise RuntimeError("secret-internal-detail")
        return customer(id=customer_id)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def create_customer(self, data: dict, allow_duplicate: bool = False) -> dict[str, Any]:
        self._seen("create_customer", data=data, allow_duplicate=allow_duplicate)
        if not data.get("name"):
            raise ValidationFailed(
                "the input is not valid",
                {"errors": {"name": ["Missing data for required field."]}},
            )
        if data["name"] == "华东机电" and not allow_duplicate:
            raise Conflict(
                "likely duplicates exist",
                {
                    "reason": "duplicate_customer",
                    "candidates": [
                        {
                            "id": CUSTOMER_ID,
                            "code": "C2026000001",
                            "name": "华东机电设备有限公司",
                            "score": 0.92,
                            "reasons": ["similar_name"],
                        }
                    ],
                },
            )
        return customer(id=str(uuid.uuid4()), name=data["name"], version=1)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def update_customer(
        self, customer_id: str, changes: dict, expected_version: int | None = None
    ) -> dict[str, Any]:
        self._seen(
            "update_customer",
            customer_id=customer_id,
            changes=changes,
            expected_version=expected_version,
        )
        if expected_version != 3:
            raise Conflict(
                "the customer was changed by someone else",
                {"reason": "stale_version", "current_version": 3},
            )
        return customer(id=customer_id, version=4, **changes)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_customers(self, query: dict | None = None) -> dict[str, Any]:
        query = query_of(customer_schemas.CustomerQuerySchema(), query)
        self._seen("list_customers", query=query)
        return {"items": [customer()], "next_cursor": "next-page"}

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def count_customers(self, query: dict | None = None) -> dict[str, Any]:
        query = query_of(customer_schemas.CustomerFilterSchema(), query)
        self._seen("count_customers", query=query)
        return {"count": 42}

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def summarize_customers(self, query: dict | None = None) -> dict[str, Any]:
        query = query_of(customer_schemas.CustomerFilterSchema(), query)
        self._seen("summarize_customers", query=query)
        return {
            "total": 42,
            "by_status": {"formal": 40, "potential": 2},
            "by_category": {"A": 12, "VIP": 3, "none": 27},
            "by_department": {"d-east-sh": 42},
        }

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_contacts(self, customer_id: str) -> list[dict[str, Any]]:
        self._seen("list_contacts", customer_id=customer_id)
        return [contact("ct-1")]

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def create_contact(self, customer_id: str, data: dict) -> dict[str, Any]:
        self._seen("create_contact", customer_id=customer_id, data=data)
        if "mobile" in data and not str(data["mobile"]).startswith("1"):
            raise ValidationFailed(
                "the input is not valid", {"errors": {"mobile": ["not a mainland China mobile"]}}
            )
        return contact("ct-2", customer_id=customer_id, **data)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def get_contact(self, contact_id: str) -> dict[str, Any]:
        self._seen("get_contact", contact_id=contact_id)
        return contact(contact_id, version=7)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def update_contact(
        self, contact_id: str, changes: dict, expected_version: int | None = None
    ) -> dict:
        self._seen(
            "update_contact",
            contact_id=contact_id,
            changes=changes,
            expected_version=expected_version,
        )
        return contact(contact_id, version=(expected_version or 0) + 1, **changes)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_relationships(self, customer_id: str) -> list[dict[str, Any]]:
        self._seen("list_relationships", customer_id=customer_id)
        return [relationship("rel-1")]

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def add_relationship(self, customer_id: str, data: dict) -> dict[str, Any]:
        self._seen("add_relationship", customer_id=customer_id, data=data)
        return relationship("rel-2", **data)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def remove_relationship(self, customer_id: str, relationship_id: str) -> dict[str, Any]:
        self._seen("remove_relationship", customer_id=customer_id, relationship_id=relationship_id)
        if relationship_id == "missing":
            raise NotFound.of("relationship", relationship_id)
        return relationship(relationship_id)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_care_records(self, customer_id: str) -> list[dict[str, Any]]:
        self._seen("list_care_records", customer_id=customer_id)
        return [care_record("care-1", kind="festival", date="2026-02-17")]

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def add_care_record(self, customer_id: str, data: dict) -> dict[str, Any]:
        self._seen("add_care_record", customer_id=customer_id, data=data)
        return care_record("care-2", **data)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def customer_history(
        self, customer_id: str, cursor: str | None = None, limit: int | None = None
    ) -> dict[str, Any]:
        self._seen("customer_history", customer_id=customer_id, cursor=cursor, limit=limit)
        return {
            "items": [
                {
                    "id": "h-1",
                    "at": "2026-01-06T08:00:00+00:00",
                    "entity_type": "customer",
                    "entity_id": customer_id,
                    "change": "updated",
                    "field": "region",
                    "old": "华北",
                    "new": "华东",
                    "actor_id": USER,
                }
            ],
            "next_cursor": None,
        }

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def merge_customers(self, survivor_id: str, merged_id: str) -> dict[str, Any]:
        self._seen("merge_customers", survivor_id=survivor_id, merged_id=merged_id)
        return customer(id=survivor_id, version=5)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def import_customers(self, csv_text: str) -> dict[str, Any]:
        self._seen("import_customers", csv_text=csv_text)
        rows = [line for line in csv_text.splitlines()[1:] if line.strip()]
        errors = [
            {"row": number, "errors": {"name": ["required"]}}
            for number, line in enumerate(rows, start=2)
            if line.startswith(",")
        ]
        created = len(rows) - len(errors)
        return {"created": created, "updated": 0, "unchanged": 0, "errors": errors}

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def export_customers(self, query: dict | None = None) -> str:
        query = query_of(customer_schemas.CustomerExportQuerySchema(), query)
        self._seen("export_customers", query=query)
        return "\ufeffcode,name\r\nC2026000001,华东机电设备有限公司\r\n"


DEMO_PASSWORD = "Crm-demo-2026"
ORG_KINDS = {
    "departments": "Department",
    "regions": "Region",
    "people": "Person",
    "users": "User",
    "roles": "Role",
    "grants": "Grant",
}
SIGNED_IN_USERS = {
    "sales01": {
        "user_id": USER,
        "username": "sales01",
        "department_id": "d-east-sh",
        "roles": ["sales_rep"],
        "permissions": ["customer:read", "customer:write", "customer:export"],
        "grants": [{"owner": "self"}],
    },
    "admin": {
        "user_id": "u-admin",
        "username": "admin",
        "department_id": "d-hq",
        "roles": ["admin"],
        "permissions": ["customer:read", "customer:write", "org:admin"],
        "grants": [{}],
    },
}
ROLE_MEMBERS = {"r-sales-rep": ["sales01"], "r-admin": ["admin"]}
ORG_QUERIES = {
    "departments": org_schemas.DepartmentQuerySchema,
    "regions": org_schemas.RegionQuerySchema,
    "people": org_schemas.PersonQuerySchema,
    "users": org_schemas.UserQuerySchema,
    "roles": org_schemas.RoleQuerySchema,
    "grants": org_schemas.GrantQuerySchema,
}


def org_record(kind: str, record_id: str, **fields_: Any) -> dict[str, Any]:
    """An org record of ``kind`` with the fields the real service answers for that kind."""
    if kind == "users":
        own: dict[str, Any] = {"username": f"user-{record_id}", "role_ids": []}
    elif kind == "grants":
        own = {"name": f"grant {record_id}", "owner_self": False}
    else:
        own = {"code": record_id, "name": f"{kind} {record_id}"}
    return {
        "id": record_id,
        "version": 2,
        "created_at": "2026-01-05T08:00:00+00:00",
        "updated_at": "2026-01-06T08:00:00+00:00",
        "disabled": False,
        **own,
        **fields_,
    }


class StandInOrg:
    """Answers like the org service would: sign-in, rotating refresh tokens, administration.

    Sessions live in class attributes so that tests can look at them; the events the real
    service publishes (``session_revoked``, ``grants_changed``) are published here too, unless
    ``publishes`` is off.
    """

    name = "org"
    context = CallContext()
    dispatch = EventDispatcher()
    publishes = True
    calls: list[dict[str, Any]] = []
    passwords: dict[str, str] = {}
    versions: dict[str, int] = {}
    refresh_tokens: dict[str, dict[str, Any]] = {}
    ended_sessions: set[str] = set()

    @classmethod
    def reset(cls) -> None:
        cls.calls.clear()
        cls.passwords.clear()
        cls.passwords.update({username: DEMO_PASSWORD for username in SIGNED_IN_USERS})
        cls.versions.clear()
        cls.versions.update({username: 1 for username in SIGNED_IN_USERS})
        cls.refresh_tokens.clear()
        cls.ended_sessions.clear()

    def _seen(self, method: str, admin: bool = False, **arguments: Any) -> None:
        principal = optional_principal()
        StandInOrg.calls.append(
            {"method": method, "principal": principal.user_id if principal else None, **arguments}
        )
        if admin:
            current_principal().require("org:admin")

    def _publish(self, event_type: str, data: dict[str, Any]) -> None:
        if self.publishes:
            principal = optional_principal()
            actor = principal.user_id if principal else None
            self.dispatch(event_type, make_envelope(event_type, data, source="org", actor_id=actor))

    def _session(self, username: str, session_id: str) -> dict[str, Any]:
        token = f"rt-{uuid.uuid4()}"
        StandInOrg.refresh_tokens[token] = {
            "username": username,
            "session_id": session_id,
            "used": False,
        }
        principal = {**SIGNED_IN_USERS[username], "authz_version": StandInOrg.versions[username]}
        return {
            **signed_access_token(TRUST, principal, session_id, utcnow()),
            "principal": principal,
            "session_id": session_id,
            "refresh_token": token,
            "refresh_expires_at": "2026-03-01T08:00:00+00:00",
        }

    def _end(self, session_id: str, username: str) -> None:
        StandInOrg.ended_sessions.add(session_id)
        user_id = SIGNED_IN_USERS[username]["user_id"]
        self._publish("session_revoked", {"session_id": session_id, "user_id": user_id})

    @rpc
    @public
    def ping(self) -> str:
        return "pong"

    @rpc
    @public
    def api_schemas(self) -> dict[str, Any]:
        return json_schemas("org", org_schemas.PUBLIC_SCHEMAS)

    # sign-in -----------------------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def revocation_state(self) -> dict[str, Any]:
        current_principal().require("org:sessions:read")
        return {
            "revoked_sessions": sorted(StandInOrg.ended_sessions),
            "versions": [
                {"user_id": SIGNED_IN_USERS[name]["user_id"], "authz_version": version}
                for name, version in StandInOrg.versions.items()
            ],
            "disabled_users": [],
        }

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    @public
    def sign_in(self, username: str, password: str) -> dict[str, Any]:
        self._seen("sign_in", username=username, password=password)
        if StandInOrg.passwords.get(username) != password:
            raise Unauthenticated("the username or password is not correct")
        return self._session(username, f"s-{uuid.uuid4()}")

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    @public
    def refresh(self, refresh_token: str) -> dict[str, Any]:
        self._seen("refresh", refresh_token=refresh_token)
        entry = StandInOrg.refresh_tokens.get(refresh_token)
        if entry is None or entry["session_id"] in StandInOrg.ended_sessions:
            raise Unauthenticated("the refresh token is not valid: sign in again")
        if entry["used"]:
            self._end(entry["session_id"], entry["username"])
            raise Unauthenticated("the refresh token was used before: sign in again")
        entry["used"] = True
        return self._session(entry["username"], entry["session_id"])

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    @public
    def sign_out(self, refresh_token: str) -> None:
        self._seen("sign_out", refresh_token=refresh_token)
        entry = StandInOrg.refresh_tokens.get(refresh_token)
        if entry is not None:
            self._end(entry["session_id"], entry["username"])

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def describe_me(self) -> dict[str, Any]:
        principal = current_principal()
        self._seen("describe_me")
        return {
            "user": {"id": principal.user_id, "username": "sales01", "version": 4},
            "person": {"id": "p-sales-01", "name": "王芳"},
            "department": {"id": principal.department_id, "name": "上海办事处"},
            "roles": [
                {"id": "r-sales-rep", "code": code, "name": "销售代表"} for code in principal.roles
            ],
            "permissions": list(principal.permissions),
            "grants": [{"name": "own customers", "owner_self": True, "source": "role"}],
            "scope": [grant.as_dict() for grant in principal.grants],
        }

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def change_password(
        self, current_password: str, new_password: str, session_id: str | None = None
    ) -> dict[str, Any]:
        principal = current_principal()
        self._seen(
            "change_password",
            current_password=current_password,
            new_password=new_password,
            session_id=session_id,
        )
        username = next(
            name for name, user in SIGNED_IN_USERS.items() if user["user_id"] == principal.user_id
        )
        if StandInOrg.passwords[username] != current_password:
            raise ValidationFailed.on("current_password", "is not the password in use")
        if len(new_password) < 10:
            raise ValidationFailed.on("new_password", "needs at least 10 characters")
        StandInOrg.passwords[username] = new_password
        return org_record("users", principal.user_id, username=username)

    # administration ----------------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_records(self, kind: str, query: dict | None = None) -> dict[str, Any]:
        query = query_of(ORG_QUERIES[kind](), query)
        self._seen("list_records", admin=True, kind=kind, query=query)
        return {"items": [org_record(kind, "r-1")], "next_cursor": "after-r-1"}

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def get_record(self, kind: str, record_id: str) -> dict[str, Any]:
        self._seen("get_record", admin=True, kind=kind, record_id=record_id)
        if record_id == "missing":
            raise NotFound.of(kind.rstrip("s"), record_id)
        return org_record(kind, record_id)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def create_record(self, kind: str, data: dict) -> dict[str, Any]:
        self._seen("create_record", admin=True, kind=kind, data=data)
        if kind == "users" and len(str(data.get("password", ""))) < 10:
            raise ValidationFailed.on("password", "needs at least 10 characters")
        fields_ = {key: value for key, value in data.items() if key != "password"}
        return {**org_record(kind, f"new-{kind}"), **fields_, "version": 1}

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def update_record(
        self, kind: str, record_id: str, changes: dict, expected_version: int | None = None
    ) -> dict[str, Any]:
        self._seen(
            "update_record",
            admin=True,
            kind=kind,
            record_id=record_id,
            changes=changes,
            expected_version=expected_version,
        )
        if expected_version != 2:
            raise Conflict(
                f"the {kind} record was changed by someone else",
                {"reason": "stale_version", "current_version": 2},
            )
        if kind == "roles" and "permissions" in changes:
            changed = []
            for username in ROLE_MEMBERS.get(record_id, ()):
                StandInOrg.versions[username] += 1
                changed.append(
                    {
                        "user_id": SIGNED_IN_USERS[username]["user_id"],
                        "authz_version": StandInOrg.versions[username],
                    }
                )
            self._publish("grants_changed", {"users": changed})
        return {**org_record(kind, record_id), **changes, "version": 3}

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def set_disabled(self, kind: str, record_id: str, disabled: bool) -> dict[str, Any]:
        self._seen("set_disabled", admin=True, kind=kind, record_id=record_id, disabled=disabled)
        return org_record(kind, record_id, disabled=disabled, version=3)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def reset_password(self, user_id: str, new_password: str) -> dict[str, Any]:
        self._seen("reset_password", admin=True, user_id=user_id, new_password=new_password)
        if len(new_password) < 10:
            raise ValidationFailed.on("new_password", "needs at least 10 characters")
        return org_record("users", user_id)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def unlock_user(self, user_id: str) -> dict[str, Any]:
        self._seen("unlock_user", admin=True, user_id=user_id)
        return org_record("users", user_id, failed_attempts=0, locked_until=None, version=5)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_permissions(self) -> list[dict[str, str]]:
        self._seen("list_permissions", admin=True)
        return [
            {"code": "customer:read", "description": "read customers"},
            {"code": "org:admin", "description": "administer the organization"},
        ]

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def audit_log(self, query: dict | None = None) -> dict[str, Any]:
        query = query_of(org_schemas.AuditQuerySchema(), query)
        self._seen("audit_log", admin=True, query=query)
        return {
            "items": [
                {
                    "id": "a-1",
                    "entity_type": "department",
                    "entity_id": "d-east",
                    "actor_id": "u-admin",
                    "action": "updated",
                    "changes": [{"field": "name", "old": "华东分公司", "new": "华东大区"}],
                    "at": "2026-01-06T08:00:00+00:00",
                }
            ],
            "next_cursor": None,
        }


class QuietOrg(StandInOrg):
    """The org stand-in without its events: what the gateway does on its own."""

    publishes = False


@dataclass
class Api:
    """A client of one running gateway."""

    base_url: str
    user: str = USER
    session: requests.Session = field(default_factory=requests.Session)

    def token(self, **claims: Any) -> str:
        return access_token(self.user, **claims)

    def request(
        self, method: str, path: str, *, token: str | None = None, auth: bool = True, **kwargs: Any
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if auth:
            headers.setdefault("Authorization", f"Bearer {token or self.token()}")
        kwargs.setdefault("timeout", 15)
        return self.session.request(method, self.base_url + path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)


def gateway_config(rabbit_config: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    return {
        **rabbit_config,
        "WEB_SERVER_ADDRESS": f"127.0.0.1:{find_free_port()}",
        **KEYS.config(),
        "RPC_TIMEOUT": 1,
        "READY_TIMEOUT": 0.5,
        "BACKEND_SERVICES": "customer",
        **overrides,
    }


def start_gateway(runner_factory: Any, config: dict[str, Any], *services: type) -> Api:
    """Run the gateway (and the given services) until the test ends; a client of it."""
    StandInCustomer.calls.clear()
    StandInCustomer.principals.clear()
    StandInOrg.reset()
    runner = runner_factory(config, GatewayService, *services)
    runner.start()
    if any(issubclass(service, StandInOrg) for service in services):
        # Tokens older than the gateway wait for org's revocation state: let it load first.
        authority = get_extension(get_container(runner, GatewayService), TokenAuthority)
        eventually(lambda: authority.synced, timeout=10, what="the revocation state to load")
    return Api(f"http://{config['WEB_SERVER_ADDRESS']}")


def problem_of(response: requests.Response, status: int) -> dict[str, Any]:
    """The problem body of ``response``, after checking the status and media type."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert body["type"] == f"urn:crm:problem:{body['code']}"
    for member in ("title", "detail"):
        assert isinstance(body[member], str) and body[member]
    return body
