import datetime as dt
from decimal import Decimal

import pytest

from crm_common.errors import ValidationFailed
from sales.domain.contracts import (
    ContractStatus,
    PaymentMilestone,
    becomes_active,
    check_contract,
    check_contract_transition,
    expiry_window,
    has_lapsed,
    is_expiring,
    milestones_from_percentages,
)

D = Decimal
S = ContractStatus
START, END = dt.date(2026, 3, 1), dt.date(2027, 2, 28)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (S.DRAFT, S.SIGNED),
        (S.SIGNED, S.ACTIVE),
        (S.SIGNED, S.TERMINATED),
        (S.ACTIVE, S.COMPLETED),
        (S.ACTIVE, S.TERMINATED),
        (S.SIGNED, S.EXPIRED),
        (S.ACTIVE, S.EXPIRED),
        (S.EXPIRED, S.COMPLETED),
    ],
)
def test_allowed_moves(old, new):
    check_contract_transition(old, new)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (S.DRAFT, S.ACTIVE),
        (S.DRAFT, S.COMPLETED),
        (S.SIGNED, S.DRAFT),
        (S.SIGNED, S.COMPLETED),
        (S.ACTIVE, S.SIGNED),
        (S.COMPLETED, S.ACTIVE),
        (S.TERMINATED, S.ACTIVE),
        (S.DRAFT, S.DRAFT),
        (S.DRAFT, S.EXPIRED),
        (S.EXPIRED, S.ACTIVE),
    ],
)
def test_refused_moves_say_what_is_allowed(old, new):
    with pytest.raises(ValidationFailed) as caught:
        check_contract_transition(old, new)
    assert "allowed:" in caught.value.field_errors["status"][0]


@pytest.mark.parametrize(
    ("status", "today", "active"),
    [
        (S.SIGNED, START - dt.timedelta(days=1), False),
        (S.SIGNED, START, True),
        (S.SIGNED, END, True),
        (S.DRAFT, START, False),
        (S.ACTIVE, START, False),
        (S.TERMINATED, START, False),
    ],
)
def test_a_signed_contract_becomes_active_on_its_start_date(status, today, active):
    assert becomes_active(status, START, today) is active


PLAN = [
    PaymentMilestone("预付款", dt.date(2026, 3, 5), D("30000.00")),
    PaymentMilestone("到货款", dt.date(2026, 6, 30), D("60000.00")),
    PaymentMilestone("质保金", dt.date(2027, 6, 30), D("10000.00")),
]


def test_a_valid_contract_passes_and_milestones_may_fall_after_the_end():
    check_contract(D("100000.00"), START, END, PLAN)
    check_contract(D("5.00"), START, START, [PaymentMilestone("全款", START, D("5.00"))])


@pytest.mark.parametrize(
    ("case", "amount", "end", "milestones", "field", "reason"),
    [
        ("zero amount", D(0), END, PLAN, "amount", "positive"),
        ("finer than a fen", D("100000.001"), END, PLAN, "amount", "fen"),
        (
            "ends before it starts",
            D("100000.00"),
            START - dt.timedelta(days=1),
            PLAN,
            "end_date",
            "2026-03-01",
        ),
        ("no plan", D("100000.00"), END, [], "milestones", "at least one"),
        (
            "plan short of the amount",
            D("100000.01"),
            END,
            PLAN,
            "milestones",
            "add up to 100000.00, not the contract amount 100000.01",
        ),
        ("plan over the amount", D("99999.99"), END, PLAN, "milestones", "add up to 100000.00"),
        (
            "a repeated name",
            D("100000.00"),
            END,
            [*PLAN[:2], PaymentMilestone(" 预付款 ", START, D("10000.00"))],
            "milestones.3.name",
            "more than once",
        ),
        (
            "a blank name",
            D("1.00"),
            END,
            [PaymentMilestone("  ", START, D("1.00"))],
            "milestones.1.name",
            "required",
        ),
        (
            "a zero milestone",
            D("100000.00"),
            END,
            [*PLAN, PaymentMilestone("尾款", END, D(0))],
            "milestones.4.amount",
            "positive",
        ),
        (
            "a negative milestone",
            D("100000.00"),
            END,
            [*PLAN, PaymentMilestone("冲减", END, D("-1.00"))],
            "milestones.4.amount",
            "positive",
        ),
        (
            "a milestone finer than a fen",
            D("1.00"),
            END,
            [PaymentMilestone("全款", START, D("1.001"))],
            "milestones.1.amount",
            "fen",
        ),
    ],
)
def test_invalid_contracts_name_the_field(case, amount, end, milestones, field, reason):
    with pytest.raises(ValidationFailed) as caught:
        check_contract(amount, START, end, milestones)
    assert any(reason in text for text in caught.value.field_errors[field]), case


def test_every_problem_is_reported_at_once():
    with pytest.raises(ValidationFailed) as caught:
        check_contract(D("10.00"), END, START, [PaymentMilestone("", START, D(0))])
    assert set(caught.value.field_errors) == {
        "end_date",
        "milestones.1.name",
        "milestones.1.amount",
        "milestones",
    }


def test_milestones_from_percentages():
    plan = milestones_from_percentages(
        D("100000.00"),
        [
            ("预付款", dt.date(2026, 3, 5), D(30)),
            ("到货款", dt.date(2026, 6, 30), D(60)),
            ("质保金", dt.date(2027, 6, 30), D(10)),
        ],
    )
    assert plan == tuple(PLAN)


def test_percentages_that_do_not_divide_evenly_leave_the_remainder_on_the_last_milestone():
    plan = milestones_from_percentages(
        D("1000.01"),
        [("一", START, D("33.33")), ("二", START, D("33.33")), ("三", END, D("33.34"))],
    )
    assert [m.amount for m in plan] == [D("333.30"), D("333.30"), D("333.41")]
    check_contract(D("1000.01"), START, END, plan)


@pytest.mark.parametrize(
    ("amount", "percents", "field"),
    [
        (D("100.00"), [D(50), D(40)], "milestones"),
        (D("100.00"), [D(100), D(0)], "milestones"),
        (D("100.00"), [], "milestones"),
        (D("100.001"), [D(100)], "amount"),
        (D(0), [D(100)], "amount"),
    ],
)
def test_percentages_are_checked(amount, percents, field):
    with pytest.raises(ValidationFailed) as caught:
        milestones_from_percentages(amount, [(f"m{i}", START, p) for i, p in enumerate(percents)])
    assert field in caught.value.field_errors


TODAY = dt.date(2026, 3, 10)


@pytest.mark.parametrize(
    ("status", "end", "days", "expiring"),
    [
        (S.ACTIVE, TODAY, 30, True),
        (S.ACTIVE, TODAY, 0, True),
        (S.ACTIVE, TODAY + dt.timedelta(days=30), 30, True),
        (S.ACTIVE, TODAY + dt.timedelta(days=31), 30, False),
        (S.ACTIVE, TODAY - dt.timedelta(days=1), 30, False),
        (S.SIGNED, TODAY + dt.timedelta(days=5), 30, True),
        (S.DRAFT, TODAY + dt.timedelta(days=5), 30, False),
        (S.COMPLETED, TODAY + dt.timedelta(days=5), 30, False),
        (S.TERMINATED, TODAY + dt.timedelta(days=5), 30, False),
    ],
)
def test_expiring_within_n_days(status, end, days, expiring):
    assert is_expiring(status, end, TODAY, days) is expiring


def test_the_expiry_window_is_inclusive_and_not_backwards():
    assert expiry_window(TODAY, 30) == (TODAY, dt.date(2026, 4, 9))
    with pytest.raises(ValidationFailed):
        expiry_window(TODAY, -1)


@pytest.mark.parametrize(
    ("status", "today", "lapsed"),
    [
        (S.ACTIVE, END, False),
        (S.ACTIVE, END + dt.timedelta(days=1), True),
        (S.SIGNED, END + dt.timedelta(days=1), True),
        (S.DRAFT, END + dt.timedelta(days=1), False),
        (S.COMPLETED, END + dt.timedelta(days=1), False),
    ],
)
def test_a_contract_in_force_lapses_the_day_after_its_end(status, today, lapsed):
    assert has_lapsed(status, END, today) is lapsed
