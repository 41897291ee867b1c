"""The sales pipeline through the gateway, every service its own process, driven over HTTP like
a front end by demo users: a salesperson of the Shanghai office (sales01) opens an opportunity
for their customer and works it through the stages, logs a visit and submits an expense; the
East branch manager (branch.east) approves it and sees the opportunity in the forecast; a
salesperson of the Beijing office (sales03) cannot see it; the customer overview shows it."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from devstack.stack import Suite
from tests.support.polling import eventually

AMOUNT = "250000.00"


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    with Suite(tmp_path_factory.mktemp("e2e-sales")) as running:
        yield running


@pytest.fixture(scope="module")
def salesperson(suite):
    return suite.client("sales01")


@pytest.fixture(scope="module")
def manager(suite):
    return suite.client("branch.east")


@pytest.fixture(scope="module")
def other_office(suite):
    return suite.client("sales03")


def created(response):
    assert response.status_code == 201, response.text
    return response.json()


def answered(response):
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def customer(suite, salesperson):
    """A customer of sales01 with a contact, once the sales service has its copy."""
    record = created(
        salesperson.post(
            suite.url("/api/customers"),
            json={"name": "上海浦江精密机械有限公司", "region": "华东/上海", "category": "A"},
        )
    )
    contact = created(
        salesperson.post(
            suite.url(f"/api/customers/{record['id']}/contacts"),
            json={"name": "陈建国", "title": "设备部经理", "mobile": "13916880001"},
        )
    )
    return {**record, "contact": contact}


@pytest.fixture(scope="module")
def opportunity(suite, salesperson, customer):
    """An opportunity of sales01's customer moved to the proposal stage, with a visit logged
    and an expense approved by the manager; its last state."""
    body = {"name": "五轴加工中心采购", "customer_id": customer["id"]}

    def opened():
        # 4xx until the sales service has heard of the new customer
        response = salesperson.post(suite.url("/api/opportunities"), json=body)
        return response.json() if response.status_code == 201 else None

    record = eventually(opened, timeout=30, what="an opportunity for the new customer")
    assert record["code"].startswith("OPP-") and record["stage_code"] == "initial_contact"
    assert record["owner_id"] == "u-sales-01" and record["department_id"] == "d-east-sh"
    return record


def move(suite, client, record, stage_code):
    return client.post(
        suite.url(f"/api/opportunities/{record['id']}/stage"),
        json={"stage_code": stage_code},
        headers={"If-Match": f'"{record["version"]}"'},
    )


@pytest.fixture(scope="module")
def proposed(suite, salesperson, opportunity):
    needs = answered(move(suite, salesperson, opportunity, "needs_confirmed"))
    assert needs["probability"] == 30

    refused = move(suite, salesperson, needs, "proposal")
    assert refused.status_code == 422, refused.text
    assert refused.headers["Content-Type"].startswith("application/problem+json")
    errors = refused.json()["errors"]
    assert set(errors) == {"expected_amount", "expected_close_date"}
    assert "方案报价" in errors["expected_amount"][0]

    filled = answered(
        salesperson.patch(
            suite.url(f"/api/opportunities/{opportunity['id']}"),
            json={
                "expected_amount": AMOUNT,
                "expected_close_date": (date.today() + timedelta(days=60)).isoformat(),
            },
            headers={"If-Match": f'"{needs["version"]}"'},
        )
    )
    return answered(move(suite, salesperson, filled, "proposal"))


def test_the_opportunity_moves_through_stages_checking_required_fields(proposed):
    assert proposed["stage_code"] == "proposal" and proposed["probability"] == 50
    assert proposed["expected_amount"] == AMOUNT
    assert Decimal(proposed["weighted_amount"]) == Decimal(AMOUNT) / 2


@pytest.fixture(scope="module")
def visit(suite, salesperson, customer, proposed):
    """A visit logged as done on the opportunity, with its check-in position."""
    return created(
        salesperson.post(
            suite.url("/api/activities"),
            json={
                "type": "visit",
                "subject": "拜访设备部，介绍方案",
                "customer_id": customer["id"],
                "contact_id": customer["contact"]["id"],
                "opportunity_id": proposed["id"],
                "status": "done",
                "result": "客户认可方案，下周报价",
                "next_step": "准备正式报价",
                "checkin_lat": "31.230416",
                "checkin_lng": "121.473701",
            },
        )
    )


def test_a_visit_is_logged_on_the_opportunity(suite, salesperson, proposed, visit):
    assert visit["status"] == "done" and visit["owner_id"] == "u-sales-01"
    assert visit["checkin_at"] is not None

    again = answered(salesperson.get(suite.url(f"/api/opportunities/{proposed['id']}")))
    assert again["last_activity_at"] is not None


def test_an_expense_is_approved_by_the_manager(suite, salesperson, manager, customer, proposed):
    expense = created(
        salesperson.post(
            suite.url("/api/expenses"),
            json={
                "expense_category": "travel",
                "amount": "680.50",
                "spent_on": date.today().isoformat(),
                "customer_id": customer["id"],
                "opportunity_id": proposed["id"],
                "receipt_no": "SH-2026-0001",
            },
        )
    )
    assert expense["status"] == "submitted"
    assert [level["approver_user_id"] for level in expense["approvals"]] == ["u-branch-east"]

    own = salesperson.post(suite.url(f"/api/expenses/{expense['id']}/approve"), json={})
    assert own.status_code == 403, own.text  # a salesperson approves nothing, their own least
    waiting = answered(manager.get(suite.url("/api/expenses"), params={"awaiting_me": "true"}))
    assert expense["id"] in [item["id"] for item in waiting["items"]]

    approved = answered(
        manager.post(suite.url(f"/api/expenses/{expense['id']}/approve"), json={"comment": "同意"})
    )
    assert approved["status"] == "approved"
    assert approved["approvals"][0]["decision"] == "approved"


def test_the_managers_forecast_shows_the_weighted_amount(suite, manager, proposed):
    forecast = answered(manager.get(suite.url("/api/sales/forecast"), params={"group_by": "owner"}))

    mine = [group for group in forecast["groups"] if group["key"] == "u-sales-01"]
    assert [(group["currency"], group["count"], group["weighted"]) for group in mine] == [
        ("CNY", 1, proposed["weighted_amount"])
    ]
    by_stage = answered(manager.get(suite.url("/api/sales/forecast"), params={"group_by": "stage"}))
    assert {group["key"]: group["weighted"] for group in by_stage["groups"]} == {
        "proposal": proposed["weighted_amount"]
    }


def test_another_offices_salesperson_cannot_see_it(suite, other_office, proposed):
    response = other_office.get(suite.url(f"/api/opportunities/{proposed['id']}"))
    assert response.status_code == 404, response.text
    listed = answered(other_office.get(suite.url("/api/opportunities")))
    assert proposed["id"] not in [item["id"] for item in listed["items"]]
    moved = move(suite, other_office, proposed, "negotiation")
    assert moved.status_code == 404, moved.text


def test_the_customer_overview_shows_it(
    suite, salesperson, other_office, customer, proposed, visit
):
    overview = answered(salesperson.get(suite.url(f"/api/customers/{customer['id']}/overview")))

    assert overview["complete"] is True
    assert overview["customer"]["record"]["name"] == "上海浦江精密机械有限公司"
    assert [item["name"] for item in overview["contacts"]["items"]] == ["陈建国"]
    assert [item["id"] for item in overview["opportunities"]["items"]] == [proposed["id"]]
    assert overview["opportunities"]["totals"] == [
        {"currency": "CNY", "count": 1, "amount": AMOUNT, "weighted": proposed["weighted_amount"]}
    ]
    assert [item["id"] for item in overview["activities"]["items"]] == [visit["id"]]

    hidden = other_office.get(suite.url(f"/api/customers/{customer['id']}/overview"))
    assert hidden.status_code == 404, hidden.text
