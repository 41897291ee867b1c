"""Departments and regions a customer may name, and transfers out of the caller's scope."""

from dataclasses import replace

import pytest

from crm_common.context import Principal
from crm_common.errors import ValidationFailed
from customer.application.org_units import OrgUnits
from customer.domain.org_units import (
    DEPARTMENT,
    OUTSIDE_DEPARTMENTS,
    Unit,
    assignable_departments,
    region_errors,
)
from customer.models import OrgUnit

from .conftest import CUSTOMER_PERMISSIONS, SALES
from .org_units import seed_org_units

REP = Principal(
    "u-sales-01", "d-east-sh", ("sales_rep",), CUSTOMER_PERMISSIONS, ({"owner": "self"},)
)
TRANSFERRING_REP = replace(REP, permissions=(*CUSTOMER_PERMISSIONS, "customer:transfer"))
BRANCH = Principal(
    "u-branch-east",
    "d-east",
    (),
    CUSTOMER_PERMISSIONS,
    ({"departments": ["d-east", "d-east-sh", "d-east-js"]},),
)
TREE = [
    Unit("d-east", "d-hq", "总部 › 华东"),
    Unit("d-east-sh", "d-east", "总部 › 华东 › 上海"),
    Unit("d-east-sh-1", "d-east-sh", "总部 › 华东 › 上海 › 一组"),
    Unit("d-north", "d-hq", "总部 › 华北"),
]


def refused(call):
    with pytest.raises(ValidationFailed) as info:
        call()
    return info.value.field_errors


# -- rules -----------------------------------------------------------------------------------
def test_assignable_departments_follow_the_grants():
    assert assignable_departments(REP, TREE) == {"d-east-sh", "d-east-sh-1"}
    assert assignable_departments(BRANCH, TREE) == {"d-east", "d-east-sh", "d-east-js"}
    everything = Principal("u", "d-hq", (), (), ({},))
    assert assignable_departments(everything, TREE) is None
    by_region = Principal("u", "d-hq", (), (), ({"regions": [{"path": "华东"}]},))
    assert assignable_departments(by_region, TREE) is None
    rootless = Principal("u", None, (), (), ({"owner": "self"},))
    assert assignable_departments(rootless, TREE) == set()


def test_a_region_is_known_or_a_city_right_below_a_known_one():
    known = {
        "华东": Unit("r1", None, "华东"),
        "华东/江苏": Unit("r2", "r1", "华东/江苏"),
        "华北": Unit("r3", None, "华北", disabled=True),
    }
    assert region_errors("华东/江苏", known) == []
    assert region_errors("华东/江苏/无锡", known) == []
    assert region_errors("华东/火星", known) == []  # a city right below 华东
    assert region_errors("华东/火星/某市", {"华东": known["华东"]}) != []
    assert region_errors("华北", known) == ["region 华北 is disabled"]


# -- existence -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"department_id": "d-nowhere"}, "department_id"),
        ({"region": "华东/火星/某市"}, "region"),
        ({"region": "华中/湖北/武汉", "department_id": "d-gone"}, "department_id"),
    ],
)
def test_unknown_departments_and_regions_are_refused_by_name(service, values, field):
    errors = refused(lambda: service.create_customer({"name": "新客户有限公司", **values}))
    assert field in errors
    assert service.count_customers({}) == {"count": 0}


def test_a_disabled_department_is_refused_for_new_placements_only(db, service, make_customer):
    kept = make_customer("甲有限公司", department_id="d-north-tj")
    with db.session() as session:
        seed_org_units(session, {"d-north-tj": "d-north"}, (), disabled=["d-north-tj"])
        session.query(OrgUnit).filter_by(id="d-north-tj").update({"version": 2})
    errors = refused(
        lambda: service.create_customer({"name": "乙有限公司", "department_id": "d-north-tj"})
    )
    assert "disabled" in errors["department_id"][0]
    assert service.update_customer(kept["id"], {"industry": "轴承"}, 1)["version"] == 2


def test_a_city_below_a_known_province_is_accepted(service):
    made = service.create_customer({"name": "无锡新客户有限公司", "region": "华东/江苏/无锡"})
    assert made["region"] == "华东/江苏/无锡"


def test_import_rows_naming_unknown_departments_are_reported(service):
    result = service.import_customers(
        "name,department_id,region\n甲有限公司,d-nowhere,华东\n乙有限公司,,华东/上海\n"
    )
    assert result["created"] == 1
    [row] = result["errors"]
    assert row["row"] == 2 and "department_id" in row["errors"]


# -- transfers -------------------------------------------------------------------------------
def test_a_salesperson_cannot_move_a_customer_to_another_branch(service, act_as):
    act_as(REP)
    mine = service.create_customer({"name": "上海新客户有限公司"})
    assert mine["department_id"] == "d-east-sh"
    errors = refused(
        lambda: service.update_customer(mine["id"], {"department_id": "d-north-bj"}, 1)
    )
    assert errors == {"department_id": [OUTSIDE_DEPARTMENTS]}
    errors = refused(
        lambda: service.create_customer({"name": "别家客户有限公司", "department_id": "d-north"})
    )
    assert errors == {"department_id": [OUTSIDE_DEPARTMENTS]}
    assert service.get_customer(mine["id"])["department_id"] == "d-east-sh"


def test_a_transfer_needs_the_permission_and_is_recorded(service, act_as, outbox_events):
    act_as(TRANSFERRING_REP)
    mine = service.create_customer({"name": "上海新客户有限公司"})
    moved = service.update_customer(
        mine["id"], {"department_id": "d-north-bj", "owner_id": "u-sales-03"}, 1
    )
    assert (moved["department_id"], moved["owner_id"]) == ("d-north-bj", "u-sales-03")
    act_as(SALES)  # sees every customer
    [transferred] = [
        e
        for e in service.customer_history(moved["id"])["items"]
        if e["change"] == "transferred" and e["field"] == "department_id"
    ]
    assert (transferred["old"], transferred["new"]) == ("d-east-sh", "d-north-bj")
    assert transferred["actor_id"] == "u-sales-01"
    assert outbox_events("customer_owner_changed")


def test_moves_within_ones_reach_are_plain_updates(service, act_as):
    act_as(BRANCH)
    made = service.create_customer({"name": "江苏新客户有限公司", "department_id": "d-east-sh"})
    moved = service.update_customer(made["id"], {"department_id": "d-east-js"}, 1)
    assert moved["department_id"] == "d-east-js"
    changes = {e["change"] for e in service.customer_history(made["id"])["items"]}
    assert changes == {"created", "updated"}


# -- the copy of the org structure -----------------------------------------------------------
def test_an_older_version_of_a_unit_never_replaces_a_newer_one(db):
    record = {"id": "d-x", "code": "X", "name": "新部门", "parent_id": None, "path": "新部门"}
    with db.session() as session:
        units = OrgUnits(session)
        assert units.keep(DEPARTMENT, {**record, "version": 3, "disabled": True})
        assert not units.keep(DEPARTMENT, {**record, "version": 2, "disabled": False})
        assert units.keep(DEPARTMENT, {**record, "version": 3, "disabled": True})
    with db.session() as session:
        stored = session.get(OrgUnit, (DEPARTMENT, "d-x"))
        assert (stored.version, stored.disabled) == (3, True)
