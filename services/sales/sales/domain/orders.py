"""Sales orders (销售订单): the statuses people move them through and what the ERP's events do.

People draft an order and confirm it (through ``pending_approval`` when the credit check or the
discount needs approval); confirmation sends it to the ERP. From then on the ERP's events are
facts the order follows: ``order_created`` (``erp_created``), ``order_rejected``,
``order_shipped`` (``partially_shipped`` / ``shipped``) and ``order_cancelled``. Cancelling an
order the ERP has is a request (``cancel_requested``) the ERP answers.

ERP events may come late, twice or out of order. Of two status changes the one that occurred
later in the ERP wins; a shipment counts once by its number; a shipment or cancellation that
names an ERP order number the order does not have yet waits until ``order_created`` brings it
(see ``reconcile``). Shipped quantities are facts too: they accumulate even past the ordered
quantity, and every such excess is flagged.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from crm_common.errors import Conflict, ValidationFailed
from sales.domain.opportunities import StageChange, Status, check_open, effective_probability
from sales.domain.processes import Process


class OrderStatus(StrEnum):
    DRAFT = "draft"
    PENDING_APPROVAL = "pending_approval"
    CONFIRMED = "confirmed"
    ERP_CREATED = "erp_created"
    REJECTED = "rejected"
    PARTIALLY_SHIPPED = "partially_shipped"
    SHIPPED = "shipped"
    CANCEL_REQUESTED = "cancel_requested"
    CANCELLED = "cancelled"


LABELS = {
    OrderStatus.DRAFT: "草稿",
    OrderStatus.PENDING_APPROVAL: "待审批",
    OrderStatus.CONFIRMED: "已确认",
    OrderStatus.ERP_CREATED: "ERP已接单",
    OrderStatus.REJECTED: "ERP已拒绝",
    OrderStatus.PARTIALLY_SHIPPED: "部分发货",
    OrderStatus.SHIPPED: "已发货",
    OrderStatus.CANCEL_REQUESTED: "申请取消",
    OrderStatus.CANCELLED: "已取消",
}

NOT_SENT = frozenset({OrderStatus.DRAFT, OrderStatus.PENDING_APPROVAL})
"""Statuses of an order the ERP has never been sent."""

USER_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.DRAFT: frozenset(
        {OrderStatus.PENDING_APPROVAL, OrderStatus.CONFIRMED, OrderStatus.CANCELLED}
    ),
    OrderStatus.PENDING_APPROVAL: frozenset(
        {OrderStatus.CONFIRMED, OrderStatus.DRAFT, OrderStatus.CANCELLED}
    ),
    OrderStatus.CONFIRMED: frozenset({OrderStatus.CANCEL_REQUESTED}),
    OrderStatus.ERP_CREATED: frozenset({OrderStatus.CANCEL_REQUESTED}),
    OrderStatus.PARTIALLY_SHIPPED: frozenset({OrderStatus.CANCEL_REQUESTED}),
    OrderStatus.REJECTED: frozenset({OrderStatus.DRAFT}),
    OrderStatus.SHIPPED: frozenset(),
    OrderStatus.CANCEL_REQUESTED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}
"""Moves people make: ``pending_approval → draft`` is an approver sending it back,
``rejected → draft`` reworks an order the ERP refused."""


def check_order_transition(current: OrderStatus, new: OrderStatus) -> None:
    if new not in USER_TRANSITIONS[current]:
        allowed = ", ".join(sorted(s.value for s in USER_TRANSITIONS[current])) or "none"
        raise ValidationFailed(
            f"order status cannot change from {current.value} to {new.value}",
            {
                "errors": {
                    "status": [
                        f"cannot change from {current.value} ({LABELS[current]}) to "
                        f"{new.value} ({LABELS[new]}); allowed: {allowed}"
                    ]
                }
            },
        )


def status_on_confirm(approval_needed: bool) -> OrderStatus:
    return OrderStatus.PENDING_APPROVAL if approval_needed else OrderStatus.CONFIRMED


def status_on_cancel(current: OrderStatus) -> OrderStatus:
    """An order never sent to the ERP is cancelled at once; otherwise the ERP is asked."""
    target = OrderStatus.CANCELLED if current in NOT_SENT else OrderStatus.CANCEL_REQUESTED
    check_order_transition(current, target)
    return target


# -- lines and shipments -------------------------------------------------------------------
@dataclass(frozen=True)
class OrderLine:
    line_no: int
    item_code: str
    quantity: Decimal
    shipped: Decimal = Decimal(0)

    @property
    def remaining(self) -> Decimal:
        """Still to ship; zero once shipped in full or beyond."""
        return max(self.quantity - self.shipped, Decimal(0))


@dataclass(frozen=True)
class ShipmentLine:
    line_no: int
    item_code: str
    quantity: Decimal
    serial_numbers: tuple[str, ...] = ()


class ShipmentIssueKind(StrEnum):
    OVER_SHIPPED = "over_shipped"
    UNKNOWN_LINE = "unknown_line"
    ITEM_MISMATCH = "item_mismatch"


@dataclass(frozen=True)
class ShipmentIssue:
    """A shipment line that does not fit the order, kept for someone to look at.

    Over-shipped quantities count toward the line; lines that match no order line (by number
    and item) do not count anywhere."""

    shipment_no: str
    line_no: int
    item_code: str
    kind: ShipmentIssueKind
    quantity: Decimal


# -- ERP events ----------------------------------------------------------------------------
@dataclass(frozen=True)
class OrderCreated:
    erp_order_no: str
    occurred_at: dt.datetime
    lines: tuple[OrderLine, ...] = ()
    """The ERP's lines; they become the order's only for an order entered in the ERP."""


@dataclass(frozen=True)
class OrderRejected:
    reason: str
    occurred_at: dt.datetime


@dataclass(frozen=True)
class OrderShipped:
    shipment_no: str
    shipped_at: dt.datetime
    lines: tuple[ShipmentLine, ...]
    occurred_at: dt.datetime


@dataclass(frozen=True)
class OrderCancelled:
    reason: str
    occurred_at: dt.datetime


ErpOrderEvent = OrderCreated | OrderRejected | OrderShipped | OrderCancelled


@dataclass(frozen=True)
class OrderState:
    status: OrderStatus
    lines: tuple[OrderLine, ...]
    erp_order_no: str | None = None
    shipment_nos: frozenset[str] = frozenset()
    issues: tuple[ShipmentIssue, ...] = ()
    erp_status_at: dt.datetime | None = None
    """When the ERP event that last set the status occurred."""
    erp_reason: str | None = None
    """The ERP's reason for rejecting or cancelling the order."""

    @property
    def fully_shipped(self) -> bool:
        return bool(self.lines) and all(line.shipped >= line.quantity for line in self.lines)


def order_from_erp(event: OrderCreated) -> OrderState:
    """An order entered in the ERP, as the CRM keeps it."""
    return OrderState(
        status=OrderStatus.ERP_CREATED,
        lines=event.lines,
        erp_order_no=event.erp_order_no,
        erp_status_at=event.occurred_at,
    )


def waits_for_erp_order(order: OrderState, event: ErpOrderEvent) -> bool:
    """A shipment or cancellation names the ERP's order number: it waits for an order that
    does not have one yet."""
    return isinstance(event, OrderShipped | OrderCancelled) and order.erp_order_no is None


def apply_erp_event(order: OrderState, event: ErpOrderEvent) -> OrderState:
    """``order`` after ``event``. ``Conflict`` when the event contradicts the order (the ERP
    acting on an order it was never sent, rejecting one it has shipped), and when the event
    must wait (``waits_for_erp_order``)."""
    if order.status in NOT_SENT:
        raise Conflict(
            f"the ERP reported on an order that is still {order.status.value}",
            {"reason": "order_not_sent", "status": order.status.value},
        )
    if waits_for_erp_order(order, event):
        raise Conflict(
            "the ERP has not reported creating this order yet",
            {"reason": "erp_order_unknown"},
        )
    if isinstance(event, OrderShipped):
        return _ship(order, event)
    stale = order.erp_status_at is not None and event.occurred_at <= order.erp_status_at
    if isinstance(event, OrderCreated):
        return _created(order, event, stale)
    if stale:
        return order
    if isinstance(event, OrderRejected):
        return _rejected(order, event)
    return dataclasses.replace(
        order,
        status=OrderStatus.CANCELLED,
        erp_status_at=event.occurred_at,
        erp_reason=event.reason,
    )


def _created(order: OrderState, event: OrderCreated, stale: bool) -> OrderState:
    if order.erp_order_no not in (None, event.erp_order_no):
        raise Conflict(
            f"the order is already ERP order {order.erp_order_no}, not {event.erp_order_no}",
            {"reason": "erp_order_no_mismatch", "erp_order_no": order.erp_order_no},
        )
    numbered = dataclasses.replace(order, erp_order_no=event.erp_order_no)
    if stale or order.status not in (OrderStatus.CONFIRMED, OrderStatus.REJECTED):
        return numbered
    return dataclasses.replace(
        numbered, status=OrderStatus.ERP_CREATED, erp_status_at=event.occurred_at, erp_reason=None
    )


def _rejected(order: OrderState, event: OrderRejected) -> OrderState:
    if order.status in (OrderStatus.PARTIALLY_SHIPPED, OrderStatus.SHIPPED):
        raise Conflict(
            "the ERP rejected an order it has shipped from",
            {"reason": "rejected_after_shipment", "status": order.status.value},
        )
    if order.status is OrderStatus.CANCELLED:
        return order
    return dataclasses.replace(
        order, status=OrderStatus.REJECTED, erp_status_at=event.occurred_at, erp_reason=event.reason
    )


def _ship(order: OrderState, event: OrderShipped) -> OrderState:
    if event.shipment_no in order.shipment_nos:
        return order
    by_number = {line.line_no: line for line in order.lines}
    added: dict[int, Decimal] = {}
    issues: list[ShipmentIssue] = []
    for shipped in event.lines:
        line = by_number.get(shipped.line_no)
        if line is None or line.item_code != shipped.item_code:
            kind = (
                ShipmentIssueKind.UNKNOWN_LINE if line is None else ShipmentIssueKind.ITEM_MISMATCH
            )
            issues.append(
                ShipmentIssue(
                    event.shipment_no, shipped.line_no, shipped.item_code, kind, shipped.quantity
                )
            )
            continue
        added[line.line_no] = added.get(line.line_no, Decimal(0)) + shipped.quantity
    lines = tuple(
        dataclasses.replace(line, shipped=line.shipped + added[line.line_no])
        if line.line_no in added
        else line
        for line in order.lines
    )
    for line in lines:
        before = by_number[line.line_no]
        if line.line_no in added and line.shipped > line.quantity:
            issues.append(
                ShipmentIssue(
                    event.shipment_no,
                    line.line_no,
                    line.item_code,
                    ShipmentIssueKind.OVER_SHIPPED,
                    line.shipped - max(before.shipped, line.quantity),
                )
            )
    shipped_order = dataclasses.replace(
        order,
        lines=lines,
        shipment_nos=order.shipment_nos | {event.shipment_no},
        issues=order.issues + tuple(issues),
    )
    return dataclasses.replace(shipped_order, status=_status_after_shipment(shipped_order))


def _status_after_shipment(order: OrderState) -> OrderStatus:
    if order.status in (OrderStatus.CANCELLED, OrderStatus.REJECTED):
        return order.status
    if order.fully_shipped:
        return OrderStatus.SHIPPED
    if order.status is OrderStatus.CANCEL_REQUESTED:
        return order.status
    if any(line.shipped > 0 for line in order.lines):
        return OrderStatus.PARTIALLY_SHIPPED
    return order.status


@dataclass(frozen=True)
class Reconciled:
    order: OrderState
    waiting: tuple[ErpOrderEvent, ...]
    """Events that still cannot apply, in the order they occurred."""


def reconcile(order: OrderState, events: Iterable[ErpOrderEvent]) -> Reconciled:
    """Apply the ERP events kept for ``order`` in the order they occurred in the ERP, again and
    again while any of them becomes applicable (a shipment that occurred before the order's
    ``order_created`` applies after it)."""
    pending = sorted(events, key=lambda event: event.occurred_at)
    progressed = True
    while progressed:
        progressed = False
        still: list[ErpOrderEvent] = []
        for event in pending:
            if waits_for_erp_order(order, event):
                still.append(event)
            else:
                order = apply_erp_event(order, event)
                progressed = True
        pending = still
    return Reconciled(order=order, waiting=tuple(pending))


# -- the opportunity an order wins ---------------------------------------------------------
def won_by_order(process: Process, opportunity_status: str, order_code: str) -> StageChange:
    """The first confirmed order of an open opportunity wins it, into the process's won stage
    from whatever stage it is in: the order is the fact the stages were leading up to, so
    neither skipped stages nor their required fields hold it back."""
    check_open(opportunity_status)
    stage = process.won_stage
    return StageChange(
        stage_code=stage.code,
        status=Status.WON.value,
        probability=effective_probability(stage, None, Status.WON),
        probability_override=None,
        reason=f"订单 {order_code} 已确认",
    )
