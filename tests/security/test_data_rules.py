"""The data rules an adversarial audit broke, tried again through the real stack: the gateway
and every service as processes, signed in as the demo users.

Each test fails on a stack without the rule it names: customer codes pushed to the end of the
year by one import, customers moved to departments that do not exist or out of their
manager's sight, care recorded in another user's name, the only administrator disabling
themselves, and duplicate checks telling what lies outside one's scope.
"""

from __future__ import annotations

import uuid

import pytest
import requests

from customer.repository import business_year
from demo.customer import build
from devstack.stack import Suite
from tests.support.polling import eventually

YEAR = business_year()


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    """A stack of its own: a test here failing would change what other modules rely on (the
    administrator, the demo customers)."""
    with Suite(tmp_path_factory.mktemp("data-rules"), demo=True) as running:
        yield running


@pytest.fixture(scope="module")
def sales01(suite):
    return suite.client("sales01")


@pytest.fixture(scope="module")
def branch_east(suite):
    return suite.client("branch.east")


@pytest.fixture(scope="module")
def admin(suite):
    return suite.client("admin")


def unique(name: str) -> str:
    return f"{name}{uuid.uuid4().hex[:6]}有限公司"


def created(client: requests.Session, suite: Suite, **values) -> dict:
    response = client.post(suite.url("/api/customers"), json=values)
    assert response.status_code == 201, response.text
    return response.json()


def assert_refused(response: requests.Response, status: int, *fields: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body = response.json()
    if fields:
        assert set(fields) <= set(body.get("errors") or {}), body
    return body


@pytest.fixture(scope="module")
def structure_known(suite, branch_east):
    """Wait until the customer service's copy of the org structure has caught up (it reads
    org's snapshot when it starts, and follows org's events)."""
    own = created(branch_east, suite, name=unique("华东探针"))

    def placed():
        response = branch_east.patch(
            suite.url(f"/api/customers/{own['id']}"),
            json={"department_id": "d-east-js", "version": own["version"]},
        )
        return response.status_code == 200

    eventually(placed, timeout=60, interval=0.5, what="the org structure known to customer")


# -- customer codes ----------------------------------------------------------------------------
def test_an_imported_last_code_of_the_year_leaves_creates_working(suite, branch_east):
    csv_text = f"code,name,region\nC{YEAR}999999,{unique('远端编码')},华东/上海\n"
    response = branch_east.post(
        suite.url("/api/customers/import"),
        data=csv_text.encode("utf-8"),
        headers={"Content-Type": "text/csv; charset=utf-8"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["created"] == 1, response.text
    made = created(branch_east, suite, name=unique("后来客户"))
    assert made["code"].startswith(f"C{YEAR}") and made["code"] != f"C{YEAR}999999"


def test_a_malformed_imported_code_is_a_row_error(suite, branch_east):
    csv_text = f"code,name\nC{YEAR}12345X,{unique('坏编码')}\n"
    response = branch_east.post(
        suite.url("/api/customers/import"),
        data=csv_text.encode("utf-8"),
        headers={"Content-Type": "text/csv; charset=utf-8"},
    )
    assert response.status_code == 200, response.text
    [row] = response.json()["errors"]
    assert "code" in row["errors"]


# -- departments, regions and transfers ----------------------------------------------------------
def test_a_department_or_region_that_does_not_exist_is_refused(suite, sales01, structure_known):
    response = sales01.post(
        suite.url("/api/customers"),
        json={"name": unique("无名部门"), "department_id": "d-does-not-exist"},
    )
    assert_refused(response, 422, "department_id")
    response = sales01.post(
        suite.url("/api/customers"), json={"name": unique("无名地区"), "region": "华东/火星/某市"}
    )
    assert_refused(response, 422, "region")


def test_a_salesperson_cannot_move_a_customer_to_another_branch(suite, sales01, structure_known):
    mine = created(sales01, suite, name=unique("上海自有"))
    for department in ("d-north-bj", "d-does-not-exist"):
        response = sales01.patch(
            suite.url(f"/api/customers/{mine['id']}"),
            json={"department_id": department, "version": mine["version"]},
        )
        assert_refused(response, 422, "department_id")
    again = sales01.get(suite.url(f"/api/customers/{mine['id']}")).json()
    assert again["department_id"] == "d-east-sh" and again["version"] == mine["version"]


def test_a_branch_manager_transfers_and_the_history_says_so(
    suite, sales01, branch_east, admin, structure_known
):
    theirs = created(branch_east, suite, name=unique("转出"), department_id="d-east-sh")
    response = branch_east.patch(
        suite.url(f"/api/customers/{theirs['id']}"),
        json={"department_id": "d-north-bj", "version": theirs["version"]},
    )
    assert response.status_code == 200, response.text
    assert branch_east.get(suite.url(f"/api/customers/{theirs['id']}")).status_code == 404
    history = admin.get(suite.url(f"/api/customers/{theirs['id']}/history")).json()["items"]
    transfers = [h for h in history if h["change"] == "transferred"]
    assert [(h["field"], h["old"], h["new"]) for h in transfers] == [
        ("department_id", "d-east-sh", "d-north-bj")
    ]


# -- care records --------------------------------------------------------------------------------
def test_care_is_recorded_by_the_caller_unless_they_may_record_for_others(
    suite, sales01, branch_east, structure_known
):
    mine = created(sales01, suite, name=unique("关怀"))
    care = {"kind": "visit", "date": "2026-03-02", "note": "拜访"}
    url = suite.url(f"/api/customers/{mine['id']}/care")
    assert_refused(sales01.post(url, json={**care, "by_user_id": "u-sales-02"}), 422, "by_user_id")
    own = sales01.post(url, json=care)
    assert own.status_code == 201 and own.json()["by_user_id"] == "u-sales-01"
    by_manager = branch_east.post(url, json={**care, "by_user_id": "u-sales-01"})
    assert by_manager.status_code == 201, by_manager.text
    assert by_manager.json()["by_user_id"] == "u-sales-01"


# -- the last administrator ----------------------------------------------------------------------
def test_the_only_administrator_cannot_disable_themselves(suite, admin):
    response = admin.post(suite.url("/api/org/users/u-admin/disable"))
    body = assert_refused(response, 409)
    assert "yourself" in body["detail"]
    me = admin.get(suite.url("/api/me"))
    assert me.status_code == 200


def test_the_only_administrator_keeps_org_admin(suite, admin):
    user = admin.get(suite.url("/api/org/users/u-admin")).json()
    response = admin.patch(
        suite.url("/api/org/users/u-admin"),
        json={"role_ids": ["role-sales-rep"], "version": user["version"]},
    )
    assert_refused(response, 409)
    role = admin.get(suite.url("/api/org/roles/role-admin")).json()
    response = admin.patch(
        suite.url("/api/org/roles/role-admin"),
        json={"permissions": ["customer:read"], "version": role["version"]},
    )
    assert_refused(response, 409)
    assert_refused(admin.post(suite.url("/api/org/roles/role-admin/disable")), 409)
    assert "org:admin" in admin.get(suite.url("/api/me")).json()["permissions"]


# -- duplicates outside one's scope --------------------------------------------------------------
def test_duplicates_outside_the_scope_tell_only_that_one_exists(suite, sales01, structure_known):
    sales02 = suite.client("sales02")
    name = unique("苏州隐秘")
    theirs = created(sales02, suite, name=name, region="华东/江苏/苏州")
    response = sales01.post(suite.url("/api/customers"), json={"name": name})
    body = assert_refused(response, 409)
    assert body["candidates"] == [{"in_scope": False}]
    assert theirs["code"] not in response.text and theirs["id"] not in response.text

    hidden = next(
        c for c in build()["customers"] if c["credit_code"] and c["owner_id"] != "u-sales-01"
    )
    response = sales01.post(
        suite.url("/api/customers"),
        params={"allow_duplicate": "true"},
        json={"name": unique("借用信用代码"), "credit_code": hidden["credit_code"]},
    )
    body = assert_refused(response, 409, "credit_code")
    assert body["candidates"] == [{"in_scope": False}]
    assert hidden["code"] not in response.text and hidden["name"] not in response.text
