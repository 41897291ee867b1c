"""Org administration through the gateway: each route is one RPC on the org service."""

from __future__ import annotations

import pytest

from tests.integration.standins import (
    StandInCustomer,
    StandInOrg,
    access_token,
    gateway_config,
    problem_of,
    start_gateway,
)
from tests.support.tokens import RUN_LONG

ADMIN = access_token(
    "u-admin",
    ttl=RUN_LONG,
    username="admin",
    permissions=["org:admin"],
    grants=[{}],
    sid="s-admin",
)
KINDS = {
    "departments": "parent_id",
    "regions": "parent_id",
    "people": "department_id",
    "users": "role_id",
    "roles": None,
    "grants": "user_id",
}


@pytest.fixture
def api(rabbit_config, runner_factory):
    config = gateway_config(rabbit_config, BACKEND_SERVICES="customer,org")
    return start_gateway(runner_factory, config, StandInCustomer, StandInOrg)


def calls():
    return [{k: v for k, v in call.items() if k != "principal"} for call in StandInOrg.calls]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_list_passes_the_kind_and_its_filters(api, kind):
    params = {"q": "华东", "disabled": "false", "cursor": "c-1", "limit": "20", "parent_id": ""}
    if KINDS[kind]:
        params[KINDS[kind]] = "k-1"

    response = api.get(f"/api/org/{kind}", params=params, token=ADMIN)

    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] == "after-r-1"
    expected = {"q": "华东", "disabled": "false", "cursor": "c-1", "limit": "20"}
    if KINDS[kind]:
        expected[KINDS[kind]] = "k-1"
    assert calls() == [{"method": "list_records", "kind": kind, "query": expected}]
    assert StandInOrg.calls[0]["principal"] == "u-admin"


def test_grants_filter_by_role_and_user_and_filters_of_other_kinds_are_named(api):
    grants = api.get("/api/org/grants?role_id=r-1&user_id=u-1", token=ADMIN)
    foreign = api.get("/api/org/grants?role_id=r-1&parent_id=p", token=ADMIN)
    roles = api.get("/api/org/roles?role_id=r-1&department_id=d", token=ADMIN)

    assert grants.status_code == 200
    assert problem_of(foreign, 422)["errors"] == {"parent_id": ["Unknown field."]}
    assert set(problem_of(roles, 422)["errors"]) == {"role_id", "department_id"}
    assert [call["query"] for call in calls()] == [{"role_id": "r-1", "user_id": "u-1"}]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_create_get_change_disable_and_enable(api, kind):
    created = api.post(f"/api/org/{kind}", json={"code": "X1", "name": "新"}, token=ADMIN)
    got = api.get(f"/api/org/{kind}/rec-1", token=ADMIN)
    changed = api.patch(
        f"/api/org/{kind}/rec-1", json={"name": "改"}, headers={"If-Match": '"2"'}, token=ADMIN
    )
    by_body = api.patch(f"/api/org/{kind}/rec-1", json={"name": "改", "version": 2}, token=ADMIN)
    disabled = api.post(f"/api/org/{kind}/rec-1/disable", token=ADMIN)
    enabled = api.post(f"/api/org/{kind}/rec-1/enable", token=ADMIN)

    if kind == "users":
        assert problem_of(created, 422)["errors"] == {"password": ["needs at least 10 characters"]}
    else:
        assert created.status_code == 201, created.text
        assert created.headers["Location"] == f"/api/org/{kind}/new-{kind}"
        assert created.headers["ETag"] == '"1"'
    assert got.status_code == 200 and got.headers["ETag"] == '"2"'
    assert got.json()["id"] == "rec-1"
    assert changed.status_code == 200 and changed.headers["ETag"] == '"3"'
    assert by_body.status_code == 200
    assert disabled.json()["disabled"] is True and enabled.json()["disabled"] is False
    assert calls() == [
        {"method": "create_record", "kind": kind, "data": {"code": "X1", "name": "新"}},
        {"method": "get_record", "kind": kind, "record_id": "rec-1"},
        {
            "method": "update_record",
            "kind": kind,
            "record_id": "rec-1",
            "changes": {"name": "改"},
            "expected_version": 2,
        },
        {
            "method": "update_record",
            "kind": kind,
            "record_id": "rec-1",
            "changes": {"name": "改"},
            "expected_version": 2,
        },
        {"method": "set_disabled", "kind": kind, "record_id": "rec-1", "disabled": True},
        {"method": "set_disabled", "kind": kind, "record_id": "rec-1", "disabled": False},
    ]


def test_a_user_is_created_with_a_password_that_is_never_answered(api):
    response = api.post(
        "/api/org/users",
        json={"username": "sales07", "password": "Initial-pass-2026", "role_ids": ["r-1"]},
        token=ADMIN,
    )

    assert response.status_code == 201
    assert "Initial-pass-2026" not in response.text
    assert StandInOrg.calls[0]["data"]["password"] == "Initial-pass-2026"


def test_versions_are_required_and_checked(api):
    missing = api.patch("/api/org/departments/d-east", json={"name": "华东大区"}, token=ADMIN)
    stale = api.patch(
        "/api/org/departments/d-east",
        json={"name": "华东大区"},
        headers={"If-Match": '"1"'},
        token=ADMIN,
    )

    assert problem_of(missing, 428)["code"] == "precondition_required"
    problem = problem_of(stale, 409)
    assert (problem["reason"], problem["current_version"]) == ("stale_version", 2)
    assert [call["method"] for call in calls()] == ["update_record"]


def test_bad_filters_are_refused_before_any_call(api):
    flag = api.get("/api/org/users?disabled=perhaps", token=ADMIN)
    limit = api.get("/api/org/audit?limit=0", token=ADMIN)

    assert list(problem_of(flag, 422)["errors"]) == ["disabled"]
    assert list(problem_of(limit, 422)["errors"]) == ["limit"]
    assert calls() == []


def test_the_org_service_decides_who_administers(api):
    sales = access_token()

    forbidden = api.get("/api/org/departments", token=sales)
    anonymous = api.get("/api/org/departments", auth=False)

    assert problem_of(forbidden, 403)["permission"] == "org:admin"
    assert problem_of(anonymous, 401)["code"] == "unauthenticated"
    assert [call["principal"] for call in StandInOrg.calls] == ["u-sales-01"]


def test_a_record_that_is_not_there_is_404(api):
    problem = problem_of(api.get("/api/org/people/missing", token=ADMIN), 404)

    assert problem["id"] == "missing"


def test_password_reset_unlock_permissions_and_audit(api):
    reset = api.post(
        "/api/org/users/u-sales-02/password", json={"new_password": "Reset-pass-2026"}, token=ADMIN
    )
    no_password = api.post("/api/org/users/u-sales-02/password", json={}, token=ADMIN)
    unlocked = api.post("/api/org/users/u-sales-02/unlock", token=ADMIN)
    permissions = api.get("/api/org/permissions", token=ADMIN)
    audit = api.get(
        "/api/org/audit",
        params={"entity_type": "department", "entity_id": "d-east", "actor_id": "u-admin"},
        token=ADMIN,
    )

    assert reset.status_code == 204 and reset.content == b""
    assert problem_of(no_password, 422)["errors"] == {
        "new_password": ["Missing data for required field."]
    }
    assert unlocked.status_code == 200 and unlocked.headers["ETag"] == '"5"'
    assert unlocked.json()["failed_attempts"] == 0
    assert [p["code"] for p in permissions.json()["items"]] == ["customer:read", "org:admin"]
    assert audit.json()["items"][0]["entity_id"] == "d-east"
    assert calls() == [
        {"method": "reset_password", "user_id": "u-sales-02", "new_password": "Reset-pass-2026"},
        {"method": "unlock_user", "user_id": "u-sales-02"},
        {"method": "list_permissions"},
        {
            "method": "audit_log",
            "query": {"entity_type": "department", "entity_id": "d-east", "actor_id": "u-admin"},
        },
    ]
