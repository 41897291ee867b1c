import pytest

from gateway import openapi
from gateway.org_admin import KINDS
from gateway.service import GatewayService
from gateway.web import api_routes


def refs_in(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs_in(value)


def test_rule_to_path_template():
    rule = "/api/customers/<customer_id>/relationships/<string:relationship_id>"

    assert (
        openapi.openapi_path(rule) == "/api/customers/{customer_id}/relationships/{relationship_id}"
    )
    assert openapi.path_parameter_names(rule) == ["customer_id", "relationship_id"]


def test_schemas_a_service_does_not_publish_fall_back_without_dangling_refs():
    document = openapi.build_document(api_routes(GatewayService), {"customer": {}})

    schemas = document["components"]["schemas"]
    assert set(schemas) == set(openapi.GATEWAY_SCHEMAS)
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
    assert schema == {"$ref": "#/components/schemas/ContactPatch"}
    derived = document["components"]["schemas"]["ContactPatch"]
    assert "required" not in derived
    assert set(derived["properties"]) == {"name", "mobile", "version"}
    assert document["components"]["schemas"]["ContactInput"]["required"] == ["name"]
    create = document["paths"]["/api/customers/{customer_id}/contacts"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ContactInput"
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


def test_a_service_schema_cannot_replace_the_gateways_own():
    document = openapi.build_document(
        api_routes(GatewayService), {"customer": {"Problem": {"type": "string"}}}
    )

    assert document["components"]["schemas"]["Problem"]["type"] == "object"


def test_every_route_of_the_service_is_documented_once():
    routes = api_routes(GatewayService)
    names = [name for name, _ in routes]

    assert len(names) == len(set(names)) == 67
    assert all(route.doc.get("summary") for _, route in routes)


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.kind)
def test_each_org_kind_has_its_six_routes_and_schemas(kind):
    published = {
        kind.schema: {"type": "object", "properties": {"id": {"type": "string"}}},
        f"{kind.schema}Input": {
            "type": "object",
            "properties": {"name": {"type": "string"}},
            "required": ["name"],
        },
    }
    document = openapi.build_document(api_routes(GatewayService), {"org": published})
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
        "$ref": f"#/components/schemas/{kind.schema}"
    }
    parameters = {p["$ref"].rsplit("/", 1)[1] for p in listing["parameters"] if "$ref" in p}
    assert parameters >= {"q", "disabled", "cursor", "limit", *kind.filters}
    create = paths[collection]["post"]
    assert body_of(create) == {"$ref": f"#/components/schemas/{kind.schema}Input"}
    assert "Location" in create["responses"]["201"]["headers"]
    patch = paths[member]["patch"]
    assert body_of(patch) == {"$ref": f"#/components/schemas/{kind.schema}Patch"}
    assert {"409", "428"} <= set(patch["responses"])
    assert "version" in document["components"]["schemas"][f"{kind.schema}Patch"]["properties"]
    for operation in (paths[member]["get"], paths[f"{member}/disable"]["post"]):
        assert result_of(operation) == {"$ref": f"#/components/schemas/{kind.schema}"}
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
    token = document["components"]["schemas"]["TokenRequest"]["properties"]["password"]
    assert token["writeOnly"] is True and token["format"] == "password"
