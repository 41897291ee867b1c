from crm_common.context import bind

NAMES = {
    "Department",
    "DepartmentInput",
    "Region",
    "RegionInput",
    "Person",
    "PersonInput",
    "User",
    "UserInput",
    "Role",
    "RoleInput",
    "Grant",
    "GrantInput",
    "AuditEntry",
    "Me",
    "Permission",
}


def test_ping_and_schemas_need_no_caller(service):
    bind(None, None)
    assert service.ping() == "pong"
    schemas = service.api_schemas()
    assert set(schemas) >= NAMES
    user_input = schemas["UserInput"]["properties"]
    assert user_input["password"].get("writeOnly") is True
    assert "password" not in schemas["User"]["properties"]
    assert "password_hash" not in schemas["User"]["properties"]
    assert set(schemas["UserInput"]["required"]) == {"username", "password"}
    assert schemas["Department"]["properties"]["type"]["enum"] == [
        "sales",
        "marketing",
        "business",
        "service",
        "operations",
    ]
    assert schemas["Me"]["properties"]["scope"]["items"] == {
        "$ref": "#/components/schemas/CompiledGrant"
    }
    for name in NAMES:
        assert schemas[name]["type"] == "object"
