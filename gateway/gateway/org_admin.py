"""Org administration routes, declared once for every kind of org record.

Departments, regions, people, users, roles and data grants are administered alike: list,
create, get, change (optimistic locking), disable and enable, each one RPC on the org service
with the kind as its first argument. ``OrgAdminRoutes`` holds the generated handlers as
methods, so a service class that inherits it (and has an ``org`` RPC dependency) serves them
and documents them in OpenAPI like any other ``@route``. The org service checks ``org:admin``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from werkzeug.wrappers import Request, Response

from gateway import parsing
from gateway.responses import json_response, record_response
from gateway.web import route

ORG = ["org"]
ADMIN_NOTE = "Needs the permission org:admin. Every change is written to the audit history."
COMMON_FILTERS = ("q",)
COMMON_FLAGS = ("disabled",)
PAGE = ("cursor", "limit")


@dataclass(frozen=True)
class OrgKind:
    """One kind of org record: its URL segment (also the RPC's ``kind``) and its names."""

    kind: str
    singular: str
    schema: str
    filters: tuple[str, ...] = ()
    label: str = ""

    @property
    def noun(self) -> str:
        return self.label or self.singular

    @property
    def id_name(self) -> str:
        return f"{self.singular}_id"


KINDS = (
    OrgKind("departments", "department", "Department", ("parent_id",)),
    OrgKind("regions", "region", "Region", ("parent_id",)),
    OrgKind("people", "person", "Person", ("department_id",)),
    OrgKind("users", "user", "User", ("role_id",)),
    OrgKind("roles", "role", "Role"),
    OrgKind("grants", "grant", "Grant", ("role_id", "user_id"), label="data grant"),
)


def kind_routes(kind: OrgKind) -> dict[str, Callable[..., Response]]:
    """The six handlers of ``kind`` by method name, each declared with ``@route``."""
    collection = f"/api/org/{kind.kind}"
    member = f"{collection}/<{kind.id_name}>"
    filters = (*COMMON_FILTERS, *kind.filters)

    def list_records(service: Any, request: Request) -> Response:
        query = parsing.record_query(request.args, filters, COMMON_FLAGS)
        return json_response(service.org.list_records(kind.kind, query))

    def create_record(service: Any, request: Request) -> Response:
        created = service.org.create_record(kind.kind, parsing.json_body(request))
        return record_response(created, 201, location=f"{collection}/{created['id']}")

    def get_record(service: Any, request: Request, **path: str) -> Response:
        return record_response(service.org.get_record(kind.kind, path[kind.id_name]))

    def update_record(service: Any, request: Request, **path: str) -> Response:
        changes, version = parsing.split_version(request, parsing.json_body(request))
        return record_response(
            service.org.update_record(
                kind.kind, path[kind.id_name], changes, expected_version=version
            )
        )

    def disable_record(service: Any, request: Request, **path: str) -> Response:
        return record_response(service.org.set_disabled(kind.kind, path[kind.id_name], True))

    def enable_record(service: Any, request: Request, **path: str) -> Response:
        return record_response(service.org.set_disabled(kind.kind, path[kind.id_name], False))

    noun = kind.noun
    declared: list[tuple[str, Callable[..., Response], tuple[str, str], dict[str, Any]]] = [
        (
            f"list_{kind.kind}",
            list_records,
            ("GET", collection),
            {
                "summary": f"List {kind.kind}",
                "query": (*filters, *COMMON_FLAGS, *PAGE),
                "shape": "page",
            },
        ),
        (
            f"create_{kind.singular}",
            create_record,
            ("POST", collection),
            {
                "summary": f"Create a {noun}",
                "body": f"{kind.schema}Input",
                "status": 201,
                "errors": (409,),
            },
        ),
        (f"get_{kind.singular}", get_record, ("GET", member), {"summary": f"Get a {noun}"}),
        (
            f"update_{kind.singular}",
            update_record,
            ("PATCH", member),
            {
                "summary": f"Change a {noun} (optimistic locking: If-Match or body version)",
                "body": f"{kind.schema}Input",
                "if_match": True,
            },
        ),
        (
            f"disable_{kind.singular}",
            disable_record,
            ("POST", f"{member}/disable"),
            {"summary": f"Disable a {noun}"},
        ),
        (
            f"enable_{kind.singular}",
            enable_record,
            ("POST", f"{member}/enable"),
            {"summary": f"Enable a disabled {noun} again"},
        ),
    ]
    handlers: dict[str, Callable[..., Response]] = {}
    for name, fn, (method, url), doc in declared:
        fn.__name__ = fn.__qualname__ = name
        doc = {"tags": ORG, "description": ADMIN_NOTE, "response": kind.schema, **doc}
        handlers[name] = route(method, url, **doc)(fn)
    return handlers


def _all_kind_routes() -> dict[str, Any]:
    handlers: dict[str, Any] = {}
    for kind in KINDS:
        handlers.update(kind_routes(kind))
    return handlers


OrgAdminRoutes = type(
    "OrgAdminRoutes",
    (),
    {
        "__doc__": "The list/create/get/change/disable/enable routes of every org record kind.",
        "__module__": __name__,
        **_all_kind_routes(),
    },
)
