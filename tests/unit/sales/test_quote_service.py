"""Quotations through the sales service: priced from the item master and price lists, totals
exact to the fen, discounts within the salesperson's authority approved at once and beyond it
approved by the right managers up the org chart, sent, accepted (the opportunity moves on, the
order can be made) or declined, revised with earlier versions readable, expired past their
validity, printed; scoped like opportunities."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from nameko.testing.services import worker_factory
from sqlalchemy import update

from crm_common.context import Principal
from crm_common.errors import Conflict, Forbidden, NotFound, ValidationFailed
from crm_common.outbox import OutboxWriter
from sales.application.catalog import keep_item, keep_price_list
from sales.application.quotes import QuoteSettings, expire_quotes, parse_limits
from sales.models import OutboxMessage
from sales.models.quotes import Quote
from sales.repository.quotes import mark_quote_ordered, quote_for_order
from sales.schemas.erp import ERP_EVENT_SCHEMAS
from sales.service import SalesService

from .sample_org import (
    COLLEAGUE,
    EAST_MACHINERY,
    GUANGZHOU_HEAVY,
    MANAGER,
    MANAGER_PERMISSIONS,
    OTHER_OFFICE,
    SALES,
)

T1 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
TODAY = date.today()
LIMITS = parse_limits("sales:5,manager:15,regional:25")
EAST_MANAGER = Principal(
    user_id="u-east-mgr",
    department_id="d-east",
    roles=("regional",),
    permissions=MANAGER_PERMISSIONS,
    grants=({"departments": ["d-east"]},),
)
"""李经理, 华东区: may grant 25 %; his grants alone would not show him 上海办's quotes."""
BOSS = Principal(
    user_id="u-boss", department_id="d-sales", roles=("manager",), permissions=(), grants=()
)


def item(code, name, spec, price, rate="0.13"):
    raw = {
        "item_code": code,
        "name": name,
        "spec": spec,
        "unit": "个",
        "category": "轴承",
        "list_price": price,
        "tax_rate": rate,
        "active": True,
    }
    return ERP_EVENT_SCHEMAS["item_updated"]().load(raw)


@pytest.fixture
def service(db, principal):
    with db.session() as session:
        keep_item(session, item("6205", "深沟球轴承 6205", "6205-2RS", "52.00"), T1)
        keep_item(session, item("Y2-132M-4", "三相异步电动机", "7.5kW", "3180.00"), T1)
        keep_item(session, item("TOOL-1", "扭力扳手", "20-100Nm", None, "0.09"), T1)
        keep_price_list(
            session,
            ERP_EVENT_SCHEMAS["price_list_updated"]().load(
                {
                    "price_list_code": "PL-A",
                    "name": "A类客户价",
                    "currency": "CNY",
                    "valid_from": None,
                    "valid_to": None,
                    "lines": [
                        {"item_code": "6205", "customer_category": "A", "min_quantity": "1",
                         "unit_price": "48.00"},
                        {"item_code": "6205", "customer_category": "A", "min_quantity": "100",
                         "unit_price": "45.50"},
                    ],
                }
            ),
            T1,
        )  # fmt: skip
    return worker_factory(
        SalesService,
        db=db,
        outbox=OutboxWriter(OutboxMessage, "sales"),
        quote_settings=QuoteSettings(LIMITS, {"name": "华东工业品供应有限公司", "phone": "021-1"}),
    )


def new_quote(service, **fields):
    values = {
        "customer_id": str(EAST_MACHINERY),
        "title": "轴承与电机报价",
        "lines": [{"item_code": "6205", "quantity": "10"}],
        **fields,
    }
    return service.create_quote(values)


# -- pricing and totals --------------------------------------------------------------------------
def test_a_quote_is_priced_for_the_customers_category_with_exact_totals(service):
    quote = new_quote(
        service,
        lines=[
            {"item_code": "6205", "quantity": "100"},
            {"item_code": "Y2-132M-4", "quantity": "3", "discount_percent": "3"},
            {"item_code": "TOOL-1", "quantity": "2", "unit_price": "415.50"},
        ],
        discount_amount="100.00",
    )
    assert quote["code"].startswith("QT-") and quote["status"] == "draft"
    lines = quote["lines"]
    assert [line["unit_price"] for line in lines] == ["45.50", "3180.00", "415.50"]
    assert [line["price_source"] for line in lines] == ["price_list", "list_price", None]
    assert [line["tax_rate"] for line in lines] == ["0.1300", "0.1300", "0.0900"]
    # 4550.00 + (9540.00 - 3 % = 9253.80) + 831.00 = 14634.80, less 100.00 shared by weight
    assert quote["amount"] == "14921.00"
    assert quote["line_discount"] == "286.20"
    assert quote["document_discount"] == "100.00"
    assert [line["document_discount"] for line in lines] == ["31.09", "63.23", "5.68"]
    assert quote["net"] == "14534.80"
    assert [line["tax"] for line in lines] == ["587.46", "1194.77", "74.28"]
    assert quote["tax"] == "1856.51" and quote["gross"] == "16391.31"
    assert sum(Decimal(line["gross"]) for line in lines) == Decimal(quote["gross"])


def test_tax_inclusive_prices_split_net_and_tax_per_line(service):
    quote = new_quote(
        service,
        prices_include_tax=True,
        lines=[
            {"item_code": "6205", "quantity": "3", "unit_price": "33.33"},
            {"item_code": "6205", "quantity": "7", "unit_price": "0.07", "tax_rate": "0.06"},
        ],
        discount_percent="10",
    )
    assert quote["amount"] == "100.48"
    assert quote["gross"] == "90.43"
    # 99.99 → 90.00 after 10 %, /1.13; 0.49 → 0.44 (0.43 share rounding), /1.06
    assert [line["gross"] for line in quote["lines"]] == ["89.99", "0.44"]
    assert [line["net"] for line in quote["lines"]] == ["79.64", "0.42"]
    assert Decimal(quote["net"]) + Decimal(quote["tax"]) == Decimal(quote["gross"])


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ({"item_code": "NOPE", "quantity": "1"}, "lines.1.item_code"),
        ({"item_code": "6205", "quantity": 1.5}, "lines.1.quantity"),
        ({"item_code": "6205", "quantity": "0"}, "lines.1.quantity"),
        ({"item_code": "6205", "quantity": "1", "tax_rate": "0.10"}, "lines.1.tax_rate"),
        ({"item_code": "6205", "quantity": "1", "discount_percent": "120"}, "lines.1.discount"),
        (
            {"item_code": "6205", "quantity": "1", "discount_percent": "1", "discount_amount": "1"},
            "lines.1.discount",
        ),
        ({"item_code": "6205", "quantity": "1", "unit_price": "1.005"}, "lines.1.unit_price"),
    ],
)
def test_bad_lines_are_refused_naming_the_field(service, line, field):
    with pytest.raises(ValidationFailed) as failed:
        new_quote(service, lines=[{"item_code": "6205", "quantity": "1"}, line][1:])
    assert field in failed.value.field_errors


def test_an_item_without_any_price_needs_a_unit_price(service):
    with pytest.raises(ValidationFailed) as failed:
        new_quote(service, lines=[{"item_code": "TOOL-1", "quantity": "1"}])
    assert "lines.1.unit_price" in failed.value.field_errors


# -- scope -------------------------------------------------------------------------------------
def test_quotes_are_scoped_like_opportunities(service, act_as):
    quote = new_quote(service)
    act_as(OTHER_OFFICE)
    with pytest.raises(NotFound):
        service.get_quote(quote["id"])
    with pytest.raises(ValidationFailed) as failed:
        new_quote(service)
    assert "customer_id" in failed.value.field_errors
    assert service.list_quotes({})["items"] == []
    act_as(SALES)
    with pytest.raises(ValidationFailed):
        new_quote(service, customer_id=str(GUANGZHOU_HEAVY))
    listed = service.list_quotes({"q": "华东机电"})["items"]
    assert [q["code"] for q in listed] == [quote["code"]]


def test_editing_needs_the_version_read(service):
    quote = new_quote(service)
    changed = service.update_quote(
        quote["id"], {"lines": [{"item_code": "6205", "quantity": "100"}]}, quote["version"]
    )
    assert changed["gross"] == "5141.50"
    with pytest.raises(Conflict):
        service.update_quote(quote["id"], {"terms": "款到发货"}, quote["version"])


# -- approval ----------------------------------------------------------------------------------
def test_a_discount_within_authority_is_approved_at_submission(service, outbox_events):
    quote = new_quote(service, discount_percent="5")
    submitted = service.submit_quote(quote["id"])
    assert submitted["status"] == "approved" and submitted["waiting_for"] is None
    assert [t for t, _ in outbox_events()] == ["quote_approved"]


def test_beyond_authority_the_quote_waits_for_the_managers_up_the_chart(
    service, act_as, outbox_events
):
    # a unit price typed below the price list counts toward the discount: 48.00 → 40.00
    quote = new_quote(service, lines=[{"item_code": "6205", "quantity": "10", "unit_price": "40"}])
    assert quote["effective_discount_percent"] == "16.67"
    submitted = service.submit_quote(quote["id"])
    assert submitted["status"] == "submitted"
    assert submitted["waiting_for"]["approver_person_id"] == "p-sh-mgr"
    act_as(COLLEAGUE)
    with pytest.raises(NotFound):
        service.approve_quote(quote["id"])
    act_as(MANAGER)
    assert [q["code"] for q in service.list_quotes({"awaiting_me": True})["items"]] == [
        quote["code"]
    ]
    passed_up = service.approve_quote(quote["id"], {"comment": "同意"})
    assert passed_up["status"] == "submitted"
    assert passed_up["waiting_for"]["approver_person_id"] == "p-east-mgr"
    with pytest.raises(Forbidden):
        service.approve_quote(quote["id"])
    act_as(EAST_MANAGER)
    approved = service.approve_quote(quote["id"])
    assert approved["status"] == "approved"
    assert [a["decision"] for a in approved["approvals"]] == ["approved", "approved"]
    kinds = [t for t, _ in outbox_events()]
    assert kinds == ["quote_submitted", "quote_submitted", "quote_approved"]
    data = outbox_events("quote_approved")[0][1]
    assert (data["owner_id"], data["customer_id"]) == ("u-sales-01", str(EAST_MACHINERY))


def test_a_rejected_quote_goes_back_to_draft_and_can_be_submitted_again(service, act_as):
    quote = new_quote(service, discount_percent="10")
    service.submit_quote(quote["id"])
    act_as(MANAGER)
    with pytest.raises(ValidationFailed):
        service.reject_quote(quote["id"], {})
    rejected = service.reject_quote(quote["id"], {"comment": "折扣过大"})
    assert rejected["status"] == "draft"
    act_as(SALES)
    edited = service.update_quote(quote["id"], {"discount_percent": "8"}, rejected["version"])
    again = service.submit_quote(edited["id"])
    assert again["waiting_for"]["approver_person_id"] == "p-sh-mgr"
    act_as(MANAGER)
    assert service.approve_quote(quote["id"])["status"] == "approved"


def test_nobody_approves_when_no_manager_is_above(service, act_as, db):
    act_as(
        Principal(
            user_id="u-boss",
            department_id="d-sales",
            roles=(),
            permissions=("opportunity:read", "opportunity:write"),
            grants=({},),
        )
    )
    quote = new_quote(service, discount_percent="10")
    with pytest.raises(Conflict):
        service.submit_quote(quote["id"])


# -- with the customer ---------------------------------------------------------------------------
def test_accepting_moves_the_opportunity_and_can_make_the_order(service, outbox_events, act_as):
    act_as(replace(SALES, permissions=(*SALES.permissions, "order:read", "order:write")))
    opportunity = service.create_opportunity(
        {"name": "轴承项目", "customer_id": str(EAST_MACHINERY)}
    )
    quote = new_quote(service, customer_id=None, opportunity_id=opportunity["id"])
    assert quote["customer_id"] == str(EAST_MACHINERY)
    service.submit_quote(quote["id"])
    sent = service.send_quote(quote["id"])
    assert sent["status"] == "sent" and sent["sent_at"]
    accepted = service.accept_quote(quote["id"], {"create_order": True})
    assert accepted["quote"]["status"] == "accepted"
    assert accepted["opportunity_stage"] == "needs_confirmed"
    assert service.get_opportunity(opportunity["id"])["stage_code"] == "needs_confirmed"
    assert accepted["order"]["quote_id"] == quote["id"]
    assert accepted["quote"]["order_id"] == accepted["order"]["id"]
    assert "quote_accepted" in [t for t, _ in outbox_events()]
    with pytest.raises(Conflict):
        service.accept_quote(quote["id"])


def test_a_declined_quote_is_rejected_with_the_reason(service, outbox_events):
    quote = new_quote(service)
    service.submit_quote(quote["id"])
    service.send_quote(quote["id"])
    declined = service.decline_quote(quote["id"], {"reason": "价格高于竞争对手"})
    assert (declined["status"], declined["decline_reason"]) == ("rejected", "价格高于竞争对手")
    assert outbox_events("quote_rejected")[0][1]["by"] == "customer"


# -- revisions and expiry ------------------------------------------------------------------------
def test_a_revision_makes_a_new_draft_and_keeps_the_earlier_version(service):
    quote = new_quote(service)
    service.submit_quote(quote["id"])
    sent = service.send_quote(quote["id"])
    revised = service.revise_quote(quote["id"])
    assert (revised["version_no"], revised["status"], revised["id"]) == (2, "draft", quote["id"])
    changed = service.update_quote(
        quote["id"], {"lines": [{"item_code": "6205", "quantity": "20"}]}, revised["version"]
    )
    first = service.quote_version(quote["id"], "1")
    assert first["status"] == "superseded"
    assert first["quote"]["gross"] == sent["gross"] != changed["gross"]
    assert service.quote_version(quote["id"], "2")["quote"]["gross"] == changed["gross"]
    with pytest.raises(NotFound):
        service.quote_version(quote["id"], "3")
    with pytest.raises(Conflict):
        service.revise_quote(quote["id"])  # a draft is edited, not revised


def test_a_quote_past_its_validity_reads_expired_and_cannot_be_sent(service, db):
    quote = new_quote(service)
    service.submit_quote(quote["id"])
    with db.session() as session:
        session.execute(
            update(Quote)
            .values(valid_until=TODAY - timedelta(days=1))
            .execution_options(synchronize_session=False)
        )
    assert service.get_quote(quote["id"])["status"] == "expired"
    assert [q["id"] for q in service.list_quotes({"status": "expired"})["items"]] == [quote["id"]]
    assert service.list_quotes({"status": "approved,submitted"})["items"] == []
    with pytest.raises(Conflict):
        service.send_quote(quote["id"])
    with db.session() as session:
        assert expire_quotes(session, datetime.now(UTC)) == 1
    with db.session() as session:
        assert session.get(Quote, uuid.UUID(quote["id"])).status == "expired"
    assert service.list_quotes({"status": "expired"})["items"][0]["id"] == quote["id"]
    revised = service.revise_quote(quote["id"])
    assert revised["status"] == "draft" and date.fromisoformat(revised["valid_until"]) > TODAY


# -- print and orders -----------------------------------------------------------------------------
def test_the_printed_quote_shows_the_lines_and_totals_in_figures_and_words(service):
    quote = new_quote(service, terms="款到发货\n运费由供方承担")
    page = service.print_quote(quote["id"])
    assert page.startswith("<!DOCTYPE html>")
    assert "华东工业品供应有限公司" in page and quote["code"] in page
    assert "深沟球轴承 6205" in page and "542.40" in page
    assert "伍佰肆拾贰元肆角整" in page
    assert "款到发货<br>运费由供方承担" in page


def test_orders_read_the_quote_within_the_callers_scope(service, db):
    quote = new_quote(service, discount_amount="10.00")
    with db.session() as session:
        found = quote_for_order(session, uuid.UUID(quote["id"]), SALES)
        assert found.gross == Decimal(quote["gross"]) and found.lines[0].discount == Decimal("10")
        with pytest.raises(NotFound):
            quote_for_order(session, uuid.UUID(quote["id"]), OTHER_OFFICE)
        order_id = uuid.uuid4()
        mark_quote_ordered(session, uuid.UUID(quote["id"]), order_id)
    assert service.get_quote(quote["id"])["order_id"] == str(order_id)


def test_the_boss_without_permissions_reads_nothing(service, act_as):
    quote = new_quote(service)
    act_as(BOSS)
    with pytest.raises(Forbidden):
        service.get_quote(quote["id"])


def test_the_gateway_answers_the_printed_quote_as_an_html_page():
    from gateway.routes.sales.quotes import ROWS
    from gateway.table import respond

    row = next(row for row in ROWS if row.rpc == "print_quote")
    response = respond(row, "<!DOCTYPE html><p>报价单</p>")
    assert response.status_code == 200
    assert response.content_type == "text/html; charset=utf-8"
    assert response.get_data(as_text=True) == "<!DOCTYPE html><p>报价单</p>"


def test_real_answers_match_their_documented_schemas(service, act_as):
    from jsonschema import Draft202012Validator

    from crm_common.schemas import json_schemas
    from gateway import openapi
    from gateway.service import GatewayService
    from gateway.web import api_routes
    from sales.schemas import PUBLIC_SCHEMAS

    document = openapi.build_document(
        api_routes(GatewayService), {"sales": json_schemas("sales", PUBLIC_SCHEMAS)}
    )

    def conforms(name, answer):
        schema = {"$ref": f"#/components/schemas/sales.{name}", **document}
        Draft202012Validator(schema).validate(answer)

    act_as(replace(SALES, permissions=(*SALES.permissions, "order:read", "order:write")))
    quote = new_quote(service, discount_percent="10", terms="款到发货")
    conforms("Quote", quote)
    conforms("Quote", service.submit_quote(quote["id"]))
    act_as(MANAGER)
    conforms("Quote", service.reject_quote(quote["id"], {"comment": "再议"}))
    act_as(replace(SALES, permissions=(*SALES.permissions, "order:read", "order:write")))
    submitted = service.submit_quote(quote["id"])
    conforms("Quote", submitted)
    act_as(MANAGER)
    service.approve_quote(quote["id"])
    act_as(replace(SALES, permissions=(*SALES.permissions, "order:read", "order:write")))
    service.send_quote(quote["id"])
    service.revise_quote(quote["id"])
    conforms("QuoteVersion", service.quote_version(quote["id"], "1"))
    conforms("QuoteVersion", service.quote_version(quote["id"], "2"))
    for item in service.list_quotes({})["items"]:
        conforms("Quote", item)
    other = new_quote(service)
    service.submit_quote(other["id"])
    service.send_quote(other["id"])
    conforms("QuoteAcceptance", service.accept_quote(other["id"], {"create_order": True}))
    conforms("Item", service.get_item("6205"))
    for item in service.list_items({})["items"]:
        conforms("Item", item)
    conforms("PriceList", service.get_price_list("PL-A"))
    conforms("ItemPrice", service.item_price("6205", {"customer_id": str(EAST_MACHINERY)}))


def test_the_quote_as_a_pdf_names_the_cjk_font_and_the_gateway_sends_it(service):
    import base64

    from gateway.routes.sales.quotes import ROWS
    from gateway.table import respond

    quote = new_quote(service, terms="款到发货")
    answer = service.quote_pdf(quote["id"])
    assert answer["filename"] == f"{quote['code']}-v1.pdf"
    pdf = base64.b64decode(answer["content_base64"])
    assert pdf.startswith(b"%PDF-") and b"STSong-Light" in pdf
    row = next(row for row in ROWS if row.rpc == "quote_pdf")
    response = respond(row, answer)
    assert response.content_type == "application/pdf"
    assert response.get_data() == pdf
    assert response.headers["Content-Disposition"].startswith("inline; filename=")


@pytest.mark.parametrize("sort", ["valid_until", "-valid_until", "created_at", "-created_at"])
def test_quote_pages_follow_each_other_in_every_order(service, sort):
    made = [
        new_quote(service, valid_until=(TODAY + timedelta(days=days)).isoformat())["id"]
        for days in (3, 1, 2, 1)
    ]
    seen, cursor = [], None
    while True:
        page = service.list_quotes({"sort": sort, "limit": 1, "cursor": cursor})
        seen += [q["id"] for q in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(made) and len(seen) == 4


def test_a_merged_customers_quotes_move_to_the_survivor(service, db):
    from sales.application.read_models import ReadModels

    from .sample_org import SHANGHAI_PRECISION, T0

    quote = new_quote(service)
    with db.session() as session:
        ReadModels(session, now=T0).merge(
            {
                "survivor_id": str(SHANGHAI_PRECISION),
                "merged_id": str(EAST_MACHINERY),
                "merged_code": "C2026000001",
                "survivor": {
                    "id": str(SHANGHAI_PRECISION),
                    "code": "C2026000002",
                    "name": "上海精工轴承有限公司",
                    "short_name": "上海精工",
                    "status": "formal",
                    "category": "B",
                    "region": "华东/上海",
                    "owner_id": "u-sales-02",
                    "department_id": "d-east-sh",
                    "version": 2,
                    "updated_at": T0.isoformat(),
                },
            },
            "u-admin",
        )
    moved = service.get_quote(quote["id"])
    assert (moved["customer_id"], moved["category"]) == (str(SHANGHAI_PRECISION), "B")
    changes = service.quote_history(quote["id"])["items"]
    assert any(c["change"] == "customer_merged" for c in changes)
