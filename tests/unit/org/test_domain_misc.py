from crm_common.history import created, diff, jsonable, snapshot
from org.domain.permissions import (
    CATALOG,
    ORG_ADMIN,
    SYSTEM_ADMIN,
    catalog,
    unknown_permissions,
)
from org.domain.tokens import hash_token, new_refresh_token


def test_refresh_tokens_are_random_and_stored_as_sha256():
    tokens = {new_refresh_token() for _ in range(50)}
    assert len(tokens) == 50 and all(len(t) >= 43 for t in tokens)
    token = next(iter(tokens))
    digest = hash_token(token)
    assert len(digest) == 64 and token not in digest
    assert hash_token(token) == digest and hash_token(token + "x") != digest


def test_the_permission_catalog():
    assert {
        "customer:read",
        "customer:write",
        "customer:import",
        "customer:export",
        "customer:merge",
        "customer:transfer",
        "customer:care-on-behalf",
        "opportunity:read",
        "opportunity:write",
        "opportunity:reopen",
        "activity:read",
        "activity:write",
        "expense:read",
        "expense:submit",
        "expense:approve",
        "expense:pay",
        "forecast:read",
        "receivable:read",
        "order:read",
        "order:write",
        "order:approve",
        "contract:read",
        "contract:write",
        "sales:admin",
        "alerts:admin",
        ORG_ADMIN,
        SYSTEM_ADMIN,
    } == set(CATALOG)
    assert unknown_permissions(["customer:read", "customer:fly", "x"]) == ["customer:fly", "x"]
    assert [p["code"] for p in catalog()] == list(CATALOG)
    assert all(p["description"] for p in catalog())


def test_audit_changes():
    class Record:
        name, tags, at = "华东", ("a",), None

    before = snapshot(Record, ("name", "tags", "at"))
    assert before == {"name": "华东", "tags": ["a"], "at": None}
    after = {**before, "name": "华东区"}
    assert [c.as_dict() for c in diff(before, after)] == [
        {"field": "name", "old": "华东", "new": "华东区"}
    ]
    assert diff(before, before) == []
    assert [c.as_dict() for c in created({"name": "x", "parent_id": None, "tags": []})] == [
        {"field": "name", "old": None, "new": "x"}
    ]
    assert jsonable({1: {2}}) == {"1": [2]}
