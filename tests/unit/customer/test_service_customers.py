import re
import uuid

import pytest

from crm_common.context import bind
from crm_common.errors import Conflict, NotFound, Unauthenticated, ValidationFailed
from customer.repository import business_year

YEAR = business_year()


def test_ping_needs_no_caller(service):
    bind(None, None)
    assert service.ping() == "pong"


def test_calls_without_a_principal_are_refused(service):
    bind(None, None)
    with pytest.raises(Unauthenticated):
        service.list_customers({})


def test_create_returns_the_customer_with_code_owner_and_normalized_values(service, outbox_events):
    created = service.create_customer(
        {
            "name": " 上海华东机电设备有限公司 ",
            "short_name": "华东机电",
            "phone": "+86 21 5888 1234",
            "credit_code": "91350100m000100y43",
            "region": "华东／上海",
            "category": "VIP",
            "tags": ["重点客户", "重点客户", "年采购>100万"],
        }
    )
    assert re.fullmatch(rf"C{YEAR}\d{{6}}", created["code"])
    assert created["name"] == "上海华东机电设备有限公司"
    assert created["credit_code"] == "91350100M000100Y43"
    assert created["region"] == "华东/上海"
    assert created["tags"] == ["重点客户", "年采购>100万"]
    assert created["status"] == "potential" and created["kind"] == "enterprise"
    assert created["owner_id"] == "u-sales-01" and created["department_id"] == "d-east"
    assert created["version"] == 1
    assert created["created_at"].endswith("+00:00")
    [(kind, data)] = outbox_events()
    assert kind == "customer_created"
    assert data["customer"]["id"] == created["id"]
    assert data["customer"]["code"] == created["code"]


def test_codes_count_up_within_the_year(make_customer):
    first = make_customer("甲公司")
    second = make_customer("乙工厂有限公司")
    assert first["code"] == f"C{YEAR}000001"
    assert second["code"] == f"C{YEAR}000002"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "name"),
        ({"name": "  "}, "name"),
        ({"name": "上海某公司", "credit_code": "91350100M000100Y44"}, "credit_code"),
        ({"name": "上海某公司", "phone": "电话号码"}, "phone"),
        ({"name": "上海某公司", "region": "江苏/苏州"}, "region"),
        ({"name": "上海某公司", "category": "D"}, "category"),
        ({"name": "上海某公司", "status": "merged"}, "status"),
        ({"name": "上海某公司", "colour": "red"}, "colour"),
        ({"name": "上海某公司", "tags": "a" * 40}, "tags"),
        (
            {"name": "王先生", "kind": "individual", "credit_code": "91350100M000100Y43"},
            "credit_code",
        ),
    ],
)
def test_invalid_input_is_reported_per_field(service, data, field):
    with pytest.raises(ValidationFailed) as info:
        service.create_customer(data)
    assert field in {path.split(".")[0] for path in info.value.field_errors}


def test_non_object_input_is_a_validation_error(service):
    with pytest.raises(ValidationFailed):
        service.create_customer(["not", "an", "object"])


def test_duplicate_by_credit_code_name_or_phone_is_a_conflict_with_candidates(
    service, make_customer
):
    original = make_customer(
        "上海华东机电设备有限公司", credit_code="91350100M000100Y43", phone="021-58881234"
    )
    cases = [
        ({"name": "完全不同", "credit_code": "91350100M000100Y43"}, "same_credit_code"),
        ({"name": "上海华东机电设备股份有限公司"}, "same_name"),
        ({"name": "上海华东机电设备工程有限公司"}, "similar_name"),
        ({"name": "浙江某某轴承有限公司", "phone": "+86 21 5888 1234"}, "same_phone"),
    ]
    for data, reason in cases:
        with pytest.raises(Conflict) as info:
            service.create_customer(data)
        details = info.value.details
        assert details["reason"] == "duplicate_customer"
        [candidate] = details["candidates"]
        assert candidate["id"] == original["id"] and candidate["code"] == original["code"]
        assert reason in candidate["reasons"]
        assert 0 < candidate["score"] <= 1


def test_allow_duplicate_creates_anyway_but_never_with_a_taken_credit_code(service, make_customer):
    make_customer("上海华东机电设备有限公司", credit_code="91350100M000100Y43")
    twin = service.create_customer({"name": "上海华东机电设备股份有限公司"}, allow_duplicate=True)
    assert twin["code"].endswith("000002")
    with pytest.raises(Conflict) as info:
        service.create_customer(
            {"name": "另一家", "credit_code": "91350100M000100Y43"}, allow_duplicate=True
        )
    assert info.value.details["reason"] == "credit_code_taken"
    assert "credit_code" in info.value.details["errors"]


@pytest.mark.parametrize(("flag", "creates"), [("true", True), ("false", False), (0, False)])
def test_allow_duplicate_may_arrive_as_a_word(service, make_customer, flag, creates):
    make_customer("上海华东机电设备有限公司")
    if creates:
        assert service.create_customer({"name": "上海华东机电设备股份有限公司"}, flag)["id"]
    else:
        with pytest.raises(Conflict):
            service.create_customer({"name": "上海华东机电设备股份有限公司"}, flag)


def test_get_counts_contacts_and_unknown_ids_are_not_found(service, make_customer):
    customer = make_customer()
    service.create_contact(customer["id"], {"name": "王建国", "mobile": "13812345678"})
    assert service.get_customer(customer["id"])["contacts_count"] == 1
    for unknown in (str(uuid.uuid4()), "not-an-id"):
        with pytest.raises(NotFound):
            service.get_customer(unknown)


def test_update_applies_changes_bumps_version_and_records_history(
    service, make_customer, outbox_events
):
    customer = make_customer(tags=["重点客户"])
    updated = service.update_customer(
        customer["id"],
        {"status": "formal", "industry": "机电设备", "tags": ["重点客户", "战略合作"]},
        customer["version"],
    )
    assert updated["version"] == customer["version"] + 1
    assert updated["status"] == "formal" and updated["tags"] == ["重点客户", "战略合作"]
    [(_, event)] = outbox_events("customer_updated")
    assert {c["field"] for c in event["changes"]} == {"status", "industry", "tags"}
    assert outbox_events("customer_owner_changed") == []
    history = service.customer_history(customer["id"])["items"]
    changed = {
        (h["field"], str(h["old"]), str(h["new"])) for h in history if h["change"] == "updated"
    }
    assert ("status", "potential", "formal") in changed
    assert ("industry", "None", "机电设备") in changed
    assert all(h["actor_id"] == "u-sales-01" for h in history)


def test_tag_only_change_still_bumps_the_version(service, make_customer):
    customer = make_customer(tags=["a"])
    updated = service.update_customer(customer["id"], {"tags": ["a", "b"]}, 1)
    assert updated["version"] == 2
    again = service.update_customer(customer["id"], {"tags": ["b"]}, 2)
    assert again["version"] == 3 and again["tags"] == ["b"]


def test_an_update_that_changes_nothing_is_silent(service, make_customer, outbox_events):
    customer = make_customer(industry="五金")
    same = service.update_customer(customer["id"], {"industry": "五金"}, 1)
    assert same["version"] == 1
    assert outbox_events("customer_updated") == []


def test_stale_or_missing_version_is_refused(service, make_customer):
    customer = make_customer()
    service.update_customer(customer["id"], {"industry": "轴承"}, 1)
    with pytest.raises(Conflict) as info:
        service.update_customer(customer["id"], {"industry": "阀门"}, 1)
    assert info.value.details["reason"] == "stale_version"
    with pytest.raises(ValidationFailed) as info:
        service.update_customer(customer["id"], {"industry": "阀门"}, None)
    assert "version" in info.value.field_errors
    # The version may also travel in the body.
    assert (
        service.update_customer(customer["id"], {"industry": "阀门", "version": 2}, None)[
            "industry"
        ]
        == "阀门"
    )


def test_status_transitions_are_enforced(service, make_customer):
    customer = make_customer()
    with pytest.raises(ValidationFailed) as info:
        service.update_customer(customer["id"], {"status": "dormant"}, 1)
    assert "status" in info.value.field_errors
    formal = service.update_customer(customer["id"], {"status": "formal"}, 1)
    assert (
        service.update_customer(customer["id"], {"status": "dormant"}, formal["version"])["status"]
        == "dormant"
    )


def test_owner_change_publishes_its_own_event(service, make_customer, outbox_events):
    customer = make_customer()
    service.update_customer(
        customer["id"], {"owner_id": "u-sales-03", "department_id": "d-north"}, 1
    )
    [(_, event)] = outbox_events("customer_owner_changed")
    assert event == {
        "customer_id": customer["id"],
        "code": customer["code"],
        "name": customer["name"],
        "old_owner_id": "u-sales-01",
        "new_owner_id": "u-sales-03",
        "old_department_id": "d-east",
        "new_department_id": "d-north",
    }


def test_update_cannot_take_another_customers_credit_code(service, make_customer):
    make_customer("甲机电有限公司", credit_code="91350100M000100Y43")
    other = make_customer("乙五金有限公司")
    with pytest.raises(Conflict) as info:
        service.update_customer(other["id"], {"credit_code": "91350100M000100Y43"}, 1)
    assert info.value.details["reason"] == "credit_code_taken"


def test_update_rejects_unknown_fields_and_the_code(service, make_customer):
    customer = make_customer()
    with pytest.raises(ValidationFailed) as info:
        service.update_customer(customer["id"], {"code": "C2020000001", "name": None}, 1)
    assert set(info.value.field_errors) == {"code", "name"}


def test_api_schemas_come_from_the_marshmallow_schemas(service):
    schemas = service.api_schemas()
    assert {"Customer", "CustomerInput", "Contact", "ContactInput", "CustomerPage"} <= set(schemas)
    customer_input = schemas["CustomerInput"]
    assert customer_input["required"] == ["name"]
    assert customer_input["properties"]["status"]["enum"] == [
        "potential",
        "formal",
        "dormant",
        "disabled",
    ]
    assert "华东/上海" in customer_input["properties"]["region"]["description"]
    assert schemas["CustomerPage"]["properties"]["items"]["items"]["$ref"].endswith("/Customer")
