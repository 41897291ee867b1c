import json

import pytest

from crm_common.schemas import json_schemas
from customer.schemas import PUBLIC_SCHEMAS as CUSTOMER_SCHEMAS
from gateway import aggregates, openapi
from gateway.routes.org import KINDS
from gateway.service import GatewayService
from gateway.web import api_routes
from org.schemas import PUBLIC_SCHEMAS as ORG_SCHEMAS
from tests.support.openapi import refs_in, resolve


@pytest.fixture(scope="module")
def published():
    """What the real customer and org services answer to ``api_schemas``."""
    return {
        "customer": json_schemas("customer", CUSTOMER_SCHEMAS),
        "org": json_schemas("org", ORG_SCHEMAS),
    }


@pytest.fixture(scope="module")
def document(published):
    return openapi.build_document(api_routes(GatewayService), published)


def parameter_names(document, operation):
    """The names of ``operation``'s query parameters."""
    parameters = [
        resolve(document, p["$ref"]) if "$ref" in p else p for p in operation["parameters"]
    ]
    return {p["name"] for p in parameters if p["in"] == "query"}


def test_rule_to_path_template():
    rule = "/api/customers/<customer_id>/relationships/<string:relationship_id>"

    assert (
        openapi.openapi_path(rule) == "/api/customers/{customer_id}/relationships/{relationship_id}"
    )
    assert openapi.path_parameter_names(rule) == ["customer_id", "relationship_id"]


def test_schemas_a_service_does_not_publish_fall_back_without_dangling_refs():
    document = openapi.build_document(api_routes(GatewayService), {"customer": {}})

    schemas = document["components"]["schemas"]
    assert all(name.startswith("gateway.") for name in schemas)
    assert set(schemas) == {*openapi.GATEWAY_SCHEMAS, *aggregates.components({})}
    for ref in refs_in(document):
        section, name = ref.split("/")[2:]
        assert name in document["components"][section], ref
    get_customer = document["paths"]["/api/customers/{customer_id}"]["get"]
    assert get_customer["responses"]["200"]["content"]["application/json"]["schema"] == {
        "type": "object"
    }


def test_a_patch_body_is_the_input_schema_made_optional_with_a_version():
    contact_input = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "mobile": {"type": "string"}},
        "required": ["name"],
        "additionalProperties": False,
    }
    published = {"customer": {"ContactInput": contact_input}}

    document = openapi.build_document(api_routes(GatewayService), published)

    patch = document["paths"]["/api/contacts/{contact_id}"]["patch"]
    schema = patch["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/customer.ContactPatch"}
    derived = document["components"]["schemas"]["customer.ContactPatch"]
    assert "required" not in derived
    assert set(derived["properties"]) == {"name", "mobile", "version"}
    assert document["components"]["schemas"]["customer.ContactInput"]["required"] == ["name"]
    create = document["paths"]["/api/customers/{customer_id}/contacts"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/customer.ContactInput"
    }


def test_openapi_30_nullable_becomes_a_31_type_union():
    schema = {
        "type": "object",
        "properties": {
            "short_name": {"type": "string", "nullable": True},
            "owner": {"$ref": "#/components/schemas/User", "nullable": True},
            "code": {"type": "string", "nullable": False},
            "tags": {"type": "array", "items": {"type": "integer", "nullable": True}},
        },
    }

    converted = openapi.to_openapi_31(schema)

    properties = converted["properties"]
    assert properties["short_name"] == {"type": ["string", "null"]}
    assert properties["owner"] == {
        "anyOf": [{"$ref": "#/components/schemas/User"}, {"type": "null"}]
    }
    assert properties["code"] == {"type": "string"}
    assert properties["tags"]["items"] == {"type": ["integer", "null"]}
    assert schema["properties"]["short_name"]["nullable"] is True


def test_components_are_namespaced_per_service_and_refs_follow():
    published = {
        "customer": {
            "Problem": {"type": "string"},
            "Customer": {"properties": {"contact": {"$ref": "#/components/schemas/Contact"}}},
            "Contact": {"type": "object"},
        },
        "org": {"Contact": {"type": "integer"}},
    }

    schemas = openapi.build_document(api_routes(GatewayService), published)["components"]["schemas"]

    assert schemas["gateway.Problem"]["type"] == "object"
    assert schemas["customer.Problem"] == {"type": "string"}
    assert schemas["customer.Customer"]["properties"]["contact"] == {
        "$ref": "#/components/schemas/customer.Contact"
    }
    assert schemas["org.Contact"] == {"type": "integer"}


@pytest.mark.parametrize(
    "published",
    [{"gateway": {"Problem": {"type": "string"}}}, {"customer": {"Customer Record": {}}}],
    ids=["the gateway's namespace", "an invalid name"],
)
def test_a_component_name_that_clashes_or_is_invalid_fails_the_build(published):
    with pytest.raises(ValueError):
        openapi.build_document(api_routes(GatewayService), published)


def test_the_real_services_schemas_build_without_clashes_or_dangling_refs(document):
    schemas = document["components"]["schemas"]

    assert {"customer.Customer", "customer.CustomerSummary", "org.User", "gateway.Problem"} <= set(
        schemas
    )
    assert not {"CustomerCount", "CustomerSummary", "gateway.CustomerCount"} & set(schemas)
    for section in ("schemas", "parameters", "responses"):
        assert all(openapi.COMPONENT_NAME.match(name) for name in document["components"][section])
    for ref in refs_in(document):
        resolve(document, ref)


def test_query_parameters_come_from_the_services_query_schemas(document):
    paths = document["paths"]

    listing = parameter_names(document, paths["/api/customers"]["get"])
    counting = parameter_names(document, paths["/api/customers/count"]["get"])
    exporting = parameter_names(document, paths["/api/customers/export"]["get"])

    filters = {
        "q",
        "status",
        "category",
        "kind",
        "region",
        "owner_id",
        "department_id",
        "erp_code",
        "tags",
    }
    assert listing == filters | {"sort", "cursor", "limit"}
    assert counting == filters
    assert parameter_names(document, paths["/api/customers/summary"]["get"]) == filters
    assert exporting == filters | {"sort"}
    assert parameter_names(document, paths["/api/org/audit"]["get"]) == {
        "entity_type",
        "entity_id",
        "actor_id",
        "cursor",
        "limit",
    }
    tags = resolve(document, "#/components/parameters/customer.CustomerQuery.tags")
    assert tags["schema"]["type"] == "array" and tags["explode"] is True
    kind = resolve(document, "#/components/parameters/customer.CustomerQuery.kind")
    assert kind["in"] == "query" and kind["schema"]["enum"] == ["enterprise", "individual"]
    assert "null" not in json.dumps(document["components"]["parameters"])


def test_every_route_of_the_service_is_documented_once():
    routes = api_routes(GatewayService)
    names = [name for name, _ in routes]

    assert len(names) == len(set(names)) == 199
    assert all(route.doc.get("summary") for _, route in routes)


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.kind)
def test_each_org_kind_has_its_six_routes_and_schemas(kind, published):
    document = openapi.build_document(api_routes(GatewayService), {"org": published["org"]})
    paths = document["paths"]
    collection = f"/api/org/{kind.kind}"
    member = f"{collection}/{{{kind.singular}_id}}"

    def body_of(operation):
        return operation["requestBody"]["content"]["application/json"]["schema"]

    def result_of(operation, status="200"):
        return operation["responses"][status]["content"]["application/json"]["schema"]

    assert set(paths[collection]) == {"get", "post"}
    assert set(paths[member]) == {"get", "patch"}
    assert set(paths[f"{member}/disable"]) == set(paths[f"{member}/enable"]) == {"post"}
    listing = paths[collection]["get"]
    assert listing["operationId"] == f"list_{kind.kind}"
    assert result_of(listing)["properties"]["items"]["items"] == {
        "$ref": f"#/components/schemas/org.{kind.schema}"
    }
    query = published["org"][f"{kind.schema}Query"]["properties"]
    assert parameter_names(document, listing) == set(query) >= {"q", "disabled", "cursor", "limit"}
    create = paths[collection]["post"]
    assert body_of(create) == {"$ref": f"#/components/schemas/org.{kind.schema}Input"}
    assert "Location" in create["responses"]["201"]["headers"]
    patch = paths[member]["patch"]
    assert body_of(patch) == {"$ref": f"#/components/schemas/org.{kind.schema}Patch"}
    assert {"409", "428"} <= set(patch["responses"])
    patch_schema = document["components"]["schemas"][f"org.{kind.schema}Patch"]
    assert "version" in patch_schema["properties"]
    for operation in (paths[member]["get"], paths[f"{member}/disable"]["post"]):
        assert result_of(operation) == {"$ref": f"#/components/schemas/org.{kind.schema}"}
        assert {"401", "403", "404"} <= set(operation["responses"])
        assert operation["tags"] == ["org"]


def test_sign_in_routes_need_no_token_and_say_not_to_cache():
    document = openapi.build_document(api_routes(GatewayService), {})

    for path in ("/api/auth/token", "/api/auth/refresh"):
        operation = document["paths"][path]["post"]
        assert operation["security"] == []
        assert "Cache-Control" in operation["responses"]["200"]["headers"]
        assert {"401", "422"} <= set(operation["responses"])
    assert document["paths"]["/api/auth/logout"]["post"]["security"] == []
    assert "security" not in document["paths"]["/api/me"]["get"]
    token = document["components"]["schemas"]["gateway.TokenRequest"]["properties"]["password"]
    assert token["writeOnly"] is True and token["format"] == "password"
