"""Quoting through the gateway, every service its own process: the ERP (the pika simulator's
publisher) sends its items and price list on ``erp.events``; a salesperson of the Shanghai
office (sales01) finds an item by part of its Chinese name, prices it for a category-A
customer, quotes it on an opportunity with a discount beyond a sales_rep's authority; the East
branch manager (branch.east) finds it waiting for them and approves it; another office's
salesperson cannot see it; the quote is printed (HTML and PDF), sent and accepted: the
opportunity moves on and the order is made from the quote.

Then the order to cash: confirmed, the order goes to the ERP, whose simulator (``respond``)
books it; the ERP ships it in two shipments, issues an invoice already ten days past due and
is paid in two payments (``order_shipped``, ``invoice_issued``, ``payment_received`` on
``erp.events``). The salesperson sees the order move from booked to partially shipped to
shipped, the invoice owe its amount, then the remainder, then nothing, and the aging report and
the customer's receivable move with it: the amount in the 1-30 days bucket while it is owed,
gone once paid (still there as of the day before). Another office's salesperson sees none of
it."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests

from devstack import registry
from devstack.stack import Suite
from tests.support.polling import eventually
from tools.erp_simulator import broker
from tools.erp_simulator.respond import Responder
from tools.erp_simulator.world import CHINA, Stream

ITEM = "BRG-6205-2RS"
Record = dict[str, Any]
Client = requests.Session


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
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
def salesperson(suite: Suite) -> Client:
    return suite.client("sales01")


@pytest.fixture(scope="module")
def manager(suite: Suite) -> Client:
    return suite.client("branch.east")


def created(response: requests.Response) -> Record:
    assert response.status_code == 201, response.text
    found: Record = response.json()
    return found


def answered(response: requests.Response) -> Record:
    assert response.status_code == 200, response.text
    found: Record = response.json()
    return found


@pytest.fixture(scope="module")
def opportunity(suite: Suite, salesperson: Client) -> Record:
    customer = created(
        salesperson.post(
            suite.url("/api/customers"),
            json={"name": "苏州恒力传动设备有限公司", "region": "华东/上海", "category": "A"},
        )
    )
    body = {"name": "减速机轴承年度采购", "customer_id": customer["id"]}

    def opened() -> Record:
        response = salesperson.post(suite.url("/api/opportunities"), json=body)
        return created(response) if response.status_code == 201 else {}

    return eventually(opened, timeout=30, what="an opportunity for the new customer")


def test_items_from_the_erp_are_found_by_partial_chinese_and_priced(
    suite: Suite, salesperson: Client, opportunity: Record
) -> None:
    def bearings() -> list[Record]:
        found = answered(salesperson.get(suite.url("/api/items"), params={"q": "轴承"}))
        items: list[Record] = found["items"]
        return items if len(items) >= 10 else []

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
def quote(suite: Suite, salesperson: Client, opportunity: Record) -> Record:
    def priced() -> bool:
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
    suite: Suite, salesperson: Client, manager: Client, quote: Record
) -> None:
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


def test_the_quote_prints_sends_and_is_accepted(
    suite: Suite, salesperson: Client, quote: Record, opportunity: Record
) -> None:
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


# -- order to cash -----------------------------------------------------------------------------
FEN = Decimal("0.01")
OVERDUE_DAYS = 10


@pytest.fixture(scope="module")
def erp_uri(suite: Suite) -> str:
    return f"amqp://guest:guest@{suite.amqp_host}/{suite.vhost}"


@pytest.fixture(scope="module")
def erp() -> Responder:
    """The ERP's side after it booked the order: its events, each occurring after the last."""
    return Responder()


@pytest.fixture(scope="module")
def order(suite: Suite, salesperson: Client, quote: Record) -> Record:
    accepted = answered(salesperson.get(suite.url(f"/api/quotes/{quote['id']}")))
    assert accepted["order_id"], "the order made from the accepted quote"
    return answered(salesperson.get(suite.url(f"/api/orders/{accepted['order_id']}")))


def order_now(suite: Suite, client: Client, order_id: str) -> Record:
    return answered(client.get(suite.url(f"/api/orders/{order_id}")))


def erp_customer(order: Record) -> Record:
    return {
        "crm_customer_id": order["customer_id"],
        "erp_code": Responder().customer_code({"crm_customer_id": order["customer_id"]}),
        "credit_code": None,
        "name": order["customer_name"],
    }


def publish(erp_uri: str, *envelopes: Record) -> None:
    assert broker.publish_all(erp_uri, envelopes) == len(envelopes)


def test_the_confirmed_order_is_booked_by_the_erp(
    suite: Suite, salesperson: Client, order: Record, erp_uri: str
) -> None:
    assert order["status"] == "draft" and order["erp_order_no"] is None
    confirmed = answered(salesperson.post(suite.url(f"/api/orders/{order['id']}/confirm"), json={}))
    assert confirmed["status"] == "confirmed", confirmed
    answering = subprocess.run(
        [sys.executable, "-m", "tools.erp_simulator", "respond", "--amqp-uri", erp_uri,
         "--count", "1"],
        cwd=registry.ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert answering.returncode == 0, answering.stderr
    assert "answered 1 order requests" in answering.stdout

    def booked() -> Record:
        found = order_now(suite, salesperson, order["id"])
        return found if found["status"] == "erp_created" else {}

    booked_order = eventually(booked, timeout=30, what="the order booked by the ERP")
    assert booked_order["erp_order_no"].startswith("SO")
    assert booked_order["gross"] == order["gross"]


def shipment(erp: Responder, order: Record, lines: list[Record]) -> Record:
    now = dt.datetime.now(CHINA)
    return erp.event(
        "order_shipped",
        {
            "erp_order_no": order["erp_order_no"],
            "shipment_no": erp.number("SH", now),
            "shipped_at": now.isoformat(),
            "lines": [
                {
                    "line_no": line["line_no"],
                    "item_code": line["item_code"],
                    "quantity": line["quantity"],
                    "serial_numbers": [],
                }
                for line in lines
            ],
        },
    )


def test_the_erp_ships_the_order_in_two_shipments(
    suite: Suite, salesperson: Client, order: Record, erp: Responder, erp_uri: str
) -> None:
    booked = order_now(suite, salesperson, order["id"])
    first, second = sorted(booked["lines"], key=lambda line: line["line_no"])

    def status_is(status: str) -> Callable[[], Record]:
        def probe() -> Record:
            found = order_now(suite, salesperson, order["id"])
            return found if found["status"] == status else {}

        return probe

    publish(erp_uri, shipment(erp, booked, [first]))
    partly = eventually(status_is("partially_shipped"), timeout=30, what="the first shipment")
    shipped_by_line = {line["line_no"]: Decimal(line["shipped"]) for line in partly["lines"]}
    assert shipped_by_line == {first["line_no"]: Decimal(first["quantity"]), second["line_no"]: 0}

    publish(erp_uri, shipment(erp, booked, [second]))
    shipped = eventually(status_is("shipped"), timeout=30, what="the second shipment")
    assert all(Decimal(line["shipped"]) == Decimal(line["quantity"]) for line in shipped["lines"])
    shipments = answered(salesperson.get(suite.url(f"/api/orders/{order['id']}/shipments")))
    assert len(shipments["items"]) == 2


@pytest.fixture(scope="module")
def invoice(
    suite: Suite, salesperson: Client, order: Record, erp: Responder, erp_uri: str
) -> Record:
    """The ERP's invoice of the shipped order, issued 40 days ago and due 10 days ago."""
    shipped = order_now(suite, salesperson, order["id"])
    today = dt.datetime.now(CHINA).date()
    issued_at = dt.datetime.now(CHINA) - dt.timedelta(days=OVERDUE_DAYS + 30)
    data = {
        "invoice_no": erp.number("INV", dt.datetime.now(CHINA)),
        "erp_order_no": shipped["erp_order_no"],
        "customer": erp_customer(shipped),
        "issued_at": issued_at.isoformat(),
        "due_date": (today - dt.timedelta(days=OVERDUE_DAYS)).isoformat(),
        "amount": shipped["gross"],
        "tax_amount": shipped["tax"],
        "currency": shipped["currency"],
    }
    publish(erp_uri, erp.event("invoice_issued", data))
    return data


def invoice_now(suite: Suite, client: Client, number: str) -> Record | None:
    response = client.get(suite.url(f"/api/receivables/invoices/{number}"))
    if response.status_code == 404:
        return None
    return answered(response)


def invoice_owing(suite: Suite, client: Client, number: str, outstanding: str) -> Record:
    def probe() -> Record:
        found = invoice_now(suite, client, number)
        return found if found is not None and found["outstanding"] == outstanding else {}

    return eventually(probe, timeout=30, what=f"invoice {number} owing {outstanding}")


def aging_of(suite: Suite, client: Client, customer_id: str, **params: str) -> Record:
    return answered(
        client.get(
            suite.url("/api/receivables/aging"), params={"customer_id": customer_id, **params}
        )
    )


def buckets(owed: str) -> dict[str, str]:
    """Every aging bucket empty but 1-30 days past due, which holds ``owed``."""
    return {"not_due": "0.00", "1-30": owed, "31-60": "0.00", "61-90": "0.00", "over_90": "0.00"}


def receivable_of(suite: Suite, client: Client, customer_id: str) -> Record:
    found = answered(client.get(suite.url(f"/api/receivables/customers/{customer_id}")))
    lines: list[Record] = [line for line in found["currencies"] if line["currency"] == "CNY"]
    [cny] = lines
    return cny


def payment(erp: Responder, invoice: Record, amount: Decimal) -> Record:
    now = dt.datetime.now(CHINA)
    paid = f"{amount:.2f}"
    return erp.event(
        "payment_received",
        {
            "payment_no": erp.number("RC", now),
            "customer": invoice["customer"],
            "received_at": now.isoformat(),
            "amount": paid,
            "currency": invoice["currency"],
            "allocations": [{"invoice_no": invoice["invoice_no"], "amount": paid}],
        },
    )


def test_the_invoice_of_the_order_owes_its_amount_ten_days_overdue(
    suite: Suite, salesperson: Client, manager: Client, order: Record, invoice: Record
) -> None:
    amount = invoice["amount"]
    found = invoice_owing(suite, salesperson, invoice["invoice_no"], amount)
    assert found["erp_order_no"] == order_now(suite, salesperson, order["id"])["erp_order_no"]
    assert found["customer_id"] == order["customer_id"] and found["amount"] == amount
    assert found["owner_id"] == order["owner_id"]
    assert found["status"] == "overdue" and found["days_overdue"] == OVERDUE_DAYS
    assert found["allocations"] == []
    # the ERP's invoice leaves the order as shipped: invoicing is no order status
    assert order_now(suite, salesperson, order["id"])["status"] == "shipped"
    seen_by_manager = answered(
        manager.get(suite.url(f"/api/receivables/invoices/{invoice['invoice_no']}"))
    )
    assert seen_by_manager["outstanding"] == amount

    other_office = suite.client("sales03")
    refused = other_office.get(suite.url(f"/api/receivables/invoices/{invoice['invoice_no']}"))
    assert refused.status_code == 404, refused.text
    refused = other_office.get(suite.url(f"/api/receivables/customers/{order['customer_id']}"))
    assert refused.status_code == 404, refused.text
    assert aging_of(suite, other_office, order["customer_id"])["rows"] == []


def test_the_aging_report_holds_the_overdue_amount_in_its_bucket(
    suite: Suite, salesperson: Client, manager: Client, order: Record, invoice: Record
) -> None:
    amount = invoice["amount"]
    invoice_owing(suite, salesperson, invoice["invoice_no"], amount)
    report = aging_of(suite, salesperson, order["customer_id"])
    today = dt.date.fromisoformat(report["as_of"])
    [row] = report["rows"]
    assert row["key"] == order["customer_id"] and row["name"] == order["customer_name"]
    assert row["buckets"] == buckets(amount) and row["total"] == amount
    assert row["invoice_count"] == 1
    assert [total["buckets"] for total in report["totals"]] == [buckets(amount)]

    due = dt.date.fromisoformat(invoice["due_date"])
    [on_due_day] = aging_of(suite, salesperson, order["customer_id"], as_of=due.isoformat())["rows"]
    assert on_due_day["buckets"]["not_due"] == amount and on_due_day["buckets"]["1-30"] == "0.00"
    later = (due + dt.timedelta(days=31)).isoformat()
    [month_later] = aging_of(suite, salesperson, order["customer_id"], as_of=later)["rows"]
    assert month_later["buckets"]["31-60"] == amount and month_later["buckets"]["1-30"] == "0.00"
    assert (today - due).days == OVERDUE_DAYS

    by_owner = aging_of(suite, manager, order["customer_id"], by="owner")
    assert [(r["key"], r["buckets"]) for r in by_owner["rows"]] == [
        (order["owner_id"], buckets(amount))
    ]

    owed = receivable_of(suite, salesperson, order["customer_id"])
    assert owed["outstanding"] == amount and owed["overdue"] == amount
    assert owed["open_invoices"] == 1 and owed["overdue_invoices"] == 1


def test_a_partial_payment_leaves_the_remainder_aging(
    suite: Suite, salesperson: Client, order: Record, invoice: Record, erp: Responder, erp_uri: str
) -> None:
    amount = Decimal(invoice["amount"])
    invoice_owing(suite, salesperson, invoice["invoice_no"], invoice["amount"])
    first = (amount / 3).quantize(FEN)
    remainder = f"{amount - first:.2f}"
    publish(erp_uri, payment(erp, invoice, first))

    found = invoice_owing(suite, salesperson, invoice["invoice_no"], remainder)
    assert found["allocated"] == f"{first:.2f}" and found["status"] == "overdue"
    assert [a["amount"] for a in found["allocations"]] == [f"{first:.2f}"]
    [row] = aging_of(suite, salesperson, order["customer_id"])["rows"]
    assert row["buckets"] == buckets(remainder) and row["total"] == remainder
    owed = receivable_of(suite, salesperson, order["customer_id"])
    assert owed["outstanding"] == remainder and owed["overdue"] == remainder


def test_the_last_payment_clears_the_invoice_and_the_aging_report(
    suite: Suite,
    salesperson: Client,
    manager: Client,
    order: Record,
    invoice: Record,
    erp: Responder,
    erp_uri: str,
) -> None:
    amount = Decimal(invoice["amount"])
    first = (amount / 3).quantize(FEN)
    waiting = invoice_owing(suite, salesperson, invoice["invoice_no"], f"{amount - first:.2f}")
    publish(erp_uri, payment(erp, invoice, amount - first))

    paid = invoice_owing(suite, salesperson, invoice["invoice_no"], "0.00")
    assert paid["status"] == "paid" and paid["days_overdue"] == 0
    assert paid["allocated"] == invoice["amount"] and paid["over_allocated"] == "0.00"
    assert len(paid["allocations"]) == 2 and waiting["allocated"] == f"{first:.2f}"
    payments = answered(
        salesperson.get(
            suite.url("/api/receivables/payments"), params={"customer_id": order["customer_id"]}
        )
    )
    assert sorted(Decimal(p["amount"]) for p in payments["items"]) == sorted(
        [first, amount - first]
    )
    assert all(p["unallocated"] == "0.00" for p in payments["items"])

    assert aging_of(suite, salesperson, order["customer_id"])["rows"] == []
    assert aging_of(suite, manager, order["customer_id"], by="owner")["rows"] == []
    report = aging_of(suite, salesperson, order["customer_id"])
    yesterday = dt.date.fromisoformat(report["as_of"]) - dt.timedelta(days=1)
    [before] = aging_of(suite, salesperson, order["customer_id"], as_of=yesterday.isoformat())[
        "rows"
    ]
    assert before["buckets"] == buckets(invoice["amount"]), "owed in full the day before"

    owed = receivable_of(suite, salesperson, order["customer_id"])
    assert owed["outstanding"] == "0.00" and owed["overdue"] == "0.00"
    assert owed["open_invoices"] == 0 and owed["overdue_invoices"] == 0
    assert owed["on_account"] == "0.00"
