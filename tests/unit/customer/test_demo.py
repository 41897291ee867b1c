import time

import pytest
from sqlalchemy import func, select

from crm_common.context import Principal
from crm_common.db import SessionScope, engine_for
from customer.domain.names import normalize_company_name
from customer.domain.relationships import canonical_key
from customer.models import Customer, OutboxMessage
from customer.repository import business_year
from customer.schemas import ContactInputSchema, CustomerInputSchema
from demo.customer import DEMO_USERS, DEPARTMENTS, build, ensure_demo

from .conftest import CUSTOMER_PERMISSIONS

CUSTOMER_INPUT_FIELDS = set(CustomerInputSchema().fields)
CONTACT_INPUT_FIELDS = set(ContactInputSchema().fields)


def test_the_data_set_is_deterministic():
    assert build() == build()


def test_every_demo_record_passes_the_input_validation():
    data = build()
    customers, contacts = data["customers"], data["contacts"]
    assert 280 <= len(customers) <= 320
    assert len(contacts) > len(customers)
    for customer in customers:
        raw = {k: v for k, v in customer.items() if k in CUSTOMER_INPUT_FIELDS and v is not None}
        loaded = CustomerInputSchema().load(raw)
        assert loaded.get("credit_code") == customer["credit_code"]
        assert loaded.get("region") == customer["region"]
    for contact in contacts:
        raw = {k: v for k, v in contact.items() if k in CONTACT_INPUT_FIELDS and v is not None}
        if "birthday" in raw:
            raw["birthday"] = raw["birthday"].isoformat()
        assert ContactInputSchema().load(raw)["mobile"] == contact["mobile"]


def test_the_data_set_looks_like_a_distributors_book():
    data = build()
    customers = data["customers"]
    assert len({normalize_company_name(c["name"]) for c in customers}) == len(customers)
    assert len({c["code"] for c in customers}) == len(customers)
    assert {c["owner_id"] for c in customers} == set(DEMO_USERS)
    assert {c["department_id"] for c in customers} == set(DEPARTMENTS)
    areas = {c["region"].split("/")[0] for c in customers}
    assert {"华东", "华北", "华南", "华中", "西南"} <= areas
    assert {c["status"] for c in customers} == {"potential", "formal", "dormant", "disabled"}
    assert any("轴承" in c["name"] for c in customers)
    assert any(c["kind"] == "individual" for c in customers)
    rels = data["customer_relationships"]
    keys = [canonical_key(r["from_customer_id"], r["to_customer_id"], r["kind"]) for r in rels]
    assert len(keys) == len(set(keys)) and {r["kind"] for r in rels} >= {"parent", "partner"}
    per_customer: dict = {}
    for contact in data["contacts"]:
        per_customer[contact["customer_id"]] = per_customer.get(contact["customer_id"], 0) + (
            1 if contact["is_primary"] else 0
        )
    assert set(per_customer.values()) == {1}
    assert {r["kind"] for r in data["care_records"]} >= {"birthday", "festival", "visit"}


def test_load_once_quickly_and_searchably(sqlite_uri, service):
    started = time.perf_counter()
    counts = ensure_demo(sqlite_uri, migrate=False)
    assert time.perf_counter() - started < 3
    assert counts["customers"] == len(build()["customers"])
    assert ensure_demo(sqlite_uri, migrate=False) == {}
    with SessionScope(engine_for(sqlite_uri)).session() as session:
        assert session.scalar(select(func.count()).select_from(Customer)) == counts["customers"]
        events = session.scalar(select(func.count()).select_from(OutboxMessage))
        assert events == counts["customers"] + counts["contacts"]
    east = service.list_customers({"region": "华东", "limit": 200})["items"]
    assert east and all(c["region"].startswith("华东/") for c in east)
    found = service.list_customers({"q": "轴承"})["items"]
    assert found and all("轴承" in c["name"] or "轴承" in (c["short_name"] or "") for c in found)
    counters = {c["year"]: c["last_value"] for c in build()["customer_code_counters"]}
    year = business_year()
    created = service.create_customer({"name": "全新测试客户有限公司"})
    assert created["code"] == f"C{year}{counters.get(year, 0) + 1:06d}"


# The org chart's offices by the province (or municipality) of the customer's city.
OFFICE_OF = {
    **dict.fromkeys(("上海", "浙江", "安徽", "福建"), ("d-east-sh", "u-sales-01")),
    **dict.fromkeys(("江苏", "山东"), ("d-east-js", "u-sales-02")),
    **dict.fromkeys(("北京", "河北", "山西"), ("d-north-bj", "u-sales-03")),
    "天津": ("d-north-tj", "u-sales-04"),
    "广东": ("d-south-gd", "u-sales-05"),
    "广西": ("d-south-xn", "u-sales-06"),
}
AREA_OFFICE = {"西南": ("d-south-xn", "u-sales-06"), "华中": ("d-south-xn", "u-sales-06")}
EAST = {"d-east", "d-east-sh", "d-east-js"}


def test_customers_belong_to_the_office_of_their_city_or_to_the_manager():
    customers = build()["customers"]
    vip_kept = 0
    for customer in customers:
        area, place = customer["region"].split("/")[:2]
        owner = (customer["department_id"], customer["owner_id"])
        if owner == ("d-east", "u-manager-01"):
            assert customer["category"] == "VIP"
            vip_kept += 1
        else:
            assert owner == AREA_OFFICE.get(area) or owner == OFFICE_OF[place], customer
    vips = sum(c["category"] == "VIP" for c in customers)
    assert 0.25 < vip_kept / vips < 0.55


@pytest.mark.parametrize(
    ("principal", "share"),
    [
        (("u-sales-01", "d-east-sh", {"owner": "self"}), lambda c: c["owner_id"] == "u-sales-01"),
        (
            ("u-manager-01", "d-east", {"departments": sorted(EAST), "categories": ["A", "VIP"]}),
            lambda c: c["department_id"] in EAST and c["category"] in ("A", "VIP"),
        ),
        (
            ("u-branch-east", "d-east", {"departments": sorted(EAST)}),
            lambda c: c["department_id"] in EAST,
        ),
        (
            ("u-marketing-01", "d-marketing", {"regions": [{"path": "华东", "subtree": True}]}),
            lambda c: c["region"].startswith("华东/"),
        ),
    ],
)
def test_demo_users_see_their_share(sqlite_uri, service, act_as, principal, share):
    ensure_demo(sqlite_uri, migrate=False, with_events=False)
    user_id, department_id, grant = principal
    act_as(Principal(user_id, department_id, (), CUSTOMER_PERMISSIONS, (grant,)))
    expected = [c for c in build()["customers"] if share(c) and c["status"] != "merged"]
    assert 0 < len(expected) < len(build()["customers"])
    assert service.count_customers({}) == {"count": len(expected)}
