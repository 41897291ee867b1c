import pytest

from crm_common.errors import Conflict, NotFound, ValidationFailed


@pytest.fixture
def pair(service, make_customer):
    survivor = make_customer(
        "上海华东机电设备有限公司", industry="机电设备", tags=["重点客户"], owner_id="u-sales-01"
    )
    merged = make_customer(
        "上海华东机电设备股份有限公司",
        industry="五金",
        address="上海市浦东新区张江路88号",
        credit_code="91350100M000100Y43",
        tags=["重点客户", "战略合作"],
        owner_id="u-sales-02",
    )
    merged = service.update_customer(merged["id"], {"status": "formal"}, merged["version"])
    return survivor, merged


def test_merge_moves_everything_and_fills_gaps(service, make_customer, pair, outbox_events):
    survivor, merged = pair
    other = make_customer("浙江宁波液压件有限公司")
    service.create_contact(survivor["id"], {"name": "王建国"})
    moved = service.create_contact(merged["id"], {"name": "李红", "mobile": "13912345678"})
    service.add_care_record(merged["id"], {"kind": "visit", "date": "2026-03-01"})
    service.add_relationship(merged["id"], {"related_customer_id": other["id"], "kind": "partner"})
    service.add_relationship(
        survivor["id"], {"related_customer_id": merged["id"], "kind": "influences"}
    )

    result = service.merge_customers(survivor["id"], merged["id"])

    assert result["id"] == survivor["id"]
    assert result["industry"] == "机电设备"
    assert result["address"] == "上海市浦东新区张江路88号"
    assert result["credit_code"] == "91350100M000100Y43"
    assert result["tags"] == ["重点客户", "战略合作"]
    assert result["status"] == "formal"
    assert result["owner_id"] == "u-sales-01"
    contacts = service.list_contacts(survivor["id"])
    assert {c["name"] for c in contacts} == {"王建国", "李红"}
    assert [c["name"] for c in contacts if c["is_primary"]] == ["王建国"]
    assert service.get_contact(moved["id"])["customer_id"] == survivor["id"]
    assert [r["kind"] for r in service.list_care_records(survivor["id"])] == ["visit"]
    [rel] = service.list_relationships(survivor["id"])
    assert rel["related_customer_id"] == other["id"]
    assert service.list_relationships(merged["id"]) == []

    gone = service.get_customer(merged["id"])
    assert gone["status"] == "merged" and gone["merged_into_id"] == survivor["id"]
    assert gone["credit_code"] is None
    assert merged["id"] not in {c["id"] for c in service.list_customers({})["items"]}
    assert [c["id"] for c in service.list_customers({"status": "merged"})["items"]] == [
        merged["id"]
    ]

    [(_, event)] = outbox_events("customer_merged")
    assert event["survivor_id"] == survivor["id"] and event["merged_id"] == merged["id"]
    assert event["merged_code"] == merged["code"]
    survivor_history = {h["change"] for h in service.customer_history(survivor["id"])["items"]}
    assert "merged" in survivor_history
    merged_history = service.customer_history(merged["id"])["items"]
    assert any(h["field"] == "status" and h["new"] == "merged" for h in merged_history)


def test_merged_customers_are_frozen(service, pair):
    survivor, merged = pair
    service.merge_customers(survivor["id"], merged["id"])
    current = service.get_customer(merged["id"])
    with pytest.raises(Conflict) as info:
        service.update_customer(merged["id"], {"industry": "x"}, current["version"])
    assert info.value.details["reason"] == "customer_merged"
    with pytest.raises(Conflict):
        service.create_contact(merged["id"], {"name": "x"})
    with pytest.raises(Conflict) as info:
        service.merge_customers(survivor["id"], merged["id"])
    assert info.value.details["reason"] == "not_mergeable"


def test_merge_refusals(service, make_customer, pair):
    survivor, merged = pair
    with pytest.raises(ValidationFailed) as info:
        service.merge_customers(survivor["id"], survivor["id"])
    assert "merged_id" in info.value.field_errors
    with pytest.raises(ValidationFailed):
        service.merge_customers("nonsense", merged["id"])
    with pytest.raises(NotFound):
        service.merge_customers(survivor["id"], "6f1c1b7e-0000-4000-8000-000000000000")
    disabled = make_customer("停用的客户有限公司")
    service.update_customer(disabled["id"], {"status": "disabled"}, disabled["version"])
    with pytest.raises(Conflict) as info:
        service.merge_customers(survivor["id"], disabled["id"])
    assert info.value.details["role"] == "merged"


def test_earlier_merges_follow_to_the_new_survivor(service, make_customer):
    a = make_customer("甲机电有限公司")
    b = make_customer("乙五金有限公司")
    c = make_customer("丙轴承有限公司")
    service.merge_customers(b["id"], a["id"])
    service.merge_customers(c["id"], b["id"])
    assert service.get_customer(a["id"])["merged_into_id"] == c["id"]


def test_a_relationship_that_would_repeat_is_dropped(service, make_customer):
    hub = make_customer("华东机电集团有限公司")
    survivor = make_customer("甲机电有限公司")
    merged = make_customer("甲机电设备有限公司")
    service.add_relationship(survivor["id"], {"related_customer_id": hub["id"], "kind": "parent"})
    service.add_relationship(merged["id"], {"related_customer_id": hub["id"], "kind": "parent"})
    service.merge_customers(survivor["id"], merged["id"])
    [rel] = service.list_relationships(hub["id"])
    assert rel["related_customer_id"] == survivor["id"] and rel["kind"] == "subsidiary"
