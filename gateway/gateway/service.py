"""The HTTP gateway: each route turns one HTTP request into one RPC on a backend service.

Sign-in turns an org session into a signed access token (``gateway.auth``); the org events
that outdate tokens are heard here and kept in the revocation list the routes check.
"""

from __future__ import annotations

import contextvars
from datetime import date
from typing import Any

import eventlet
from nameko.dependency_providers import Config
from nameko.events import BROADCAST, event_handler
from werkzeug.wrappers import Request, Response

from crm_common.context import CallContext
from crm_common.errors import Unauthenticated
from gateway import openapi, org_admin, parsing, readiness, settings
from gateway.auth import Tokens
from gateway.org_admin import ADMIN_NOTE, ORG
from gateway.responses import (
    csv_response,
    items_response,
    json_response,
    no_content,
    record_response,
)
from gateway.rpc import ServiceRpc
from gateway.schemas import (
    MergeRequestSchema,
    PasswordChangeSchema,
    PasswordResetSchema,
    RefreshRequestSchema,
    TokenRequestSchema,
)
from gateway.web import CALLER_ENVIRON, api_routes, route

COUNT_FILTERS = ("q", "status", "category", "region", "owner_id", "tags")
CUSTOMER_FILTERS = (*COUNT_FILTERS, "sort")
OPERATIONS = ["operations"]
CONTACTS = ["contacts"]
AUTH = ["auth"]
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
NO_STORE_DOC = {"Cache-Control": "no-store: token responses must not be cached"}


def org_event(event_type: str) -> Any:
    """Every gateway process hears each org event; none is kept for a process that is down."""
    return event_handler("org", event_type, handler_type=BROADCAST, reliable_delivery=False)


# The mixin is reached through its module: `nameko run gateway.service` starts every class of
# this module that has entrypoints, and the mixin alone is not a service.
class GatewayService(org_admin.OrgAdminRoutes):
    name = "gateway"

    context = CallContext()
    config = Config()
    tokens = Tokens()
    customer = ServiceRpc("customer")
    org = ServiceRpc("org")
    schema_cache = openapi.SchemaCache()

    # operations -------------------------------------------------------------------------

    @route(
        "GET",
        "/health",
        auth=False,
        summary="The gateway process is up",
        tags=OPERATIONS,
        shape="object",
        response="Health",
    )
    def health(self, request: Request) -> Response:
        return json_response({"status": "ok"})

    @route(
        "GET",
        "/ready",
        auth=False,
        summary="The broker is reachable and every service answers a ping",
        tags=OPERATIONS,
        shape="object",
        response="Readiness",
    )
    def ready(self, request: Request) -> Response:
        timeout = settings.ready_timeout(self.config)
        proxies = {
            name: self.customer.for_service(name).with_timeout(timeout)
            for name in settings.backend_services(self.config)
        }
        checks = readiness.check(self.config["AMQP_URI"], proxies, timeout)
        status, body = readiness.summary(checks)
        return json_response(body, status)

    @route(
        "GET",
        "/api/openapi.json",
        auth=False,
        summary="This API's OpenAPI 3.1 document",
        tags=OPERATIONS,
        shape="object",
        errors=(503, 504),
    )
    def openapi_document(self, request: Request) -> Response:
        pool = eventlet.GreenPool()
        pending = {
            name: pool.spawn(
                contextvars.copy_context().run,
                self.schema_cache.schemas_of,
                name,
                self.customer.for_service(name).api_schemas,
            )
            for name in settings.backend_services(self.config)
        }
        schemas = {name: thread.wait() for name, thread in pending.items()}
        return json_response(openapi.build_document(api_routes(type(self)), schemas))

    # sign-in ----------------------------------------------------------------------------

    @route(
        "POST",
        "/api/auth/token",
        auth=False,
        summary="Sign in with a username and password",
        description="A wrong username, a wrong password, a disabled and a locked user all "
        "answer the same 401. Repeated failures lock the user for a while, and too many "
        "refused sign-ins from one address answer 429 for a while.",
        tags=AUTH,
        body="TokenRequest",
        shape="object",
        response="TokenResponse",
        headers=NO_STORE_DOC,
        errors=(401, 429, 503, 504),
    )
    def sign_in(self, request: Request) -> Response:
        address = request.remote_addr or "unknown"
        self.tokens.check_sign_in_allowed(address)
        credentials = parsing.validated(TokenRequestSchema(), request)
        try:
            session = self.org.sign_in(credentials["username"], credentials["password"])
        except Unauthenticated:
            self.tokens.sign_ins.refused(address)
            raise
        return json_response(self.tokens.issue(session), headers=NO_STORE)

    @route(
        "POST",
        "/api/auth/refresh",
        auth=False,
        summary="Renew the access token; the refresh token is replaced by a new one",
        description="A refresh token works once. Presenting one that was already used ends "
        "the whole session (it may have been stolen): sign in again.",
        tags=AUTH,
        body="RefreshRequest",
        shape="object",
        response="TokenResponse",
        headers=NO_STORE_DOC,
        errors=(401, 503, 504),
    )
    def refresh(self, request: Request) -> Response:
        body = parsing.validated(RefreshRequestSchema(), request)
        session = self.org.refresh(body["refresh_token"])
        return json_response(self.tokens.issue(session), headers=NO_STORE)

    @route(
        "POST",
        "/api/auth/logout",
        auth=False,
        summary="Sign out: end the session of the refresh token (and of the bearer token sent)",
        tags=AUTH,
        body="RefreshRequest",
        shape="none",
        status=204,
        errors=(503, 504),
    )
    def logout(self, request: Request) -> Response:
        body = parsing.validated(RefreshRequestSchema(), request)
        self.tokens.end_presented_session(request)
        self.org.sign_out(body["refresh_token"])
        return no_content()

    @route(
        "GET",
        "/api/me",
        summary="The caller: user, person, department, roles, permissions and data grants",
        tags=AUTH,
        shape="object",
        response="Me",
    )
    def describe_me(self, request: Request) -> Response:
        return json_response(self.org.describe_me())

    @route(
        "POST",
        "/api/me/password",
        summary="Change the caller's password; the caller's other sessions end",
        tags=AUTH,
        body="PasswordChange",
        shape="none",
        status=204,
    )
    def change_password(self, request: Request) -> Response:
        body = parsing.validated(PasswordChangeSchema(), request)
        caller = request.environ[CALLER_ENVIRON]
        self.org.change_password(
            body["current_password"], body["new_password"], session_id=caller.session_id
        )
        return no_content()

    @org_event("grants_changed")
    def on_grants_changed(self, envelope: dict[str, Any]) -> None:
        self.tokens.revocations.heard("grants_changed", envelope)

    @org_event("user_changed")
    def on_user_changed(self, envelope: dict[str, Any]) -> None:
        self.tokens.revocations.heard("user_changed", envelope)

    @org_event("session_revoked")
    def on_session_revoked(self, envelope: dict[str, Any]) -> None:
        self.tokens.revocations.heard("session_revoked", envelope)

    # org administration (besides the routes of OrgAdminRoutes) --------------------------

    @route(
        "POST",
        "/api/org/users/<user_id>/password",
        summary="Set a user's password (administrator reset); the user's sessions end",
        description=ADMIN_NOTE,
        tags=ORG,
        body="PasswordReset",
        shape="none",
        status=204,
    )
    def reset_password(self, request: Request, user_id: str) -> Response:
        body = parsing.validated(PasswordResetSchema(), request)
        self.org.reset_password(user_id, body["new_password"])
        return no_content()

    @route(
        "POST",
        "/api/org/users/<user_id>/unlock",
        summary="Lift a user's lockout after repeated failed sign-ins",
        description=ADMIN_NOTE,
        tags=ORG,
        response="User",
    )
    def unlock_user(self, request: Request, user_id: str) -> Response:
        return record_response(self.org.unlock_user(user_id))

    @route(
        "GET",
        "/api/org/permissions",
        summary="The catalog of function permissions roles are made of",
        description="Needs the permission org:admin.",
        tags=ORG,
        shape="items",
        response="Permission",
    )
    def list_permissions(self, request: Request) -> Response:
        return items_response(self.org.list_permissions())

    @route(
        "GET",
        "/api/org/audit",
        summary="Who changed which org record, and how, newest first",
        description="Needs the permission org:admin.",
        tags=ORG,
        query=("entity_type", "entity_id", "actor_id", "cursor", "limit"),
        shape="page",
        response="AuditEntry",
    )
    def audit_log(self, request: Request) -> Response:
        query = parsing.record_query(request.args, ("entity_type", "entity_id", "actor_id"))
        return json_response(self.org.audit_log(query))

    # customers --------------------------------------------------------------------------

    @route(
        "GET",
        "/api/customers",
        summary="Search and list customers",
        query=(*CUSTOMER_FILTERS, "cursor", "limit"),
        shape="page",
        response="Customer",
    )
    def list_customers(self, request: Request) -> Response:
        return json_response(self.customer.list_customers(parsing.customer_query(request.args)))

    @route(
        "POST",
        "/api/customers",
        summary="Create a customer (409 lists likely duplicates unless allow_duplicate=true)",
        query=("allow_duplicate",),
        body="CustomerInput",
        response="Customer",
        status=201,
        errors=(409,),
    )
    def create_customer(self, request: Request) -> Response:
        allow_duplicate = parsing.flag(request.args, "allow_duplicate")
        created = self.customer.create_customer(
            parsing.json_body(request), allow_duplicate=allow_duplicate
        )
        return record_response(created, 201, location=f"/api/customers/{created['id']}")

    @route(
        "GET",
        "/api/customers/export",
        summary="Export the customers matching the filters as CSV (UTF-8 with BOM)",
        query=CUSTOMER_FILTERS,
        shape="csv",
    )
    def export_customers(self, request: Request) -> Response:
        query = parsing.customer_query(request.args, paged=False)
        bulk = self.customer.with_timeout(settings.bulk_rpc_timeout(self.config))
        text = bulk.export_customers(query)
        return csv_response(text, f"customers-{date.today():%Y%m%d}.csv")

    @route(
        "GET",
        "/api/customers/count",
        summary="Count the customers matching the filters",
        query=COUNT_FILTERS,
        shape="object",
        response="CustomerCount",
    )
    def count_customers(self, request: Request) -> Response:
        query = parsing.customer_query(request.args, paged=False, sortable=False)
        return json_response(self.customer.count_customers(query))

    @route(
        "GET",
        "/api/customers/summary",
        summary="How the customers matching the filters break down by status, category and "
        "department",
        query=COUNT_FILTERS,
        shape="object",
        response="CustomerSummary",
    )
    def summarize_customers(self, request: Request) -> Response:
        query = parsing.customer_query(request.args, paged=False, sortable=False)
        return json_response(self.customer.summarize_customers(query))

    @route(
        "POST",
        "/api/customers/import",
        summary="Import customers from CSV, upserting by code or credit code",
        description="Rows with errors are skipped whole and reported with their row number.",
        body="csv",
        shape="object",
        response="ImportResult",
    )
    def import_customers(self, request: Request) -> Response:
        text = parsing.csv_text(request)
        bulk = self.customer.with_timeout(settings.bulk_rpc_timeout(self.config))
        return json_response(bulk.import_customers(text))

    @route(
        "POST",
        "/api/customers/merge",
        summary="Merge one customer into another; contacts, relationships and care move over",
        body="MergeRequest",
        response="Customer",
        errors=(409,),
    )
    def merge_customers(self, request: Request) -> Response:
        merge = parsing.validated(MergeRequestSchema(), request)
        return record_response(
            self.customer.merge_customers(merge["survivor_id"], merge["merged_id"])
        )

    @route("GET", "/api/customers/<customer_id>", summary="Get a customer", response="Customer")
    def get_customer(self, request: Request, customer_id: str) -> Response:
        return record_response(self.customer.get_customer(customer_id))

    @route(
        "PATCH",
        "/api/customers/<customer_id>",
        summary="Change a customer (optimistic locking: If-Match or body version)",
        body="CustomerInput",
        response="Customer",
        if_match=True,
    )
    def update_customer(self, request: Request, customer_id: str) -> Response:
        changes, version = parsing.split_version(request, parsing.json_body(request))
        return record_response(
            self.customer.update_customer(customer_id, changes, expected_version=version)
        )

    @route(
        "GET",
        "/api/customers/<customer_id>/history",
        summary="Who changed which field of a customer, from what to what, and when",
        query=("cursor", "limit"),
        shape="page",
        response="HistoryEntry",
    )
    def customer_history(self, request: Request, customer_id: str) -> Response:
        page = parsing.page_params(request.args)
        return json_response(
            self.customer.customer_history(
                customer_id, cursor=page.get("cursor"), limit=page.get("limit")
            )
        )

    # contacts ---------------------------------------------------------------------------

    @route(
        "GET",
        "/api/customers/<customer_id>/contacts",
        summary="A customer's contacts",
        tags=CONTACTS,
        shape="items",
        response="Contact",
    )
    def list_contacts(self, request: Request, customer_id: str) -> Response:
        return items_response(self.customer.list_contacts(customer_id))

    @route(
        "POST",
        "/api/customers/<customer_id>/contacts",
        summary="Add a contact to a customer",
        tags=CONTACTS,
        body="ContactInput",
        response="Contact",
        status=201,
    )
    def create_contact(self, request: Request, customer_id: str) -> Response:
        created = self.customer.create_contact(customer_id, parsing.json_body(request))
        return record_response(created, 201, location=f"/api/contacts/{created['id']}")

    @route(
        "GET",
        "/api/contacts/<contact_id>",
        summary="Get a contact",
        tags=CONTACTS,
        response="Contact",
    )
    def get_contact(self, request: Request, contact_id: str) -> Response:
        return record_response(self.customer.get_contact(contact_id))

    @route(
        "PATCH",
        "/api/contacts/<contact_id>",
        summary="Change a contact (optimistic locking: If-Match or body version)",
        tags=CONTACTS,
        body="ContactInput",
        response="Contact",
        if_match=True,
    )
    def update_contact(self, request: Request, contact_id: str) -> Response:
        changes, version = parsing.split_version(request, parsing.json_body(request))
        return record_response(
            self.customer.update_contact(contact_id, changes, expected_version=version)
        )

    # relationships and care -------------------------------------------------------------

    @route(
        "GET",
        "/api/customers/<customer_id>/relationships",
        summary="A customer's relationships (parent, subsidiary, partner, influences)",
        shape="items",
        response="Relationship",
    )
    def list_relationships(self, request: Request, customer_id: str) -> Response:
        return items_response(self.customer.list_relationships(customer_id))

    @route(
        "POST",
        "/api/customers/<customer_id>/relationships",
        summary="Relate a customer to another",
        body="RelationshipInput",
        response="Relationship",
        status=201,
        errors=(409,),
    )
    def add_relationship(self, request: Request, customer_id: str) -> Response:
        return record_response(
            self.customer.add_relationship(customer_id, parsing.json_body(request)), 201
        )

    @route(
        "DELETE",
        "/api/customers/<customer_id>/relationships/<relationship_id>",
        summary="Remove a relationship",
        shape="none",
        status=204,
    )
    def remove_relationship(
        self, request: Request, customer_id: str, relationship_id: str
    ) -> Response:
        self.customer.remove_relationship(customer_id, relationship_id)
        return no_content()

    @route(
        "GET",
        "/api/customers/<customer_id>/care",
        summary="A customer's care records (birthday, festival, visit, gift, ...)",
        shape="items",
        response="CareRecord",
    )
    def list_care_records(self, request: Request, customer_id: str) -> Response:
        return items_response(self.customer.list_care_records(customer_id))

    @route(
        "POST",
        "/api/customers/<customer_id>/care",
        summary="Record a care action for a customer",
        body="CareRecordInput",
        response="CareRecord",
        status=201,
    )
    def add_care_record(self, request: Request, customer_id: str) -> Response:
        return record_response(
            self.customer.add_care_record(customer_id, parsing.json_body(request)), 201
        )
