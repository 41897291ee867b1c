"""Quoting through the gateway, every service its own process: the ERP (the pika simulator's
publisher) sends its items and price list on ``erp.events``; a salesperson of the Shanghai
office (sales01) finds an item by part of its Chinese name, prices it for a category-A
customer, quotes it on an opportunity with a discount beyond a sales_rep's authority; the East
branch manager (branch.east) finds it waiting for them and approves it; another office's
salesperson cannot see it; the quote is printed (HTML and PDF), sent and accepted: the
opportunity moves on and the order is made from the quote."""

from __future__ import annotations

from decimal import Decimal

import pytest

from devstack.stack import Suite
from tests.support.polling import eventually
from tools.erp_simulator import broker
from tools.erp_simulator.world import Stream

ITEM = "BRG-6205-2RS"


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    with Suite(tmp_path_factory.mktemp("e2e-quotes")) as running:
        master_data = [
            event.envelope
            for event in Stream(7).master_data()
            if event.envelope["type"] in ("item_updated", "price_list_updated")
        ]
        erp_uri = f"amqp://guest:guest@{running.amqp_host}/{running.vhost}"
        assert broker.publish_all(erp_uri, master_data) == len(master_data)
        yield running


@pytest.fixture(scope="module")
def salesperson(suite):
    return suite.client("sales01")


@pytest.fixture(scope="module")
def manager(suite):
    return suite.client("branch.east")


def created(response):
    assert response.status_code == 201, response.text
    return response.json()


def answered(response):
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def opportunity(suite, salesperson):
    customer = created(
        salesperson.post(
            suite.url("/api/customers"),
            json={"name": "苏州恒力传动设备有限公司", "region": "华东/上海", "category": "A"},
        )
    )
    body = {"name": "减速机轴承年度采购", "customer_id": customer["id"]}

    def opened():
        response = salesperson.post(suite.url("/api/opportunities"), json=body)
        return response.json() if response.status_code == 201 else None

    return eventually(opened, timeout=30, what="an opportunity for the new customer")


def test_items_from_the_erp_are_found_by_partial_chinese_and_priced(
    suite, salesperson, opportunity
):
    def bearings():
        found = answered(salesperson.get(suite.url("/api/items"), params={"q": "轴承"}))
        return found["items"] if len(found["items"]) >= 10 else None

    items = eventually(bearings, timeout=30, what="the ERP's bearings")
    assert all("轴承" in item["name"] for item in items)
    item = answered(salesperson.get(suite.url(f"/api/items/{ITEM}")))
    assert item["prices"], "the price list's lines of the item"
    price = answered(
        salesperson.get(
            suite.url(f"/api/items/{ITEM}/price"),
            params={"customer_id": opportunity["customer_id"], "quantity": "10"},
        )
    )
    assert price["source"] == "price_list" and price["line_customer_category"] == "A"
    assert Decimal(price["unit_price"]) < Decimal(item["list_price"])


@pytest.fixture(scope="module")
def quote(suite, salesperson, opportunity):
    def priced():
        # the price list may still be on its way when the items are there
        response = salesperson.get(
            suite.url(f"/api/items/{ITEM}/price"),
            params={"customer_id": opportunity["customer_id"]},
        )
        return response.status_code == 200 and response.json()["source"] == "price_list"

    eventually(priced, timeout=30, what="the price list")
    record = created(
        salesperson.post(
            suite.url("/api/quotes"),
            json={
                "opportunity_id": opportunity["id"],
                "title": "减速机轴承报价",
                "terms": "款到发货",
                "lines": [
                    {"item_code": ITEM, "quantity": "200", "discount_percent": "6"},
                    {"item_code": "TL-TW-20-100", "quantity": "2", "tax_rate": "0.13"},
                ],
                "discount_amount": "10.00",
            },
        )
    )
    assert record["code"].startswith("QT-") and record["status"] == "draft"
    return record


def test_a_discount_beyond_authority_waits_for_the_branch_manager(
    suite, salesperson, manager, quote
):
    other_office = suite.client("sales03")
    assert other_office.get(suite.url(f"/api/quotes/{quote['id']}")).status_code == 404
    submitted = answered(salesperson.post(suite.url(f"/api/quotes/{quote['id']}/submit"), json={}))
    assert submitted["status"] == "submitted"
    waiting = answered(manager.get(suite.url("/api/quotes"), params={"awaiting_me": "true"}))
    assert [q["id"] for q in waiting["items"]] == [quote["id"]]
    refused = salesperson.post(suite.url(f"/api/quotes/{quote['id']}/approve"), json={})
    assert refused.status_code == 403, refused.text
    approved = answered(
        manager.post(suite.url(f"/api/quotes/{quote['id']}/approve"), json={"comment": "同意"})
    )
    assert approved["status"] == "approved"
    assert [a["decision"] for a in approved["approvals"]] == ["approved"]


def test_the_quote_prints_sends_and_is_accepted(suite, salesperson, quote, opportunity):
    page = salesperson.get(suite.url(f"/api/quotes/{quote['id']}/print"))
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert quote["code"] in page.text and "价税合计" in page.text
    pdf = salesperson.get(suite.url(f"/api/quotes/{quote['id']}/pdf"))
    assert pdf.status_code == 200 and pdf.headers["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")
    sent = answered(salesperson.post(suite.url(f"/api/quotes/{quote['id']}/send"), json={}))
    assert sent["status"] == "sent"
    accepted = answered(
        salesperson.post(
            suite.url(f"/api/quotes/{quote['id']}/accept"), json={"create_order": True}
        )
    )
    assert accepted["quote"]["status"] == "accepted"
    assert accepted["opportunity_stage"] == "needs_confirmed"
    order = answered(salesperson.get(suite.url(f"/api/orders/{accepted['order']['id']}")))
    assert order["quote_id"] == quote["id"] and order["gross"] == accepted["quote"]["gross"]
    assert accepted["quote"]["order_id"] == order["id"]
    moved = answered(salesperson.get(suite.url(f"/api/opportunities/{opportunity['id']}")))
    assert moved["stage_code"] == "needs_confirmed"
