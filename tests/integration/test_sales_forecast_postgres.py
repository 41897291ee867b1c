"""The forecast's queries, and the activity and expense queries written per database (planned
ends, participants, months, the approval waiting for someone), on the real PostgreSQL with the
sales database built by its migrations."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from nameko.testing.services import worker_factory

from crm_common.context import Principal, bind
from crm_common.db import SessionScope, engine_for
from crm_common.migrations import upgrade
from crm_common.models import utcnow
from crm_common.outbox import OutboxWriter
from sales.domain.expenses import DEFAULT_SECOND_LEVEL_AMOUNT
from sales.domain.forecast import PipelineRow, weighted_pipeline
from sales.domain.processes import STANDARD_STAGES
from sales.models import OutboxMessage
from sales.service import SalesService
from tests.unit.sales.sample_org import (
    ADMIN,
    EAST_MACHINERY,
    MANAGER,
    MANAGER_PERMISSIONS,
    SALES,
    seed,
)
from tests.unit.sales.test_service_forecast import (
    add_histories,
    add_opportunities,
    add_pipeline,
    opportunity_row,
    standard_process,
    visible,
)

pytestmark = pytest.mark.postgres

EAST_MANAGER = Principal(
    user_id="u-east-mgr",
    department_id="d-east",
    permissions=MANAGER_PERMISSIONS,
    grants=({"departments": ["d-east"]},),
)


@pytest.fixture
def db(pg_uri):
    upgrade("sales", pg_uri)
    scope = SessionScope(engine_for(pg_uri))
    with scope.session() as session:
        seed(session)
    return scope


@pytest.fixture
def service(db):
    bind(SALES, "req-pg")
    yield worker_factory(
        SalesService,
        db=db,
        outbox=OutboxWriter(OutboxMessage, "sales"),
        second_level_amount=DEFAULT_SECOND_LEVEL_AMOUNT,
    )
    bind(None, None)


def act_as(principal):
    bind(principal, "req-pg")


def test_the_weighted_pipeline(service, db):
    rows = add_pipeline(db, standard_process(db))
    for principal in (SALES, MANAGER, ADMIN):
        act_as(principal)
        open_rows = [r for r in visible(principal, rows) if r["status"] == "open"]
        for group_by in ("owner", "department", "month", "stage"):
            answer = service.forecast_pipeline({"group_by": group_by})
            expected = weighted_pipeline(
                [
                    PipelineRow(
                        r["owner_id"],
                        r["department_id"],
                        r["stage_code"],
                        r["probability"],
                        r.get("expected_amount"),
                        r["currency"],
                        r.get("expected_close_date"),
                    )
                    for r in open_rows
                ],
                group_by,
                [stage.code for stage in STANDARD_STAGES],
            )
            assert [
                (g["key"], g["currency"], g["count"], g["amount"], g["weighted"])
                for g in answer["groups"]
            ] == [
                (g.key, g.currency, g.count, f"{g.amount:.2f}", f"{g.weighted:.2f}")
                for g in expected
            ], (principal.user_id, group_by)
    act_as(MANAGER)
    by_month = service.forecast_pipeline({"group_by": "month", "from": "2026-04-01"})
    assert by_month["totals"] == [
        {"currency": "CNY", "count": 3, "amount": "1343.34", "weighted": "705.01"},
        {"currency": "USD", "count": 1, "amount": "1000.00", "weighted": "750.00"},
    ]


def test_attainment_counts_days_in_china(service, db):
    process = standard_process(db)
    add_opportunities(
        db,
        [
            opportunity_row(
                process,
                "u-sales-01",
                stage="won",
                expected_amount=amount,
                closed_at=closed_at,
            )
            for amount, closed_at in (
                ("50000", datetime(2026, 2, 28, 17, 0, tzinfo=UTC)),
                ("9999", datetime(2026, 3, 31, 16, 0, tzinfo=UTC)),
            )
        ],
    )
    act_as(ADMIN)
    service.create_target(
        {
            "subject_type": "person",
            "subject_id": "p-sales-01",
            "period": "2026-03",
            "amount": "100000",
        }
    )
    act_as(SALES)
    [item] = service.forecast_attainment({"period": "2026-03"})["items"]
    assert (item["target"], item["won"], item["percent"]) == ("100000.00", "50000.00", "50.0")


def test_funnel_stage_durations_and_win_rates(service, db):
    add_histories(db, standard_process(db))
    funnel = service.forecast_funnel({"from": "2026-01-01", "to": "2026-03-31"})
    assert [(s["reached"], s["conversion"]) for s in funnel["steps"]] == [
        (5, None),
        (3, "60.0"),
        (3, "100.0"),
        (1, "33.3"),
        (1, "100.0"),
    ]
    durations = service.forecast_stage_durations({"from": "2026-01-01"})["items"]
    assert [(i["stage_code"], i["opportunities"], i["average_days"]) for i in durations] == [
        ("initial_contact", 4, "2.8"),
        ("needs_confirmed", 2, "2.5"),
        ("proposal", 1, "3.0"),
        ("negotiation", 1, "10.0"),
    ]
    act_as(MANAGER)
    rates = service.forecast_win_rates({"from": "2026-01-01", "to": "2026-01-31"})
    assert [(i["key"], i["win_rate"]) for i in rates["items"]] == [
        ("u-sales-01", "50.0"),
        ("u-sales-02", "0.0"),
    ]
    assert [(r["loss_reason"], r["lost"]) for r in rates["loss_reasons"]] == [
        ("budget", 1),
        ("price", 1),
    ]


def test_overdue_activities_and_participants(service):
    now = utcnow()

    def plan(start, minutes, **fields):
        return service.plan_activity(
            {
                "type": "visit",
                "subject": "拜访",
                "customer_id": str(EAST_MACHINERY),
                "start_at": start.isoformat(),
                "duration_minutes": minutes,
                **fields,
            }
        )

    late = plan(now - timedelta(days=2), 30)
    plan(now - timedelta(minutes=30), 120, participants=["u-sales-02"])
    plan(now + timedelta(days=1), 60)
    assert [a["id"] for a in service.overdue_activities({})["items"]] == [late["id"]]
    assert len(service.list_activities({"overdue": False})["items"]) == 2
    joined = service.list_activities({"participant_id": "u-sales-02"})["items"]
    assert [a["participants"] for a in joined] == [["u-sales-02"]]


def test_expense_months_and_the_approval_waiting(service):
    expense = service.submit_expense(
        {
            "expense_category": "travel",
            "amount": "8800.50",
            "spent_on": str(date.today()),
            "customer_id": str(EAST_MACHINERY),
        }
    )
    act_as(MANAGER)
    waiting = service.list_expenses({"awaiting_me": True})["items"]
    assert [e["id"] for e in waiting] == [expense["id"]]
    service.approve_expense(expense["id"], {})
    assert service.list_expenses({"awaiting_me": True})["items"] == []
    act_as(EAST_MANAGER)
    assert [e["id"] for e in service.list_expenses({"awaiting_me": True})["items"]] == [
        expense["id"]
    ]
    service.approve_expense(expense["id"], {})
    totals = service.expense_totals({"by": "department_id,month"})["items"]
    assert totals == [
        {
            "key": {"department_id": "d-east-sh", "month": f"{date.today():%Y-%m}"},
            "currency": "CNY",
            "amount": "8800.50",
            "count": 1,
        }
    ]
