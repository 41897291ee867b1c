"""Activities through the sales service: plan, log as done, complete, cancel, replan, check
in; lists, calendar and overdue list; scoping, history and events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert

from crm_common.context import Principal
from crm_common.errors import Conflict, Forbidden, NotFound, ValidationFailed
from crm_common.models import utcnow
from sales.models import Opportunity, SalesProcess
from sales.repository.activities import aware

from .sample_org import (
    ADMIN,
    BUYER,
    COLLEAGUE,
    EAST_MACHINERY,
    GUANGZHOU_BUYER,
    GUANGZHOU_HEAVY,
    MANAGER,
    OLD_EAST,
    OTHER_OFFICE,
    SALES_PERMISSIONS,
    SHANGHAI_PRECISION,
)

EAST_MANAGER = Principal(
    user_id="u-east-mgr",
    department_id="d-east",
    permissions=SALES_PERMISSIONS,
    grants=({"departments": ["d-east", "d-east-sh"]},),
)
READER = Principal(
    user_id="u-reader",
    department_id="d-east-sh",
    permissions=("activity:read",),
    grants=({},),
)


def later(**delta: float) -> str:
    return (utcnow() + timedelta(**delta)).isoformat()


def earlier(**delta: float) -> str:
    return (utcnow() - timedelta(**delta)).isoformat()


@pytest.fixture
def plan(service):
    def plan(subject="拜访采购部", customer=EAST_MACHINERY, **fields):
        data = {
            "type": "visit",
            "subject": subject,
            "customer_id": str(customer),
            "start_at": later(days=1),
            "duration_minutes": 60,
            **fields,
        }
        return service.plan_activity(data)

    return plan


@pytest.fixture
def opportunity(db):
    """An open opportunity of 华东机电 owned by 张伟, inserted as a row."""

    def add(customer=EAST_MACHINERY, owner="u-sales-01", **fields):
        with db.session() as session:
            process_id = session.query(SalesProcess.id).limit(1).scalar()
            if process_id is None:
                process_id = uuid.uuid4()
                session.add(SalesProcess(id=process_id, code="standard", name="标准销售流程"))
                session.flush()
            row = {
                "id": uuid.uuid4(),
                "code": f"OPP-2026-{uuid.uuid4().int % 999_999 + 1:06d}",
                "name": "数控机床改造项目",
                "customer_id": customer,
                "owner_id": owner,
                "department_id": "d-east-sh",
                "region": "华东/上海",
                "category": "A",
                "process_id": process_id,
                "stage_code": "initial_contact",
                "probability": 10,
                "status": "open",
                **fields,
            }
            session.execute(insert(Opportunity), [row])
        return row["id"]

    return add


def last_activity_of(db, opportunity_id):
    with db.session() as session:
        return aware(session.get(Opportunity, opportunity_id).last_activity_at)


# -- planning --------------------------------------------------------------------------------
def test_plan_takes_scope_from_customer_and_owner(plan, outbox_events):
    start = later(days=1)
    made = plan(
        start_at=start,
        duration_minutes=90,
        contact_id=str(BUYER),
        participants=["u-sales-02", "u-sales-01", "u-sales-02"],
    )
    assert (made["type"], made["status"], made["subject"]) == ("visit", "planned", "拜访采购部")
    assert (made["owner_id"], made["department_id"]) == ("u-sales-01", "d-east-sh")
    assert (made["region"], made["category"]) == ("华东/上海", "A")
    assert made["participants"] == ["u-sales-02"]
    start_at = datetime.fromisoformat(made["start_at"])
    assert start_at == datetime.fromisoformat(start)
    assert datetime.fromisoformat(made["ends_at"]) == start_at + timedelta(minutes=90)
    assert made["overdue"] is False and made["version"] == 1
    [(kind, data)] = outbox_events()
    assert kind == "activity_planned" and data["activity"]["id"] == made["id"]


def test_times_with_an_offset_are_kept_in_utc(plan):
    made = plan(start_at="2030-03-02T09:30:00+08:00")
    assert made["start_at"] == "2030-03-02T01:30:00+00:00"


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"start_at": None}, ["start_at"]),
        ({"duration_minutes": None}, ["duration_minutes"]),
        ({"duration_minutes": 0}, ["duration_minutes"]),
        ({"type": "lunch"}, ["type"]),
        ({"start_at": "2030-03-02T09:30:00"}, ["start_at"]),
        ({"subject": " "}, ["subject"]),
        ({"customer_id": "nope"}, ["customer_id"]),
        ({"checkin_lat": "31.2"}, ["checkin_lng"]),
        ({"type": "call", "checkin_lat": "31.2", "checkin_lng": "121.4"}, ["checkin_lat"]),
        ({"checkin_lat": "91", "checkin_lng": "121.4"}, ["checkin_lat"]),
    ],
)
def test_plan_refusals_name_the_field(plan, fields, errors):
    with pytest.raises(ValidationFailed) as caught:
        plan(**fields)
    assert sorted(caught.value.field_errors) == errors


def test_customer_contact_and_opportunity_must_be_visible_and_belong_together(plan, opportunity):
    cases = [
        ({"customer": GUANGZHOU_HEAVY}, "customer_id"),
        ({"customer": uuid.uuid4()}, "customer_id"),
        ({"contact_id": str(GUANGZHOU_BUYER)}, "contact_id"),
        ({"opportunity_id": str(opportunity(customer=SHANGHAI_PRECISION))}, "opportunity_id"),
        ({"opportunity_id": str(opportunity(owner="u-sales-02"))}, "opportunity_id"),
    ]
    for fields, field in cases:
        with pytest.raises(ValidationFailed) as caught:
            plan(**fields)
        assert list(caught.value.field_errors) == [field], fields


def test_a_merged_customer_is_refused_pointing_at_the_survivor(plan):
    with pytest.raises(ValidationFailed) as caught:
        plan(customer=OLD_EAST)
    assert caught.value.details["merged_into_id"] == str(EAST_MACHINERY)
    assert str(EAST_MACHINERY) in caught.value.field_errors["customer_id"][0]


def test_an_owner_outside_the_callers_scope_is_refused(plan, act_as):
    with pytest.raises(ValidationFailed) as caught:
        plan(owner_id="u-sales-02")
    assert list(caught.value.field_errors) == ["owner_id"]
    act_as(MANAGER)
    made = plan(owner_id="u-sales-02")
    assert (made["owner_id"], made["department_id"]) == ("u-sales-02", "d-east-sh")


def test_permissions(service, plan, act_as):
    made = plan()
    act_as(READER)
    assert service.get_activity(made["id"])["id"] == made["id"]
    with pytest.raises(Forbidden):
        plan()
    with pytest.raises(Forbidden):
        service.cancel_activity(made["id"])


# -- doing -----------------------------------------------------------------------------------
def test_logging_a_done_activity_moves_the_opportunity_on(plan, opportunity, db, outbox_events):
    deal = opportunity()
    done_at = earlier(hours=2)
    made = plan(
        type="call",
        status="done",
        start_at=None,
        duration_minutes=None,
        result=" 客户确认预算 ",
        done_at=done_at,
        opportunity_id=str(deal),
    )
    assert (made["status"], made["result"], made["next_step"]) == ("done", "客户确认预算", None)
    assert made["start_at"] == made["done_at"]
    assert last_activity_of(db, deal) == datetime.fromisoformat(done_at)
    assert [kind for kind, _ in outbox_events()] == ["activity_completed"]


def test_complete_cancel_and_their_conflicts(service, plan, opportunity, db, outbox_events):
    deal = opportunity()
    made = plan(opportunity_id=str(deal))
    completion = {"result": "见到采购经理", "next_step": "下周报价"}
    position = {"checkin_lat": 31.230416, "checkin_lng": "121.473701"}
    done = service.complete_activity(made["id"], {**completion, **position})
    assert (done["status"], done["result"], done["next_step"]) == (
        "done",
        "见到采购经理",
        "下周报价",
    )
    assert (done["checkin_lat"], done["checkin_lng"]) == ("31.230416", "121.473701")
    assert done["checkin_at"] is not None and done["version"] == 2
    touched = last_activity_of(db, deal)
    assert touched == datetime.fromisoformat(done["done_at"])
    with pytest.raises(Conflict):
        service.complete_activity(made["id"], {"result": "again"})
    with pytest.raises(Conflict):
        service.cancel_activity(made["id"])

    older = plan(opportunity_id=str(deal))
    service.complete_activity(older["id"], {"result": "电话回访", "done_at": earlier(days=3)})
    assert last_activity_of(db, deal) == touched, "an older activity does not move it back"

    other = plan()
    cancelled = service.cancel_activity(other["id"])
    assert cancelled["status"] == "cancelled" and cancelled["overdue"] is False
    with pytest.raises(Conflict):
        service.complete_activity(other["id"], {"result": "x"})
    with pytest.raises(ValidationFailed) as caught:
        service.complete_activity(plan()["id"], {"result": "  "})
    assert list(caught.value.field_errors) == ["result"]
    kinds = [kind for kind, _ in outbox_events()]
    assert kinds.count("activity_completed") == 2


def test_replan_needs_the_version_and_a_planned_activity(service, plan):
    made = plan()
    start = later(days=3)
    moved = service.replan_activity(made["id"], {"start_at": start}, 1)
    assert datetime.fromisoformat(moved["start_at"]) == datetime.fromisoformat(start)
    assert (moved["duration_minutes"], moved["version"]) == (60, 2)
    with pytest.raises(Conflict):
        service.replan_activity(made["id"], {"start_at": start}, 1)
    with pytest.raises(ValidationFailed):
        service.replan_activity(made["id"], {"start_at": start, "duration_minutes": 0}, 2)
    service.complete_activity(made["id"], {"result": "ok"})
    with pytest.raises(Conflict):
        service.replan_activity(made["id"], {"start_at": start}, 3)


def test_update_and_check_in(service, plan, opportunity):
    made = plan(type="meeting")
    with pytest.raises(ValidationFailed):
        service.check_in_activity(made["id"], {"checkin_lat": "31.2", "checkin_lng": "121.4"})
    changed = service.update_activity(
        made["id"],
        {"type": "visit", "subject": "现场演示", "contact_id": str(BUYER), "version": 1},
        None,
    )
    assert (changed["type"], changed["subject"], changed["contact_id"]) == (
        "visit",
        "现场演示",
        str(BUYER),
    )
    checked = service.check_in_activity(made["id"], {"checkin_lat": "31.2", "checkin_lng": "121.4"})
    assert (checked["checkin_lat"], checked["checkin_lng"]) == ("31.200000", "121.400000")
    with pytest.raises(ValidationFailed) as caught:
        service.update_activity(made["id"], {"type": "call"}, checked["version"])
    assert list(caught.value.field_errors) == ["checkin_lat"]
    with pytest.raises(ValidationFailed) as caught:
        service.update_activity(
            made["id"], {"opportunity_id": str(opportunity(SHANGHAI_PRECISION))}, checked["version"]
        )
    assert list(caught.value.field_errors) == ["opportunity_id"]
    history = service.activity_history(made["id"])["items"]
    assert [entry["change"] for entry in history][-1] == "created"
    assert {"checked_in", "updated"} <= {entry["change"] for entry in history}


# -- reading ---------------------------------------------------------------------------------
def test_scoping(service, plan, act_as):
    mine = plan()
    act_as(COLLEAGUE)
    theirs = plan("电话跟进", customer=SHANGHAI_PRECISION, type="call")
    with pytest.raises(NotFound):
        service.get_activity(mine["id"])
    assert [a["id"] for a in service.list_activities({})["items"]] == [theirs["id"]]
    act_as(OTHER_OFFICE)
    assert service.list_activities({})["items"] == []
    with pytest.raises(NotFound):
        service.complete_activity(mine["id"], {"result": "x"})
    act_as(MANAGER)
    assert {a["id"] for a in service.list_activities({})["items"]} == {mine["id"], theirs["id"]}


def test_list_filters_and_pages(service, plan):
    visit = plan(start_at=later(days=2), participants=["u-sales-02"])
    call = plan("电话跟进", type="call", start_at=later(days=1))
    past = plan("上周拜访", start_at=earlier(days=5))
    done = plan("已完成", start_at=earlier(days=6))
    service.complete_activity(done["id"], {"result": "ok"})

    def ids(**query):
        return [a["id"] for a in service.list_activities(query)["items"]]

    assert ids() == [visit["id"], call["id"], past["id"], done["id"]]
    assert ids(sort="start_at") == [done["id"], past["id"], call["id"], visit["id"]]
    assert ids(type="call") == [call["id"]]
    assert ids(status="done") == [done["id"]]
    assert ids(overdue=True) == [past["id"]]
    assert ids(q="拜访") == [visit["id"], past["id"]]
    assert ids(**{"from": earlier(days=1), "to": later(days=1, hours=12)}) == [call["id"]]
    assert ids(participant_id="u-sales-02") == [visit["id"]]
    assert ids(customer_id=str(EAST_MACHINERY), status="planned,done") == ids()
    first = service.list_activities({"limit": 3})
    rest = service.list_activities({"limit": 3, "cursor": first["next_cursor"]})
    assert [a["id"] for a in first["items"] + rest["items"]] == ids()
    assert rest["next_cursor"] is None
    with pytest.raises(ValidationFailed) as caught:
        service.list_activities({"from": "2026-03-02", "to": "2026-03-01"})
    assert list(caught.value.field_errors) == ["to"]


def test_calendar(service, plan, act_as):
    monday = datetime(2030, 3, 4, 1, 0, tzinfo=UTC)
    mine = plan(start_at=monday.isoformat())
    joined = plan(start_at=(monday + timedelta(days=2)).isoformat(), owner_id=None)
    plan(start_at=(monday + timedelta(days=9)).isoformat())
    act_as(COLLEAGUE)
    theirs = plan(
        customer=SHANGHAI_PRECISION,
        start_at=(monday + timedelta(days=1)).isoformat(),
        participants=["u-sales-01"],
    )
    week = {"from": "2030-03-04", "to": "2030-03-11"}
    assert [a["id"] for a in service.activity_calendar(week)["items"]] == [theirs["id"]]
    act_as(MANAGER)
    assert [a["id"] for a in service.activity_calendar(week)["items"]] == []
    by_owner = service.activity_calendar({**week, "owner_id": "u-sales-01"})["items"]
    assert [a["id"] for a in by_owner] == [mine["id"], theirs["id"], joined["id"]]
    team = service.activity_calendar({**week, "department_id": "d-east-sh"})["items"]
    assert len(team) == 3
    act_as(EAST_MANAGER)
    region = {**week, "department_id": "d-east"}
    assert service.activity_calendar(region)["items"] == []
    below = service.activity_calendar({**region, "include_sub_departments": True})["items"]
    assert len(below) == 3
    with pytest.raises(ValidationFailed) as caught:
        service.activity_calendar({"from": "2030-01-01", "to": "2030-06-01"})
    assert list(caught.value.field_errors) == ["to"]
    with pytest.raises(ValidationFailed):
        service.activity_calendar({**week, "owner_id": "u-sales-01", "department_id": "d-east"})


def test_overdue_activities(service, plan, act_as):
    late = plan(start_at=earlier(days=2), duration_minutes=30)
    later_late = plan(start_at=earlier(hours=3), duration_minutes=60)
    plan(start_at=earlier(minutes=30), duration_minutes=120)
    plan(start_at=later(days=1))
    page = service.overdue_activities({})
    assert [a["id"] for a in page["items"]] == [late["id"], later_late["id"]]
    assert all(a["overdue"] for a in page["items"])
    act_as(COLLEAGUE)
    assert service.overdue_activities({})["items"] == []
    act_as(ADMIN)
    assert len(service.overdue_activities({"owner_id": "u-sales-01"})["items"]) == 2
