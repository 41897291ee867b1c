import datetime as dt
import itertools
from decimal import Decimal

import pytest

from crm_common.errors import Conflict, ValidationFailed
from sales.domain.orders import (
    OrderCancelled,
    OrderCreated,
    OrderLine,
    OrderRejected,
    OrderShipped,
    OrderState,
    OrderStatus,
    ShipmentIssue,
    ShipmentIssueKind,
    ShipmentLine,
    apply_erp_event,
    check_order_transition,
    order_from_erp,
    reconcile,
    status_on_cancel,
    status_on_confirm,
    waits_for_erp_order,
)

D = Decimal
S = OrderStatus


def at(hour):
    return dt.datetime(2026, 3, 10, hour, tzinfo=dt.UTC)


LINES = (
    OrderLine(1, "6204-2RS", D(100)),
    OrderLine(2, "MOTOR-Y2", D(2)),
)
CONFIRMED = OrderState(S.CONFIRMED, LINES)
CREATED = OrderCreated("SO-ERP-1", at(9))
ACCEPTED = apply_erp_event(CONFIRMED, CREATED)


def shipment(no, hour, *lines):
    return OrderShipped(
        no,
        at(hour),
        tuple(ShipmentLine(line_no, item, D(qty)) for line_no, item, qty in lines),
        at(hour),
    )


def shipped(order):
    return [line.shipped for line in order.lines]


# -- moves people make ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("old", "new"),
    [
        (S.DRAFT, S.PENDING_APPROVAL),
        (S.DRAFT, S.CONFIRMED),
        (S.DRAFT, S.CANCELLED),
        (S.PENDING_APPROVAL, S.CONFIRMED),
        (S.PENDING_APPROVAL, S.DRAFT),
        (S.PENDING_APPROVAL, S.CANCELLED),
        (S.CONFIRMED, S.CANCEL_REQUESTED),
        (S.ERP_CREATED, S.CANCEL_REQUESTED),
        (S.PARTIALLY_SHIPPED, S.CANCEL_REQUESTED),
        (S.REJECTED, S.DRAFT),
    ],
)
def test_moves_people_make(old, new):
    check_order_transition(old, new)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (S.DRAFT, S.ERP_CREATED),
        (S.DRAFT, S.SHIPPED),
        (S.CONFIRMED, S.CANCELLED),
        (S.CONFIRMED, S.ERP_CREATED),
        (S.ERP_CREATED, S.CANCELLED),
        (S.SHIPPED, S.CANCEL_REQUESTED),
        (S.CANCELLED, S.DRAFT),
        (S.CANCEL_REQUESTED, S.CONFIRMED),
    ],
)
def test_moves_only_the_erp_makes_are_refused(old, new):
    with pytest.raises(ValidationFailed) as caught:
        check_order_transition(old, new)
    assert "allowed:" in caught.value.field_errors["status"][0]


def test_confirming_goes_through_approval_when_needed():
    assert status_on_confirm(approval_needed=True) is S.PENDING_APPROVAL
    assert status_on_confirm(approval_needed=False) is S.CONFIRMED


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.DRAFT, S.CANCELLED),
        (S.PENDING_APPROVAL, S.CANCELLED),
        (S.CONFIRMED, S.CANCEL_REQUESTED),
        (S.ERP_CREATED, S.CANCEL_REQUESTED),
        (S.PARTIALLY_SHIPPED, S.CANCEL_REQUESTED),
    ],
)
def test_cancelling_asks_the_erp_once_it_has_the_order(current, target):
    assert status_on_cancel(current) is target


@pytest.mark.parametrize("current", [S.SHIPPED, S.CANCELLED, S.CANCEL_REQUESTED, S.REJECTED])
def test_nothing_left_to_cancel(current):
    with pytest.raises(ValidationFailed):
        status_on_cancel(current)


# -- ERP events ----------------------------------------------------------------------------
def test_the_erp_accepts_a_confirmed_order():
    accepted = apply_erp_event(CONFIRMED, CREATED)
    assert accepted == OrderState(
        S.ERP_CREATED, LINES, erp_order_no="SO-ERP-1", erp_status_at=at(9)
    )


def test_the_erp_rejects_a_confirmed_order():
    rejected = apply_erp_event(CONFIRMED, OrderRejected("客户信用冻结", at(9)))
    assert (rejected.status, rejected.erp_reason) == (S.REJECTED, "客户信用冻结")


def test_shipments_accumulate_to_shipped():
    partly = apply_erp_event(ACCEPTED, shipment("SH1", 10, (1, "6204-2RS", 40)))
    assert (partly.status, shipped(partly)) == (S.PARTIALLY_SHIPPED, [D(40), D(0)])
    assert partly.lines[0].remaining == D(60)
    fully = apply_erp_event(partly, shipment("SH2", 11, (1, "6204-2RS", 60), (2, "MOTOR-Y2", 2)))
    assert (fully.status, shipped(fully), fully.issues) == (S.SHIPPED, [D(100), D(2)], ())
    assert fully.shipment_nos == {"SH1", "SH2"}


def test_a_shipment_counts_once():
    once = apply_erp_event(ACCEPTED, shipment("SH1", 10, (1, "6204-2RS", 40)))
    assert apply_erp_event(once, shipment("SH1", 10, (1, "6204-2RS", 40))) == once


def test_shipping_beyond_the_ordered_quantity_counts_and_is_flagged():
    full = apply_erp_event(ACCEPTED, shipment("SH1", 10, (1, "6204-2RS", 95), (2, "MOTOR-Y2", 2)))
    over = apply_erp_event(full, shipment("SH2", 11, (1, "6204-2RS", 10)))
    assert (over.status, shipped(over)) == (S.SHIPPED, [D(105), D(2)])
    assert over.lines[0].remaining == D(0)
    assert over.issues == (
        ShipmentIssue("SH2", 1, "6204-2RS", ShipmentIssueKind.OVER_SHIPPED, D(5)),
    )
    again = apply_erp_event(over, shipment("SH3", 12, (1, "6204-2RS", 3)))
    assert again.issues[-1].quantity == D(3)


def test_shipment_lines_that_match_no_order_line_are_flagged_and_not_counted():
    odd = apply_erp_event(
        ACCEPTED,
        shipment("SH1", 10, (1, "6204-2RS", 10), (3, "VALVE-DN50", 1), (2, "6205-ZZ", 1)),
    )
    assert (odd.status, shipped(odd)) == (S.PARTIALLY_SHIPPED, [D(10), D(0)])
    assert [(i.line_no, i.kind) for i in odd.issues] == [
        (3, ShipmentIssueKind.UNKNOWN_LINE),
        (2, ShipmentIssueKind.ITEM_MISMATCH),
    ]


def test_a_cancel_request_is_answered_by_the_erp():
    requested = OrderState(S.CANCEL_REQUESTED, LINES, "SO-ERP-1", erp_status_at=at(9))
    cancelled = apply_erp_event(requested, OrderCancelled("客户取消", at(12)))
    assert (cancelled.status, cancelled.erp_reason) == (S.CANCELLED, "客户取消")


def test_shipments_while_a_cancellation_is_requested():
    requested = OrderState(S.CANCEL_REQUESTED, LINES, "SO-ERP-1", erp_status_at=at(9))
    partly = apply_erp_event(requested, shipment("SH1", 10, (1, "6204-2RS", 10)))
    assert partly.status is S.CANCEL_REQUESTED
    fully = apply_erp_event(partly, shipment("SH2", 11, (1, "6204-2RS", 90), (2, "MOTOR-Y2", 2)))
    assert fully.status is S.SHIPPED


def test_a_shipment_reported_after_the_cancellation_still_counts():
    cancelled = apply_erp_event(ACCEPTED, OrderCancelled("缺货", at(12)))
    late = apply_erp_event(cancelled, shipment("SH1", 10, (1, "6204-2RS", 30)))
    assert (late.status, shipped(late)) == (S.CANCELLED, [D(30), D(0)])


def test_the_later_erp_status_wins():
    rejected_late = apply_erp_event(CONFIRMED, OrderRejected("停产", at(11)))
    created_early = apply_erp_event(rejected_late, CREATED)
    assert (created_early.status, created_early.erp_order_no) == (S.REJECTED, "SO-ERP-1")

    rejected_early = apply_erp_event(CONFIRMED, OrderRejected("价格不符", at(8)))
    created_late = apply_erp_event(rejected_early, CREATED)
    assert (created_late.status, created_late.erp_reason) == (S.ERP_CREATED, None)

    stale_cancel = apply_erp_event(ACCEPTED, OrderCancelled("旧消息", at(8)))
    assert stale_cancel == ACCEPTED


def test_a_repeated_order_created_changes_nothing_once_shipping():
    partly = apply_erp_event(ACCEPTED, shipment("SH1", 10, (1, "6204-2RS", 40)))
    assert apply_erp_event(partly, OrderCreated("SO-ERP-1", at(13))) == partly


@pytest.mark.parametrize(
    ("order", "event", "reason"),
    [
        (OrderState(S.DRAFT, LINES), CREATED, "order_not_sent"),
        (OrderState(S.PENDING_APPROVAL, LINES), OrderRejected("x", at(9)), "order_not_sent"),
        (CONFIRMED, shipment("SH1", 10, (1, "6204-2RS", 1)), "erp_order_unknown"),
        (CONFIRMED, OrderCancelled("x", at(10)), "erp_order_unknown"),
        (ACCEPTED, OrderCreated("SO-ERP-2", at(10)), "erp_order_no_mismatch"),
        (
            apply_erp_event(ACCEPTED, shipment("SH1", 10, (1, "6204-2RS", 1))),
            OrderRejected("x", at(11)),
            "rejected_after_shipment",
        ),
    ],
)
def test_contradictions_are_conflicts(order, event, reason):
    with pytest.raises(Conflict) as caught:
        apply_erp_event(order, event)
    assert caught.value.details["reason"] == reason


def test_a_rejection_after_cancellation_changes_nothing():
    cancelled = apply_erp_event(ACCEPTED, OrderCancelled("客户取消", at(10)))
    assert apply_erp_event(cancelled, OrderRejected("x", at(11))) == cancelled


def test_an_order_entered_in_the_erp():
    event = OrderCreated("SO-ERP-9", at(9), lines=(OrderLine(1, "TOOL-KIT", D(5)),))
    order = order_from_erp(event)
    assert (order.status, order.erp_order_no, order.lines) == (
        S.ERP_CREATED,
        "SO-ERP-9",
        event.lines,
    )
    assert apply_erp_event(order, shipment("SH1", 10, (1, "TOOL-KIT", 5))).status is S.SHIPPED


# -- reconciliation ------------------------------------------------------------------------
def test_shipments_before_the_order_wait_for_it():
    early = [shipment("SH1", 10, (1, "6204-2RS", 40)), OrderCancelled("x", at(12))]
    assert all(waits_for_erp_order(CONFIRMED, event) for event in early)
    result = reconcile(CONFIRMED, early)
    assert result.order == CONFIRMED
    assert result.waiting == tuple(early)


def test_reconcile_applies_what_waited_once_the_order_arrives_in_any_order():
    events = [
        shipment("SH1", 10, (1, "6204-2RS", 40)),
        shipment("SH1", 10, (1, "6204-2RS", 40)),
        shipment("SH2", 7, (1, "6204-2RS", 60), (2, "MOTOR-Y2", 1)),
        OrderCreated("SO-ERP-1", at(9)),
    ]
    outcomes = {reconcile(CONFIRMED, list(order)) for order in itertools.permutations(events)}
    assert len(outcomes) == 1
    (result,) = outcomes
    assert result.waiting == ()
    assert (result.order.status, shipped(result.order)) == (S.PARTIALLY_SHIPPED, [D(100), D(1)])
    assert result.order.shipment_nos == {"SH1", "SH2"}


def test_reconcile_with_a_rejection_and_an_order_uses_the_later():
    result = reconcile(CONFIRMED, [OrderRejected("停产", at(11)), OrderCreated("SO-ERP-1", at(9))])
    assert (result.order.status, result.order.erp_reason) == (S.REJECTED, "停产")
