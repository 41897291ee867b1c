import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from sales.domain.forecast import (
    ClosedRow,
    FunnelStep,
    HistoryRow,
    LossShare,
    PipelineGroup,
    PipelineRow,
    StageDuration,
    WinRate,
    attainment,
    average_days_per_stage,
    funnel,
    losses_by_reason,
    percent,
    weighted_amount,
    weighted_pipeline,
    win_rates,
)

STAGES = ("initial_contact", "needs_confirmed", "proposal", "negotiation", "won")
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

PIPELINE = [
    PipelineRow("u1", "d-sh", "proposal", 50, Decimal("100000.00"), "CNY", date(2026, 3, 15)),
    PipelineRow("u1", "d-sh", "negotiation", 75, Decimal("20000.00"), "CNY", date(2026, 4, 1)),
    PipelineRow("u2", "d-sh", "initial_contact", 10, None, "CNY", None),
    PipelineRow("u2", "d-bj", "proposal", 50, Decimal("333.33"), "CNY", date(2026, 3, 31)),
    PipelineRow("u3", None, "negotiation", 60, Decimal("1000.00"), "USD", date(2026, 3, 1)),
]


@pytest.mark.parametrize(
    ("part", "whole", "expected"),
    [(1, 3, Decimal("33.3")), (2, 3, Decimal("66.7")), (1, 8, Decimal("12.5")), (0, 5, 0)],
)
def test_percent(part, whole, expected):
    assert percent(part, whole) == expected


def test_percent_of_nothing_is_none():
    assert percent(3, 0) is None


@pytest.mark.parametrize(
    ("amount", "probability", "weighted"),
    [
        (Decimal("100000.00"), 50, Decimal("50000.00")),
        (Decimal("333.33"), 50, Decimal("166.67")),
        (Decimal("0.01"), 50, Decimal("0.01")),
        (Decimal("0.01"), 49, Decimal("0.00")),
        (None, 90, Decimal("0.00")),
        (Decimal("999.99"), 0, Decimal("0.00")),
        (Decimal("999.99"), 100, Decimal("999.99")),
    ],
)
def test_weighted_amount(amount, probability, weighted):
    assert weighted_amount(amount, probability) == weighted


def test_pipeline_by_owner():
    assert weighted_pipeline(PIPELINE, "owner") == [
        PipelineGroup("u1", "CNY", 2, Decimal("120000.00"), Decimal("65000.00")),
        PipelineGroup("u2", "CNY", 2, Decimal("333.33"), Decimal("166.67")),
        PipelineGroup("u3", "USD", 1, Decimal("1000.00"), Decimal("600.00")),
    ]


def test_pipeline_by_department_puts_no_department_last():
    assert [(g.key, g.currency, g.count) for g in weighted_pipeline(PIPELINE, "department")] == [
        ("d-bj", "CNY", 1),
        ("d-sh", "CNY", 3),
        (None, "USD", 1),
    ]


def test_pipeline_by_close_month():
    groups = weighted_pipeline(PIPELINE, "month")
    assert [(g.key, g.currency, g.weighted) for g in groups] == [
        ("2026-03", "CNY", Decimal("50166.67")),
        ("2026-03", "USD", Decimal("600.00")),
        ("2026-04", "CNY", Decimal("15000.00")),
        (None, "CNY", Decimal("0.00")),
    ]


def test_pipeline_by_stage_follows_the_process_order():
    groups = weighted_pipeline(PIPELINE, "stage", stage_order=STAGES)
    assert [(g.key, g.currency) for g in groups] == [
        ("initial_contact", "CNY"),
        ("proposal", "CNY"),
        ("negotiation", "CNY"),
        ("negotiation", "USD"),
    ]


def test_pipeline_groupings_are_checked():
    with pytest.raises(ValueError):
        weighted_pipeline(PIPELINE, "colour")


def test_an_empty_pipeline():
    assert weighted_pipeline([], "owner") == []


def test_group_sums_equal_the_rows_they_come_from():
    rng = random.Random(7)
    rows = [
        PipelineRow(
            f"u{rng.randint(1, 5)}",
            rng.choice(["d1", "d2", None]),
            rng.choice(STAGES[:-1]),
            rng.randint(0, 100),
            Decimal(rng.randint(0, 10_000_000)) / 100,
            rng.choice(["CNY", "CNY", "USD"]),
            rng.choice([None, date(2026, rng.randint(1, 12), 1)]),
        )
        for _ in range(300)
    ]
    for by in ("owner", "department", "month", "stage"):
        groups = weighted_pipeline(rows, by, STAGES)
        for currency in ("CNY", "USD"):
            mine = [r for r in rows if r.currency == currency]
            in_currency = [g for g in groups if g.currency == currency]
            assert sum(g.count for g in in_currency) == len(mine)
            assert sum(g.amount for g in in_currency) == sum(r.amount for r in mine)
            assert sum(g.weighted for g in in_currency) == sum(
                weighted_amount(r.amount, r.probability) for r in mine
            )


# -- attainment ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("target", "won", "expected"),
    [
        (Decimal("100000"), Decimal("85000"), Decimal("85.0")),
        (Decimal("300000"), Decimal("100000"), Decimal("33.3")),
        (Decimal("100000"), Decimal("125000.50"), Decimal("125.0")),
        (Decimal("100000"), Decimal("0"), Decimal("0.0")),
        (Decimal("0"), Decimal("5000"), None),
        (None, Decimal("5000"), None),
    ],
)
def test_attainment(target, won, expected):
    found = attainment("u1", "2026-Q1", target, won)
    assert (found.subject_id, found.period, found.target, found.won) == (
        "u1",
        "2026-Q1",
        target,
        won,
    )
    assert found.percent == expected


# -- funnel --------------------------------------------------------------------------------
def test_funnel_counts_and_conversions():
    entered = [
        ("o1", "initial_contact"),
        ("o1", "needs_confirmed"),
        ("o1", "proposal"),
        ("o1", "negotiation"),
        ("o1", "won"),
        ("o2", "initial_contact"),
        ("o2", "needs_confirmed"),
        ("o2", "lost"),
        ("o3", "initial_contact"),
        ("o4", "initial_contact"),
        ("o4", "needs_confirmed"),
        ("o4", "proposal"),
    ]
    assert funnel(STAGES, entered) == [
        FunnelStep("initial_contact", 4, None),
        FunnelStep("needs_confirmed", 3, Decimal("75.0")),
        FunnelStep("proposal", 2, Decimal("66.7")),
        FunnelStep("negotiation", 1, Decimal("50.0")),
        FunnelStep("won", 1, Decimal("100.0")),
    ]


def test_a_skipped_or_revisited_stage_counts_once_as_passed():
    entered = [
        ("o1", "initial_contact"),
        ("o1", "proposal"),
        ("o1", "needs_confirmed"),
        ("o1", "proposal"),
        ("o2", "negotiation"),
    ]
    assert [step.reached for step in funnel(STAGES, entered)] == [2, 2, 2, 1, 0]


def test_an_empty_funnel():
    assert funnel(STAGES, []) == [
        FunnelStep("initial_contact", 0, None),
        *(FunnelStep(code, 0, None) for code in STAGES[1:]),
    ]


# -- days per stage ------------------------------------------------------------------------
def test_average_days_per_stage():
    rows = [
        HistoryRow("o1", "initial_contact", T0, T0 + timedelta(days=2)),
        HistoryRow("o1", "needs_confirmed", T0 + timedelta(days=2), T0 + timedelta(days=12)),
        HistoryRow("o1", "initial_contact", T0 + timedelta(days=12), T0 + timedelta(days=13)),
        HistoryRow("o1", "needs_confirmed", T0 + timedelta(days=13)),
        HistoryRow("o2", "initial_contact", T0, T0 + timedelta(days=6)),
        HistoryRow("o2", "proposal", T0 + timedelta(days=6), T0 + timedelta(days=6, hours=12)),
        HistoryRow("o2", "lost", T0 + timedelta(days=6, hours=12)),
    ]
    assert average_days_per_stage(rows, STAGES) == [
        StageDuration("initial_contact", 2, Decimal("4.5")),
        StageDuration("needs_confirmed", 1, Decimal("10.0")),
        StageDuration("proposal", 1, Decimal("0.5")),
    ]


def test_no_finished_stays_no_averages():
    assert average_days_per_stage([HistoryRow("o1", "proposal", T0)]) == []


# -- win rates -----------------------------------------------------------------------------
CLOSED = [
    ClosedRow("u1", "won", department_id="d-sh"),
    ClosedRow("u1", "won", department_id="d-sh"),
    ClosedRow("u1", "lost", "price", "d-sh"),
    ClosedRow("u1", "abandoned", department_id="d-sh"),
    ClosedRow("u2", "lost", "price", "d-bj"),
    ClosedRow("u2", "lost", "no_budget", "d-bj"),
    ClosedRow("u2", "lost", None, "d-bj"),
    ClosedRow("u3", "abandoned"),
]


def test_win_rate_by_owner_leaves_abandoned_deals_out():
    assert win_rates(CLOSED) == [
        WinRate("u1", 2, 1, 1, Decimal("66.7")),
        WinRate("u2", 0, 3, 0, Decimal("0.0")),
        WinRate("u3", 0, 0, 1, None),
    ]


def test_win_rate_by_department():
    assert win_rates(CLOSED, by="department") == [
        WinRate("d-bj", 0, 3, 0, Decimal("0.0")),
        WinRate("d-sh", 2, 1, 1, Decimal("66.7")),
        WinRate(None, 0, 0, 1, None),
    ]
    with pytest.raises(ValueError):
        win_rates(CLOSED, by="stage")


def test_losses_by_reason_most_first():
    assert losses_by_reason(CLOSED) == [
        LossShare("price", 2, Decimal("50.0")),
        LossShare("no_budget", 1, Decimal("25.0")),
        LossShare(None, 1, Decimal("25.0")),
    ]
    assert losses_by_reason([]) == []
