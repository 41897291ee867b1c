import datetime as dt
import random
from decimal import Decimal

import pytest

from crm_common.errors import ValidationFailed
from sales.domain.contracts import PaymentMilestone
from sales.domain.receivables import (
    AgingBucket,
    Allocation,
    Collection,
    Invoice,
    InvoiceBalance,
    MilestoneState,
    MonthlyCollection,
    Payment,
    WaitingAllocation,
    WaitingReason,
    aging,
    aging_bucket,
    check_payment,
    collection_progress,
    collections_by_month,
    days_past_due,
    latest_versions,
    overdue,
    receivables,
    supersedes,
)

D = Decimal
B = AgingBucket
UTC = dt.UTC


def at(day, hour=9):
    return dt.datetime(2026, 1, 1, hour, tzinfo=UTC) + dt.timedelta(days=day)


def invoice(no, customer, amount, due, *, issued=dt.date(2026, 1, 5), occurred=None, **more):
    return Invoice(
        invoice_no=no,
        customer_id=customer,
        amount=D(amount),
        issued_on=issued,
        due_date=due,
        occurred_at=occurred or at(4),
        **more,
    )


def payment(
    no, customer, amount, allocations, *, received=dt.date(2026, 2, 1), occurred=None, **more
):
    return Payment(
        payment_no=no,
        customer_id=customer,
        amount=D(amount),
        received_on=received,
        occurred_at=occurred or at(31),
        allocations=tuple(Allocation(inv, D(value)) for inv, value in allocations),
        **more,
    )


# -- payments and versions -----------------------------------------------------------------
def test_a_valid_payment_passes():
    check_payment(payment("P1", "c1", "100.00", [("I1", "60.00"), ("I2", "40.00")]))
    check_payment(payment("P2", "c1", "100.00", []))


@pytest.mark.parametrize(
    ("amount", "allocations", "field"),
    [
        ("0.00", [], "amount"),
        ("-5.00", [], "amount"),
        ("100.00", [("I1", "0.00")], "allocations.1.amount"),
        ("100.00", [("I1", "50.00"), ("I2", "-1.00")], "allocations.2.amount"),
        ("100.00", [("I1", "60.00"), ("I2", "40.01")], "allocations"),
    ],
)
def test_invalid_payments_name_the_field(amount, allocations, field):
    with pytest.raises(ValidationFailed) as caught:
        check_payment(payment("P1", "c1", amount, allocations))
    assert field in caught.value.field_errors


@pytest.mark.parametrize(
    ("incoming", "current", "replaces"),
    [(at(2), None, True), (at(2), at(1), True), (at(1), at(2), False), (at(1), at(1), False)],
)
def test_the_later_version_wins_and_a_tie_keeps_what_is_there(incoming, current, replaces):
    assert supersedes(incoming, current) is replaces


def test_latest_versions_keeps_one_per_number_whatever_the_order():
    first = invoice("I1", "c1", "100.00", dt.date(2026, 2, 4), occurred=at(4))
    corrected = invoice("I1", "c1", "90.00", dt.date(2026, 2, 4), occurred=at(6))
    other = invoice("I2", "c1", "5.00", dt.date(2026, 2, 4))
    for stream in ([first, corrected, other], [corrected, first, other, first]):
        assert latest_versions(stream, lambda i: i.invoice_no) == {"I1": corrected, "I2": other}


# -- balances ------------------------------------------------------------------------------
DUE = dt.date(2026, 2, 4)
STREAM_INVOICES = [
    invoice("I1", "c1", "1130.00", DUE, tax_amount=D("130.00"), erp_order_no="SO1"),
    invoice("I1", "c1", "1130.00", DUE, tax_amount=D("130.00"), erp_order_no="SO1"),
    invoice("I2", "c1", "500.00", DUE, occurred=at(4)),
    invoice("I2", "c1", "565.00", DUE, occurred=at(5)),
    invoice("I3", "c2", "200.00", DUE, currency="USD"),
]
STREAM_PAYMENTS = [
    payment("P1", "c1", "1000.00", [("I1", "1000.00")], occurred=at(31)),
    payment("P1", "c1", "1130.00", [("I1", "1130.00")], occurred=at(32)),
    payment("P2", "c1", "700.00", [("I2", "300.00"), ("I9", "250.00")]),
    payment("P3", "c2", "50.00", [("I3", "50.00")]),
]


def test_balances_from_a_stream_with_duplicates_versions_and_unknown_invoices():
    result = receivables(STREAM_INVOICES, STREAM_PAYMENTS)
    assert {no: (b.paid, b.outstanding) for no, b in result.balances.items()} == {
        "I1": (D("1130.00"), D("0.00")),
        "I2": (D("300.00"), D("265.00")),
        "I3": (D("0.00"), D("200.00")),
    }
    assert result.waiting == (
        WaitingAllocation("P2", "I9", D("250.00"), WaitingReason.UNKNOWN_INVOICE),
        WaitingAllocation("P3", "I3", D("50.00"), WaitingReason.CURRENCY_MISMATCH),
    )
    assert result.unallocated == {"P2": D("150.00")}
    assert result.outstanding_by_customer() == {"c1": D("265.00"), "c2": D("200.00")}


def test_the_same_stream_in_any_order_gives_the_same_balances():
    expected = receivables(STREAM_INVOICES, STREAM_PAYMENTS)
    shuffler = random.Random(11)
    for _ in range(25):
        invoices, payments = list(STREAM_INVOICES), list(STREAM_PAYMENTS)
        shuffler.shuffle(invoices)
        shuffler.shuffle(payments)
        assert receivables(invoices, payments) == expected


def test_a_waiting_allocation_applies_once_its_invoice_arrives():
    late = invoice("I9", "c1", "250.00", DUE)
    result = receivables([*STREAM_INVOICES, late], STREAM_PAYMENTS)
    assert result.balances["I9"].outstanding == D("0.00")
    assert [w.invoice_no for w in result.waiting] == ["I3"]


def test_over_allocation_leaves_a_negative_balance():
    result = receivables(
        [invoice("I1", "c1", "100.00", DUE)],
        [
            payment("P1", "c1", "80.00", [("I1", "80.00")]),
            payment("P2", "c1", "30.00", [("I1", "30.00")]),
        ],
    )
    assert result.balances["I1"].outstanding == D("-10.00")


def test_balances_as_of_a_day_count_only_what_was_issued_and_received_by_then():
    invoices = [
        invoice("I1", "c1", "100.00", DUE, issued=dt.date(2026, 1, 5)),
        invoice("I2", "c1", "50.00", DUE, issued=dt.date(2026, 2, 10)),
    ]
    payments = [
        payment("P1", "c1", "40.00", [("I1", "40.00")], received=dt.date(2026, 1, 20)),
        payment("P2", "c1", "60.00", [("I1", "60.00")], received=dt.date(2026, 2, 5)),
    ]
    on_feb_1 = receivables(invoices, payments, as_of=dt.date(2026, 2, 1))
    assert {no: b.outstanding for no, b in on_feb_1.balances.items()} == {"I1": D("60.00")}
    on_feb_28 = receivables(invoices, payments, as_of=dt.date(2026, 2, 28))
    assert {no: b.outstanding for no, b in on_feb_28.balances.items()} == {
        "I1": D("0.00"),
        "I2": D("50.00"),
    }


# -- aging ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("days_after_due", "bucket"),
    [
        (-10, B.NOT_DUE),
        (0, B.NOT_DUE),
        (1, B.DAYS_1_30),
        (30, B.DAYS_1_30),
        (31, B.DAYS_31_60),
        (60, B.DAYS_31_60),
        (61, B.DAYS_61_90),
        (90, B.DAYS_61_90),
        (91, B.OVER_90),
        (400, B.OVER_90),
    ],
)
def test_aging_buckets_at_their_boundaries(days_after_due, bucket):
    as_of = DUE + dt.timedelta(days=days_after_due)
    assert days_past_due(DUE, as_of) == days_after_due
    assert aging_bucket(DUE, as_of) is bucket


AS_OF = dt.date(2026, 6, 30)


def balance(no, customer, amount, paid, days_overdue):
    due = AS_OF - dt.timedelta(days=days_overdue)
    return InvoiceBalance(invoice(no, customer, amount, due), D(paid))


BALANCES = [
    balance("I1", "c1", "1000.00", "0", -5),
    balance("I2", "c1", "500.00", "200.00", 15),
    balance("I3", "c1", "300.00", "0", 45),
    balance("I4", "c2", "800.00", "0", 75),
    balance("I5", "c2", "900.00", "100.00", 120),
    balance("I6", "c2", "400.00", "400.00", 200),
    balance("I7", "c3", "100.00", "150.00", 10),
]


def test_aging_by_customer():
    rows = aging(BALANCES, AS_OF)
    assert [(row.key, dict(row.amounts), row.total, row.invoice_count) for row in rows] == [
        (
            "c1",
            {
                B.NOT_DUE: D("1000.00"),
                B.DAYS_1_30: D("300.00"),
                B.DAYS_31_60: D("300.00"),
                B.DAYS_61_90: D("0.00"),
                B.OVER_90: D("0.00"),
            },
            D("1600.00"),
            3,
        ),
        (
            "c2",
            {
                B.NOT_DUE: D("0.00"),
                B.DAYS_1_30: D("0.00"),
                B.DAYS_31_60: D("0.00"),
                B.DAYS_61_90: D("800.00"),
                B.OVER_90: D("800.00"),
            },
            D("1600.00"),
            2,
        ),
    ]


def test_aging_by_any_key_such_as_the_owner():
    owners = {"c1": "u-wang", "c2": "u-wang", "c3": "u-li"}
    rows = aging(BALANCES, AS_OF, key=lambda inv: owners[inv.customer_id])
    assert [(row.key, row.total, row.amounts[B.OVER_90]) for row in rows] == [
        ("u-wang", D("3200.00"), D("800.00"))
    ]


def test_aging_later_moves_amounts_to_older_buckets():
    later = aging(BALANCES, AS_OF + dt.timedelta(days=30))
    assert [row.amounts[B.NOT_DUE] for row in later] == [D("0.00"), D("0.00")]
    assert later[0].amounts[B.DAYS_1_30] == D("1000.00")


def test_overdue_list_longest_first():
    found = overdue(BALANCES, AS_OF)
    assert [(o.invoice_no, o.outstanding, o.days_overdue, o.bucket) for o in found] == [
        ("I5", D("800.00"), 120, B.OVER_90),
        ("I4", D("800.00"), 75, B.DAYS_61_90),
        ("I3", D("300.00"), 45, B.DAYS_31_60),
        ("I2", D("300.00"), 15, B.DAYS_1_30),
    ]
    assert [o.invoice_no for o in overdue(BALANCES, AS_OF, min_days=60)] == ["I5", "I4"]
    assert [o.invoice_no for o in overdue(BALANCES, AS_OF, min_days=0)][-1] == "I2"


# -- collections against milestones --------------------------------------------------------
PLAN = [
    PaymentMilestone("预付款", dt.date(2026, 3, 5), D("30000.00")),
    PaymentMilestone("到货款", dt.date(2026, 6, 30), D("60000.00")),
    PaymentMilestone("质保金", dt.date(2027, 6, 30), D("10000.00")),
]
COLLECTED = [
    Collection(dt.date(2026, 8, 1), D("25000.00")),
    Collection(dt.date(2026, 3, 4), D("30000.00")),
    Collection(dt.date(2026, 7, 10), D("20000.00")),
]


def progress_rows(progress):
    return [(m.milestone.name, m.collected, m.state, m.collected_on) for m in progress.milestones]


def test_collections_settle_milestones_in_due_order():
    progress = collection_progress(PLAN, COLLECTED, dt.date(2026, 8, 15))
    assert progress_rows(progress) == [
        ("预付款", D("30000.00"), MilestoneState.COLLECTED, dt.date(2026, 3, 4)),
        ("到货款", D("45000.00"), MilestoneState.OVERDUE, None),
        ("质保金", D("0.00"), MilestoneState.NOT_DUE, None),
    ]
    assert progress.milestones[1].outstanding == D("15000.00")
    assert (progress.planned_to_date, progress.collected, progress.behind, progress.excess) == (
        D("90000.00"),
        D("75000.00"),
        D("15000.00"),
        D("0.00"),
    )


@pytest.mark.parametrize(
    ("as_of", "second"),
    [
        (dt.date(2026, 6, 30), ("到货款", D("0.00"), MilestoneState.NOT_DUE, None)),
        (dt.date(2026, 7, 1), ("到货款", D("0.00"), MilestoneState.OVERDUE, None)),
    ],
)
def test_a_milestone_is_due_through_its_due_date(as_of, second):
    progress = collection_progress(PLAN, COLLECTED, as_of)
    assert progress_rows(progress)[1] == second
    assert progress.collected == D("30000.00")


def test_collecting_more_than_planned_shows_the_excess():
    extra = [*COLLECTED, Collection(dt.date(2026, 9, 1), D("40000.00"))]
    progress = collection_progress(PLAN, extra, dt.date(2026, 9, 1))
    assert [m.state for m in progress.milestones] == [MilestoneState.COLLECTED] * 3
    assert [m.collected_on for m in progress.milestones] == [
        dt.date(2026, 3, 4),
        dt.date(2026, 9, 1),
        dt.date(2026, 9, 1),
    ]
    assert (progress.excess, progress.behind) == (D("15000.00"), D("0.00"))


def test_ahead_of_plan_is_not_behind():
    early = [Collection(dt.date(2026, 3, 1), D("50000.00"))]
    progress = collection_progress(PLAN, early, dt.date(2026, 3, 10))
    assert (progress.planned_to_date, progress.behind) == (D("30000.00"), D("0.00"))
    assert progress.milestones[1].collected == D("20000.00")
    assert progress.milestones[1].state is MilestoneState.NOT_DUE


def test_planned_against_collected_month_by_month():
    assert collections_by_month(PLAN, COLLECTED) == [
        MonthlyCollection("2026-03", D("30000.00"), D("30000.00")),
        MonthlyCollection("2026-06", D("60000.00"), D("0.00")),
        MonthlyCollection("2026-07", D("0.00"), D("20000.00")),
        MonthlyCollection("2026-08", D("0.00"), D("25000.00")),
        MonthlyCollection("2027-06", D("10000.00"), D("0.00")),
    ]
