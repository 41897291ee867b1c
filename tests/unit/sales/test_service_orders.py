"""Sales orders through the sales service: entered directly with totals by the quote rules,
changed while a draft, confirmed through the credit check (a manager approves one over the
limit), order_confirmed for the ERP through the outbox, cancelled, scoped like opportunities;
the first confirmed order wins its opportunity."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import pytest
from nameko.testing.services import worker_factory

from crm_common.context import Principal
from crm_common.errors import Conflict, Forbidden, NotFound, ValidationFailed
from crm_common.outbox import OutboxWriter
from sales.application import orders as order_use_cases
from sales.application.processes import seed_defaults
from sales.domain.credit import WhenNoLimit
from sales.domain.quotes import Discount, QuoteLine, quote_totals
from sales.models import OutboxMessage
from sales.repository.opportunities import business_year
from sales.schemas.erp import ORDER_REQUEST_SCHEMAS
from sales.service import SalesService

from .sample_org import (
    EAST_MACHINERY,
    GUANGZHOU_HEAVY,
    MANAGER_PERMISSIONS,
    SALES_PERMISSIONS,
    T0,
)

YEAR = business_year()
ORDER_PERMISSIONS = ("order:read", "order:write")
SELLER = Principal(
    user_id="u-sales-01",
    department_id="d-east-sh",
    roles=("sales",),
    permissions=(*SALES_PERMISSIONS, *ORDER_PERMISSIONS),
    grants=({"owner": "self"},),
)
COLLEAGUE = Principal(
    user_id="u-sales-02",
    department_id="d-east-sh",
    roles=("sales",),
    permissions=(*SALES_PERMISSIONS, *ORDER_PERMISSIONS),
    grants=({"owner": "self"},),
)
BRANCH_MANAGER = Principal(
    user_id="u-sh-mgr",
    department_id="d-east-sh",
    roles=("manager",),
    permissions=(*MANAGER_PERMISSIONS, *ORDER_PERMISSIONS, "order:approve"),
    grants=({"departments": ["d-east-sh"]},),
)
SOUTH_MANAGER = Principal(
    user_id="u-south-mgr",
    department_id="d-south",
    roles=("manager",),
    permissions=(*MANAGER_PERMISSIONS, *ORDER_PERMISSIONS, "order:approve"),
    grants=({"departments": ["d-south", "d-south-gz"]},),
)

LINES = [
    {
        "item_code": "BRG-6205",
        "item_name": "深沟球轴承",
        "spec": "6205-2RS",
        "unit": "套",
        "quantity": "120",
        "unit_price": "18.35",
        "discount": {"kind": "percent", "value": "5"},
    },
    {
        "item_code": "MTR-Y2-132",
        "item_name": "三相异步电动机",
        "spec": "Y2-132M-4 7.5kW",
        "unit": "台",
        "quantity": "3",
        "unit_price": "2680.00",
        "tax_rate": "0.13",
    },
    {
        "item_code": "SVC-INSTALL",
        "item_name": "安装调试服务",
        "unit": "次",
        "quantity": "1",
        "unit_price": "800",
        "tax_rate": "0.06",
    },
]


@pytest.fixture(autouse=True)
def seller(principal, act_as):
    act_as(SELLER)


@pytest.fixture
def service(db, principal):
    return worker_factory(
        SalesService,
        db=db,
        outbox=OutboxWriter(OutboxMessage, "sales"),
        credit_policy=WhenNoLimit.ALLOW,
    )


@pytest.fixture
def exposure(monkeypatch):
    """Stand in for receivables' view of a customer: its limit and what it owes."""
    known: dict[uuid.UUID, SimpleNamespace] = {}

    def customer_exposure(session, customer_id):
        return known.get(
            customer_id, SimpleNamespace(credit_limit=None, currency=None, outstanding=Decimal(0))
        )

    monkeypatch.setattr(order_use_cases, "customer_exposure", customer_exposure)

    def set_limit(customer_id, limit, outstanding="0", currency="CNY"):
        known[customer_id] = SimpleNamespace(
            credit_limit=Decimal(limit), currency=currency, outstanding=Decimal(outstanding)
        )

    return set_limit


@pytest.fixture
def make(service):
    def make(customer=EAST_MACHINERY, lines=None, **fields):
        return service.create_order(
            {"customer_id": str(customer), "lines": lines or LINES, **fields}
        )

    return make


def events_of(outbox_events, kind):
    return [data for event_type, data in outbox_events() if event_type == kind]


def field_errors(info):
    return info.value.field_errors


# -- entering orders -------------------------------------------------------------------------
def test_a_direct_order_is_a_draft_with_totals_by_the_quote_rules(make):
    order = make(
        document_discount={"kind": "amount", "value": "100.00"},
        requested_delivery_date="2026-03-15",
        remark="分两批交货",
    )
    expected = quote_totals(
        [
            QuoteLine(Decimal("120"), Decimal("18.35"), Discount.percent("5")),
            QuoteLine(Decimal("3"), Decimal("2680.00")),
            QuoteLine(Decimal("1"), Decimal("800"), tax_rate=Decimal("0.06")),
        ],
        document_discount=Discount.amount("100.00"),
    )
    assert order["code"] == f"SO-{YEAR}-000001"
    assert (order["status"], order["origin"], order["currency"]) == ("draft", "crm", "CNY")
    assert (order["owner_id"], order["department_id"]) == ("u-sales-01", "d-east-sh")
    assert (order["region"], order["category"]) == ("华东/上海", "A")
    assert order["customer_name"] == "上海华东机电设备有限公司"
    assert order["requested_delivery_date"] == "2026-03-15"
    assert order["salesperson_code"] == "P0004" and order["department_code"] == "d-east-sh"
    assert (order["net"], order["tax"], order["gross"]) == (
        str(expected.net),
        str(expected.tax),
        str(expected.gross),
    )
    assert order["discount"] == str(expected.discount)
    first, motor, service = order["lines"]
    assert (first["amount"], first["discount"]) == (
        "2202.00",
        str(expected.lines[0].line_discount + expected.lines[0].document_discount),
    )
    assert [line["gross"] for line in order["lines"]] == [str(f.gross) for f in expected.lines]
    assert Decimal(first["net"]) + Decimal(first["tax"]) == Decimal(first["gross"])
    assert service["tax_rate"] == "0.0600" and motor["tax_rate"] == "0.1300"
    assert sum(Decimal(line["gross"]) for line in order["lines"]) == Decimal(order["gross"])


def test_bad_input_is_a_422_naming_the_fields_and_stores_nothing(make, service):
    with pytest.raises(ValidationFailed) as info:
        make(lines=[{**LINES[0], "quantity": "十二"}])
    assert set(field_errors(info)) == {"lines.1.quantity"}
    with pytest.raises(ValidationFailed) as info:
        make(lines=[{**LINES[1], "tax_rate": "0.17"}])
    assert set(field_errors(info)) == {"lines.1.tax_rate"}
    with pytest.raises(ValidationFailed) as info:
        make(lines=[{**LINES[1], "quantity": "1.00001"}])
    assert set(field_errors(info)) == {"lines.1.quantity"}
    with pytest.raises(ValidationFailed) as info:
        service.create_order({"customer_id": str(EAST_MACHINERY), "lines": []})
    assert "lines" in field_errors(info)
    with pytest.raises(ValidationFailed) as info:
        make(customer=GUANGZHOU_HEAVY)
    assert set(field_errors(info)) == {"customer_id"}
    assert service.list_orders({})["items"] == []


def test_a_draft_changes_and_is_priced_again(make, service):
    order = make()
    changed = service.update_order(
        order["id"], {"lines": [LINES[1]], "remark": "只要电机"}, order["version"]
    )
    assert [line["item_code"] for line in changed["lines"]] == ["MTR-Y2-132"]
    assert changed["net"] == "8040.00" and changed["gross"] == "9085.20"
    assert changed["remark"] == "只要电机" and changed["version"] == order["version"] + 1
    with pytest.raises(Conflict):
        service.update_order(order["id"], {"remark": "stale"}, order["version"])
    discounted = service.update_order(
        order["id"], {"document_discount": {"kind": "percent", "value": "10"}}, changed["version"]
    )
    assert discounted["net"] == "7236.00"
    history = service.order_history(order["id"])["items"]
    assert {entry["change"] for entry in history} == {"created", "updated"}


def test_orders_are_scoped_like_opportunities(make, service, act_as):
    order = make()
    act_as(COLLEAGUE)
    with pytest.raises(NotFound):
        service.get_order(order["id"])
    assert service.list_orders({})["items"] == []
    act_as(SOUTH_MANAGER)
    with pytest.raises(NotFound):
        service.approve_order(order["id"], {})
    act_as(BRANCH_MANAGER)
    assert service.get_order(order["id"])["code"] == order["code"]
    with pytest.raises(NotFound):
        service.get_order("not-an-id")


def test_lists_filter_by_status_customer_query_and_period(make, service):
    first = make()
    second = make(order_date="2026-01-20")
    service.confirm_order(second["id"])
    page = service.list_orders({"status": "confirmed"})
    assert [o["code"] for o in page["items"]] == [second["code"]]
    assert "lines" not in page["items"][0]
    assert [o["code"] for o in service.list_orders({"q": first["code"][-3:]})["items"]] == [
        first["code"]
    ]
    assert (
        service.list_orders({"ordered_from": "2026-01-01", "ordered_to": "2026-01-31"})["items"][0][
            "code"
        ]
        == second["code"]
    )
    assert len(service.list_orders({"customer_id": str(EAST_MACHINERY)})["items"]) == 2
    one = service.list_orders({"limit": 1})
    rest = service.list_orders({"limit": 1, "cursor": one["next_cursor"]})
    assert {one["items"][0]["code"], rest["items"][0]["code"]} == {first["code"], second["code"]}
    with pytest.raises(ValidationFailed) as info:
        service.list_orders({"ordered_from": "2026-02-01", "ordered_to": "2026-01-01"})
    assert set(field_errors(info)) == {"ordered_to"}


# -- confirming ------------------------------------------------------------------------------
def test_confirming_without_a_limit_sends_order_confirmed_through_the_outbox(
    make, service, outbox_events
):
    order = make(requested_delivery_date="2026-03-15")
    confirmed = service.confirm_order(order["id"])
    assert confirmed["status"] == "confirmed" and confirmed["confirmed_at"]
    assert confirmed["credit_outcome"] == "no_limit_allowed"
    [sent] = events_of(outbox_events, "order_confirmed")
    loaded = ORDER_REQUEST_SCHEMAS["order_confirmed"]().load(sent)
    assert loaded["crm_order_id"] == uuid.UUID(order["id"])
    assert loaded["crm_order_code"] == order["code"]
    assert loaded["customer"]["crm_customer_id"] == EAST_MACHINERY
    assert loaded["customer"]["name"] == "上海华东机电设备有限公司"
    assert loaded["requested_delivery_date"] == date(2026, 3, 15)
    assert loaded["salesperson_code"] == "P0004"
    assert loaded["total_amount"] == Decimal(order["gross"])
    assert sum(line["amount"] for line in loaded["lines"]) == loaded["total_amount"]
    assert [line["item_code"] for line in loaded["lines"]] == [
        "BRG-6205",
        "MTR-Y2-132",
        "SVC-INSTALL",
    ]
    assert (sent["customer_id"], sent["owner_id"], sent["department_id"]) == (
        str(EAST_MACHINERY),
        "u-sales-01",
        "d-east-sh",
    )
    [changed] = events_of(outbox_events, "order_status_changed")
    assert (changed["from_status"], changed["to_status"]) == ("draft", "confirmed")
    with pytest.raises(Conflict):
        service.confirm_order(order["id"])


def test_within_the_credit_limit_the_order_is_confirmed(make, service, exposure):
    exposure(EAST_MACHINERY, "50000.00", outstanding="30000.00")
    order = make()
    confirmed = service.confirm_order(order["id"], {"version": order["version"]})
    assert confirmed["status"] == "confirmed"
    assert confirmed["credit_outcome"] == "within_limit"
    assert confirmed["credit_limit"] == "50000.00"
    assert Decimal(confirmed["credit_exposure"]) == Decimal("30000.00") + Decimal(order["gross"])


def test_over_the_limit_a_manager_approves_then_it_is_sent(
    make, service, exposure, act_as, outbox_events
):
    exposure(EAST_MACHINERY, "10000.00", outstanding="8000.00")
    order = make()
    waiting = service.confirm_order(order["id"])
    assert (waiting["status"], waiting["credit_outcome"]) == ("pending_approval", "over_limit")
    assert events_of(outbox_events, "order_confirmed") == []
    with pytest.raises(Forbidden):
        service.approve_order(order["id"], {})
    act_as(BRANCH_MANAGER)
    approved = service.approve_order(order["id"], {"comment": "老客户, 回款及时"})
    assert approved["status"] == "confirmed"
    assert (approved["approved_by"], approved["approval_comment"]) == (
        "u-sh-mgr",
        "老客户, 回款及时",
    )
    assert len(events_of(outbox_events, "order_confirmed")) == 1
    with pytest.raises(Conflict):
        service.approve_order(order["id"], {})


def test_open_orders_count_toward_the_limit_and_a_manager_may_send_one_back(
    make, service, exposure, act_as
):
    exposure(EAST_MACHINERY, "20000.00")
    first = make(lines=[LINES[1]])  # 9085.20
    assert service.confirm_order(first["id"])["status"] == "confirmed"
    second = make(lines=[LINES[1]])
    assert service.confirm_order(second["id"])["status"] == "confirmed"
    third = make(lines=[LINES[1]])
    assert service.confirm_order(third["id"])["status"] == "pending_approval"
    act_as(BRANCH_MANAGER)
    with pytest.raises(ValidationFailed) as info:
        service.reject_order(third["id"], {})
    assert set(field_errors(info)) == {"comment"}
    back = service.reject_order(third["id"], {"comment": "先回款再下单"})
    assert (back["status"], back["approval_comment"]) == ("draft", "先回款再下单")


def test_without_a_limit_the_policy_may_require_approval(db, make, exposure):
    strict = worker_factory(
        SalesService,
        db=db,
        outbox=OutboxWriter(OutboxMessage, "sales"),
        credit_policy=WhenNoLimit.REQUIRE_APPROVAL,
    )
    order = make()
    waiting = strict.confirm_order(order["id"])
    assert (waiting["status"], waiting["credit_outcome"]) == (
        "pending_approval",
        "no_limit_needs_approval",
    )


def test_a_limit_in_another_currency_needs_approval(make, service, exposure):
    exposure(EAST_MACHINERY, "100000.00", currency="USD")
    assert service.confirm_order(make()["id"])["status"] == "pending_approval"


# -- cancelling ------------------------------------------------------------------------------
def test_a_draft_is_cancelled_a_sent_order_asks_the_erp(make, service, outbox_events):
    draft = make()
    with pytest.raises(ValidationFailed) as info:
        service.cancel_order(draft["id"], {})
    assert set(field_errors(info)) == {"reason"}
    cancelled = service.cancel_order(draft["id"], {"reason": "客户改单"})
    assert (cancelled["status"], cancelled["cancel_reason"]) == ("cancelled", "客户改单")
    assert events_of(outbox_events, "order_cancel_requested") == []

    sent = make()
    service.confirm_order(sent["id"])
    asked = service.cancel_order(sent["id"], {"reason": "客户取消采购"})
    assert asked["status"] == "cancel_requested"
    [request] = events_of(outbox_events, "order_cancel_requested")
    loaded = ORDER_REQUEST_SCHEMAS["order_cancel_requested"]().load(request)
    assert (loaded["crm_order_code"], loaded["reason"]) == (sent["code"], "客户取消采购")
    assert request["owner_id"] == "u-sales-01"
    with pytest.raises(ValidationFailed):
        service.cancel_order(sent["id"], {"reason": "again"})


# -- the opportunity -------------------------------------------------------------------------
@pytest.fixture
def opportunity(db, service):
    with db.session() as session:
        seed_defaults(session, T0)
    return service.create_opportunity(
        {"name": "华东机电轴承年度采购", "customer_id": str(EAST_MACHINERY)}
    )


def test_the_first_confirmed_order_wins_the_opportunity(make, service, opportunity, outbox_events):
    first = make(opportunity_id=opportunity["id"])
    second = make(opportunity_id=opportunity["id"])
    assert service.get_opportunity(opportunity["id"])["status"] == "open"
    service.confirm_order(first["id"])
    won = service.get_opportunity(opportunity["id"])
    assert (won["status"], won["probability"]) == ("won", 100)
    assert len(events_of(outbox_events, "opportunity_won")) == 1
    service.confirm_order(second["id"])
    assert len(events_of(outbox_events, "opportunity_won")) == 1


def test_an_order_names_an_opportunity_of_its_customer(make, opportunity):
    with pytest.raises(ValidationFailed) as info:
        make(opportunity_id=str(uuid.uuid4()))
    assert set(field_errors(info)) == {"opportunity_id"}


# -- with receivables' own figures -----------------------------------------------------------
def test_the_credit_check_reads_the_erps_limit_and_open_invoices(db, make, service):
    from sales.application.erp_receivables import apply_receivable_event
    from sales.schemas.erp import ERP_EVENT_SCHEMAS

    customer = {"crm_customer_id": str(EAST_MACHINERY), "erp_code": "0101001", "name": "华东机电"}
    events = OutboxWriter(OutboxMessage, "sales")
    for event_type, data in (
        ("customer_credit_updated", {"customer": customer, "credit_limit": "30000.00",
                                     "currency": "CNY"}),
        ("invoice_issued", {"invoice_no": "FP-0001", "erp_order_no": None, "customer": customer,
                            "issued_at": "2026-02-01T10:00:00+08:00", "due_date": "2026-03-03",
                            "amount": "22600.00", "tax_amount": "2600.00", "currency": "CNY"}),
    ):  # fmt: skip
        with db.session() as session:
            apply_receivable_event(
                session,
                events,
                event_type,
                ERP_EVENT_SCHEMAS[event_type]().load(data),
                T0,
                f"erp-{event_type}",
                EAST_MACHINERY,
            )
    small = make(lines=[{**LINES[1], "quantity": "2"}])  # 6056.80: 28656.80 owed in all
    checked = service.confirm_order(small["id"])
    assert (checked["status"], checked["credit_limit"]) == ("confirmed", "30000.00")
    assert checked["credit_exposure"] == "28656.80"
    big = make(lines=[{**LINES[1], "quantity": "1"}])
    waiting = service.confirm_order(big["id"])
    assert (waiting["status"], waiting["credit_outcome"]) == ("pending_approval", "over_limit")
