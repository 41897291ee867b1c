"""Receivables through the sales service: invoice and payment lists within the caller's data
scope, an invoice with its allocations, aging buckets at their boundaries, overdue lists, a
customer's receivable against its credit limit, the waiting allocations for administrators,
the overdue timer announcing each threshold once, and the due records notify asks for."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from jsonschema import Draft202012Validator
from nameko.testing.services import worker_factory
from sqlalchemy import event, insert, select, update

from crm_common.context import Principal
from crm_common.errors import Forbidden, NotFound, ValidationFailed
from crm_common.models import utcnow
from crm_common.outbox import OutboxWriter
from crm_common.schemas import json_schemas
from gateway import openapi
from gateway.service import GatewayService
from gateway.web import api_routes
from sales.application.erp_receivables import apply_receivable_event
from sales.application.read_models import ReadModels
from sales.application.receivables import announce_overdue, business_today, parse_hour
from sales.models import (
    Expense,
    ExpenseApproval,
    ExpenseCategory,
    Opportunity,
    OutboxMessage,
    SalesProcess,
)
from sales.models.receivables import InvoiceOverdueNotice
from sales.schemas import PUBLIC_SCHEMAS
from sales.schemas.erp import ERP_EVENT_SCHEMAS
from sales.service import SalesService

from .sample_org import (
    ADMIN,
    COLLEAGUE,
    EAST_MACHINERY,
    GUANGZHOU_HEAVY,
    MANAGER,
    OLD_EAST,
    OTHER_OFFICE,
    SALES,
    SHANGHAI_PRECISION,
)

READ = "receivable:read"
ZHANG = replace(SALES, permissions=(*SALES.permissions, READ))
"""张伟, who owns 华东机电."""
LIU = replace(COLLEAGUE, permissions=(*COLLEAGUE.permissions, READ))
HUANG = replace(OTHER_OFFICE, permissions=(*OTHER_OFFICE.permissions, READ))
SH_MANAGER = replace(MANAGER, permissions=(*MANAGER.permissions, READ))
NOTIFY = Principal.for_service("notify")
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TODAY = business_today(utcnow())
"""The business's day (Asia/Shanghai), taken again as each test starts (``today``)."""
outbox = OutboxWriter(OutboxMessage, "sales")
numbers = itertools.count(1)
ERP_CODES = {
    EAST_MACHINERY: "E001",
    SHANGHAI_PRECISION: "E002",
    GUANGZHOU_HEAVY: "E003",
    OLD_EAST: "E004",
}


@pytest.fixture(autouse=True)
def today() -> None:
    """A run may cross midnight in China: each test takes the day it runs on."""
    global TODAY
    TODAY = business_today(utcnow())


@pytest.fixture
def act(act_as):
    return act_as


@pytest.fixture
def feed(db):
    """Apply one ERP receivable event (``data`` as the ERP sends it) for a customer."""

    def feed(event_type, raw, customer=EAST_MACHINERY, occurred_at=None):
        customer_data = {
            "crm_customer_id": str(customer),
            "erp_code": ERP_CODES[customer],
            "name": "客户",
        }
        data = ERP_EVENT_SCHEMAS[event_type]().load({"customer": customer_data, **raw})
        with db.session() as session:
            apply_receivable_event(
                session,
                outbox,
                event_type,
                data,
                occurred_at or T0 + timedelta(seconds=next(numbers)),
                str(uuid.uuid4()),
                customer,
            )

    return feed


@pytest.fixture
def issue(feed):
    def issue(invoice_no, amount, due_date, customer=EAST_MACHINERY, currency="CNY"):
        feed(
            "invoice_issued",
            {
                "invoice_no": invoice_no,
                "erp_order_no": None,
                "issued_at": (T0 + timedelta(minutes=next(numbers))).isoformat(),
                "due_date": str(due_date),
                "amount": amount,
                "tax_amount": "0.00",
                "currency": currency,
            },
            customer,
        )

    return issue


@pytest.fixture
def pay(feed):
    def pay(payment_no, amount, allocations, customer=EAST_MACHINERY, received_at=None):
        feed(
            "payment_received",
            {
                "payment_no": payment_no,
                "received_at": (received_at or T0 + timedelta(days=3)).isoformat(),
                "amount": amount,
                "currency": "CNY",
                "allocations": [{"invoice_no": no, "amount": a} for no, a in allocations],
            },
            customer,
        )

    return pay


@pytest.fixture
def ledger(issue, pay):
    """华东机电 (张伟's) owes on two invoices, one overdue 40 days and half paid; 上海精工
    (刘洋's) one not due; 广州重工 (黄磊's) one overdue 100 days."""
    issue("INV-E1", "1000.00", TODAY - timedelta(days=40))
    issue("INV-E2", "500.00", TODAY + timedelta(days=10))
    issue("INV-S1", "300.00", TODAY + timedelta(days=5), SHANGHAI_PRECISION)
    issue("INV-G1", "700.00", TODAY - timedelta(days=100), GUANGZHOU_HEAVY)
    issue("INV-E0", "200.00", TODAY - timedelta(days=60))
    pay("RC-E1", "400.00", [("INV-E1", "400.00")])
    pay("RC-E0", "200.00", [("INV-E0", "200.00")])


def numbers_of(page):
    return [item["invoice_no"] for item in page["items"]]


# -- lists and scope -------------------------------------------------------------------------
def test_a_salesperson_lists_the_invoices_of_their_customers_only(service, act, ledger):
    act(ZHANG)
    in_order = service.list_invoices({"sort": "issued_at"})
    assert numbers_of(in_order) == ["INV-E1", "INV-E2", "INV-E0"]
    act(LIU)
    assert numbers_of(service.list_invoices()) == ["INV-S1"]
    act(SH_MANAGER)
    assert sorted(numbers_of(service.list_invoices())) == ["INV-E0", "INV-E1", "INV-E2", "INV-S1"]
    act(ADMIN)
    assert len(service.list_invoices()["items"]) == 5


def test_invoice_filters(service, act, ledger):
    act(ADMIN)
    overdue = service.list_invoices({"status": "overdue"})
    assert sorted(numbers_of(overdue)) == ["INV-E1", "INV-G1"]
    assert numbers_of(service.list_invoices({"status": "paid"})) == ["INV-E0"]
    still_open = service.list_invoices({"status": "open"})
    assert sorted(numbers_of(still_open)) == ["INV-E1", "INV-E2", "INV-G1", "INV-S1"]
    assert numbers_of(service.list_invoices({"q": "g1"})) == ["INV-G1"]
    assert numbers_of(service.list_invoices({"over_allocated": "true"})) == []
    found = service.list_invoices({"customer_id": str(SHANGHAI_PRECISION)})
    assert numbers_of(found) == ["INV-S1"]
    assert numbers_of(service.list_invoices({"owner_id": "u-gz-01"})) == ["INV-G1"]
    due = {"due_from": str(TODAY), "due_to": str(TODAY + timedelta(days=7))}
    assert numbers_of(service.list_invoices(due)) == ["INV-S1"]
    first = service.list_invoices({"limit": 2})
    rest = service.list_invoices({"limit": 2, "cursor": first["next_cursor"]})
    last = service.list_invoices({"limit": 2, "cursor": rest["next_cursor"]})
    assert len({*numbers_of(first), *numbers_of(rest), *numbers_of(last)}) == 5
    assert last["next_cursor"] is None
    with pytest.raises(ValidationFailed) as refused:
        service.list_invoices({"status": "late"})
    assert "status" in refused.value.details["errors"]
    with pytest.raises(ValidationFailed):
        service.list_invoices({"due_from": "2026-05-01", "due_to": "2026-04-01"})


def test_an_invoice_with_its_allocations_and_404_outside_scope(service, act, ledger, pay):
    pay("RC-EARLY", "50.00", [("INV-LATER", "50.00")])
    pay("RC-TWICE", "450.00", [("INV-E0", "450.00")])
    act(ADMIN)
    (over,) = service.list_invoices({"over_allocated": "true"})["items"]
    assert (over["invoice_no"], over["outstanding"], over["over_allocated"]) == (
        "INV-E0",
        "0.00",
        "450.00",
    )
    act(ZHANG)
    invoice = service.get_invoice("INV-E1")
    assert invoice["outstanding"] == "600.00"
    assert invoice["allocated"] == "400.00"
    assert invoice["status"] == "overdue"
    assert invoice["days_overdue"] == 40
    assert invoice["customer_name"] == "上海华东机电设备有限公司"
    assert [(a["payment_no"], a["amount"], a["applied"]) for a in invoice["allocations"]] == [
        ("RC-E1", "400.00", True)
    ]
    with pytest.raises(NotFound):
        service.get_invoice("INV-G1")
    with pytest.raises(NotFound):
        service.get_invoice("INV-NONE")
    act(SALES)
    with pytest.raises(Forbidden):
        service.get_invoice("INV-E1")


def test_payments_are_listed_with_their_allocations(service, act, ledger, pay):
    pay("RC-PRE", "800.00", [])
    act(ZHANG)
    page = service.list_payments({"sort": "received_at"})
    assert {p["payment_no"] for p in page["items"]} == {"RC-E1", "RC-E0", "RC-PRE"}
    prepaid = next(p for p in page["items"] if p["payment_no"] == "RC-PRE")
    assert (prepaid["unallocated"], prepaid["allocations"]) == ("800.00", [])
    received_day = business_today(T0 + timedelta(days=3))
    on_the_day = {"received_from": str(received_day), "received_to": str(received_day)}
    assert len(service.list_payments(on_the_day)["items"]) == 3
    next_day = str(received_day + timedelta(days=1))
    assert service.list_payments({"received_from": next_day})["items"] == []
    act(HUANG)
    assert service.list_payments()["items"] == []
    assert service.list_payments({"q": "rc-e1"})["items"] == []


# -- aging and overdue -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("days", "bucket"),
    [(-5, "not_due"), (0, "not_due"), (1, "1-30"), (30, "1-30"), (31, "31-60"), (60, "31-60"),
     (61, "61-90"), (90, "61-90"), (91, "over_90")],
)  # fmt: skip
def test_aging_buckets_at_their_boundaries(service, act, issue, days, bucket):
    as_of = date(2026, 6, 30)
    issue("INV-A", "100.00", as_of - timedelta(days=days))
    act(ADMIN)
    aging = service.receivable_aging({"by": "customer", "as_of": str(as_of)})
    (row,) = aging["rows"]
    assert row["buckets"][bucket] == "100.00"
    assert sum(Decimal(v) for v in row["buckets"].values()) == Decimal("100.00")
    assert aging["totals"][0]["buckets"][bucket] == "100.00"


def test_aging_by_customer_owner_and_department_in_scope(service, act, ledger, issue):
    issue("INV-USD", "50.00", TODAY - timedelta(days=2), currency="USD")
    act(ADMIN)
    aging = service.receivable_aging({"by": "owner"})
    rows = {(r["key"], r["currency"]): r for r in aging["rows"]}
    zhang = rows[("u-sales-01", "CNY")]
    assert zhang["name"] == "张伟"
    assert zhang["buckets"]["31-60"] == "600.00"
    assert zhang["buckets"]["not_due"] == "500.00"
    assert zhang["total"] == "1100.00"
    assert zhang["invoice_count"] == 2
    assert rows[("u-sales-01", "USD")]["buckets"]["1-30"] == "50.00"
    assert rows[("u-gz-01", "CNY")]["buckets"]["over_90"] == "700.00"
    totals = {t["currency"]: t for t in aging["totals"]}
    assert totals["CNY"]["total"] == "2100.00"
    assert totals["USD"]["total"] == "50.00"
    by_department = service.receivable_aging({"by": "department"})
    assert {r["key"] for r in by_department["rows"]} == {"d-east-sh", "d-south-gz"}
    act(ZHANG)
    mine = service.receivable_aging({"by": "customer"})
    assert {r["key"] for r in mine["rows"]} == {str(EAST_MACHINERY)}
    with pytest.raises(ValidationFailed):
        service.receivable_aging({"by": "region"})


def test_overdue_lists_the_longest_overdue_first(service, act, ledger):
    act(ADMIN)
    overdue = service.overdue_invoices({})
    assert [(i["invoice_no"], i["days_overdue"], i["bucket"]) for i in overdue["items"]] == [
        ("INV-G1", 100, "over_90"),
        ("INV-E1", 40, "31-60"),
    ]
    assert overdue["totals"] == [{"currency": "CNY", "amount": "1300.00", "count": 2}]
    assert [i["invoice_no"] for i in service.overdue_invoices({"days": 41})["items"]] == ["INV-G1"]
    assert service.overdue_invoices({"limit": 1})["truncated"] is True
    act(ZHANG)
    assert [i["invoice_no"] for i in service.overdue_invoices()["items"]] == ["INV-E1"]


# -- a customer's receivable -----------------------------------------------------------------
def test_a_customers_receivable_against_its_credit_limit(service, act, ledger, feed, pay):
    feed("customer_credit_updated", {"credit_limit": "2000.00", "currency": "CNY"})
    pay("RC-ACC", "300.00", [])
    pay("RC-WAIT", "90.00", [("INV-FUTURE", "90.00")])
    act(ZHANG)
    summary = service.customer_receivable(str(EAST_MACHINERY))
    (cny,) = summary["currencies"]
    assert cny == {
        "customer_id": str(EAST_MACHINERY),
        "customer_name": "上海华东机电设备有限公司",
        "currency": "CNY",
        "credit_limit": "2000.00",
        "outstanding": "1100.00",
        "overdue": "600.00",
        "available": "900.00",
        "open_invoices": 2,
        "overdue_invoices": 1,
        "on_account": "300.00",
        "waiting": "90.00",
    }
    with pytest.raises(NotFound):
        service.customer_receivable(str(GUANGZHOU_HEAVY))
    act(HUANG)
    no_limit = service.customer_receivable(str(GUANGZHOU_HEAVY))["currencies"][0]
    assert (no_limit["credit_limit"], no_limit["available"]) == (None, None)


def test_waiting_allocations_are_for_administrators(service, act, pay):
    pay("RC-1", "100.00", [("INV-X", "60.00"), ("INV-Y", "40.00")])
    pay("RC-2", "10.00", [("INV-X", "10.00")])
    act(ADMIN)
    first = service.waiting_allocations({"limit": 2})
    assert [(a["payment_no"], a["invoice_no"], a["reason"]) for a in first["items"]] == [
        ("RC-1", "INV-X", "unknown_invoice"),
        ("RC-1", "INV-Y", "unknown_invoice"),
    ]
    rest = service.waiting_allocations({"limit": 2, "cursor": first["next_cursor"]})
    assert [(a["payment_no"], a["invoice_no"]) for a in rest["items"]] == [("RC-2", "INV-X")]
    assert rest["next_cursor"] is None
    assert len(service.waiting_allocations({"invoice_no": "INV-X"})["items"]) == 2
    act(ZHANG)
    with pytest.raises(Forbidden):
        service.waiting_allocations()


def test_collections_count_payments_month_by_month(service, act, pay, issue):
    issue("INV-C", "5000.00", TODAY)
    january = datetime(2026, 1, 10, 2, 0, tzinfo=UTC)
    pay("RC-JAN", "1000.00", [("INV-C", "1000.00")], received_at=january)
    february_night = datetime(2026, 2, 28, 17, 0, tzinfo=UTC)
    pay("RC-FEB", "500.00", [("INV-C", "500.00")], received_at=february_night)
    act(ZHANG)
    answer = service.receivable_collections(
        {"customer_id": str(EAST_MACHINERY), "from": "2026-01-01", "to": "2026-03-31"}
    )
    collected = {m["month"]: m["collected"] for m in answer["months"]}
    # 2026-02-28 17:00 UTC is 1 March in Shanghai
    assert collected == {"2026-01": "1000.00", "2026-03": "500.00"}
    assert answer["totals"][0]["collected"] == "1500.00"
    assert isinstance(answer["contracts_available"], bool)
    act(HUANG)
    with pytest.raises(NotFound):
        service.receivable_collections({"customer_id": str(EAST_MACHINERY)})


# -- the overdue timer -----------------------------------------------------------------------
def overdue_events(outbox_events):
    return [
        (d["invoice"]["invoice_no"], d["threshold"], d["days_overdue"])
        for kind, d in outbox_events()
        if kind == "invoice_overdue"
    ]


def test_the_overdue_timer_announces_each_threshold_once(db, issue, pay, outbox_events):
    due = date(2026, 3, 1)
    issue("INV-T", "100.00", due)
    issue("INV-LATE", "100.00", due - timedelta(days=95))
    issue("INV-PAID", "100.00", due - timedelta(days=10))
    pay("RC-PAID", "100.00", [("INV-PAID", "100.00")])

    def run(day):
        with db.session() as session:
            return announce_overdue(
                session,
                outbox,
                datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=2),
            )

    assert run(due) == 1
    assert overdue_events(outbox_events) == [("INV-LATE", 90, 95)]
    assert run(due) == 0
    assert run(due + timedelta(days=1)) == 1
    assert run(due + timedelta(days=1)) == 0
    assert run(due + timedelta(days=29)) == 0
    assert run(due + timedelta(days=30)) == 1
    assert run(due + timedelta(days=45)) == 0
    assert run(due + timedelta(days=70)) == 1
    assert overdue_events(outbox_events) == [
        ("INV-LATE", 90, 95),
        ("INV-T", 1, 1),
        ("INV-T", 30, 30),
        ("INV-T", 60, 70),
    ]
    with db.session() as session:
        thresholds = session.scalars(
            select(InvoiceOverdueNotice.threshold).where(InvoiceOverdueNotice.invoice_no == "INV-T")
        ).all()
    assert sorted(thresholds) == [1, 30, 60]
    event = next(d for k, d in outbox_events() if k == "invoice_overdue")
    assert (event["customer_id"], event["owner_id"], event["department_id"]) == (
        str(EAST_MACHINERY),
        "u-sales-01",
        "d-east-sh",
    )


@dataclass
class Always:
    def due(self, now):
        return True


def test_the_timer_entrypoint_writes_through_the_outbox(db, issue, outbox_events):
    issue("INV-OLD", "100.00", TODAY - timedelta(days=3))
    timer = worker_factory(SalesService, db=db, outbox=outbox, overdue_schedule=Always())
    timer.announce_overdue_invoices()
    timer.announce_overdue_invoices()
    assert overdue_events(outbox_events) == [("INV-OLD", 1, 3)]


def test_the_overdue_hour_setting():
    assert parse_hour(None) == 8
    assert parse_hour("6") == 6
    with pytest.raises(ValidationFailed):
        parse_hour("25")


# -- due records for notify ------------------------------------------------------------------
@pytest.fixture
def stale_records(db):
    """An opportunity idle for 40 days and an expense waiting three days for its approver."""
    long_ago = utcnow() - timedelta(days=40)
    with db.session() as session:
        process = SalesProcess(id=uuid.uuid4(), code="p-due", name="流程")
        session.add(process)
        session.add(ExpenseCategory(code="travel", name="差旅", active=True))
        session.flush()
        opportunity = {
            "id": uuid.uuid4(), "code": "OPP-2026-000001", "name": "空压机改造",
            "customer_id": EAST_MACHINERY, "owner_id": "u-sales-01", "department_id": "d-east-sh",
            "region": "华东/上海", "category": "A", "process_id": process.id,
            "stage_code": "initial_contact", "probability": 10, "status": "open",
            "created_at": long_ago, "updated_at": long_ago,
        }  # fmt: skip
        session.execute(insert(Opportunity), [opportunity])
        expense_id = uuid.uuid4()
        session.execute(
            insert(Expense),
            [{"id": expense_id, "code": "EXP-2026-000001", "submitter_id": "u-sales-01",
              "department_id": "d-east-sh", "expense_category": "travel",
              "amount": Decimal("380.00"), "currency": "CNY", "spent_on": TODAY,
              "status": "submitted", "created_at": utcnow() - timedelta(hours=72)}],
        )  # fmt: skip
        session.execute(
            insert(ExpenseApproval),
            [{"expense_id": expense_id, "level": 1, "approver_person_id": "p-sh-mgr",
              "approver_user_id": "u-sh-mgr"}],
        )  # fmt: skip
    return opportunity


def test_due_records_for_notify(service, act, ledger, feed, stale_records, db):
    act(NOTIFY)
    overdue = service.due_records("overdue_invoices", {"days": 30})["items"]
    assert [(r["record_id"], r["owner_id"], r["fields"]["days_overdue"]) for r in overdue] == [
        ("INV-G1", "u-gz-01", 100),
        ("INV-E1", "u-sales-01", 40),
    ]
    assert overdue[1]["customer_id"] == str(EAST_MACHINERY)
    assert overdue[1]["due_on"] == str(TODAY - timedelta(days=40))
    feed("customer_credit_updated", {"credit_limit": "1000.00", "currency": "CNY"})
    over_limit = service.due_records("overdue_invoices", {"days": 1, "min_credit_percent": 100})
    assert [(r["record_id"], r["fields"]["credit_used_percent"]) for r in over_limit["items"]] == [
        ("INV-E1", "110.00")
    ]

    idle = service.due_records("idle_opportunities", {"days": 30})["items"]
    assert [(r["code"], r["owner_id"], r["record_type"]) for r in idle] == [
        ("OPP-2026-000001", "u-sales-01", "opportunity")
    ]
    assert service.due_records("idle_opportunities", {"days": 45})["items"] == []
    with db.session() as session:
        session.execute(update(Opportunity).values(last_activity_at=utcnow()))
    assert service.due_records("idle_opportunities", {"days": 30})["items"] == []

    pending = service.due_records("pending_expenses", {"hours": 48})["items"]
    assert [(r["code"], r["fields"]["approver_user_id"]) for r in pending] == [
        ("EXP-2026-000001", "u-sh-mgr")
    ]
    assert service.due_records("pending_expenses", {"hours": 96})["items"] == []
    assert isinstance(service.due_records("expiring_contracts", {"days": 30})["items"], list)
    with pytest.raises(ValidationFailed):
        service.due_records("birthdays", {})


def test_due_records_are_refused_to_others(service, act):
    act(ZHANG)
    with pytest.raises(Forbidden):
        service.due_records("overdue_invoices", {"days": 1})
    act(Principal.for_service("customer"))
    with pytest.raises(Forbidden):
        service.due_records("overdue_invoices", {"days": 1})
    act(ADMIN)
    assert service.due_records("overdue_invoices", {"days": 1}) == {"items": []}


# -- the OpenAPI document --------------------------------------------------------------------
@pytest.fixture(scope="module")
def document():
    published = {"sales": json_schemas("sales", PUBLIC_SCHEMAS)}
    return openapi.build_document(api_routes(GatewayService), published)


def conforms(document, schema_name, answer):
    schema = {"$ref": f"#/components/schemas/sales.{schema_name}"}
    Draft202012Validator({**schema, "components": document["components"]}).validate(answer)


def test_answers_match_their_documented_schemas(service, act, ledger, pay, document):
    pay("RC-WAIT", "90.00", [("INV-FUTURE", "90.00")])
    act(ADMIN)
    for item in service.list_invoices()["items"]:
        conforms(document, "Invoice", item)
    conforms(document, "Invoice", service.get_invoice("INV-E1"))
    for item in service.list_payments()["items"]:
        conforms(document, "Payment", item)
    conforms(document, "Aging", service.receivable_aging({"by": "customer"}))
    conforms(document, "OverdueList", service.overdue_invoices())
    conforms(document, "Collections", service.receivable_collections())
    conforms(document, "CustomerReceivables", service.customer_receivable(str(EAST_MACHINERY)))
    for item in service.waiting_allocations()["items"]:
        conforms(document, "WaitingAllocation", item)
    paths = document["paths"]
    assert "/api/receivables/aging" in paths
    assert "/api/receivables/invoices/{invoice_no}" in paths


# -- receivables follow their customer -------------------------------------------------------
def test_invoices_and_payments_follow_their_customers_new_owner(service, act, ledger, db):
    with db.session() as session:
        ReadModels(session).move_owner(
            {
                "customer_id": str(EAST_MACHINERY),
                "old_owner_id": "u-sales-01",
                "new_owner_id": "u-sales-02",
                "old_department_id": "d-east-sh",
                "new_department_id": "d-east-sh",
            },
            utcnow(),
        )
    act(LIU)
    assert sorted(numbers_of(service.list_invoices())) == ["INV-E0", "INV-E1", "INV-E2", "INV-S1"]
    assert {p["payment_no"] for p in service.list_payments()["items"]} == {"RC-E1", "RC-E0"}
    act(ZHANG)
    assert service.list_invoices()["items"] == []


# -- against the contracts' payment milestones -----------------------------------------------
def test_collections_against_contract_milestones_and_expiring_contracts(service, act, pay):
    """A contract of 华东机电 plans 3000 in January and 2000 in March; 2500 was received in
    January: the first milestone is collected, the second due and behind."""
    act(replace(ZHANG, permissions=(*ZHANG.permissions, "contract:read", "contract:write")))
    start = TODAY - timedelta(days=300)
    contract = service.create_contract(
        {
            "title": "数控机床年度供货合同",
            "customer_id": str(EAST_MACHINERY),
            "our_entity": "工业品分销有限公司",
            "amount": "5000.00",
            "start_date": str(start),
            "end_date": str(TODAY + timedelta(days=20)),
            "milestones": [
                {
                    "name": "预付款",
                    "due_date": str(start + timedelta(days=10)),
                    "amount": "3000.00",
                },
                {"name": "尾款", "due_date": str(start + timedelta(days=60)), "amount": "2000.00"},
            ],
        }
    )
    service.sign_contract(contract["id"], {})
    pay("RC-M1", "2500.00", [], received_at=day_at(start + timedelta(days=5)))
    pay("RC-M2", "1000.00", [], received_at=day_at(start + timedelta(days=70)))
    act(ZHANG)
    answer = service.receivable_collections(
        {
            "customer_id": str(EAST_MACHINERY),
            "from": str(start),
            "to": str(start + timedelta(days=65)),
        }
    )
    assert answer["contracts_available"] is True
    assert answer["totals"] == [
        {
            "month": f"{start:%Y-%m}..{start + timedelta(days=65):%Y-%m}",
            "currency": "CNY",
            "planned": "5000.00",
            "collected": "2500.00",
        }
    ]
    assert [(m["amount"], m["collected"], m["state"]) for m in answer["milestones"]] == [
        ("3000.00", "2500.00", "overdue"),
        ("2000.00", "0.00", "overdue"),
    ]
    everything = service.receivable_collections(
        {"customer_id": str(EAST_MACHINERY), "from": str(start), "to": str(TODAY)}
    )
    assert [(m["collected"], m["state"]) for m in everything["milestones"]] == [
        ("3000.00", "collected"),
        ("500.00", "overdue"),
    ]
    act(HUANG)
    assert service.receivable_collections({"from": str(start), "to": str(TODAY)})["months"] == []
    act(NOTIFY)
    expiring = service.due_records("expiring_contracts", {"days": 30})["items"]
    assert [(r["record_type"], r["code"], r["owner_id"], r["due_on"]) for r in expiring] == [
        ("contract", contract["code"], "u-sales-01", str(TODAY + timedelta(days=20)))
    ]
    assert expiring[0]["fields"]["name"] == "数控机床年度供货合同"
    assert expiring[0]["fields"]["days_to_end"] == 20
    assert service.due_records("expiring_contracts", {"days": 10})["items"] == []


def day_at(day):
    """Noon of ``day`` in Shanghai."""
    return datetime(day.year, day.month, day.day, 4, 0, tzinfo=UTC)


def test_aging_as_of_an_earlier_day_counts_what_was_owed_then(service, act, issue, pay):
    issue("INV-H1", "1000.00", date(2026, 2, 4))  # issued in early January
    pay("RC-H1", "600.00", [("INV-H1", "600.00")], received_at=day_at(date(2026, 3, 1)))
    act(ADMIN)

    def owed(as_of):
        aging = service.receivable_aging({"by": "customer", "as_of": str(as_of)})
        buckets = aging["totals"][0]["buckets"] if aging["totals"] else {}
        return {bucket: amount for bucket, amount in buckets.items() if amount != "0.00"}

    assert owed(date(2026, 1, 1)) == {}
    assert owed(date(2026, 1, 31)) == {"not_due": "1000.00"}
    assert owed(date(2026, 2, 28)) == {"1-30": "1000.00"}
    assert owed(date(2026, 3, 1)) == {"1-30": "400.00"}
    assert owed(TODAY) == {"over_90": "400.00"}


def test_a_merged_customers_receivables_move_to_the_survivor(service, act, issue, pay, db):
    issue("INV-OLD", "800.00", TODAY - timedelta(days=5), OLD_EAST)
    pay("RC-OLD", "300.00", [("INV-OLD", "300.00")], OLD_EAST)
    survivor = {
        "id": str(EAST_MACHINERY),
        "code": "C2026000001",
        "name": "上海华东机电设备有限公司",
        "short_name": "华东机电",
        "status": "formal",
        "category": "A",
        "region": "华东/上海",
        "owner_id": "u-sales-02",
        "department_id": "d-east-sh",
        "merged_into_id": None,
        "version": 9,
        "updated_at": utcnow().isoformat(),
    }
    merge = {
        "survivor_id": str(EAST_MACHINERY),
        "merged_id": str(OLD_EAST),
        "merged_code": "C2025000099",
        "survivor": survivor,
    }
    with db.session() as session:
        ReadModels(session).merge(merge, "u-admin")
    act(LIU)
    summary = service.customer_receivable(str(EAST_MACHINERY))["currencies"][0]
    assert (summary["outstanding"], summary["overdue"]) == ("500.00", "500.00")
    invoice = service.get_invoice("INV-OLD")
    assert (invoice["customer_id"], invoice["owner_id"]) == (str(EAST_MACHINERY), "u-sales-02")
    assert [p["customer_id"] for p in service.list_payments()["items"]] == [str(EAST_MACHINERY)]


def test_customers_kept_without_receivables_cost_one_look_per_transaction(db):
    """Catching up from the customer snapshot in a fresh database: one look for receivables
    in the whole transaction, no update per customer."""
    statements = []

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    with db.session() as session:
        bind = session.get_bind()
        event.listen(bind, "before_cursor_execute", seen)
        try:
            copies = ReadModels(session)
            for number in range(3):
                copies.keep_customer(
                    {
                        "id": str(uuid.uuid4()),
                        "code": f"C20269{number:05d}",
                        "name": f"客户{number}",
                        "status": "formal",
                        "owner_id": "u-sales-01",
                        "department_id": "d-east-sh",
                        "version": 1,
                        "updated_at": utcnow().isoformat(),
                    }
                )
        finally:
            event.remove(bind, "before_cursor_execute", seen)
    touching = [s for s in statements if "invoices" in s or "payments" in s]
    assert len(touching) == 1
    assert not any(s.lstrip().upper().startswith("UPDATE") for s in touching)
