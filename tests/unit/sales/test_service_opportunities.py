"""Opportunities through the sales service: create, read, search, change, with scoping, field
history and events. Stage moves and closing are in ``test_service_opportunity_stages``."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import update

from crm_common.context import bind
from crm_common.errors import Conflict, Forbidden, NotFound, Unauthenticated, ValidationFailed
from sales.models import Opportunity
from sales.repository.opportunities import business_year, touch_last_activity

from .sample_org import (
    ADMIN,
    BUYER,
    COLLEAGUE,
    EAST_MACHINERY,
    ENGINEER,
    GUANGZHOU_BUYER,
    GUANGZHOU_HEAVY,
    MANAGER,
    OLD_EAST,
    OTHER_OFFICE,
    SHANGHAI_PRECISION,
)

YEAR = business_year()


@pytest.fixture
def make(service):
    def make(name="数控机床改造项目", customer=EAST_MACHINERY, **fields):
        return service.create_opportunity({"name": name, "customer_id": str(customer), **fields})

    return make


def test_calls_without_a_principal_are_refused(service):
    bind(None, None)
    with pytest.raises(Unauthenticated):
        service.list_opportunities({})


def test_create_fills_code_owner_scope_stage_and_probability(service, outbox_events):
    created = service.create_opportunity(
        {
            "name": " 数控机床改造项目 ",
            "customer_id": str(EAST_MACHINERY),
            "expected_amount": "250000.505",
            "expected_close_date": "2026-06-30",
            "tags": ["重点", "重点", " 年度框架 "],
            "contacts": [{"contact_id": str(BUYER), "role": "decision_maker"}],
            "lines": [
                {
                    "item_name": "立式加工中心",
                    "spec": "VMC850",
                    "quantity": "2",
                    "expected_price": "98000",
                },
                {"item_name": "刀库", "quantity": 3, "expected_price": "1333.335"},
            ],
        }
    )
    assert created["code"] == f"OPP-{YEAR}-000001"
    assert created["name"] == "数控机床改造项目"
    assert (created["owner_id"], created["department_id"]) == ("u-sales-01", "d-east-sh")
    assert (created["region"], created["category"]) == ("华东/上海", "A")
    assert (created["customer_code"], created["customer_name"]) == (
        "C2026000001",
        "上海华东机电设备有限公司",
    )
    assert (created["stage_code"], created["stage_name"]) == ("initial_contact", "初步接触")
    assert (created["status"], created["probability"], created["probability_override"]) == (
        "open",
        10,
        None,
    )
    assert (created["expected_amount"], created["currency"]) == ("250000.51", "CNY")
    assert created["weighted_amount"] == "25000.05"
    assert created["tags"] == ["重点", "年度框架"]
    assert created["contacts"] == [
        {
            "contact_id": str(BUYER),
            "role": "decision_maker",
            "name": "王经理",
            "title": "采购经理",
            "mobile": "13812345678",
        }
    ]
    assert [(line["line_no"], line["quantity"], line["amount"]) for line in created["lines"]] == [
        (1, "2", "196000.00"),
        (2, "3", "4000.02"),
    ]
    assert created["version"] == 1 and created["created_by"] == "u-sales-01"
    [(kind, data)] = outbox_events()
    assert kind == "opportunity_created"
    assert data["opportunity"]["code"] == created["code"]
    assert data["opportunity"]["lines"] == created["lines"]


def test_codes_count_up(make):
    assert [make()["code"] for _ in range(3)] == [f"OPP-{YEAR}-{n:06d}" for n in (1, 2, 3)]


DROP = object()
"""Leaves the field out of the input."""


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": DROP}, "name"),
        ({"name": "  "}, "name"),
        ({"customer_id": DROP}, "customer_id"),
        ({"customer_id": "nope"}, "customer_id"),
        ({"expected_amount": 1234.5}, "expected_amount"),
        ({"expected_amount": "-1"}, "expected_amount"),
        ({"currency": "RMB1"}, "currency"),
        ({"probability_override": 101}, "probability_override"),
        ({"tags": ["x" * 40]}, "tags"),
        ({"contacts": [{"contact_id": str(BUYER), "role": "boss"}]}, "contacts"),
        ({"contacts": [{"contact_id": str(GUANGZHOU_BUYER), "role": "user"}]}, "contacts"),
        ({"lines": [{"item_name": "轴承", "quantity": "0"}]}, "lines"),
        ({"competitors": [{"competitor_id": str(uuid.uuid4())}]}, "competitors"),
        ({"process_id": str(uuid.uuid4())}, "process_id"),
        ({"owner_id": "u-nobody"}, "owner_id"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_invalid_input_is_reported_per_field(service, data, field):
    values = {"name": "项目", "customer_id": str(EAST_MACHINERY), **data}
    with pytest.raises(ValidationFailed) as info:
        service.create_opportunity({k: v for k, v in values.items() if v is not DROP})
    assert field in {path.split(".")[0] for path in info.value.field_errors}


def test_the_customer_must_be_one_the_caller_can_see(service, act_as, make):
    with pytest.raises(ValidationFailed) as info:
        make(customer=GUANGZHOU_HEAVY)
    assert set(info.value.field_errors) == {"customer_id"}
    with pytest.raises(ValidationFailed):
        make(customer=uuid.uuid4())
    act_as(OTHER_OFFICE)
    assert make(customer=GUANGZHOU_HEAVY)["region"] == "华南/广州"


def test_a_merged_customer_is_refused_naming_the_survivor(make):
    with pytest.raises(ValidationFailed) as info:
        make(customer=OLD_EAST)
    assert "customer_id" in info.value.field_errors
    assert info.value.details["merged_into_id"] == str(EAST_MACHINERY)


def test_another_owner_brings_their_department_and_must_stay_in_scope(service, act_as, make):
    with pytest.raises(ValidationFailed) as info:
        make(owner_id="u-sales-02")  # 张伟 sees only what he owns
    assert "owner_id" in info.value.field_errors
    act_as(MANAGER)
    made = make(customer=SHANGHAI_PRECISION, owner_id="u-sales-02")
    assert (made["owner_id"], made["department_id"]) == ("u-sales-02", "d-east-sh")
    with pytest.raises(ValidationFailed) as info:
        make(owner_id="u-gz-01")  # a Guangzhou salesperson is outside the manager's grant
    assert "department_id" in info.value.field_errors


def test_permissions_are_checked(service, act_as):
    act_as(
        type(COLLEAGUE)(
            user_id="u-viewer",
            department_id="d-east-sh",
            permissions=("opportunity:read",),
            grants=({},),
        )
    )
    assert service.list_opportunities({})["items"] == []
    with pytest.raises(Forbidden):
        service.create_opportunity({"name": "项目", "customer_id": str(EAST_MACHINERY)})


def test_another_office_and_a_colleague_get_not_found_the_manager_sees_it(service, act_as, make):
    made = make()
    for outsider in (OTHER_OFFICE, COLLEAGUE):
        act_as(outsider)
        with pytest.raises(NotFound):
            service.get_opportunity(made["id"])
        with pytest.raises(NotFound):
            service.update_opportunity(made["id"], {"name": "改名"}, 1)
        with pytest.raises(NotFound):
            service.opportunity_history(made["id"])
        assert service.list_opportunities({})["items"] == []
    act_as(MANAGER)
    assert service.get_opportunity(made["id"])["code"] == made["code"]
    with pytest.raises(NotFound):
        service.get_opportunity("not-an-id")


def test_update_with_the_version_read_writes_history_and_an_event(service, make, outbox_events):
    made = make(expected_amount="100000", tags=["重点"])
    changed = service.update_opportunity(
        made["id"],
        {
            "expected_amount": "120000",
            "description": "二期扩产",
            "tags": ["重点", "二期"],
            "contacts": [
                {"contact_id": str(BUYER), "role": "purchaser"},
                {"contact_id": str(ENGINEER), "role": "influencer"},
            ],
            "probability_override": 35,
        },
        made["version"],
    )
    assert changed["version"] == 2
    assert (changed["expected_amount"], changed["probability"]) == ("120000.00", 35)
    assert changed["weighted_amount"] == "42000.00"
    assert {c["contact_id"] for c in changed["contacts"]} == {str(BUYER), str(ENGINEER)}
    history = service.opportunity_history(made["id"])["items"]
    updated = {entry["field"]: entry for entry in history if entry["change"] == "updated"}
    assert updated["expected_amount"]["old"] == "100000.00"
    assert updated["expected_amount"]["new"] == "120000.00"
    assert updated["probability"]["old"] == 10 and updated["probability"]["new"] == 35
    assert set(updated) == {
        "expected_amount",
        "description",
        "tags",
        "contacts",
        "probability",
        "probability_override",
    }
    assert history[-1]["change"] == "created" and history[-1]["actor_id"] == "u-sales-01"
    kind, data = outbox_events()[-1]
    assert kind == "opportunity_updated"
    assert {c["field"] for c in data["changes"]} == set(updated)


def test_a_stale_or_missing_version_is_refused(service, make):
    made = make()
    service.update_opportunity(made["id"], {"name": "一期"}, made["version"])
    with pytest.raises(Conflict) as info:
        service.update_opportunity(made["id"], {"name": "二期"}, made["version"])
    assert info.value.details["reason"] == "stale_version"
    with pytest.raises(ValidationFailed) as info:
        service.update_opportunity(made["id"], {"name": "二期"})
    assert "version" in info.value.field_errors
    assert service.update_opportunity(made["id"], {"name": "二期", "version": 2})["version"] == 3


def test_an_update_changing_nothing_keeps_the_version(service, make):
    made = make(tags=["重点"])
    same = service.update_opportunity(made["id"], {"tags": ["重点"], "name": made["name"]}, 1)
    assert same["version"] == 1


def test_the_customer_and_process_cannot_change(service, make):
    made = make()
    with pytest.raises(ValidationFailed) as info:
        service.update_opportunity(made["id"], {"customer_id": str(SHANGHAI_PRECISION)}, 1)
    assert "customer_id" in info.value.field_errors


def test_moving_an_opportunity_out_of_ones_scope_is_refused(service, act_as, make):
    made = make()
    with pytest.raises(ValidationFailed) as info:
        service.update_opportunity(made["id"], {"owner_id": "u-sales-02"}, 1)
    assert "owner_id" in info.value.field_errors
    act_as(MANAGER)
    moved = service.update_opportunity(made["id"], {"owner_id": "u-sales-02"}, 1)
    assert (moved["owner_id"], moved["department_id"]) == ("u-sales-02", "d-east-sh")


def test_list_and_search(service, act_as, make):
    act_as(MANAGER)
    first = make(
        "机床改造", expected_amount="80000", expected_close_date="2026-03-31", tags=["重点"]
    )
    second = make(
        "轴承年度采购",
        customer=SHANGHAI_PRECISION,
        owner_id="u-sales-02",
        expected_amount="300000",
        expected_close_date="2026-05-15",
        tags=["框架", "重点"],
    )
    third = make("刀具试用", expected_amount="5000")

    def codes(**query):
        return [item["code"] for item in service.list_opportunities(query)["items"]]

    assert codes() == [third["code"], second["code"], first["code"]]
    assert codes(sort="code") == [first["code"], second["code"], third["code"]]
    assert codes(q="精工") == [second["code"]]  # the customer's name
    assert codes(q=first["code"].lower()) == [first["code"]]
    assert codes(owner_id="u-sales-02") == [second["code"]]
    assert codes(customer_id=str(EAST_MACHINERY), sort="code") == [first["code"], third["code"]]
    assert codes(amount_min="50000", amount_max="100000") == [first["code"]]
    assert codes(close_from="2026-04-01", close_to="2026-12-31") == [second["code"]]
    assert codes(tags="重点,框架") == [second["code"]]
    assert codes(department_id="d-east") == []
    assert codes(department_id="d-east", include_sub_departments="true", sort="code") == [
        first["code"],
        second["code"],
        third["code"],
    ]
    assert codes(tags=["重点"], sort="code") == [first["code"], second["code"]]
    assert codes(status="won") == []
    assert codes(stage_code="initial_contact", sort="code") == [
        first["code"],
        second["code"],
        third["code"],
    ]
    page = service.list_opportunities({"limit": 2, "sort": "code"})
    rest = service.list_opportunities({"limit": 2, "sort": "code", "cursor": page["next_cursor"]})
    assert [i["code"] for i in page["items"] + rest["items"]] == codes(sort="code")
    assert "contacts" not in page["items"][0]
    with pytest.raises(ValidationFailed) as info:
        service.list_opportunities({"sort": "expected_amount", "status": "closed"})
    assert {"sort", "status"} <= {path.split(".")[0] for path in info.value.field_errors}


def test_no_activity_for_n_days(service, db, make):
    idle, busy, fresh = make("闲置商机"), make("跟进中商机"), make("新商机")
    abandoned, won = make("已放弃商机"), make("已赢单商机")
    service.abandon_opportunity(abandoned["id"], {"reason": "客户项目取消"}, 1)
    long_ago = datetime.fromisoformat(idle["created_at"]) - timedelta(days=40)
    with db.session() as session:
        table = Opportunity.__table__
        session.execute(
            update(table)
            .where(table.c.id.in_([uuid.UUID(made["id"]) for made in (idle, busy, abandoned, won)]))
            .values(created_at=long_ago)
        )
        session.execute(
            update(table).where(table.c.id == uuid.UUID(won["id"])).values(status="won")
        )
        assert touch_last_activity(session, busy["id"], long_ago + timedelta(days=35))
        assert not touch_last_activity(session, busy["id"], long_ago)  # older: no change
        assert not touch_last_activity(session, uuid.uuid4(), long_ago)

    def idle_codes(days):
        found = service.list_opportunities({"idle_days": days, "sort": "code"})["items"]
        return [item["code"] for item in found]

    assert idle_codes(30) == [idle["code"]]  # the closed ones, as idle, are left out
    assert idle_codes(3) == [idle["code"], busy["code"]]
    assert fresh["code"] not in idle_codes(1)
    touched = service.get_opportunity(busy["id"])
    assert touched["last_activity_at"] is not None and touched["version"] == 1
    with pytest.raises(ValidationFailed) as info:
        service.list_opportunities({"idle_days": 0})
    assert "idle_days" in info.value.field_errors


def test_the_marketing_source_is_kept_on_create_and_patch(service, make, outbox_events):
    made = make(source_campaign_id="CMP-2026-0007", source_lead_id="LEAD-000123")
    assert (made["source_campaign_id"], made["source_lead_id"]) == ("CMP-2026-0007", "LEAD-000123")
    assert outbox_events()[-1][1]["opportunity"]["source_lead_id"] == "LEAD-000123"
    read = service.get_opportunity(made["id"])
    assert (read["source_campaign_id"], read["source_lead_id"]) == ("CMP-2026-0007", "LEAD-000123")

    changed = service.update_opportunity(
        made["id"], {"source_campaign_id": "CMP-2026-0011", "source_lead_id": None}, 1
    )
    assert (changed["source_campaign_id"], changed["source_lead_id"]) == ("CMP-2026-0011", None)
    read = service.get_opportunity(made["id"])
    assert (read["source_campaign_id"], read["source_lead_id"], read["version"]) == (
        "CMP-2026-0011",
        None,
        2,
    )
    history = service.opportunity_history(made["id"])["items"]
    updated = {(e["field"], e["old"], e["new"]) for e in history if e["change"] == "updated"}
    assert updated == {
        ("source_campaign_id", "CMP-2026-0007", "CMP-2026-0011"),
        ("source_lead_id", "LEAD-000123", None),
    }
    assert make()["source_campaign_id"] is None  # optional


def test_an_opportunity_in_dollars_keeps_its_lines_and_offers_in_dollars(
    service, db, act_as, principal, make, monkeypatch, outbox_events
):
    """Lines and competitor offers carry no currency of their own: they are parsed, and
    priced, in the opportunity's."""
    import sales.application.opportunities as use_cases

    currencies: list[tuple[str, str]] = []
    parse_lines, parse_entries = use_cases.parse_lines, use_cases.parse_competitor_entries

    def spy_lines(raw, currency):
        lines = parse_lines(raw, currency)
        currencies.extend(("line", line.expected_price.currency) for line in lines)
        return lines

    def spy_entries(raw, *args, **kwargs):
        entries = parse_entries(raw, *args, **kwargs)
        currencies.extend(("offer", e.offer.currency) for e in entries if e.offer is not None)
        return entries

    monkeypatch.setattr(use_cases, "parse_lines", spy_lines)
    monkeypatch.setattr(use_cases, "parse_competitor_entries", spy_entries)
    act_as(ADMIN)
    competitor = service.create_competitor({"name": "哈斯"})
    act_as(principal)
    made = make(
        expected_amount="12000.50",
        currency="usd",
        lines=[{"item_name": "五轴加工中心", "quantity": "2", "expected_price": "6000.25"}],
        competitors=[{"competitor_id": competitor["id"], "offer": "11500", "threat_level": "high"}],
    )

    assert (made["currency"], made["expected_amount"]) == ("USD", "12000.50")
    assert [line["amount"] for line in made["lines"]] == ["12000.50"]
    assert [c["offer"] for c in made["competitors"]] == ["11500.00"]
    assert currencies == [("line", "USD"), ("offer", "USD")]
    with db.session() as session:
        assert session.get(Opportunity, uuid.UUID(made["id"])).currency == "USD"
    assert outbox_events()[-1][1]["opportunity"]["currency"] == "USD"

    currencies.clear()
    changed = service.update_opportunity(
        made["id"],
        {
            "lines": [{"item_name": "刀库", "quantity": 1, "expected_price": "800"}],
            "competitors": [{"competitor_id": competitor["id"], "offer": "700"}],
        },
        1,
    )
    assert changed["currency"] == "USD"
    assert currencies == [("line", "USD"), ("offer", "USD")]

    pipeline = service.forecast_pipeline({"group_by": "owner"})
    assert {(t["currency"], t["count"], t["amount"]) for t in pipeline["totals"]} == {
        ("USD", 1, "12000.50")
    }
    assert {g["currency"] for g in pipeline["groups"]} == {"USD"}
