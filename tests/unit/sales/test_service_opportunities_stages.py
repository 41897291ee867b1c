"""Moving opportunities through the standard process (初步接触 → 需求确认 → 方案报价 → 商务谈判 →
赢单/输单), closing and reopening them, and their stage history."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from crm_common.errors import Conflict, Forbidden, ValidationFailed
from sales.models import StageHistory

from .sample_org import ADMIN, BUYER, EAST_MACHINERY, MANAGER


@pytest.fixture
def opportunity(service):
    return service.create_opportunity(
        {"name": "数控机床改造项目", "customer_id": str(EAST_MACHINERY)}
    )


@pytest.fixture
def move(service):
    """Move to ``stage_code`` at the opportunity's current version; the moved opportunity."""

    def move(opportunity, stage_code, **fields):
        current = service.get_opportunity(opportunity["id"])
        return service.move_opportunity_stage(
            current["id"], {"stage_code": stage_code, **fields}, current["version"]
        )

    return move


@pytest.fixture
def negotiating(service, opportunity, move):
    """The opportunity in 商务谈判, with what the stages on the way require."""
    move(opportunity, "needs_confirmed")
    current = service.update_opportunity(
        opportunity["id"],
        {
            "expected_amount": "480000",
            "expected_close_date": "2026-09-30",
            "contacts": [{"contact_id": str(BUYER), "role": "decision_maker"}],
        },
        2,
    )
    move(current, "proposal")
    return move(current, "negotiation")


@pytest.fixture
def competitor(service, act_as):
    act_as(ADMIN)
    made = service.create_competitor({"name": "德马吉森精机", "price_level": "high"})
    act_as(MANAGER)
    return made


def fields_of(error):
    return {path.split(".")[0] for path in error.value.field_errors}


def test_a_forward_move_takes_the_stage_probability_and_is_recorded(
    service, opportunity, move, outbox_events
):
    moved = move(opportunity, "needs_confirmed")
    assert (moved["stage_code"], moved["stage_name"]) == ("needs_confirmed", "需求确认")
    assert (moved["probability"], moved["status"], moved["version"]) == (30, "open", 2)
    kind, data = outbox_events()[-1]
    assert kind == "opportunity_stage_changed"
    assert (data["from_stage"], data["to_stage"]) == ("initial_contact", "needs_confirmed")
    [change] = [
        e
        for e in service.opportunity_history(opportunity["id"])["items"]
        if e["field"] == "stage_code"
    ]
    assert (change["change"], change["old"], change["new"]) == (
        "stage_changed",
        "initial_contact",
        "needs_confirmed",
    )


def test_entering_a_stage_needs_its_required_fields_named(service, opportunity, move):
    move(opportunity, "needs_confirmed")
    with pytest.raises(ValidationFailed) as info:
        move(opportunity, "proposal")
    assert set(info.value.field_errors) == {"expected_amount", "expected_close_date"}
    assert info.value.field_errors["expected_amount"] == ["is required to enter 方案报价"]
    service.update_opportunity(
        opportunity["id"], {"expected_amount": "480000", "expected_close_date": "2026-09-30"}, 2
    )
    assert move(opportunity, "proposal")["probability"] == 50
    with pytest.raises(ValidationFailed) as info:
        move(opportunity, "negotiation")
    assert set(info.value.field_errors) == {"decision_maker"}


def test_a_stage_reached_keeps_its_fields_required(service, negotiating):
    with pytest.raises(ValidationFailed) as info:
        service.update_opportunity(
            negotiating["id"], {"expected_amount": None}, negotiating["version"]
        )
    assert "expected_amount" in info.value.field_errors
    with pytest.raises(ValidationFailed) as info:
        service.update_opportunity(negotiating["id"], {"contacts": []}, negotiating["version"])
    assert "decision_maker" in info.value.field_errors


def test_skipping_is_refused_and_moving_back_needs_a_reason(service, opportunity, move):
    with pytest.raises(ValidationFailed) as info:
        move(opportunity, "proposal")
    assert fields_of(info) == {"stage_code"}
    move(opportunity, "needs_confirmed")
    with pytest.raises(ValidationFailed) as info:
        move(opportunity, "initial_contact")
    assert fields_of(info) == {"reason"}
    back = move(opportunity, "initial_contact", reason="客户换了对接人")
    assert (back["stage_code"], back["probability"]) == ("initial_contact", 10)
    stages = service.opportunity_stages(opportunity["id"])["items"]
    assert [(s["stage_code"], s["reason"]) for s in stages] == [
        ("initial_contact", None),
        ("needs_confirmed", None),
        ("initial_contact", "客户换了对接人"),
    ]
    assert [s["left_at"] is None for s in stages] == [False, False, True]
    with pytest.raises(ValidationFailed) as info:
        move(opportunity, "no_such_stage")
    assert fields_of(info) == {"stage_code"}


def test_an_override_is_kept_across_moves_until_cleared(service, opportunity, move):
    moved = move(opportunity, "needs_confirmed", probability_override=45)
    assert (moved["probability"], moved["probability_override"]) == (45, 45)
    back = move(moved, "initial_contact", reason="重新评估")
    assert (back["probability"], back["probability_override"]) == (45, 45)
    cleared = move(back, "needs_confirmed", probability_override=None)
    assert (cleared["probability"], cleared["probability_override"]) == (30, None)


def test_a_stale_version_or_none_is_refused(service, opportunity):
    service.update_opportunity(opportunity["id"], {"description": "新增需求"}, 1)
    with pytest.raises(Conflict) as info:
        service.move_opportunity_stage(opportunity["id"], {"stage_code": "needs_confirmed"}, 1)
    assert info.value.details["reason"] == "stale_version"
    with pytest.raises(ValidationFailed) as info:
        service.move_opportunity_stage(opportunity["id"], {"stage_code": "needs_confirmed"})
    assert fields_of(info) == {"version"}


def test_winning_through_the_won_stage(service, negotiating, move, outbox_events):
    won = move(negotiating, "won")
    assert (won["status"], won["stage_code"], won["probability"]) == ("won", "won", 100)
    assert won["closed_at"] is not None and won["weighted_amount"] == "480000.00"
    assert [kind for kind, _ in outbox_events()][-2:] == [
        "opportunity_stage_changed",
        "opportunity_won",
    ]
    with pytest.raises(Conflict):
        move(won, "negotiation", reason="再谈")
    with pytest.raises(Conflict):
        service.update_opportunity(won["id"], {"expected_amount": "1"}, won["version"])
    renamed = service.update_opportunity(won["id"], {"name": "一期已签"}, won["version"])
    assert renamed["name"] == "一期已签"


def test_winning_early_is_a_skip_the_process_refuses(service, opportunity):
    with pytest.raises(ValidationFailed) as info:
        service.win_opportunity(opportunity["id"], {}, opportunity["version"])
    assert fields_of(info) == {"stage_code"}


def test_win_lose_and_abandon_through_their_routes(
    service, act_as, negotiating, competitor, outbox_events
):
    act_as(MANAGER)
    with pytest.raises(ValidationFailed) as info:
        service.lose_opportunity(negotiating["id"], {"loss_reason": "weather"}, 5)
    assert fields_of(info) == {"loss_reason"}
    lost = service.lose_opportunity(
        negotiating["id"],
        {"loss_reason": "price", "won_competitor_id": competitor["id"], "reason": "对手降价"},
        negotiating["version"],
    )
    assert (lost["status"], lost["stage_code"], lost["probability"]) == ("lost", "lost", 0)
    assert (lost["loss_reason"], lost["won_competitor_id"]) == ("price", competitor["id"])
    kind, data = outbox_events()[-1]
    assert kind == "opportunity_lost" and data["opportunity"]["loss_reason"] == "price"
    history = service.opportunity_history(lost["id"])["items"]
    assert {e["field"] for e in history if e["change"] == "lost"} >= {
        "status",
        "stage_code",
        "loss_reason",
        "won_competitor_id",
        "closed_at",
    }
    with pytest.raises(Conflict):
        service.abandon_opportunity(lost["id"], {"reason": "客户不回复"}, lost["version"])


def test_abandoning_needs_a_reason_and_keeps_the_stage(service, opportunity, outbox_events):
    with pytest.raises(ValidationFailed) as info:
        service.abandon_opportunity(opportunity["id"], {}, 1)
    assert fields_of(info) == {"reason"}
    abandoned = service.abandon_opportunity(opportunity["id"], {"reason": "客户项目取消"}, 1)
    assert (abandoned["status"], abandoned["stage_code"], abandoned["probability"]) == (
        "abandoned",
        "initial_contact",
        0,
    )
    assert outbox_events()[-1][0] == "opportunity_abandoned"
    [stay] = service.opportunity_stages(opportunity["id"])["items"]
    assert stay["left_at"] == abandoned["closed_at"]


def test_reopening_needs_the_permission_and_goes_back_to_the_last_open_stage(
    service, act_as, negotiating, move, outbox_events
):
    won = move(negotiating, "won")
    with pytest.raises(Forbidden) as info:
        service.reopen_opportunity(won["id"], {}, won["version"])
    assert info.value.details["permission"] == "opportunity:reopen"
    act_as(MANAGER)
    reopened = service.reopen_opportunity(won["id"], {"reason": "合同未签回"}, won["version"])
    assert (reopened["status"], reopened["stage_code"], reopened["probability"]) == (
        "open",
        "negotiation",
        75,
    )
    assert reopened["closed_at"] is None
    assert outbox_events()[-1][0] == "opportunity_reopened"
    stays = service.opportunity_stages(won["id"])["items"]
    assert [(s["stage_code"], s["reason"]) for s in stays[-2:]] == [
        ("won", None),
        ("negotiation", "合同未签回"),
    ]
    with pytest.raises(ValidationFailed):
        service.reopen_opportunity(won["id"], {}, reopened["version"])


def test_days_per_stage_add_up_stays_and_stop_at_closing(service, db, opportunity, move):
    move(opportunity, "needs_confirmed")
    moved = move(opportunity, "initial_contact", reason="退回")
    now = datetime.now(UTC)
    stays = [now - timedelta(days=10), now - timedelta(days=4), now - timedelta(days=1)]
    with db.session() as session:
        table = StageHistory.__table__
        ids = session.scalars(
            select(table.c.id)
            .where(table.c.opportunity_id == uuid.UUID(opportunity["id"]))
            .order_by(table.c.entered_at)
        ).all()
        ends = [stays[1], stays[2], None]
        for visit_id, entered, left in zip(ids, stays, ends, strict=True):
            session.execute(
                update(table).where(table.c.id == visit_id).values(entered_at=entered, left_at=left)
            )
    history = service.opportunity_stages(opportunity["id"])
    assert [s["days"] for s in history["items"]] == ["6.0", "3.0", "1.0"]
    assert history["days_per_stage"] == {"initial_contact": "7.0", "needs_confirmed": "3.0"}
    service.abandon_opportunity(opportunity["id"], {"reason": "放弃"}, moved["version"])
    assert (
        service.opportunity_stages(opportunity["id"])["days_per_stage"]["initial_contact"] == "7.0"
    )
