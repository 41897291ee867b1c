"""The ERP's code of a customer (and its founding date): set on create and update, unique when
set, filtered on exactly, carried by the events, the snapshot, the history and CSV."""

from __future__ import annotations

import json

import pytest

from crm_common.context import Principal
from crm_common.errors import Conflict, ValidationFailed
from customer.schemas import PUBLIC_SCHEMAS

from .conftest import CUSTOMER_PERMISSIONS

REP = Principal(
    "u-sales-01", "d-east-sh", ("sales_rep",), CUSTOMER_PERMISSIONS, ({"owner": "self"},)
)


def test_create_and_update_keep_the_erp_code_and_founding_date(
    service, make_customer, outbox_events
):
    customer = make_customer(erp_code=" C0001234 ", established_on="2003-06-18")
    assert customer["erp_code"] == "C0001234"
    assert customer["established_on"] == "2003-06-18"
    assert service.get_customer(customer["id"])["erp_code"] == "C0001234"
    [(_, created)] = outbox_events("customer_created")
    assert created["customer"]["erp_code"] == "C0001234"
    assert created["customer"]["established_on"] == "2003-06-18"

    updated = service.update_customer(customer["id"], {"erp_code": "c-0001234/B"}, 1)
    assert updated["erp_code"] == "c-0001234/B"  # kept as the ERP writes it
    [(_, event)] = outbox_events("customer_updated")
    assert event["customer"]["erp_code"] == "c-0001234/B"
    assert event["changes"] == [{"field": "erp_code", "old": "C0001234", "new": "c-0001234/B"}]

    cleared = service.update_customer(customer["id"], {"erp_code": ""}, 2)
    assert cleared["erp_code"] is None
    history = service.customer_history(customer["id"])["items"]
    assert [(h["field"], h["old"], h["new"]) for h in history if h["change"] == "updated"] == [
        ("erp_code", "c-0001234/B", None),
        ("erp_code", "C0001234", "c-0001234/B"),
    ]
    [created_entry] = [h for h in history if h["change"] == "created"]
    assert created_entry["new"]["erp_code"] == "C0001234"
    assert created_entry["new"]["established_on"] == "2003-06-18"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("erp_code", "C 0001234"),
        ("erp_code", "C" * 41),
        ("erp_code", 1234),
        ("established_on", "2999-01-01"),
        ("established_on", "18.06.2003"),
    ],
)
def test_bad_values_are_refused_on_the_field(service, field, value):
    with pytest.raises(ValidationFailed) as info:
        service.create_customer({"name": "上海华东机电设备有限公司", field: value})
    assert list(info.value.field_errors) == [field]


def test_an_erp_code_taken_is_a_conflict_naming_the_field(service, make_customer):
    holder = make_customer("上海华东机电设备有限公司", erp_code="C0001234")
    other = make_customer("江苏恒达轴承有限公司")
    for call in (
        lambda: service.create_customer(
            {"name": "全新的公司", "erp_code": "C0001234"}, allow_duplicate=True
        ),
        lambda: service.update_customer(other["id"], {"erp_code": "C0001234"}, 1),
    ):
        with pytest.raises(Conflict) as info:
            call()
        assert info.value.details["reason"] == "erp_code_taken"
        assert info.value.details["errors"] == {"erp_code": [f"already used by {holder['code']}"]}
    # the holder itself may send its own code back; another code is free
    assert service.update_customer(holder["id"], {"erp_code": "C0001234", "remark": "x"}, 1)
    assert service.update_customer(other["id"], {"erp_code": "C0009999"}, 1)["version"] == 2
    # ERP codes differ by case: the ERP's codes are kept as written
    assert make_customer("广州五金工具有限公司", erp_code="c0001234")["erp_code"] == "c0001234"


def test_an_erp_code_taken_outside_the_scope_tells_nothing_of_its_holder(
    service, make_customer, act_as
):
    north = make_customer(
        "北京北方机电有限公司", owner_id="u-sales-02", department_id="d-north", erp_code="N0001"
    )
    mine = make_customer("上海华东机电设备有限公司", department_id="d-east-sh")
    act_as(REP)
    for call in (
        lambda: service.create_customer(
            {"name": "全新的公司", "erp_code": "N0001"}, allow_duplicate=True
        ),
        lambda: service.update_customer(mine["id"], {"erp_code": "N0001"}, 1),
    ):
        with pytest.raises(Conflict) as info:
            call()
        error = info.value
        assert error.details["errors"] == {
            "erp_code": ["already used by a customer outside your data scope"]
        }
        text = error.message + json.dumps(error.details, ensure_ascii=False)
        assert north["id"] not in text and north["code"] not in text and "北方" not in text
    # and the filter finds nothing the caller may not see
    assert service.list_customers({"erp_code": "N0001"})["items"] == []


def test_the_list_count_summary_and_export_filter_on_the_exact_erp_code(service, make_customer):
    wanted = make_customer("上海华东机电设备有限公司", erp_code="C0001234")
    make_customer("江苏恒达轴承有限公司", erp_code="C00012345")
    make_customer("广州五金工具有限公司")
    page = service.list_customers({"erp_code": "C0001234"})
    assert [c["id"] for c in page["items"]] == [wanted["id"]]
    assert service.list_customers({"erp_code": "C000123"})["items"] == []
    assert service.count_customers({"erp_code": "C0001234"}) == {"count": 1}
    assert service.count_customers({}) == {"count": 3}
    assert service.summarize_customers({"erp_code": "C0001234"})["total"] == 1
    exported = service.export_customers({"erp_code": "C0001234"})
    assert exported.count("\r\n") == 2 and "C0001234" in exported
    with pytest.raises(ValidationFailed) as info:
        service.list_customers({"erp_code": "C" * 41})
    assert list(info.value.field_errors) == ["erp_code"]


def test_csv_exports_and_imports_the_erp_code_and_founding_date(service, make_customer):
    customer = make_customer(erp_code="C0001234", established_on="2003-06-18")
    exported = service.export_customers({})
    header = exported.lstrip("\ufeff").splitlines()[0].split(",")
    assert {"erp_code", "established_on"} <= set(header)
    assert "C0001234" in exported and "2003-06-18" in exported

    result = service.import_customers(
        f"客户编码,ERP编码,成立日期\n{customer['code']},C0005678,2001-01-02\n\n,,\n"
    )
    assert result == {"created": 0, "updated": 1, "unchanged": 0, "errors": []}
    again = service.get_customer(customer["id"])
    assert (again["erp_code"], again["established_on"]) == ("C0005678", "2001-01-02")

    other = make_customer("江苏恒达轴承有限公司")
    clash = service.import_customers(f"code,erp_code\n{other['code']},C0005678\n")
    assert clash["updated"] == 0
    assert clash["errors"] == [
        {"row": 2, "errors": {"erp_code": [f"already used by {customer['code']}"]}}
    ]


def test_a_merge_gives_the_survivor_the_erp_code_it_lacks(service, make_customer):
    survivor = make_customer("江苏恒达轴承有限公司")
    merged = make_customer("江苏恒达轴承（重复）有限公司", erp_code="C0001234")
    result = service.merge_customers(survivor["id"], merged["id"])
    assert result["erp_code"] == "C0001234"
    assert service.get_customer(merged["id"])["erp_code"] is None
    assert service.list_customers({"erp_code": "C0001234"})["items"][0]["id"] == survivor["id"]
    history = service.customer_history(merged["id"])["items"]
    assert ("erp_code", "C0001234", None) in [(h["field"], h["old"], h["new"]) for h in history]


def test_a_survivor_with_its_own_erp_code_keeps_it(service, make_customer):
    survivor = make_customer("江苏恒达轴承有限公司", erp_code="C0000001")
    merged = make_customer("江苏恒达轴承（重复）有限公司", erp_code="C0000002")
    assert service.merge_customers(survivor["id"], merged["id"])["erp_code"] == "C0000001"
    assert service.get_customer(merged["id"])["erp_code"] == "C0000002"


def test_the_snapshot_and_the_documented_schemas_carry_the_new_fields(
    service, make_customer, act_as
):
    customer = make_customer(erp_code="C0001234", established_on="2003-06-18")
    act_as(Principal.for_service("sales"))
    [row] = service.customer_snapshot("customers")["items"]
    assert (row["id"], row["erp_code"], row["established_on"]) == (
        customer["id"],
        "C0001234",
        "2003-06-18",
    )
    for name in ("Customer", "CustomerInput"):
        assert {"erp_code", "established_on"} <= set(PUBLIC_SCHEMAS[name]().fields)
    for name in ("CustomerFilter", "CustomerQuery", "CustomerExportQuery"):
        assert "erp_code" in PUBLIC_SCHEMAS[name]().fields
