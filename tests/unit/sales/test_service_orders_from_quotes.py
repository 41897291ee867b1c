"""An order made from an accepted quote: the quote's customer, scope, lines and figures, to the
fen; confirmed, it sends the ERP the same figures; a quote not accepted makes no order."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from nameko.testing.services import worker_factory

from crm_common.errors import Conflict, NotFound
from crm_common.outbox import OutboxWriter
from sales.application.catalog import keep_item
from sales.application.quotes import QuoteSettings, parse_limits
from sales.domain.credit import WhenNoLimit
from sales.models import OutboxMessage
from sales.schemas.erp import ERP_EVENT_SCHEMAS, ORDER_REQUEST_SCHEMAS
from sales.service import SalesService

from .sample_org import COLLEAGUE, EAST_MACHINERY, SALES

T1 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
ORDERING = ("order:read", "order:write")


def item(code, name, price, rate="0.13"):
    raw = {
        "item_code": code,
        "name": name,
        "spec": f"{code} 标准型",
        "unit": "个",
        "category": "轴承",
        "list_price": price,
        "tax_rate": rate,
        "active": True,
    }
    return ERP_EVENT_SCHEMAS["item_updated"]().load(raw)


@pytest.fixture
def service(db, principal, act_as):
    act_as(replace(SALES, permissions=(*SALES.permissions, *ORDERING)))
    with db.session() as session:
        keep_item(session, item("6205", "深沟球轴承 6205", "52.00"), T1)
        keep_item(session, item("TOOL-1", "扭力扳手", "415.50", "0.09"), T1)
    return worker_factory(
        SalesService,
        db=db,
        outbox=OutboxWriter(OutboxMessage, "sales"),
        quote_settings=QuoteSettings(parse_limits("sales:5"), {"name": "华东工业品"}),
        credit_policy=WhenNoLimit.ALLOW,
    )


@pytest.fixture
def sent_quote(service):
    quote = service.create_quote(
        {
            "customer_id": str(EAST_MACHINERY),
            "title": "轴承与工具报价",
            "lines": [
                {"item_code": "6205", "quantity": "37", "discount_percent": "3"},
                {"item_code": "TOOL-1", "quantity": "3"},
            ],
            "discount_amount": "10.00",
        }
    )
    service.submit_quote(quote["id"])
    return service.send_quote(quote["id"])


def test_an_accepted_quote_becomes_an_order_with_its_figures(service, sent_quote, outbox_events):
    with pytest.raises(Conflict):
        service.create_order_from_quote(sent_quote["id"], {})
    service.accept_quote(sent_quote["id"], {})
    order = service.create_order_from_quote(
        sent_quote["id"], {"requested_delivery_date": "2026-04-01"}
    )
    assert (order["status"], order["quote_id"], order["customer_id"]) == (
        "draft",
        sent_quote["id"],
        str(EAST_MACHINERY),
    )
    assert (order["owner_id"], order["region"], order["category"]) == (
        "u-sales-01",
        "华东/上海",
        "A",
    )
    assert (order["net"], order["tax"], order["gross"]) == (
        sent_quote["net"],
        sent_quote["tax"],
        sent_quote["gross"],
    )
    for mine, quoted in zip(order["lines"], sent_quote["lines"], strict=True):
        assert (mine["item_code"], mine["gross"], mine["net"]) == (
            quoted["item_code"],
            quoted["gross"],
            quoted["net"],
        )
        assert Decimal(mine["amount"]) - Decimal(mine["discount"]) in (
            Decimal(mine["net"]),
            Decimal(mine["gross"]),
        )
    confirmed = service.confirm_order(order["id"])
    assert confirmed["status"] == "confirmed"
    [sent] = [data for kind, data in outbox_events() if kind == "order_confirmed"]
    loaded = ORDER_REQUEST_SCHEMAS["order_confirmed"]().load(sent)
    assert loaded["total_amount"] == Decimal(sent_quote["gross"])
    assert loaded["discount_amount"] == sum(line["discount_amount"] for line in loaded["lines"])
    assert [line["spec"] for line in loaded["lines"]] == ["6205 标准型", "TOOL-1 标准型"]
    with pytest.raises(Conflict):
        service.create_order_from_quote(sent_quote["id"], {})


def test_a_quote_outside_the_callers_scope_is_not_found(service, sent_quote, act_as):
    service.accept_quote(sent_quote["id"], {})
    act_as(replace(COLLEAGUE, permissions=(*COLLEAGUE.permissions, *ORDERING)))
    with pytest.raises(NotFound):
        service.create_order_from_quote(sent_quote["id"], {})
