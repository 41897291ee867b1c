"""/api/openapi.json: route metadata from the gateway, record schemas from the services."""

from __future__ import annotations

import re

import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError

from tests.integration.standins import (
    StandInCustomer,
    StandInOrg,
    gateway_config,
    problem_of,
    start_gateway,
)
from tests.support.openapi import refs_in, resolve

SPEC_ROUTES = {
    "/api/customers": {"get", "post"},
    "/api/customers/{customer_id}": {"get", "patch"},
    "/api/customers/{customer_id}/contacts": {"get", "post"},
    "/api/contacts/{contact_id}": {"get", "patch"},
    "/api/customers/{customer_id}/relationships": {"get", "post"},
    "/api/customers/{customer_id}/relationships/{relationship_id}": {"delete"},
    "/api/customers/{customer_id}/care": {"get", "post"},
    "/api/customers/{customer_id}/history": {"get"},
    "/api/customers/{customer_id}/overview": {"get"},
    "/api/customers/merge": {"post"},
    "/api/customers/import": {"post"},
    "/api/customers/export": {"get"},
    "/health": {"get"},
    "/ready": {"get"},
    "/api/openapi.json": {"get"},
    "/api/customers/count": {"get"},
    "/api/customers/summary": {"get"},
    "/api/auth/token": {"post"},
    "/api/auth/refresh": {"post"},
    "/api/auth/logout": {"post"},
    "/api/me": {"get"},
    "/api/me/password": {"post"},
    "/api/org/users/{user_id}/password": {"post"},
    "/api/org/users/{user_id}/unlock": {"post"},
    "/api/org/permissions": {"get"},
    "/api/org/audit": {"get"},
    "/api/admin/dead-letters": {"get"},
    "/api/admin/dead-letters/{service}/{dead_letter_id}": {"get", "delete"},
    "/api/admin/dead-letters/{service}/{dead_letter_id}/replay": {"post"},
}
ORG_KINDS = {
    "departments": "department_id",
    "regions": "region_id",
    "people": "person_id",
    "users": "user_id",
    "roles": "role_id",
    "grants": "grant_id",
}
for _kind, _id in ORG_KINDS.items():
    SPEC_ROUTES[f"/api/org/{_kind}"] = {"get", "post"}
    SPEC_ROUTES[f"/api/org/{_kind}/{{{_id}}}"] = {"get", "patch"}
    SPEC_ROUTES[f"/api/org/{_kind}/{{{_id}}}/disable"] = {"post"}
    SPEC_ROUTES[f"/api/org/{_kind}/{{{_id}}}/enable"] = {"post"}
OPPORTUNITY_ROUTES = {
    "/api/opportunities": {"get", "post"},
    "/api/opportunities/{opportunity_id}": {"get", "patch"},
    "/api/opportunities/{opportunity_id}/stage": {"post"},
    "/api/opportunities/{opportunity_id}/win": {"post"},
    "/api/opportunities/{opportunity_id}/lose": {"post"},
    "/api/opportunities/{opportunity_id}/abandon": {"post"},
    "/api/opportunities/{opportunity_id}/reopen": {"post"},
    "/api/opportunities/{opportunity_id}/stages": {"get"},
    "/api/opportunities/{opportunity_id}/history": {"get"},
    "/api/sales/processes": {"get", "post"},
    "/api/sales/processes/{process_id}": {"get", "patch"},
    "/api/competitors": {"get", "post"},
    "/api/competitors/{competitor_id}": {"get", "patch", "delete"},
    "/api/sales/loss-reasons": {"get", "post"},
    "/api/sales/loss-reasons/{code}": {"patch", "delete"},
}
SPEC_ROUTES.update(OPPORTUNITY_ROUTES)
ACTIVITY_ROUTES = {
    "/api/activities": {"get", "post"},
    "/api/activities/calendar": {"get"},
    "/api/activities/overdue": {"get"},
    "/api/activities/{activity_id}": {"get", "patch"},
    "/api/activities/{activity_id}/complete": {"post"},
    "/api/activities/{activity_id}/cancel": {"post"},
    "/api/activities/{activity_id}/replan": {"post"},
    "/api/activities/{activity_id}/check-in": {"post"},
    "/api/activities/{activity_id}/history": {"get"},
    "/api/expenses": {"get", "post"},
    "/api/expenses/totals": {"get"},
    "/api/expenses/cost-of-sale": {"get"},
    "/api/expenses/categories": {"get", "post"},
    "/api/expenses/categories/{code}": {"patch"},
    "/api/expenses/{expense_id}": {"get"},
    "/api/expenses/{expense_id}/approve": {"post"},
    "/api/expenses/{expense_id}/reject": {"post"},
    "/api/expenses/{expense_id}/pay": {"post"},
    "/api/expenses/{expense_id}/history": {"get"},
    "/api/sales/targets": {"get", "post"},
    "/api/sales/targets/{target_id}": {"get", "patch", "delete"},
    "/api/sales/forecast": {"get"},
    "/api/sales/forecast/attainment": {"get"},
    "/api/sales/forecast/funnel": {"get"},
    "/api/sales/forecast/stage-durations": {"get"},
    "/api/sales/forecast/win-rates": {"get"},
}
SPEC_ROUTES.update(ACTIVITY_ROUTES)
QUOTE_ROUTES = {
    "/api/items": {"get"},
    "/api/items/{item_code}": {"get"},
    "/api/items/{item_code}/price": {"get"},
    "/api/price-lists": {"get"},
    "/api/price-lists/{code}": {"get"},
    "/api/quotes": {"get", "post"},
    "/api/quotes/{quote_id}": {"get", "patch"},
    "/api/quotes/{quote_id}/submit": {"post"},
    "/api/quotes/{quote_id}/approve": {"post"},
    "/api/quotes/{quote_id}/reject": {"post"},
    "/api/quotes/{quote_id}/send": {"post"},
    "/api/quotes/{quote_id}/accept": {"post"},
    "/api/quotes/{quote_id}/decline": {"post"},
    "/api/quotes/{quote_id}/revisions": {"post"},
    "/api/quotes/{quote_id}/versions/{version_no}": {"get"},
    "/api/quotes/{quote_id}/print": {"get"},
    "/api/quotes/{quote_id}/pdf": {"get"},
    "/api/quotes/{quote_id}/history": {"get"},
    "/api/quotes/{quote_id}/order": {"post"},
}
SPEC_ROUTES.update(QUOTE_ROUTES)
QUOTE_TO_CASH_ROUTES = {
    "/api/contracts": {"get", "post"},
    "/api/contracts/expiring": {"get"},
    "/api/contracts/{contract_id}": {"get", "patch"},
    "/api/contracts/{contract_id}/complete": {"post"},
    "/api/contracts/{contract_id}/history": {"get"},
    "/api/contracts/{contract_id}/sign": {"post"},
    "/api/contracts/{contract_id}/terminate": {"post"},
    "/api/erp/unmatched-events": {"get"},
    "/api/erp/unmatched-events/{unmatched_id}/apply": {"post"},
    "/api/orders": {"get", "post"},
    "/api/orders/{order_id}": {"get", "patch"},
    "/api/orders/{order_id}/approve": {"post"},
    "/api/orders/{order_id}/cancel": {"post"},
    "/api/orders/{order_id}/confirm": {"post"},
    "/api/orders/{order_id}/history": {"get"},
    "/api/orders/{order_id}/reject": {"post"},
    "/api/orders/{order_id}/rework": {"post"},
    "/api/orders/{order_id}/shipments": {"get"},
    "/api/receivables/aging": {"get"},
    "/api/receivables/collections": {"get"},
    "/api/receivables/customers/{customer_id}": {"get"},
    "/api/receivables/invoices": {"get"},
    "/api/receivables/invoices/{invoice_no}": {"get"},
    "/api/receivables/overdue": {"get"},
    "/api/receivables/payments": {"get"},
    "/api/receivables/waiting-allocations": {"get"},
}
SPEC_ROUTES.update(QUOTE_TO_CASH_ROUTES)
NOTIFY_ROUTES = {
    "/api/alerts/deliveries": {"get"},
    "/api/alerts/deliveries/{delivery_id}": {"get"},
    "/api/alerts/deliveries/{delivery_id}/retry": {"post"},
    "/api/alerts/rules": {"get", "post"},
    "/api/alerts/rules/{rule_id}": {"delete", "get", "put"},
    "/api/alerts/rules/{rule_id}/disable": {"post"},
    "/api/alerts/rules/{rule_id}/enable": {"post"},
    "/api/alerts/rules/{rule_id}/versions": {"get"},
    "/api/alerts/rules/{rule_id}/versions/{revision}": {"get"},
    "/api/alerts/sms-receipts/{provider}": {"post"},
    "/api/inbox": {"get"},
    "/api/inbox/read": {"post"},
    "/api/inbox/unread-count": {"get"},
    "/api/inbox/{item_id}/read": {"post"},
    "/api/me/notification-preferences": {"get", "put"},
}
SPEC_ROUTES.update(NOTIFY_ROUTES)


@pytest.fixture
def document(rabbit_config, runner_factory):
    config = gateway_config(rabbit_config, BACKEND_SERVICES="customer,org")
    api = start_gateway(runner_factory, config, StandInCustomer, StandInOrg)
    response = api.get("/api/openapi.json", auth=False)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    return response.json()


def test_document_is_openapi_31_with_every_route_of_the_contract(document):
    assert document["openapi"] == "3.1.0"
    assert document["info"]["title"] and document["info"]["version"]
    paths = {path: set(item) for path, item in document["paths"].items()}
    assert paths == SPEC_ROUTES


def test_every_ref_resolves(document):
    refs = set(refs_in(document))

    assert "#/components/schemas/customer.Customer" in refs
    assert "#/components/schemas/customer.Contact" in refs
    for ref in refs:
        resolve(document, ref)


def test_record_schemas_come_from_the_service_and_the_problem_from_the_gateway(document):
    schemas = document["components"]["schemas"]

    assert set(schemas["customer.Customer"]["properties"]) >= {"id", "code", "name", "version"}
    assert schemas["customer.CustomerPage"]["properties"]["items"]["items"] == {
        "$ref": "#/components/schemas/customer.Customer"
    }
    assert set(schemas["gateway.Problem"]["properties"]) >= {
        "type",
        "title",
        "status",
        "detail",
        "code",
        "request_id",
        "errors",
    }
    get_customer = document["paths"]["/api/customers/{customer_id}"]["get"]
    ok = get_customer["responses"]["200"]
    assert ok["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/customer.Customer"
    }
    assert "ETag" in ok["headers"]
    create = document["paths"]["/api/customers"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/customer.CustomerInput"
    }
    not_found = resolve(document, get_customer["responses"]["404"]["$ref"])
    assert not_found["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/gateway.Problem"
    }


def test_org_schemas_come_from_the_org_service(document):
    schemas = document["components"]["schemas"]
    paths = document["paths"]

    def schema_of(operation, status="200"):
        return operation["responses"][status]["content"]["application/json"]["schema"]

    for name in ("Department", "Region", "Person", "User", "Role", "Grant"):
        assert {"id", "version", "disabled"} <= set(schemas[f"org.{name}"]["properties"]), name
        assert "version" in schemas[f"org.{name}Patch"]["properties"], name
    assert schema_of(paths["/api/org/people/{person_id}"]["get"]) == {
        "$ref": "#/components/schemas/org.Person"
    }
    assert schema_of(paths["/api/org/audit"]["get"])["properties"]["items"]["items"] == {
        "$ref": "#/components/schemas/org.AuditEntry"
    }
    assert schema_of(paths["/api/me"]["get"]) == {"$ref": "#/components/schemas/org.Me"}
    token = paths["/api/auth/token"]["post"]
    assert schema_of(token) == {"$ref": "#/components/schemas/gateway.TokenResponse"}
    assert set(schemas["gateway.TokenResponse"]["required"]) == {
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "refresh_expires_at",
    }
    assert "Cache-Control" in token["responses"]["200"]["headers"]
    for name, field in (("TokenRequest", "password"), ("PasswordChange", "new_password")):
        assert schemas[f"gateway.{name}"]["properties"][field]["writeOnly"] is True


def test_bearer_security_applies_to_the_api_but_not_to_operations_routes(document):
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    assert document["security"] == [{"bearerAuth": []}]
    for path in ("/health", "/ready", "/api/openapi.json"):
        assert document["paths"][path]["get"]["security"] == []
    for path in ("/api/auth/token", "/api/auth/refresh", "/api/auth/logout"):
        assert document["paths"][path]["post"]["security"] == []
    for path in ("/api/me", "/api/org/departments", "/api/org/audit"):
        assert "security" not in document["paths"][path]["get"]
    assert "security" not in document["paths"]["/api/customers"]["get"]
    assert "401" in document["paths"]["/api/customers"]["get"]["responses"]


def test_operations_declare_their_parameters_and_unique_ids(document):
    operation_ids = []
    for path, item in document["paths"].items():
        declared_in_path = set(re.findall(r"{([^}]+)}", path))
        for operation in item.values():
            operation_ids.append(operation["operationId"])
            parameters = [
                resolve(document, p["$ref"]) if "$ref" in p else p for p in operation["parameters"]
            ]
            path_parameters = {p["name"] for p in parameters if p["in"] == "path"}
            assert path_parameters == declared_in_path, (path, operation["operationId"])
            assert all(p["required"] for p in parameters if p["in"] == "path")
            assert "X-Request-ID" in {p["name"] for p in parameters if p["in"] == "header"}
            assert operation["responses"], operation["operationId"]
    assert len(operation_ids) == len(set(operation_ids))
    listing = document["paths"]["/api/customers"]["get"]
    names = {resolve(document, p["$ref"])["name"] for p in listing["parameters"] if "$ref" in p}
    assert names >= {"q", "status", "category", "region", "owner_id", "tags", "sort", "cursor"}
    assert names >= {"kind", "department_id"}
    patch = document["paths"]["/api/customers/{customer_id}"]["patch"]
    assert {"409", "428"} <= set(patch["responses"])


def test_without_the_service_the_document_is_503(rabbit_config, runner_factory):
    api = start_gateway(runner_factory, gateway_config(rabbit_config))

    problem = problem_of(api.get("/api/openapi.json", auth=False), 503)

    assert problem["service"] == "customer"


def validator_for(document, schema):
    """A JSON Schema 2020-12 validator whose "#/components/..." refs resolve in ``document``."""
    return Draft202012Validator({**schema, "components": document["components"]})


def test_every_component_schema_is_valid_json_schema_2020_12(document):
    for name, schema in document["components"]["schemas"].items():
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:  # pragma: no cover - the message names the culprit
            pytest.fail(f"{name}: {exc.message}")


def test_real_responses_match_the_documented_schemas(rabbit_config, runner_factory):
    api = start_gateway(runner_factory, gateway_config(rabbit_config), StandInCustomer)
    document = api.get("/api/openapi.json", auth=False).json()
    paths = document["paths"]

    def schema_of(path, method, status, media="application/json"):
        response = paths[path][method]["responses"][status]
        if "$ref" in response:
            response = resolve(document, response["$ref"])
        return response["content"][media]["schema"]

    one = api.get("/api/customers/c-1")
    page = api.get("/api/customers")
    missing = api.get("/api/customers/missing")
    invalid = api.post("/api/customers", json={})

    validator_for(document, schema_of("/api/customers/{customer_id}", "get", "200")).validate(
        one.json()
    )
    validator_for(document, schema_of("/api/customers", "get", "200")).validate(page.json())
    problem_schema = schema_of(
        "/api/customers/{customer_id}", "get", "404", media="application/problem+json"
    )
    for problem in (missing.json(), invalid.json()):
        validator_for(document, problem_schema).validate(problem)
    wrong = {**one.json(), "version": "three"}
    with pytest.raises(ValidationError):
        validator_for(document, schema_of("/api/customers/{customer_id}", "get", "200")).validate(
            wrong
        )
