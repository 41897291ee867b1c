"""The opportunity, process and master-list routes in the gateway's OpenAPI document, built
from the gateway's route table and what the sales service publishes: every query parameter,
bodies and answers as the service's schemas, If-Match where a version is changed."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator

from crm_common.schemas import json_schemas
from gateway import openapi
from gateway.routes.sales.opportunities import ROWS
from gateway.service import GatewayService
from gateway.web import api_routes
from sales.schemas import PUBLIC_SCHEMAS
from sales.schemas.opportunities import OpportunityQuerySchema
from tests.support.openapi import resolve

from .sample_org import EAST_MACHINERY


@pytest.fixture(scope="module")
def document():
    published = {"sales": json_schemas("sales", PUBLIC_SCHEMAS)}
    return openapi.build_document(api_routes(GatewayService), published)


def operation(document, method, path):
    return document["paths"][path][method]


def query_names(document, op):
    parameters = [resolve(document, p["$ref"]) if "$ref" in p else p for p in op["parameters"]]
    return {p["name"] for p in parameters if p["in"] == "query"}


def test_every_row_is_a_documented_operation(document):
    documented = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    for row in ROWS:
        assert (row.method, openapi.openapi_path(row.url)) in documented, row.rpc


def test_the_list_documents_every_query_parameter(document):
    listing = operation(document, "get", "/api/opportunities")
    assert query_names(document, listing) == set(OpportunityQuerySchema().fields)
    assert {"q", "status", "stage_code", "close_from", "amount_min", "tags", "idle_days"} <= (
        query_names(document, listing)
    )
    assert query_names(document, operation(document, "get", "/api/competitors")) == {
        "q",
        "include_inactive",
    }
    history = operation(document, "get", "/api/opportunities/{opportunity_id}/history")
    assert query_names(document, history) == {"cursor", "limit"}


def test_changes_take_if_match_and_answer_the_record(document):
    for path in (
        "/api/opportunities/{opportunity_id}",
        "/api/sales/processes/{process_id}",
        "/api/competitors/{competitor_id}",
    ):
        patch = operation(document, "patch", path)
        assert {"409", "428"} <= set(patch["responses"]), path
    for action in ("stage", "win", "lose", "abandon", "reopen"):
        post = operation(document, "post", f"/api/opportunities/{{opportunity_id}}/{action}")
        headers = {resolve(document, p["$ref"])["name"] for p in post["parameters"] if "$ref" in p}
        assert "If-Match" in headers, action
        ok = post["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok == {"$ref": "#/components/schemas/sales.Opportunity"}


def test_a_patch_body_leaves_out_what_only_a_create_sets(document):
    schemas = document["components"]["schemas"]
    patch = schemas["sales.OpportunityPatch"]["properties"]
    assert "customer_id" not in patch and "process_id" not in patch
    assert {"name", "expected_amount", "version", "contacts"} <= set(patch)
    assert "code" not in schemas["sales.SalesProcessPatch"]["properties"]


def test_a_real_opportunity_matches_its_documented_schema(document, service):
    made = service.create_opportunity(
        {
            "name": "数控机床改造项目",
            "customer_id": str(EAST_MACHINERY),
            "expected_amount": "120000",
            "lines": [{"item_name": "立式加工中心", "quantity": "2", "expected_price": "60000"}],
        }
    )
    schema = {"$ref": "#/components/schemas/sales.Opportunity"}
    Draft202012Validator({**schema, "components": document["components"]}).validate(made)
    page = service.list_opportunities({})
    schema = {"$ref": "#/components/schemas/sales.OpportunityPage"}
    Draft202012Validator({**schema, "components": document["components"]}).validate(page)
    stages = service.opportunity_stages(made["id"])
    schema = {"$ref": "#/components/schemas/sales.StageHistory"}
    Draft202012Validator({**schema, "components": document["components"]}).validate(stages)
