"""The org service's HTTP API: the administration of departments, regions, people, users,
roles and data grants, the permission catalog, the audit history, and unlocking users.

Every kind of org record is administered alike: list, create, get, change (optimistic
locking), disable and enable, each one RPC with the kind as its first argument. The org service
checks ``org:admin``. Sign-in, the caller (``/api/me``) and passwords are the gateway's own
routes (``gateway.service``): they mint tokens and validate passwords themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.table import Body, Changes, Const, Path, Query, RouteTable, Row, Version

ADMIN_NOTE = "Needs the permission org:admin. Every change is written to the audit history."


@dataclass(frozen=True)
class OrgKind:
    """One kind of org record: its URL segment (also the RPC's ``kind``) and its names."""

    kind: str
    singular: str
    schema: str
    label: str = ""

    @property
    def noun(self) -> str:
        return self.label or self.singular

    @property
    def id_name(self) -> str:
        return f"{self.singular}_id"


KINDS = (
    OrgKind("departments", "department", "Department"),
    OrgKind("regions", "region", "Region"),
    OrgKind("people", "person", "Person"),
    OrgKind("users", "user", "User"),
    OrgKind("roles", "role", "Role"),
    OrgKind("grants", "grant", "Grant", label="data grant"),
)


def kind_rows(kind: OrgKind) -> tuple[Row, ...]:
    """The list, create, get, change, disable and enable routes of ``kind``."""
    collection = f"/api/org/{kind.kind}"
    member = f"{collection}/<{kind.id_name}>"
    of_kind = Const(kind.kind)
    record = Path(kind.id_name)
    noun = kind.noun

    def admin(*args: Any, **fields: Any) -> Row:
        return Row(*args, **{"description": ADMIN_NOTE, "response": kind.schema, **fields})

    return (
        admin(
            "GET",
            collection,
            "list_records",
            (of_kind, Query()),
            name=f"list_{kind.kind}",
            summary=f"List {kind.kind}",
            shape="page",
            query=f"{kind.schema}Query",
        ),
        admin(
            "POST",
            collection,
            "create_record",
            (of_kind, Body()),
            name=f"create_{kind.singular}",
            summary=f"Create a {noun}",
            body=f"{kind.schema}Input",
            status=201,
            location=f"{collection}/{{id}}",
            errors=(409,),
        ),
        admin(
            "GET",
            member,
            "get_record",
            (of_kind, record),
            name=f"get_{kind.singular}",
            summary=f"Get a {noun}",
        ),
        admin(
            "PATCH",
            member,
            "update_record",
            (of_kind, record, Changes()),
            {"expected_version": Version()},
            name=f"update_{kind.singular}",
            summary=f"Change a {noun} (optimistic locking: If-Match or body version)",
            body=f"{kind.schema}Input",
        ),
        admin(
            "POST",
            f"{member}/disable",
            "set_disabled",
            (of_kind, record, Const(True)),
            name=f"disable_{kind.singular}",
            summary=f"Disable a {noun}",
        ),
        admin(
            "POST",
            f"{member}/enable",
            "set_disabled",
            (of_kind, record, Const(False)),
            name=f"enable_{kind.singular}",
            summary=f"Enable a disabled {noun} again",
        ),
    )


TABLE = RouteTable(
    service="org",
    tags=("org",),
    rows=(
        *(row for kind in KINDS for row in kind_rows(kind)),
        Row(
            "POST",
            "/api/org/users/<user_id>/unlock",
            "unlock_user",
            (Path("user_id"),),
            summary="Lift a user's lockout after repeated failed sign-ins",
            description=ADMIN_NOTE,
            response="User",
        ),
        Row(
            "GET",
            "/api/org/permissions",
            "list_permissions",
            summary="The catalog of function permissions roles are made of",
            description="Needs the permission org:admin.",
            shape="items",
            response="Permission",
        ),
        Row(
            "GET",
            "/api/org/audit",
            "audit_log",
            (Query(),),
            summary="Who changed which org record, and how, newest first",
            description="Needs the permission org:admin.",
            shape="page",
            response="AuditEntry",
            query="AuditQuery",
        ),
    ),
)
