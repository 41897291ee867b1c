from datetime import date
from decimal import Decimal

import pytest

from crm_common.errors import Conflict, Forbidden, ValidationFailed
from sales.domain.expenses import (
    DEFAULT_CATEGORIES,
    DEFAULT_SECOND_LEVEL_AMOUNT,
    ApprovalStep,
    ExpenseRow,
    ExpenseTotal,
    apply_decision,
    approval_chain,
    check_category,
    check_payment,
    check_spent_on,
    check_transition,
    expense_totals,
    format_expense_code,
    levels_needed,
    parse_expense_code,
    pending_step,
)
from sales.domain.money import Money

# 上海销售部 (manager m-sh) under 华东大区 (m-east) under 销售中心 (m-sales) under 总部 (m-ceo)
CHAIN = [("d-sh", "m-sh"), ("d-east", "m-east"), ("d-sales", "m-sales"), ("d-hq", "m-ceo")]


def cny(amount: str) -> Money:
    return Money(Decimal(amount))


def approvers(steps):
    return [(s.level, s.department_id, s.approver_person_id) for s in steps]


def test_codes_and_categories():
    assert format_expense_code(2026, 1) == "EXP-2026-000001"
    assert parse_expense_code("EXP-2026-000001") == (2026, 1)
    assert DEFAULT_CATEGORIES == ("travel", "entertainment", "gift", "sample", "other")
    assert check_category("gift", DEFAULT_CATEGORIES) == "gift"
    with pytest.raises(ValidationFailed) as caught:
        check_category("golf", DEFAULT_CATEGORIES)
    assert list(caught.value.field_errors) == ["expense_category"]


def test_spent_on_is_not_in_the_future():
    check_spent_on(date(2026, 3, 10), date(2026, 3, 10))
    with pytest.raises(ValidationFailed):
        check_spent_on(date(2026, 3, 11), date(2026, 3, 10))


# -- approval chain ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("amount", "levels"),
    [("0.01", 1), ("4999.99", 1), ("5000.00", 1), ("5000.01", 2), ("80000", 2)],
)
def test_the_second_level_starts_above_the_threshold(amount, levels):
    assert levels_needed(cny(amount), DEFAULT_SECOND_LEVEL_AMOUNT) == levels


def test_another_currency_than_the_thresholds_takes_two_levels():
    assert levels_needed(Money(Decimal(10), "USD"), DEFAULT_SECOND_LEVEL_AMOUNT) == 2


@pytest.mark.parametrize(
    ("submitter", "chain", "amount", "expected"),
    [
        ("s1", CHAIN, "800", [(1, "d-sh", "m-sh")]),
        ("s1", CHAIN, "5000.01", [(1, "d-sh", "m-sh"), (2, "d-east", "m-east")]),
        ("m-sh", CHAIN, "800", [(1, "d-east", "m-east")]),
        ("m-sh", CHAIN, "9000", [(1, "d-east", "m-east"), (2, "d-sales", "m-sales")]),
        ("s1", [("d-sh", None), *CHAIN[1:]], "800", [(1, "d-east", "m-east")]),
        (
            "s1",
            [("d-sh", None), ("d-east", None), *CHAIN[2:]],
            "9000",
            [(1, "d-sales", "m-sales"), (2, "d-hq", "m-ceo")],
        ),
        (
            "s1",
            [("d-sh", "m-east"), *CHAIN[1:]],
            "9000",
            [(1, "d-sh", "m-east"), (2, "d-sales", "m-sales")],
        ),
        ("m-east", [("d-east", "m-east"), ("d-hq", "m-ceo")], "800", [(1, "d-hq", "m-ceo")]),
    ],
    ids=[
        "one level",
        "two levels above the threshold",
        "submitter is the manager",
        "submitter is the manager, two levels",
        "no manager at the first level",
        "no manager at two levels",
        "same manager twice approves once",
        "head of a region",
    ],
)
def test_approval_chains(submitter, chain, amount, expected):
    assert approvers(approval_chain(submitter, chain, cny(amount))) == expected


def test_the_threshold_is_configurable():
    steps = approval_chain("s1", CHAIN, cny("2000"), threshold=cny("1000"))
    assert len(steps) == 2


@pytest.mark.parametrize(
    ("submitter", "chain", "amount", "found", "needed"),
    [
        ("m-ceo", [("d-hq", "m-ceo")], "100", 0, 1),
        ("s1", [("d-sh", None), ("d-hq", None)], "100", 0, 1),
        ("s1", [], "100", 0, 1),
        ("s1", [("d-sh", "m-sh")], "6000", 1, 2),
        ("m-ceo", [("d-sh", "m-sh"), ("d-hq", "m-ceo")], "6000", 1, 2),
    ],
    ids=["the top manager", "no managers", "no department", "no second level", "self above"],
)
def test_nobody_above_is_refused_clearly(submitter, chain, amount, found, needed):
    with pytest.raises(Conflict) as caught:
        approval_chain(submitter, chain, cny(amount))
    error = caught.value
    assert error.message.startswith("nobody can approve this expense: ")
    assert error.details == {
        "reason": "no_approver",
        "levels_needed": needed,
        "approvers_found": found,
    }


def test_refusals_explain_what_is_missing():
    with pytest.raises(Conflict) as caught:
        approval_chain("s1", [("d-sh", "m-sh")], cny("6000"))
    assert "above 5000.00 CNY a second approver is needed" in caught.value.message


# -- decisions -----------------------------------------------------------------------------
ONE = [ApprovalStep(1, "d-sh", "m-sh")]
TWO = [ApprovalStep(1, "d-sh", "m-sh"), ApprovalStep(2, "d-east", "m-east")]


def test_one_level_approval_approves():
    result = apply_decision("submitted", ONE, "m-sh", "approved", None)
    assert result.status == "approved"
    assert result.step == ApprovalStep(1, "d-sh", "m-sh", "approved")
    assert result.next_step is None


def test_two_levels_approve_in_order():
    first = apply_decision("submitted", TWO, "m-sh", "approved")
    assert (first.status, first.next_step) == ("submitted", TWO[1])
    steps = [first.step, TWO[1]]
    assert pending_step(steps) == TWO[1]
    second = apply_decision(first.status, steps, "m-east", "approved")
    assert (second.status, second.next_step) == ("approved", None)
    assert pending_step([first.step, second.step]) is None


def test_the_second_level_waits_for_the_first():
    with pytest.raises(Forbidden) as caught:
        apply_decision("submitted", TWO, "m-east", "approved")
    assert "level 1 has not decided yet" in caught.value.message


@pytest.mark.parametrize("person", ["s1", "m-ceo", ""])
def test_only_the_approver_waited_for_decides(person):
    with pytest.raises(Forbidden) as caught:
        apply_decision("submitted", TWO, person, "approved")
    assert caught.value.details == {"reason": "not_the_approver", "level": 1}


def test_a_rejection_needs_a_comment_and_ends_the_approval():
    with pytest.raises(ValidationFailed) as caught:
        apply_decision("submitted", TWO, "m-sh", "rejected", "  ")
    assert list(caught.value.field_errors) == ["comment"]
    result = apply_decision("submitted", TWO, "m-sh", "rejected", "发票不全")
    assert (result.status, result.next_step) == ("rejected", None)
    approved_first = [ApprovalStep(1, "d-sh", "m-sh", "approved"), TWO[1]]
    second = apply_decision("submitted", approved_first, "m-east", "rejected", "超标")
    assert second.status == "rejected"


@pytest.mark.parametrize("status", ["approved", "rejected", "paid"])
def test_a_decided_expense_takes_no_more_decisions(status):
    with pytest.raises(Conflict):
        apply_decision(status, ONE, "m-sh", "approved")


def test_decisions_are_approved_or_rejected():
    with pytest.raises(ValidationFailed) as caught:
        apply_decision("submitted", ONE, "m-sh", "maybe")
    assert list(caught.value.field_errors) == ["decision"]


def test_every_level_decided_is_a_conflict():
    with pytest.raises(Conflict):
        apply_decision("submitted", [ApprovalStep(1, "d", "m", "approved")], "m", "approved")


# -- status --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("current", "new", "allowed"),
    [
        ("submitted", "approved", True),
        ("submitted", "rejected", True),
        ("approved", "paid", True),
        ("submitted", "paid", False),
        ("rejected", "paid", False),
        ("rejected", "approved", False),
        ("paid", "approved", False),
        ("approved", "rejected", False),
        ("paid", "paid", False),
    ],
)
def test_state_machine(current, new, allowed):
    if allowed:
        check_transition(current, new)
    else:
        with pytest.raises(Conflict):
            check_transition(current, new)


@pytest.mark.parametrize("status", ["submitted", "rejected", "paid"])
def test_paid_only_after_approved(status):
    with pytest.raises(Conflict) as caught:
        check_payment(status)
    assert caught.value.details == {"reason": "expense_not_approved", "status": status}
    check_payment("approved")


# -- totals --------------------------------------------------------------------------------
ROWS = [
    ExpenseRow("u1", "d-sh", date(2026, 3, 2), Decimal("100.10"), opportunity_id="o1"),
    ExpenseRow("u1", "d-sh", date(2026, 3, 20), Decimal("50.00"), status="paid"),
    ExpenseRow("u1", "d-sh", date(2026, 4, 1), Decimal("10.00"), opportunity_id="o1"),
    ExpenseRow("u2", "d-sh", date(2026, 3, 5), Decimal("999.00"), status="submitted"),
    ExpenseRow("u2", "d-sh", date(2026, 3, 6), Decimal("20.00"), status="rejected"),
    ExpenseRow("u2", None, date(2026, 3, 7), Decimal("7.00"), currency="USD"),
]


def test_cost_totals_per_person_and_month():
    assert expense_totals(ROWS, ("submitter_id", "month")) == [
        ExpenseTotal(("u1", "2026-03"), "CNY", Decimal("150.10"), 2),
        ExpenseTotal(("u1", "2026-04"), "CNY", Decimal("10.00"), 1),
        ExpenseTotal(("u2", "2026-03"), "USD", Decimal("7.00"), 1),
    ]


def test_cost_of_sale_per_opportunity_and_department():
    assert expense_totals(ROWS, ("opportunity_id",))[0] == ExpenseTotal(
        ("o1",), "CNY", Decimal("110.10"), 2
    )
    by_department = expense_totals(ROWS, ("department_id",))
    assert [(t.key, t.currency, t.amount) for t in by_department] == [
        (("d-sh",), "CNY", Decimal("160.10")),
        ((None,), "USD", Decimal("7.00")),
    ]


def test_totals_over_chosen_statuses():
    submitted = expense_totals(ROWS, ("submitter_id",), statuses=("submitted",))
    assert submitted == [ExpenseTotal(("u2",), "CNY", Decimal("999.00"), 1)]
    with pytest.raises(ValueError):
        expense_totals(ROWS, ("colour",))
