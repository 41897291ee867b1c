"""Sales processes: the standard one a new database starts with, admins defining and revising
processes, and opportunities keeping the revision they follow."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from crm_common.errors import Conflict, Forbidden, NotFound, ValidationFailed
from sales.domain.processes import STANDARD_STAGES
from sales.models import StageHistory

from .sample_org import ADMIN, BUYER, EAST_MACHINERY, SALES

REORDER_STAGES = [
    {"code": "quoted", "name": "已报价", "probability": 40, "required_fields": ["expected_amount"]},
    {"code": "confirmed", "name": "已确认", "probability": 80},
    {"code": "won", "name": "成交", "probability": 100, "outcome": "won"},
    {"code": "lost", "name": "未成交", "probability": 0, "outcome": "lost"},
]


@pytest.fixture
def admin(act_as):
    return act_as(ADMIN)


def fields_of(error):
    return {path.split(".")[0] for path in error.value.field_errors}


def test_the_standard_process_is_stored_once_on_start(service):
    service.seed_sales_defaults()
    service.seed_sales_defaults()
    [standard] = service.list_sales_processes({})
    assert (standard["code"], standard["revision"], standard["active"]) == ("standard", 1, True)
    assert [s["code"] for s in standard["stages"]] == [s.code for s in STANDARD_STAGES]
    proposal = standard["stages"][2]
    assert (proposal["name"], proposal["probability"], proposal["required_fields"]) == (
        "方案报价",
        50,
        ["expected_amount", "expected_close_date"],
    )
    assert [r["code"] for r in service.list_loss_reasons({})][:2] == ["budget", "no_decision"]


def test_a_first_opportunity_stores_the_standard_process_itself(service):
    made = service.create_opportunity({"name": "项目", "customer_id": str(EAST_MACHINERY)})
    assert service.get_sales_process(made["process_id"])["code"] == "standard"


def test_only_admins_define_processes_and_everyone_with_read_lists_them(service, admin, act_as):
    service.seed_sales_defaults()
    created = service.create_sales_process(
        {"code": "reorder", "name": "经销补货", "stages": REORDER_STAGES, "allow_skip": True}
    )
    assert (created["revision"], created["version"], created["allow_skip"]) == (1, 1, True)
    assert [s["position"] for s in created["stages"]] == [10, 20, 30, 40]
    act_as(SALES)
    assert {p["code"] for p in service.list_sales_processes({})} == {"standard", "reorder"}
    assert service.get_sales_process(created["id"])["name"] == "经销补货"
    with pytest.raises(Forbidden):
        service.create_sales_process({"code": "x", "name": "x", "stages": REORDER_STAGES})
    with pytest.raises(Forbidden):
        service.update_sales_process(created["id"], {"name": "改名"}, 1)
    with pytest.raises(NotFound):
        service.get_sales_process("no-such-process")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"code": "reorder", "name": "x", "stages": REORDER_STAGES[:2]}, "stages"),
        (
            {"code": "reorder", "name": "x", "stages": [{**REORDER_STAGES[0], "probability": 140}]},
            "stages",
        ),
        (
            {
                "code": "reorder",
                "name": "x",
                "stages": [
                    {**REORDER_STAGES[0], "required_fields": ["colour"]},
                    *REORDER_STAGES[1:],
                ],
            },
            "stages",
        ),
        ({"code": "Bad Code", "name": "x", "stages": REORDER_STAGES}, "code"),
        ({"code": "standard", "name": "x", "stages": REORDER_STAGES}, "code"),
    ],
)
def test_invalid_definitions_are_named(service, admin, data, field):
    service.seed_sales_defaults()
    with pytest.raises(ValidationFailed) as info:
        service.create_sales_process(data)
    assert field in fields_of(info)


def test_a_revision_is_a_new_version_and_opportunities_keep_theirs(service, admin, act_as):
    process = service.create_sales_process(
        {"code": "reorder", "name": "经销补货", "stages": REORDER_STAGES}
    )
    act_as(SALES)
    with pytest.raises(ValidationFailed) as info:
        service.create_opportunity(
            {"name": "补货", "customer_id": str(EAST_MACHINERY), "process_id": process["id"]}
        )
    assert set(info.value.field_errors) == {"expected_amount"}  # the first stage needs it
    kept = service.create_opportunity(
        {
            "name": "补货",
            "customer_id": str(EAST_MACHINERY),
            "process_id": process["id"],
            "expected_amount": "12000",
        }
    )
    assert (kept["stage_code"], kept["probability"]) == ("quoted", 40)
    act_as(ADMIN)
    stages = [{**REORDER_STAGES[0], "probability": 20}, *REORDER_STAGES[1:]]
    revised = service.update_sales_process(process["id"], {"stages": stages}, 1)
    assert revised["id"] != process["id"]
    assert (revised["code"], revised["revision"], revised["stages"][0]["probability"]) == (
        "reorder",
        2,
        20,
    )
    old = service.get_sales_process(process["id"])
    assert old["superseded_by"] == revised["id"] and old["stages"][0]["probability"] == 40
    assert [p["id"] for p in service.list_sales_processes({}) if p["code"] == "reorder"] == [
        revised["id"]
    ]
    act_as(SALES)
    assert service.get_opportunity(kept["id"])["process_id"] == process["id"]
    with pytest.raises(ValidationFailed) as info:
        service.create_opportunity(
            {"name": "补货", "customer_id": str(EAST_MACHINERY), "process_id": process["id"]}
        )
    assert fields_of(info) == {"process_id"}


def test_revising_an_old_revision_or_a_stale_version_is_a_conflict(service, admin):
    process = service.create_sales_process(
        {"code": "reorder", "name": "经销补货", "stages": REORDER_STAGES}
    )
    with pytest.raises(Conflict) as info:
        service.update_sales_process(process["id"], {"name": "补货"}, 7)
    assert info.value.details["reason"] == "stale_version"
    revised = service.update_sales_process(process["id"], {"name": "补货"}, 1)
    with pytest.raises(Conflict) as info:
        service.update_sales_process(process["id"], {"name": "再改"}, 2)
    assert info.value.details["superseded_by"] == revised["id"]
    with pytest.raises(ValidationFailed) as info:
        service.update_sales_process(revised["id"], {"code": "other"}, 1)
    assert fields_of(info) == {"code"}
    assert service.update_sales_process(revised["id"], {"name": "补货"}, 1)["revision"] == 2


def test_a_deactivated_process_takes_no_new_opportunities(service, admin, act_as):
    process = service.create_sales_process(
        {"code": "reorder", "name": "经销补货", "stages": REORDER_STAGES}
    )
    retired = service.update_sales_process(process["id"], {"active": False}, 1)
    assert retired["active"] is False
    assert "reorder" not in {p["code"] for p in service.list_sales_processes({})}
    assert "reorder" in {
        p["code"] for p in service.list_sales_processes({"include_inactive": True})
    }
    act_as(SALES)
    with pytest.raises(ValidationFailed) as info:
        service.create_opportunity(
            {"name": "补货", "customer_id": str(EAST_MACHINERY), "process_id": retired["id"]}
        )
    assert fields_of(info) == {"process_id"}


def test_a_process_that_allows_skipping_lets_a_move_skip(service, admin, act_as):
    process = service.create_sales_process(
        {"code": "reorder", "name": "经销补货", "stages": REORDER_STAGES, "allow_skip": True}
    )
    act_as(SALES)
    made = service.create_opportunity(
        {
            "name": "补货",
            "customer_id": str(EAST_MACHINERY),
            "process_id": process["id"],
            "expected_amount": "12000",
            "contacts": [{"contact_id": str(BUYER), "role": "purchaser"}],
        }
    )
    assert made["stage_code"] == "quoted"
    won = service.win_opportunity(made["id"], {}, made["version"])
    assert (won["status"], won["stage_code"]) == ("won", "won")


def test_revising_a_process_leaves_an_opportunitys_stage_history_as_it_was(
    service, db, admin, act_as
):
    process = service.create_sales_process(
        {"code": "reorder", "name": "经销补货", "stages": REORDER_STAGES}
    )
    act_as(SALES)
    made = service.create_opportunity(
        {
            "name": "补货",
            "customer_id": str(EAST_MACHINERY),
            "process_id": process["id"],
            "expected_amount": "12000",
        }
    )
    moved = service.move_opportunity_stage(made["id"], {"stage_code": "confirmed"}, 1)
    assert moved["stage_code"] == "confirmed"

    def stored_rows():
        with db.session() as session:
            rows = session.scalars(
                select(StageHistory)
                .where(StageHistory.opportunity_id == uuid.UUID(made["id"]))
                .order_by(StageHistory.entered_at, StageHistory.stage_code)
            ).all()
            return [
                (r.id, r.process_id, r.stage_code, r.entered_at, r.left_at, r.moved_by, r.reason)
                for r in rows
            ]

    rows_before, answer_before = stored_rows(), service.opportunity_stages(made["id"])
    assert [row[2] for row in rows_before] == ["quoted", "confirmed"]

    act_as(ADMIN)
    renamed = [
        {**REORDER_STAGES[0], "name": "报价中", "probability": 20},
        {"code": "agreed", "name": "已同意", "probability": 70},
        *REORDER_STAGES[2:],
    ]
    revised = service.update_sales_process(process["id"], {"stages": renamed}, 1)
    assert revised["revision"] == 2

    act_as(SALES)
    assert stored_rows() == rows_before
    assert service.opportunity_stages(made["id"]) == answer_before
    kept = service.get_opportunity(made["id"])
    assert (kept["process_id"], kept["stage_code"], kept["probability"]) == (
        process["id"],
        "confirmed",
        80,
    )
