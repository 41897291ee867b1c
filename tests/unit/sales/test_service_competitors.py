"""The master lists opportunities pick from: competitors and loss reasons, kept by admins and
listed for everyone who reads opportunities; an entry in use is deactivated, not deleted."""

from __future__ import annotations

import pytest

from crm_common.errors import Conflict, Forbidden, NotFound, ValidationFailed
from sales.models import HistoryEntry

from .sample_org import ADMIN, EAST_MACHINERY, SALES


@pytest.fixture
def admin(act_as):
    return act_as(ADMIN)


def test_admins_keep_competitors_with_history(service, db, admin):
    made = service.create_competitor(
        {
            "name": " 德马吉森精机 ",
            "strengths": "五轴加工中心技术领先",
            "weaknesses": "交期长",
            "main_products": "五轴加工中心",
            "price_level": "high",
        }
    )
    assert (made["name"], made["active"], made["version"]) == ("德马吉森精机", True, 1)
    changed = service.update_competitor(made["id"], {"weaknesses": "交期长，服务网点少"}, 1)
    assert changed["version"] == 2
    with pytest.raises(Conflict):
        service.update_competitor(made["id"], {"price_level": "medium"}, 1)
    with db.session() as session:
        rows = session.query(HistoryEntry).filter_by(entity_id=made["id"]).all()
    assert sorted(row.change for row in rows) == ["created", "updated"]
    assert [row.field for row in rows if row.change == "updated"] == ["weaknesses"]


def test_competitor_names_are_unique_and_input_is_checked(service, admin):
    service.create_competitor({"name": "马扎克"})
    other = service.create_competitor({"name": "哈斯"})
    for data in ({"name": "马扎克"}, {"name": ""}, {"name": "x", "price_level": "cheap"}):
        with pytest.raises(ValidationFailed):
            service.create_competitor(data)
    with pytest.raises(ValidationFailed) as info:
        service.update_competitor(other["id"], {"name": "马扎克"}, 1)
    assert set(info.value.field_errors) == {"name"}


def test_everyone_reading_opportunities_lists_active_competitors(service, admin, act_as):
    kept = service.create_competitor({"name": "马扎克"})
    retired = service.create_competitor({"name": "大隈"})
    service.update_competitor(retired["id"], {"active": False}, 1)
    act_as(SALES)
    assert [c["name"] for c in service.list_competitors({})] == ["马扎克"]
    assert {c["name"] for c in service.list_competitors({"include_inactive": True})} == {
        "马扎克",
        "大隈",
    }
    assert [c["name"] for c in service.list_competitors({"q": "扎"})] == ["马扎克"]
    assert service.get_competitor(kept["id"])["name"] == "马扎克"
    with pytest.raises(Forbidden):
        service.create_competitor({"name": "发那科"})
    with pytest.raises(Forbidden):
        service.delete_competitor(kept["id"])


def test_an_inactive_competitor_cannot_be_named_on_a_deal(service, admin, act_as):
    retired = service.create_competitor({"name": "大隈"})
    service.update_competitor(retired["id"], {"active": False}, 1)
    act_as(SALES)
    with pytest.raises(ValidationFailed) as info:
        service.create_opportunity(
            {
                "name": "项目",
                "customer_id": str(EAST_MACHINERY),
                "competitors": [{"competitor_id": retired["id"]}],
            }
        )
    assert set(info.value.field_errors) == {"competitors.0.competitor_id"}


def test_a_competitor_in_use_is_not_deleted(service, admin, act_as):
    named = service.create_competitor({"name": "马扎克"})
    unused = service.create_competitor({"name": "哈斯"})
    act_as(SALES)
    deal = service.create_opportunity(
        {
            "name": "项目",
            "customer_id": str(EAST_MACHINERY),
            "competitors": [
                {"competitor_id": named["id"], "offer": "450000", "threat_level": "high"}
            ],
        }
    )
    [entry] = deal["competitors"]
    assert (entry["competitor_name"], entry["offer"], entry["threat_level"]) == (
        "马扎克",
        "450000.00",
        "high",
    )
    act_as(ADMIN)
    with pytest.raises(Conflict) as info:
        service.delete_competitor(named["id"])
    assert info.value.details["reason"] == "competitor_in_use"
    service.delete_competitor(unused["id"])
    with pytest.raises(NotFound):
        service.get_competitor(unused["id"])


def test_loss_reasons_are_a_configurable_list(service, admin, act_as):
    service.seed_sales_defaults()
    added = service.create_loss_reason({"code": "delivery", "name": "交期不满足"})
    assert added == {"code": "delivery", "name": "交期不满足", "active": True}
    with pytest.raises(ValidationFailed):
        service.create_loss_reason({"code": "delivery", "name": "重复"})
    with pytest.raises(ValidationFailed):
        service.create_loss_reason({"code": "Bad Code", "name": "x"})
    assert service.update_loss_reason("other", {"active": False})["active"] is False
    renamed = service.update_loss_reason("delivery", {"name": "交期太长"})
    assert renamed["name"] == "交期太长"
    with pytest.raises(ValidationFailed):
        service.update_loss_reason("delivery", {"code": "late"})
    act_as(SALES)
    codes = [r["code"] for r in service.list_loss_reasons({})]
    assert "delivery" in codes and "other" not in codes
    with pytest.raises(Forbidden):
        service.create_loss_reason({"code": "mine", "name": "x"})
    act_as(ADMIN)
    service.delete_loss_reason("delivery")
    with pytest.raises(NotFound):
        service.update_loss_reason("delivery", {"name": "x"})


def test_a_loss_reason_in_use_is_not_deleted(service, admin, act_as):
    act_as(ADMIN)
    service.seed_sales_defaults()
    deal = service.create_opportunity({"name": "项目", "customer_id": str(EAST_MACHINERY)})
    service.lose_opportunity(deal["id"], {"loss_reason": "price"}, 1)
    with pytest.raises(Conflict) as info:
        service.delete_loss_reason("price")
    assert info.value.details["reason"] == "loss_reason_in_use"
