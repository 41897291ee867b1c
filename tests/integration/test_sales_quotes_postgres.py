"""Items, price lists and quotes on the real PostgreSQL: the ERP's upserts (an older update
changes nothing, also when two arrive at once), item search by partial Chinese, a quote's
approval and the scoped list and search, the expiry sweep, and two approvers deciding one
quote at once (one wins, the other gets a conflict)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import eventlet
import pytest
from nameko.testing.services import worker_factory
from sqlalchemy import select, update

from crm_common.context import bind
from crm_common.db import SessionScope, engine_for
from crm_common.errors import Conflict, Forbidden, NotFound
from crm_common.migrations import upgrade
from crm_common.outbox import OutboxWriter
from sales.application.catalog import keep_item, keep_price_list
from sales.application.quotes import QuoteSettings, expire_quotes, parse_limits
from sales.models import OutboxMessage
from sales.models.catalog import Item, PriceListLine
from sales.models.quotes import Quote
from sales.schemas.erp import ERP_EVENT_SCHEMAS
from sales.service import SalesService
from tests.unit.sales.sample_org import (
    EAST_MACHINERY,
    MANAGER,
    OTHER_OFFICE,
    SALES,
    seed,
)

pytestmark = pytest.mark.postgres

T1 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def item(code, name, price="52.00", **extra):
    raw = {
        "item_code": code,
        "name": name,
        "spec": f"{code} 规格",
        "unit": "个",
        "category": "轴承",
        "list_price": price,
        "tax_rate": "0.13",
        "active": True,
        **extra,
    }
    return ERP_EVENT_SCHEMAS["item_updated"]().load(raw)


def price_list(price):
    raw = {
        "price_list_code": "PL-A",
        "name": "A类客户价",
        "currency": "CNY",
        "valid_from": None,
        "valid_to": None,
        "lines": [
            {
                "item_code": "6205",
                "customer_category": "A",
                "min_quantity": "1",
                "unit_price": price,
            }
        ],
    }
    return ERP_EVENT_SCHEMAS["price_list_updated"]().load(raw)


@pytest.fixture
def db(pg_uri):
    upgrade("sales", pg_uri)
    scope = SessionScope(engine_for(pg_uri))
    with scope.session() as session:
        seed(session)
        keep_item(session, item("6205", "深沟球轴承 6205"), T1)
        keep_item(session, item("Y2-132M-4", "三相异步电动机", "3180.00"), T1)
        keep_price_list(session, price_list("48.00"), T1)
    return scope


@pytest.fixture
def service(db):
    bind(SALES, "req-pg")
    yield worker_factory(
        SalesService,
        db=db,
        outbox=OutboxWriter(OutboxMessage, "sales"),
        quote_settings=QuoteSettings(parse_limits("sales:5,manager:15")),
    )
    bind(None, None)


def test_an_older_erp_update_changes_nothing_on_postgres(db):
    with db.session() as session:
        keep_item(session, item("6205", "旧名称", "1.00"), T1 - timedelta(hours=1))
        keep_price_list(session, price_list("1.00"), T1 - timedelta(hours=1))
    with db.session() as session:
        stored = session.get(Item, "6205")
        assert (stored.name, stored.list_price) == ("深沟球轴承 6205", Decimal("52.00"))
        prices = session.scalars(select(PriceListLine.unit_price)).all()
        assert prices == [Decimal("48.00")]
    with db.session() as session:
        keep_item(session, item("6205", "深沟球轴承 6205-2RS"), T1 + timedelta(hours=1))
        keep_price_list(session, price_list("47.00"), T1 + timedelta(hours=1))
    with db.session() as session:
        assert session.get(Item, "6205").name == "深沟球轴承 6205-2RS"
        assert session.scalars(select(PriceListLine.unit_price)).all() == [Decimal("47.00")]


def test_two_updates_of_one_item_at_once_leave_the_newer(db):
    def apply(name, moment):
        with db.session() as session:
            keep_item(session, item("NEW-1", name), moment)

    pool = eventlet.GreenPool()
    for index in range(10):
        pool.spawn(apply, f"第{index}版", T1 + timedelta(minutes=index))
    pool.waitall()
    with db.session() as session:
        assert session.get(Item, "NEW-1").name == "第9版"


def test_items_are_searched_by_partial_chinese(service):
    assert [i["item_code"] for i in service.list_items({"q": "轴承"})["items"]] == ["6205"]
    assert [i["item_code"] for i in service.list_items({"q": "电动"})["items"]] == ["Y2-132M-4"]


def quote(service, percent):
    return service.create_quote(
        {
            "customer_id": str(EAST_MACHINERY),
            "lines": [{"item_code": "6205", "quantity": "10", "discount_percent": percent}],
        }
    )


def test_a_quote_is_approved_listed_and_searched_within_scope(service):
    made = quote(service, "10")
    assert made["net"] == "432.00" and made["gross"] == "488.16"
    assert service.submit_quote(made["id"])["status"] == "submitted"
    bind(MANAGER, "req-pg")
    assert [q["id"] for q in service.list_quotes({"awaiting_me": True})["items"]] == [made["id"]]
    assert service.approve_quote(made["id"])["status"] == "approved"
    bind(SALES, "req-pg")
    assert [q["id"] for q in service.list_quotes({"q": "华东机电"})["items"]] == [made["id"]]
    bind(OTHER_OFFICE, "req-pg")
    assert service.list_quotes({})["items"] == []
    with pytest.raises(NotFound):
        service.get_quote(made["id"])


def test_two_decisions_on_one_quote_at_once_apply_once(service, db):
    made = quote(service, "10")
    service.submit_quote(made["id"])
    bind(MANAGER, "req-pg")
    outcomes = []

    def decide(action):
        bind(MANAGER, "req-pg")
        try:
            if action == "approve":
                outcomes.append(service.approve_quote(made["id"])["status"])
            else:
                outcomes.append(service.reject_quote(made["id"], {"comment": "不行"})["status"])
        except (Conflict, Forbidden) as exc:
            outcomes.append(type(exc).__name__)

    pool = eventlet.GreenPool()
    for action in ("approve", "reject", "approve"):
        pool.spawn(decide, action)
    pool.waitall()
    decided = [o for o in outcomes if o in ("approved", "draft")]
    assert len(decided) == 1, outcomes
    with db.session() as session:
        assert session.get(Quote, uuid.UUID(made["id"])).status == decided[0]


def test_the_sweep_expires_live_quotes_past_their_validity(service, db):
    made = quote(service, "2")
    service.submit_quote(made["id"])
    with db.session() as session:
        session.execute(update(Quote).values(valid_until=date.today() - timedelta(days=1)))
    with db.session() as session:
        assert expire_quotes(session, datetime.now(UTC)) == 1
        assert expire_quotes(session, datetime.now(UTC)) == 0
    assert service.get_quote(made["id"])["status"] == "expired"
