"""The forecast through the sales service: weighted pipeline, attainment against targets, funnel,
days per stage and win rates, each over the opportunities the caller may see and each equal to
what the domain's rules make of the same rows. Opportunities are inserted as rows."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import insert, select

from crm_common.context import Principal
from crm_common.errors import Forbidden
from crm_common.scope import ScopeValues, in_scope
from sales.application.processes import seed_defaults
from sales.domain.forecast import PipelineRow, weighted_pipeline
from sales.models import Opportunity, SalesProcess, StageHistory

from .sample_org import (
    ADMIN,
    COLLEAGUE,
    EAST_MACHINERY,
    GUANGZHOU_HEAVY,
    MANAGER,
    OTHER_OFFICE,
    SALES,
    SHANGHAI_PRECISION,
)

T0 = datetime(2026, 1, 10, 2, 0, tzinfo=UTC)
PLACES = {
    "u-sales-01": ("d-east-sh", "华东/上海", "A", EAST_MACHINERY),
    "u-sales-02": ("d-east-sh", "华东/上海", "B", SHANGHAI_PRECISION),
    "u-gz-01": ("d-south-gz", "华南/广州", "A", GUANGZHOU_HEAVY),
}
PROBABILITY = {
    "initial_contact": 10,
    "needs_confirmed": 30,
    "proposal": 50,
    "negotiation": 75,
    "won": 100,
    "lost": 0,
}


def standard_process(db) -> uuid.UUID:
    """The standard process (as the service stores it on first start)."""
    with db.session() as session:
        seed_defaults(session, T0)
        process_id: uuid.UUID = session.scalar(
            select(SalesProcess.id).where(SalesProcess.code == "standard")
        )
    return process_id


def opportunity_row(process_id: uuid.UUID, owner: str, **fields: Any) -> dict[str, Any]:
    department, region, category, customer = PLACES[owner]
    stage = fields.pop("stage", "initial_contact")
    row = {
        "id": uuid.uuid4(),
        "code": f"OPP-2026-{uuid.uuid4().int % 999_999 + 1:06d}",
        "name": "项目",
        "customer_id": customer,
        "owner_id": owner,
        "department_id": department,
        "region": region,
        "category": category,
        "process_id": process_id,
        "stage_code": stage,
        "probability": PROBABILITY[stage],
        "status": {"won": "won", "lost": "lost"}.get(stage, "open"),
        "currency": "CNY",
        "created_at": T0,
        "updated_at": T0,
        "version": 1,
    }
    row.update(fields)
    if isinstance(row.get("expected_amount"), str):
        row["expected_amount"] = Decimal(row["expected_amount"])
    return row


def add_opportunities(db, rows: list[dict[str, Any]], history: list[dict[str, Any]] = ()) -> None:
    with db.session() as session:
        if rows:
            session.execute(insert(Opportunity), rows)
        if history:
            session.execute(insert(StageHistory), list(history))


def visit(row: dict[str, Any], stage: str, entered: datetime, left: datetime | None = None):
    return {
        "id": uuid.uuid4(),
        "opportunity_id": row["id"],
        "process_id": row["process_id"],
        "stage_code": stage,
        "entered_at": entered,
        "left_at": left,
    }


def visible(principal, rows):
    return [
        row
        for row in rows
        if in_scope(
            principal,
            ScopeValues(row["owner_id"], row["department_id"], row["region"], row["category"]),
        )
    ]


@pytest.fixture
def process(db):
    return standard_process(db)


# -- weighted pipeline -----------------------------------------------------------------------
def add_pipeline(db, process: uuid.UUID) -> list[dict[str, Any]]:
    """Open opportunities whose weighted amounts end in half a fen, in two currencies, one
    without an amount, one with its probability overridden; and one won."""
    rows = [
        opportunity_row(process, "u-sales-01", stage="proposal", expected_amount="10.01",
                        expected_close_date=date(2026, 4, 15)),
        opportunity_row(process, "u-sales-01", expected_amount="0.05"),
        opportunity_row(process, "u-sales-01", stage="proposal"),
        opportunity_row(process, "u-sales-02", stage="needs_confirmed", expected_amount="333.33",
                        expected_close_date=date(2026, 5, 2)),
        opportunity_row(process, "u-sales-02", stage="negotiation", expected_amount="1000.00",
                        currency="USD", expected_close_date=date(2026, 4, 30)),
        opportunity_row(process, "u-sales-02", stage="negotiation", expected_amount="1000.00",
                        probability=60, probability_override=60,
                        expected_close_date=date(2026, 4, 30)),
        opportunity_row(process, "u-gz-01", stage="proposal", expected_amount="20000",
                        expected_close_date=date(2026, 4, 1)),
        opportunity_row(process, "u-sales-01", stage="won", expected_amount="50000",
                        closed_at=T0),
    ]  # fmt: skip
    add_opportunities(db, rows)
    return rows


@pytest.fixture
def pipeline_rows(db, process):
    return add_pipeline(db, process)


def figures(groups):
    return {(g["key"], g["currency"], g["count"], g["amount"], g["weighted"]) for g in groups}


@pytest.mark.parametrize("principal", [SALES, COLLEAGUE, MANAGER, OTHER_OFFICE, ADMIN])
@pytest.mark.parametrize("group_by", ["owner", "department", "month", "stage"])
def test_the_pipeline_is_the_domains_over_the_visible_rows(
    service, act_as, pipeline_rows, principal, group_by
):
    act_as(principal)
    answer = service.forecast_pipeline({"group_by": group_by})
    open_rows = [r for r in visible(principal, pipeline_rows) if r["status"] == "open"]
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
    )
    assert figures(answer["groups"]) == {
        (g.key, g.currency, g.count, f"{g.amount:.2f}", f"{g.weighted:.2f}") for g in expected
    }
    totals = {t["currency"]: (t["count"], t["amount"], t["weighted"]) for t in answer["totals"]}
    for currency in {r["currency"] for r in open_rows}:
        mine = [g for g in expected if g.currency == currency]
        assert totals[currency] == (
            sum(g.count for g in mine),
            f"{sum(g.amount for g in mine):.2f}",
            f"{sum(g.weighted for g in mine):.2f}",
        )


def test_pipeline_rounds_each_opportunity_to_the_fen_then_sums(service, act_as, pipeline_rows):
    by_owner = service.forecast_pipeline({})
    assert by_owner["group_by"] == "owner"
    [group] = by_owner["groups"]
    assert (group["key"], group["name"], group["count"]) == ("u-sales-01", "张伟", 3)
    assert (group["amount"], group["weighted"]) == ("10.06", "5.02")
    act_as(MANAGER)
    by_stage = service.forecast_pipeline({"group_by": "stage"})
    assert [(g["key"], g["name"], g["currency"], g["weighted"]) for g in by_stage["groups"]] == [
        ("initial_contact", "初步接触", "CNY", "0.01"),
        ("needs_confirmed", "需求确认", "CNY", "100.00"),
        ("proposal", "方案报价", "CNY", "5.01"),
        ("negotiation", "商务谈判", "CNY", "600.00"),
        ("negotiation", "商务谈判", "USD", "750.00"),
    ]
    by_month = service.forecast_pipeline({"group_by": "month", "from": "2026-04-01"})
    assert [(g["key"], g["currency"], g["count"]) for g in by_month["groups"]] == [
        ("2026-04", "CNY", 2),
        ("2026-04", "USD", 1),
        ("2026-05", "CNY", 1),
    ]
    assert by_month["totals"] == [
        {"currency": "CNY", "count": 3, "amount": "1343.34", "weighted": "705.01"},
        {"currency": "USD", "count": 1, "amount": "1000.00", "weighted": "750.00"},
    ]


def test_pipeline_filters(service, act_as, pipeline_rows):
    act_as(ADMIN)

    def owners(**query):
        counts: dict[str, int] = {}
        for group in service.forecast_pipeline(query)["groups"]:
            counts[group["key"]] = counts.get(group["key"], 0) + group["count"]
        return counts

    assert owners(owner_id="u-sales-02") == {"u-sales-02": 3}
    assert owners(department_id="d-south") == {"u-gz-01": 1}
    assert owners(department_id="d-south", include_sub_departments=False) == {}
    assert owners(to="2026-04-15") == {"u-sales-01": 1, "u-gz-01": 1}
    assert owners(process_code="standard") == owners()
    assert owners(process_code="none") == {}


def test_the_forecast_needs_its_permission(service, act_as):
    act_as(Principal("u-x", None, (), ("activity:read",), ({},)))
    for call in (
        service.forecast_pipeline,
        service.forecast_attainment,
        service.forecast_funnel,
        service.forecast_stage_durations,
        service.forecast_win_rates,
    ):
        with pytest.raises(Forbidden):
            call({"period": "2026-03"})


# -- attainment ------------------------------------------------------------------------------
def test_attainment_against_month_and_quarter_targets(service, act_as, db, process):
    def won(owner, amount, closed_at, currency="CNY"):
        return opportunity_row(
            process, owner, stage="won", expected_amount=amount, closed_at=closed_at,
            currency=currency,
        )  # fmt: skip

    add_opportunities(
        db,
        [
            won("u-sales-01", "50000", datetime(2026, 2, 28, 17, 0, tzinfo=UTC)),
            won("u-sales-01", "25000", datetime(2026, 2, 1, 8, 0, tzinfo=UTC)),
            won("u-sales-01", "9999", datetime(2026, 3, 31, 16, 0, tzinfo=UTC)),
            won("u-sales-01", "700", datetime(2026, 3, 5, tzinfo=UTC), currency="USD"),
            won("u-sales-02", "30000", datetime(2026, 3, 20, tzinfo=UTC)),
            won("u-gz-01", "40000", datetime(2026, 3, 20, tzinfo=UTC)),
        ],
    )
    act_as(ADMIN)
    for subject_type, subject_id, period, amount in (
        ("person", "p-sales-01", "2026-03", "100000"),
        ("person", "p-sales-01", "2026-01", "50000"),
        ("person", "p-sales-02", "2026-Q1", "60000"),
        ("department", "d-east", "2026-Q1", "200000"),
    ):
        service.create_target(
            {
                "subject_type": subject_type,
                "subject_id": subject_id,
                "period": period,
                "amount": amount,
            }
        )

    def items(principal, **query):
        act_as(principal)
        answer = service.forecast_attainment(query)
        fields = ("subject_id", "name", "target", "won", "percent")
        return [tuple(item[name] for name in fields) for item in answer["items"]]

    assert items(SALES, period="2026-03") == [
        ("p-sales-01", "张伟", "100000.00", "50000.00", "50.0")
    ]
    assert items(SALES, period="2026-Q1") == [
        ("p-sales-01", "张伟", "150000.00", "75000.00", "50.0")
    ]
    assert items(MANAGER, period="2026-Q1") == [
        ("p-sales-02", "刘洋", "60000.00", "30000.00", "50.0"),
        ("p-sales-01", "张伟", "150000.00", "75000.00", "50.0"),
    ]
    assert items(MANAGER, period="2026-Q1", subject_id="p-sales-02") == [
        ("p-sales-02", "刘洋", "60000.00", "30000.00", "50.0")
    ]
    assert items(ADMIN, period="2026-Q1", subject_type="department") == [
        ("d-east-sh", "上海办", None, "105000.00", None),
        ("d-east", "华东区", "200000.00", "105000.00", "52.5"),
        ("d-south-gz", "广州办", None, "40000.00", None),
    ]
    assert items(OTHER_OFFICE, period="2026-04") == []


def test_attainment_names_the_user_of_a_person_with_a_target_and_nothing_won(service, act_as):
    act_as(ADMIN)
    service.create_target(
        {"subject_type": "person", "subject_id": "p-sales-02", "period": "2026-05", "amount": "1"}
    )
    (item,) = service.forecast_attainment({"period": "2026-05"})["items"]
    assert (item["subject_id"], item["user_id"], item["won"]) == (
        "p-sales-02",
        "u-sales-02",
        "0.00",
    )


# -- funnel, days per stage, win rates -------------------------------------------------------
DAY = timedelta(days=1)


def add_histories(db, process: uuid.UUID) -> list[dict[str, Any]]:
    """Opportunities created in January 2026 (one in December 2025) with their stage
    histories: moves forward, back, a skipped stage, won, lost, abandoned."""

    def opp(owner, stage, created=T0, **fields):
        return opportunity_row(process, owner, stage=stage, created_at=created, **fields)

    o1 = opp("u-sales-01", "proposal")
    o2 = opp("u-sales-01", "lost", closed_at=T0 + 3 * DAY, loss_reason="price")
    o3 = opp("u-sales-01", "won", closed_at=T0 + 20 * DAY)
    o4 = opp("u-sales-01", "proposal")
    o5 = opp("u-sales-01", "needs_confirmed", created=T0 - 40 * DAY)
    o6 = opp("u-sales-02", "lost", closed_at=T0 + 5 * DAY, loss_reason="budget")
    o7 = opp("u-sales-01", "initial_contact", status="abandoned", closed_at=T0 + 6 * DAY)
    o8 = opp("u-gz-01", "won", closed_at=T0 + 7 * DAY)
    history = [
        visit(o1, "initial_contact", T0, T0 + 2 * DAY),
        visit(o1, "needs_confirmed", T0 + 2 * DAY, T0 + 5 * DAY),
        visit(o1, "proposal", T0 + 5 * DAY),
        visit(o2, "initial_contact", T0, T0 + 3 * DAY),
        visit(o2, "lost", T0 + 3 * DAY),
        visit(o3, "initial_contact", T0, T0 + 4 * DAY),
        visit(o3, "needs_confirmed", T0 + 4 * DAY, T0 + 5 * DAY),
        visit(o3, "initial_contact", T0 + 5 * DAY, T0 + 6 * DAY),
        visit(o3, "needs_confirmed", T0 + 6 * DAY, T0 + 7 * DAY),
        visit(o3, "proposal", T0 + 7 * DAY, T0 + 10 * DAY),
        visit(o3, "negotiation", T0 + 10 * DAY, T0 + 20 * DAY),
        visit(o3, "won", T0 + 20 * DAY),
        visit(o4, "initial_contact", T0, T0 + 1 * DAY),
        visit(o4, "proposal", T0 + 1 * DAY),
        visit(o5, "initial_contact", T0 - 40 * DAY, T0 - 30 * DAY),
        visit(o5, "needs_confirmed", T0 - 30 * DAY),
        visit(o8, "initial_contact", T0, T0 + 7 * DAY),
        visit(o8, "won", T0 + 7 * DAY),
    ]
    rows = [o1, o2, o3, o4, o5, o6, o7, o8]
    add_opportunities(db, rows, history)
    return rows


@pytest.fixture
def histories(db, process):
    return add_histories(db, process)


def test_funnel_of_the_opportunities_created_in_a_period(service, act_as, histories):
    answer = service.forecast_funnel({"from": "2026-01-01", "to": "2026-03-31"})
    assert answer["process_code"] == "standard"
    assert answer["opportunities"] == 5
    assert [(s["stage_code"], s["reached"], s["conversion"]) for s in answer["steps"]] == [
        ("initial_contact", 5, None),
        ("needs_confirmed", 3, "60.0"),
        ("proposal", 3, "100.0"),
        ("negotiation", 1, "33.3"),
        ("won", 1, "100.0"),
    ]
    everything = service.forecast_funnel({})
    assert everything["opportunities"] == 6
    assert everything["steps"][1]["reached"] == 4
    act_as(ADMIN)
    assert service.forecast_funnel({"owner_id": "u-gz-01"})["steps"][-1]["reached"] == 1
    assert service.forecast_funnel({"process_code": "none"}) == {
        "process_code": "none",
        "opportunities": 0,
        "steps": [],
    }


def test_average_days_per_stage(service, act_as, histories):
    answer = service.forecast_stage_durations({"from": "2026-01-01"})
    assert [(i["stage_code"], i["opportunities"], i["average_days"]) for i in answer["items"]] == [
        ("initial_contact", 4, "2.8"),
        ("needs_confirmed", 2, "2.5"),
        ("proposal", 1, "3.0"),
        ("negotiation", 1, "10.0"),
    ]
    assert answer["items"][0]["name"] == "初步接触"
    act_as(ADMIN)
    everyone = service.forecast_stage_durations({"from": "2026-01-01"})["items"]
    assert everyone[0] == {
        "stage_code": "initial_contact",
        "name": "初步接触",
        "opportunities": 5,
        "average_days": "3.6",
    }
    early = service.forecast_stage_durations({"to": "2026-01-12"})["items"]
    assert [(i["stage_code"], i["opportunities"]) for i in early] == [("initial_contact", 3)]


def test_win_rates_and_losses_by_reason(service, act_as, histories):
    act_as(MANAGER)
    answer = service.forecast_win_rates({"from": "2026-01-01", "to": "2026-01-31"})
    assert answer["items"] == [
        {"key": "u-sales-01", "name": "张伟", "won": 1, "lost": 1, "abandoned": 1,
         "win_rate": "50.0"},
        {"key": "u-sales-02", "name": "刘洋", "won": 0, "lost": 1, "abandoned": 0,
         "win_rate": "0.0"},
    ]  # fmt: skip
    assert answer["loss_reasons"] == [
        {"loss_reason": "budget", "name": "预算取消或不足", "lost": 1, "share": "50.0"},
        {"loss_reason": "price", "name": "价格没有优势", "lost": 1, "share": "50.0"},
    ]
    act_as(ADMIN)
    by_department = service.forecast_win_rates({"by": "department"})["items"]
    assert [(i["key"], i["won"], i["lost"], i["win_rate"]) for i in by_department] == [
        ("d-east-sh", 1, 2, "33.3"),
        ("d-south-gz", 1, 0, "100.0"),
    ]
    assert service.forecast_win_rates({"to": "2026-01-12"})["loss_reasons"] == []
