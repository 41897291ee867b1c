"""A contract drafted from an accepted quote: the quote's customer, owner, amount (tax included)
and currency; a quote not accepted is refused."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from nameko.testing.services import worker_factory

from crm_common.errors import ValidationFailed
from crm_common.outbox import OutboxWriter
from sales.application.catalog import keep_item
from sales.application.quotes import QuoteSettings, parse_limits
from sales.domain.credit import WhenNoLimit
from sales.models import OutboxMessage
from sales.schemas.erp import ERP_EVENT_SCHEMAS
from sales.service import SalesService

from .sample_org import EAST_MACHINERY, SALES

T1 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
CONTRACTING = ("contract:read", "contract:write")


@pytest.fixture
def service(db, principal, act_as):
    act_as(replace(SALES, permissions=(*SALES.permissions, *CONTRACTING)))
    raw = {
        "item_code": "Y2-132M-4",
        "name": "三相异步电动机",
        "spec": "7.5kW",
        "unit": "台",
        "category": "电机",
        "list_price": "3180.00",
        "tax_rate": "0.13",
        "active": True,
    }
    with db.session() as session:
        keep_item(session, ERP_EVENT_SCHEMAS["item_updated"]().load(raw), T1)
    return worker_factory(
        SalesService,
        db=db,
        outbox=OutboxWriter(OutboxMessage, "sales"),
        quote_settings=QuoteSettings(parse_limits("sales:5"), {"name": "华东工业品"}),
        credit_policy=WhenNoLimit.ALLOW,
    )


def test_a_contract_from_an_accepted_quote_takes_its_customer_and_total(service):
    quote = service.create_quote(
        {
            "customer_id": str(EAST_MACHINERY),
            "title": "电机报价",
            "lines": [{"item_code": "Y2-132M-4", "quantity": "5"}],
        }
    )
    service.submit_quote(quote["id"])
    sent = service.send_quote(quote["id"])
    draft = {
        "title": "电机供货合同",
        "quote_id": quote["id"],
        "our_entity": "华东工业品供应链有限公司",
        "start_date": "2026-03-01",
        "end_date": "2026-12-31",
        "milestones": [
            {"name": "预付款", "due_date": "2026-03-10", "percent": "50"},
            {"name": "尾款", "due_date": "2026-05-10", "percent": "50"},
        ],
    }
    with pytest.raises(ValidationFailed) as info:
        service.create_contract(draft)
    assert set(info.value.field_errors) == {"quote_id"}
    service.accept_quote(quote["id"], {})
    contract = service.create_contract(draft)
    assert (contract["customer_id"], contract["quote_id"], contract["owner_id"]) == (
        str(EAST_MACHINERY),
        quote["id"],
        "u-sales-01",
    )
    assert contract["amount"] == sent["gross"] == "17967.00"
    assert sum(Decimal(m["amount"]) for m in contract["milestones"]) == Decimal(sent["gross"])
