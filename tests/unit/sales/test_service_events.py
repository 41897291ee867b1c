"""What the sales use cases put in the outbox conforms to the schemas they publish
(``api_events``, built from ``sales.events.EVENT_SCHEMAS``) for the pipeline's main flows: an
opportunity created, changed, moved, won, lost, abandoned and reopened; an activity planned and
completed; an expense submitted, approved level by level, rejected and paid. The check is
strict: a field an event carries that its schema does not declare fails, as one the schema
requires and the event lacks."""

from __future__ import annotations

import copy
from datetime import date, timedelta
from typing import Any

import pytest
from jsonschema import Draft202012Validator, ValidationError

from sales import events

from .sample_org import ADMIN, BUYER, EAST_MACHINERY, MANAGER
from .test_service_expenses import EAST_MANAGER, FINANCE

PIPELINE_EVENTS = (
    events.OPPORTUNITY_CREATED,
    events.OPPORTUNITY_UPDATED,
    events.OPPORTUNITY_STAGE_CHANGED,
    events.OPPORTUNITY_WON,
    events.OPPORTUNITY_LOST,
    events.OPPORTUNITY_ABANDONED,
    events.OPPORTUNITY_REOPENED,
    events.ACTIVITY_PLANNED,
    events.ACTIVITY_COMPLETED,
    events.EXPENSE_SUBMITTED,
    events.EXPENSE_APPROVED,
    events.EXPENSE_REJECTED,
    events.EXPENSE_PAID,
)


@pytest.fixture
def service(expense_service):
    return expense_service


def strict(schema: Any) -> Any:
    """``schema`` with every object that names its properties closed to others."""
    if isinstance(schema, dict):
        closed = {key: strict(value) for key, value in schema.items()}
        if "properties" in closed:
            closed.setdefault("additionalProperties", False)
        return closed
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


@pytest.fixture
def conforms(service):
    components = strict(copy.deepcopy(service.api_events()))

    def check(kind: str, data: dict[str, Any]) -> None:
        schema = {"$ref": f"#/components/schemas/{kind}", "components": {"schemas": components}}
        Draft202012Validator(schema).validate(data)

    return check


def test_api_events_lists_every_pipeline_event_with_its_schema(service):
    published = service.api_events()
    assert set(PIPELINE_EVENTS) <= set(published)
    assert set(events.EVENT_SCHEMAS) <= set(published)
    for kind in PIPELINE_EVENTS:
        assert published[kind]["type"] == "object", kind
        assert published[kind].get("required"), kind


def test_the_pipelines_events_conform_to_their_published_schemas(
    service, act_as, principal, outbox_events, conforms
):
    act_as(ADMIN)
    competitor = service.create_competitor({"name": "德马吉森精机", "price_level": "high"})
    act_as(principal)

    def opportunity(name):
        return service.create_opportunity(
            {
                "name": name,
                "customer_id": str(EAST_MACHINERY),
                "expected_amount": "480000",
                "expected_close_date": "2026-09-30",
                "contacts": [{"contact_id": str(BUYER), "role": "decision_maker"}],
                "lines": [
                    {"item_name": "立式加工中心", "quantity": "2", "expected_price": "98000"}
                ],
                "competitors": [{"competitor_id": competitor["id"], "offer": "450000"}],
                "source_campaign_id": "CMP-2026-0007",
            }
        )

    def move(made, stage_code, **fields):
        current = service.get_opportunity(made["id"])
        return service.move_opportunity_stage(
            made["id"], {"stage_code": stage_code, **fields}, current["version"]
        )

    def to_negotiation(made):
        for stage in ("needs_confirmed", "proposal", "negotiation"):
            made = move(made, stage)
        return made

    won = opportunity("一期改造")
    won = service.update_opportunity(won["id"], {"description": "二期扩产", "tags": ["重点"]}, 1)
    won = move(to_negotiation(won), "won")
    lost = to_negotiation(opportunity("二期改造"))
    act_as(MANAGER)
    service.lose_opportunity(
        lost["id"],
        {"loss_reason": "price", "won_competitor_id": competitor["id"], "reason": "对手降价"},
        lost["version"],
    )
    service.reopen_opportunity(won["id"], {"reason": "合同未签回"}, won["version"])
    act_as(principal)
    dropped = opportunity("三期改造")
    service.abandon_opportunity(dropped["id"], {"reason": "客户项目取消"}, 1)
    back = move(
        move(opportunity("四期改造"), "needs_confirmed"), "initial_contact", reason="需求变更"
    )
    assert back["stage_code"] == "initial_contact"

    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    visit = service.plan_activity(
        {
            "type": "visit",
            "subject": "拜访采购部",
            "customer_id": str(EAST_MACHINERY),
            "opportunity_id": dropped["id"],
            "contact_id": str(BUYER),
            "participants": ["u-sales-02"],
            "start_at": f"{tomorrow}T09:00:00+08:00",
            "duration_minutes": 60,
        }
    )
    service.complete_activity(
        visit["id"],
        {
            "result": "见到采购经理",
            "next_step": "下周报价",
            "checkin_lat": "31.230416",
            "checkin_lng": "121.473701",
        },
    )

    def submit(amount, category="travel"):
        return service.submit_expense(
            {
                "expense_category": category,
                "amount": amount,
                "spent_on": str(date.today()),
                "customer_id": str(EAST_MACHINERY),
                "opportunity_id": dropped["id"],
                "activity_id": visit["id"],
                "receipt_no": "FP-0001",
            }
        )

    large, small = submit("8800.00", "entertainment"), submit("380.00")
    act_as(MANAGER)
    service.approve_expense(large["id"], {"comment": "同意"})
    service.reject_expense(small["id"], {"comment": "无发票"})
    act_as(EAST_MANAGER)
    service.approve_expense(large["id"], {})
    act_as(FINANCE)
    service.pay_expense(large["id"])

    published = outbox_events()
    assert set(PIPELINE_EVENTS) <= {kind for kind, _ in published}
    for kind, data in published:
        conforms(kind, data)

    approvals = [data["expense"] for kind, data in published if kind == "expense_approved"]
    assert [(e["status"], e["waiting_for"] and e["waiting_for"]["level"]) for e in approvals] == [
        ("submitted", 2),
        ("approved", None),
    ]
    assert [
        [(a["level"], a["decision"]) for a in expense["approvals"]] for expense in approvals
    ] == [[(1, "approved"), (2, None)], [(1, "approved"), (2, "approved")]]


def test_an_event_with_an_undeclared_field_or_missing_a_required_one_is_caught(
    service, outbox_events, conforms
):
    service.create_opportunity({"name": "项目", "customer_id": str(EAST_MACHINERY)})
    [(kind, data)] = outbox_events()
    conforms(kind, data)
    with pytest.raises(ValidationError):
        conforms(kind, {**data, "surprise": 1})
    with pytest.raises(ValidationError):
        conforms(kind, {"opportunity": {**data["opportunity"], "surprise": 1}})
    with pytest.raises(ValidationError):
        conforms(kind, {})
