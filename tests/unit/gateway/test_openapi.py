from gateway import openapi
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
    assert set(schemas) == {"Problem", "MergeRequest", "Health", "Readiness"}
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

    assert len(names) == len(set(names)) == 20
    assert all(route.doc.get("summary") for _, route in routes)
