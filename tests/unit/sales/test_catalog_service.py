"""Items and price lists kept from the ERP's events (a late or repeated update changes
nothing), searched with partial Chinese, and priced for a customer's category through the
sales service."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from crm_common.errors import Forbidden, NotFound, ValidationFailed
from sales.application.catalog import keep_item, keep_price_list
from sales.models.catalog import Item, PriceListLine
from sales.schemas.erp import ERP_EVENT_SCHEMAS

from .sample_org import ADMIN, EAST_MACHINERY, GUANGZHOU_HEAVY, SHANGHAI_PRECISION

T1 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
TODAY = date.today()


def item_event(code="6205", name="深沟球轴承 6205", spec="6205-2RS 25x52x15", **extra):
    raw = {
        "item_code": code,
        "name": name,
        "spec": spec,
        "unit": "个",
        "category": "轴承",
        "list_price": "52.00",
        "tax_rate": "0.13",
        "active": True,
        **extra,
    }
    return ERP_EVENT_SCHEMAS["item_updated"]().load(raw)


STANDARD_LINES = [
    {"item_code": "6205", "customer_category": None, "min_quantity": "1", "unit_price": "50.00"},
    {"item_code": "6205", "customer_category": "A", "min_quantity": "1", "unit_price": "48.00"},
    {"item_code": "6205", "customer_category": "A", "min_quantity": "100", "unit_price": "45.50"},
]


def price_list_event(code="PL-2026", lines=None, **extra):
    raw = {
        "price_list_code": code,
        "name": "2026年标准价格",
        "currency": "CNY",
        "valid_from": (TODAY - timedelta(days=30)).isoformat(),
        "valid_to": (TODAY + timedelta(days=300)).isoformat(),
        "lines": STANDARD_LINES if lines is None else lines,
        **extra,
    }
    return ERP_EVENT_SCHEMAS["price_list_updated"]().load(raw)


@pytest.fixture
def catalog(db):
    with db.session() as session:
        keep_item(session, item_event(), T1)
        keep_item(session, item_event("Y2-132M-4", "三相异步电动机", "7.5kW 4极"), T1)
        keep_item(session, item_event("ZG-DN50", "闸阀", "Z41H-16C DN50", active=False), T1)
        keep_price_list(session, price_list_event(), T1)
    return db


def test_an_older_item_update_arriving_late_changes_nothing(catalog):
    with catalog.session() as session:
        keep_item(session, item_event(name="深沟球轴承 6205 新"), T1 + timedelta(hours=1))
        keep_item(session, item_event(name="旧名称", list_price="1.00"), T1 - timedelta(hours=1))
        keep_item(session, item_event(name="深沟球轴承 6205 新"), T1 + timedelta(hours=1))
    with catalog.session() as session:
        item = session.get(Item, "6205")
        assert item.name == "深沟球轴承 6205 新"
        assert item.list_price == Decimal("52.00")


def test_a_price_list_update_replaces_its_lines_unless_older(catalog):
    one_line = [{"item_code": "6205", "min_quantity": "0", "unit_price": "49.00"}]
    with catalog.session() as session:
        keep_price_list(session, price_list_event(lines=[]), T1 - timedelta(days=1))
        keep_price_list(session, price_list_event(lines=one_line), T1 + timedelta(days=1))
    with catalog.session() as session:
        lines = session.query(PriceListLine).all()
        assert [(line.item_code, line.unit_price) for line in lines] == [("6205", Decimal("49.00"))]


def test_data_that_can_never_apply_is_refused_naming_the_field(db):
    with db.session() as session, pytest.raises(ValidationFailed) as failed:
        keep_item(session, item_event(code="X" * 41), T1)
    assert "item_code" in failed.value.field_errors
    with db.session() as session, pytest.raises(ValidationFailed) as failed:
        keep_price_list(
            session,
            price_list_event(
                lines=[{"item_code": "6205", "min_quantity": "1", "unit_price": "-1"}]
            ),
            T1,
        )
    assert "lines.1.unit_price" in failed.value.field_errors


def test_items_are_found_by_part_of_their_chinese_name_or_spec(service, catalog):
    found = service.list_items({"q": "轴承"})
    assert [item["item_code"] for item in found["items"]] == ["6205"]
    assert [i["item_code"] for i in service.list_items({"q": "4极"})["items"]] == ["Y2-132M-4"]
    active = service.list_items({"active": True})["items"]
    assert {item["item_code"] for item in active} == {"6205", "Y2-132M-4"}
    first = service.list_items({"limit": 2})
    rest = service.list_items({"limit": 2, "cursor": first["next_cursor"]})
    codes = [i["item_code"] for i in first["items"] + rest["items"]]
    assert sorted(codes) == codes and len(set(codes)) == 3 and rest["next_cursor"] is None


def test_an_item_shows_the_prices_that_apply_to_it(service, catalog):
    item = service.get_item("6205")
    assert item["list_price"] == "52.00"
    assert item["tax_rate"] == "0.1300"
    assert {(p["customer_category"], p["unit_price"]) for p in item["prices"]} == {
        (None, "50.00"),
        ("A", "48.00"),
        ("A", "45.50"),
    }
    with pytest.raises(NotFound):
        service.get_item("nope")


def test_price_lists_list_and_read(service, catalog):
    lists = service.list_price_lists({})
    assert [(p["price_list_code"], p["line_count"]) for p in lists["items"]] == [("PL-2026", 3)]
    one = service.get_price_list("PL-2026")
    assert len(one["lines"]) == 3
    assert (
        service.list_price_lists({"on": (TODAY + timedelta(days=400)).isoformat()})["items"] == []
    )


def test_the_price_follows_the_customers_category_and_quantity_breaks(service, catalog, act_as):
    a_customer = service.item_price("6205", {"customer_id": str(EAST_MACHINERY)})
    assert (a_customer["unit_price"], a_customer["source"]) == ("48.00", "price_list")
    large = service.item_price("6205", {"customer_id": str(EAST_MACHINERY), "quantity": "100"})
    assert (large["unit_price"], large["min_quantity"]) == ("45.50", "100.0000")
    act_as(ADMIN)
    b_customer = service.item_price("6205", {"customer_id": str(SHANGHAI_PRECISION)})
    assert b_customer["unit_price"] == "50.00"
    motor = service.item_price("Y2-132M-4", {})
    assert (motor["unit_price"], motor["source"]) == ("52.00", "list_price")
    expired = service.item_price("6205", {"on": (TODAY + timedelta(days=400)).isoformat()})
    assert expired["source"] == "list_price"


def test_pricing_for_a_customer_outside_the_callers_scope_is_404(service, catalog):
    with pytest.raises(NotFound):
        service.item_price("6205", {"customer_id": str(GUANGZHOU_HEAVY)})


def test_reading_the_catalog_needs_the_opportunity_read_permission(service, catalog, act_as):
    from crm_common.context import Principal

    act_as(Principal(user_id="u-x", department_id="d-sales", permissions=(), grants=({},)))
    with pytest.raises(Forbidden):
        service.list_items({})
