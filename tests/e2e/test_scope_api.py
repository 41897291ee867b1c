"""Signed in as demo users over HTTP: each sees exactly their share of the demo customers, and
sign-in, refresh, logout and grant changes behave as a front end relies on."""

from __future__ import annotations

import csv
import io
import json
import time

import pytest
import requests

from demo.customer import build
from devstack.stack import DEMO_PASSWORD, Suite
from tests.support.openapi import refs_in

EAST_BRANCH = {"d-east", "d-east-sh", "d-east-js"}
RANDOM_ID = "00000000-0000-4000-8000-000000000000"


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    with Suite(tmp_path_factory.mktemp("e2e-scope"), demo=True) as running:
        yield running


@pytest.fixture(scope="module")
def demo_customers():
    return [c for c in build()["customers"] if c["status"] != "merged"]


def visible_ids(client, suite, **params):
    seen, cursor = [], None
    while True:
        query = {"limit": 200, **params, **({"cursor": cursor} if cursor else {})}
        page = client.get(suite.url("/api/customers"), params=query)
        assert page.status_code == 200, page.text
        seen += [item["id"] for item in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if not cursor:
            return seen


def same_problem(response, asked_id):
    """A problem body with what differs between any two requests taken out: the id asked
    for, the request id and the path."""
    body = json.loads(response.text.replace(asked_id, "<id>"))
    return {k: v for k, v in body.items() if k not in ("request_id", "instance")}


def ids_of(customers):
    return {str(c["id"]) for c in customers}


EXPECTED_SHARES = {
    "sales01": lambda c: c["owner_id"] == "u-sales-01",
    "branch.east": lambda c: c["department_id"] in EAST_BRANCH,
    "manager01": lambda c: (
        c["owner_id"] == "u-manager-01"
        or (c["department_id"] in EAST_BRANCH and c["category"] in ("A", "VIP"))
    ),
    "marketing01": lambda c: c["region"] == "华东" or c["region"].startswith("华东/"),
    "business01": lambda c: True,
}


@pytest.mark.parametrize("username", EXPECTED_SHARES)
def test_each_demo_user_sees_exactly_their_share(suite, demo_customers, username):
    expected = ids_of(c for c in demo_customers if EXPECTED_SHARES[username](c))
    assert 0 < len(expected) <= len(demo_customers)
    client = suite.client(username)
    seen = visible_ids(client, suite)
    assert len(seen) == len(set(seen))
    assert set(seen) == expected
    count = client.get(suite.url("/api/customers/count")).json()["count"]
    assert count == len(expected)
    summary = client.get(suite.url("/api/customers/summary")).json()
    assert summary["total"] == len(expected)


def test_the_branch_manager_sees_the_offices_a_salesperson_does_not(suite, demo_customers):
    rep, branch = suite.client("sales01"), suite.client("branch.east")
    rep_ids = set(visible_ids(rep, suite))
    branch_ids = set(visible_ids(branch, suite))
    assert rep_ids < branch_ids
    colleague = next(c for c in demo_customers if c["owner_id"] == "u-sales-02")
    assert str(colleague["id"]) in branch_ids - rep_ids


def test_a_record_outside_the_scope_answers_like_one_that_does_not_exist(suite, demo_customers):
    rep = suite.client("sales01")
    other = str(next(c for c in demo_customers if c["owner_id"] == "u-sales-03")["id"])
    for path in ("", "/history", "/contacts", "/relationships", "/care"):
        outside = rep.get(suite.url(f"/api/customers/{other}{path}"))
        missing = rep.get(suite.url(f"/api/customers/{RANDOM_ID}{path}"))
        assert outside.status_code == missing.status_code == 404, path
        assert same_problem(outside, other) == same_problem(missing, RANDOM_ID), path
    patched = rep.patch(
        suite.url(f"/api/customers/{other}"), json={"remark": "x"}, headers={"If-Match": '"1"'}
    )
    assert patched.status_code == 404


def test_export_holds_exactly_the_callers_customers(suite, demo_customers):
    exported = suite.client("sales01").get(suite.url("/api/customers/export"))
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    mine = [c for c in demo_customers if c["owner_id"] == "u-sales-01"]
    assert sorted(row["code"] for row in rows) == sorted(c["code"] for c in mine)


def test_a_salesperson_cannot_hand_a_customer_to_another_department(suite):
    rep = suite.client("sales01")
    created = rep.post(
        suite.url("/api/customers"),
        json={"name": "嘉兴南湖传动件有限公司", "region": "华东/浙江/嘉兴"},
    )
    assert created.status_code == 201, created.text
    customer = created.json()
    assert (customer["owner_id"], customer["department_id"]) == ("u-sales-01", "d-east-sh")
    moved = rep.patch(
        suite.url(f"/api/customers/{customer['id']}"),
        json={"owner_id": "u-sales-03"},
        headers={"If-Match": f'"{customer["version"]}"'},
    )
    assert moved.status_code == 422
    assert "owner_id" in moved.json()["errors"]
    foreign = rep.post(
        suite.url("/api/customers"),
        json={"name": "唐山冀东电机有限公司", "owner_id": "u-sales-03"},
    )
    assert foreign.status_code == 422
    assert "owner_id" in foreign.json()["errors"]


def test_me_shows_person_department_roles_permissions_and_grants(suite):
    me = suite.client("branch.east").get(suite.url("/api/me"))
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["user"]["username"] == "branch.east"
    assert body["department"]["id"] == "d-east"
    assert [role["code"] for role in body["roles"]] == ["branch_manager"]
    assert "customer:import" in body["permissions"]
    assert [set(grant["departments"]) for grant in body["scope"]] == [EAST_BRANCH]
    assert "password" not in me.text.lower().replace("password_changed_at", "")


def test_refresh_rotates_and_a_reused_refresh_token_ends_the_session(suite):
    first = suite.sign_in("sales02")
    refreshed = requests.post(
        suite.url("/api/auth/refresh"), json={"refresh_token": first["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    second = refreshed.json()
    assert second["refresh_token"] != first["refresh_token"]
    reused = requests.post(
        suite.url("/api/auth/refresh"), json={"refresh_token": first["refresh_token"]}
    )
    assert reused.status_code == 401
    family = requests.post(
        suite.url("/api/auth/refresh"), json={"refresh_token": second["refresh_token"]}
    )
    assert family.status_code == 401


def test_logout_revokes_the_session(suite):
    tokens = suite.sign_in("sales03")
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert requests.get(suite.url("/api/me"), headers=headers).status_code == 200
    out = requests.post(
        suite.url("/api/auth/logout"),
        json={"refresh_token": tokens["refresh_token"]},
        headers=headers,
    )
    assert out.status_code == 204
    assert requests.get(suite.url("/api/me"), headers=headers).status_code == 401
    again = requests.post(
        suite.url("/api/auth/refresh"), json={"refresh_token": tokens["refresh_token"]}
    )
    assert again.status_code == 401


def test_a_new_grant_applies_at_once_and_the_old_token_must_be_refreshed(suite, demo_customers):
    tokens = suite.sign_in("sales04")
    old = {"Authorization": f"Bearer {tokens['access_token']}"}
    before = requests.get(suite.url("/api/customers/count"), headers=old).json()["count"]
    assert before == sum(1 for c in demo_customers if c["owner_id"] == "u-sales-04")

    admin = suite.client("admin")
    granted = admin.post(
        suite.url("/api/org/grants"),
        json={
            "name": "天津办事处的全部客户",
            "user_id": "u-sales-04",
            "departments": [{"department_id": "d-north-tj", "include_children": True}],
        },
    )
    assert granted.status_code == 201, granted.text

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        response = requests.get(suite.url("/api/customers/count"), headers=old)
        if response.status_code == 401:
            break
        time.sleep(0.1)
    assert response.status_code == 401, "the token issued before the grant is still accepted"

    refreshed = requests.post(
        suite.url("/api/auth/refresh"), json={"refresh_token": tokens["refresh_token"]}
    ).json()
    new = {"Authorization": f"Bearer {refreshed['access_token']}"}
    after = requests.get(suite.url("/api/customers/count"), headers=new).json()["count"]
    assert after == sum(
        1
        for c in demo_customers
        if c["owner_id"] == "u-sales-04" or c["department_id"] == "d-north-tj"
    )
    audit = admin.get(
        suite.url("/api/org/audit"),
        params={"entity_type": "grant", "entity_id": granted.json()["id"]},
    )
    assert audit.status_code == 200, audit.text
    assert [entry["actor_id"] for entry in audit.json()["items"]] == ["u-admin"]


def test_org_administration_needs_org_admin(suite):
    rep = suite.client("sales01")
    response = rep.get(suite.url("/api/org/users"))
    assert response.status_code == 403
    assert suite.client("admin").get(suite.url("/api/org/users")).status_code == 200


def test_repeated_bad_passwords_hold_the_user_back_and_no_password_reaches_a_log(suite):
    answers = []
    for attempt in range(6):
        bad = requests.post(
            suite.url("/api/auth/token"),
            json={"username": "engineer01", "password": f"wrong-secret-{attempt}"},
        )
        assert f"wrong-secret-{attempt}" not in bad.text
        answers.append(bad.status_code)
    # refused first, then told to wait before trying again
    assert answers[0] == 401
    assert answers[-1] == 429
    assert set(answers) == {401, 429}
    held_back = requests.post(
        suite.url("/api/auth/token"),
        json={"username": "engineer01", "password": DEMO_PASSWORD},
    )
    assert held_back.status_code == 429
    assert int(held_back.headers["Retry-After"]) >= 1
    logs = "\n".join(path.read_text(errors="replace") for path in suite.workdir.glob("*.log"))
    assert "engineer01" in logs
    assert "wrong-secret-" not in logs
    assert DEMO_PASSWORD not in logs


def test_the_openapi_document_of_the_running_services_resolves_every_reference(suite):
    document = requests.get(suite.url("/api/openapi.json")).json()
    schemas = document["components"]["schemas"]
    refs = set(refs_in(document))
    published = {"org.Grant", "customer.CustomerSummary"}
    assert {f"#/components/schemas/{name}" for name in published} <= refs
    for ref in refs:
        node = document
        for part in ref.removeprefix("#/").split("/"):
            assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
            node = node[part]
    assert "password" not in schemas["org.User"]["properties"]
    assert "password" in schemas["org.UserInput"]["properties"]
    assert "password" not in schemas["org.UserPatch"]["properties"]
