"""The HTTP gateway: each route turns one HTTP request into one RPC on a backend service."""

from __future__ import annotations

import contextvars
from datetime import date

import eventlet
from marshmallow import ValidationError
from nameko.dependency_providers import Config
from werkzeug.wrappers import Request, Response

from crm_common.context import CallContext
from crm_common.errors import ValidationFailed
from gateway import openapi, parsing, readiness, settings
from gateway.responses import (
    csv_response,
    items_response,
    json_response,
    no_content,
    record_response,
)
from gateway.rpc import ServiceRpc
from gateway.schemas import MergeRequestSchema
from gateway.web import api_routes, route

CUSTOMER_FILTERS = ("q", "status", "category", "region", "owner_id", "tags", "sort")
OPERATIONS = ["operations"]
CONTACTS = ["contacts"]


class GatewayService:
    name = "gateway"

    context = CallContext()
    config = Config()
    customer = ServiceRpc("customer")
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
        try:
            merge = MergeRequestSchema().load(parsing.json_body(request))
        except ValidationError as exc:
            raise ValidationFailed.from_marshmallow(exc) from None
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
