"""Queries on sales orders (销售订单), their lines and shipments, and the ERP order events that
wait for an order.

Every query answering people with orders takes the caller's ``visible`` condition
(``visible_orders(principal)``): an order outside it is answered exactly like a missing one.
What the ERP's events look up (by ERP order number, by CRM order id) is not scoped: the ERP
speaks for no user.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, delete, func, inspect, or_, select, text
from sqlalchemy.orm import Session

from crm_common.context import Principal
from crm_common.deferred import add_row
from crm_common.errors import NotFound
from crm_common.ids import lookup_id
from crm_common.pagination import Page, SortKey, keyset_page
from crm_common.scope import ScopeColumns, scope_filter
from sales.models import CodeCounter, Customer, Person
from sales.models.orders import (
    ErpOrderEventWaiting,
    SalesOrder,
    SalesOrderLine,
    SalesOrderShipment,
    SalesOrderShipmentLine,
)

ORDER_SCOPE = ScopeColumns(
    owner=SalesOrder.owner_id,
    department=SalesOrder.department_id,
    region=SalesOrder.region,
    category=SalesOrder.category,
)
SORT_COLUMNS = {"created_at": SalesOrder.created_at, "order_date": SalesOrder.order_date}
OPEN_ORDER_STATUSES = ("pending_approval", "confirmed", "erp_created")
"""Orders the customer is committed to and the ERP has not shipped from yet: what the credit
check counts besides receivables (shipped goods are invoiced, and invoices are receivables)."""
SENT_STATUSES = (
    "confirmed",
    "erp_created",
    "partially_shipped",
    "shipped",
    "cancel_requested",
)
"""Statuses of an order that was confirmed and sent to the ERP, and not undone since."""


def visible_orders(principal: Principal) -> ColumnElement[bool]:
    return scope_filter(principal, ORDER_SCOPE)


def get_order(session: Session, order_id: Any, visible: ColumnElement[bool]) -> SalesOrder:
    """The visible order, or ``NotFound`` alike for one missing, hidden or malformed."""
    key = lookup_id(order_id)
    found = session.scalar(select(SalesOrder).where(SalesOrder.id == key, visible)) if key else None
    if found is None:
        raise NotFound.of("order", order_id)
    return found


def find_order(session: Session, order_id: uuid.UUID, *, lock: bool = False) -> SalesOrder | None:
    """The order, unscoped; with ``lock`` its row is locked until the transaction ends
    (PostgreSQL), so two ERP events of one order apply one after the other."""
    stmt = select(SalesOrder).where(SalesOrder.id == order_id)
    return session.scalar(stmt.with_for_update() if lock else stmt)


def order_of_erp_no(
    session: Session, erp_order_no: str, *, lock: bool = False
) -> SalesOrder | None:
    stmt = select(SalesOrder).where(SalesOrder.erp_order_no == erp_order_no)
    return session.scalar(stmt.with_for_update() if lock else stmt)


def live_order_of_quote(session: Session, quote_id: uuid.UUID) -> SalesOrder | None:
    """An order made from the quote and not cancelled (nor refused by the ERP)."""
    stmt = select(SalesOrder).where(
        SalesOrder.quote_id == quote_id, SalesOrder.status.not_in(("cancelled", "rejected"))
    )
    return session.scalar(stmt.limit(1))


def lock_erp_order_no(session: Session, erp_order_no: str) -> None:
    """Serialize the transactions about one ERP order number (PostgreSQL: a transaction-level
    advisory lock), so an event kept waiting for its order and the ``order_created`` that
    brings the order never miss each other. SQLite serializes writers anyway."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            select(func.pg_advisory_xact_lock(func.hashtext(f"erp_order:{erp_order_no}")))
        )


def lock_erp_order_nos(session: Session, erp_order_nos: Iterable[str]) -> None:
    """``lock_erp_order_no`` of several numbers in one round trip, in one order (two batches
    locking some of the same numbers never wait on each other in a circle)."""
    wanted = sorted(set(erp_order_nos))
    if wanted and session.get_bind().dialect.name == "postgresql":
        session.execute(LOCK_ERP_ORDER_NOS, {"numbers": wanted})


LOCK_ERP_ORDER_NOS = text(
    "SELECT pg_advisory_xact_lock(hashtext('erp_order:' || number))"
    " FROM unnest(CAST(:numbers AS text[])) AS number ORDER BY number"
)
"""PostgreSQL evaluates the (volatile) lock function after sorting: the locks are taken in
the numbers' order."""


def orders_for_erp(
    session: Session, erp_order_nos: Iterable[str], order_ids: Iterable[uuid.UUID]
) -> list[SalesOrder]:
    """The orders of these ERP numbers or ids, their rows locked until the transaction ends
    (PostgreSQL), in id order."""
    numbers, ids = sorted(set(erp_order_nos)), sorted(set(order_ids))
    if not numbers and not ids:
        return []
    conditions = []
    if numbers:
        conditions.append(SalesOrder.erp_order_no.in_(numbers))
    if ids:
        conditions.append(SalesOrder.id.in_(ids))
    stmt = select(SalesOrder).where(or_(*conditions)).order_by(SalesOrder.id).with_for_update()
    return list(session.scalars(stmt))


def customers_by_id(session: Session, customer_ids: Iterable[uuid.UUID]) -> dict[Any, Customer]:
    """Sales' copies of these customers."""
    wanted = sorted(set(customer_ids))
    if not wanted:
        return {}
    return {c.id: c for c in session.scalars(select(Customer).where(Customer.id.in_(wanted)))}


def code_counter(session: Session, prefix: str, year: int) -> CodeCounter:
    """The counter row of ``prefix`` and ``year`` as the database holds it (the caller
    allocated from it in this transaction, so it exists and its row is locked)."""
    stmt = select(CodeCounter).where(CodeCounter.prefix == prefix, CodeCounter.year == year)
    return session.scalars(stmt.execution_options(populate_existing=True)).one()


def persons_of_codes(session: Session, codes: Iterable[str]) -> dict[str, Person]:
    """``person_of_code`` of several codes."""
    wanted = sorted(set(codes))
    found: dict[str, Person] = {}
    if wanted:
        for person in session.scalars(select(Person).where(Person.code.in_(wanted))):
            found.setdefault(person.code, person)
    return found


def person_of_code(session: Session, code: str) -> Person | None:
    """The person org knows by ``code`` (the ERP names salespeople by code)."""
    return session.scalar(select(Person).where(Person.code == code).limit(1))


def lines_of(session: Session, order_id: uuid.UUID) -> list[SalesOrderLine]:
    stmt = select(SalesOrderLine).where(SalesOrderLine.order_id == order_id)
    return list(session.scalars(stmt.order_by(SalesOrderLine.line_no)))


def lines_of_orders(
    session: Session, order_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[SalesOrderLine]]:
    """``lines_of`` each of the orders."""
    found: dict[uuid.UUID, list[SalesOrderLine]] = {order_id: [] for order_id in order_ids}
    if found:
        stmt = (
            select(SalesOrderLine)
            .where(SalesOrderLine.order_id.in_(sorted(found)))
            .order_by(SalesOrderLine.order_id, SalesOrderLine.line_no)
        )
        for line in session.scalars(stmt):
            found[line.order_id].append(line)
    return found


def replace_lines(
    session: Session, order_id: uuid.UUID, rows: Iterable[dict[str, Any]], *, fresh: bool = False
) -> list[SalesOrderLine]:
    """The order's lines replaced by ``rows`` (``fresh``: an order just added has none; its
    lines are written with the next flush)."""
    lines = [SalesOrderLine(order_id=order_id, **row) for row in rows]
    if fresh:
        session.add_all(lines)
        return lines
    session.execute(delete(SalesOrderLine).where(SalesOrderLine.order_id == order_id))
    session.add_all(lines)
    session.flush()
    return lines


# -- lists -----------------------------------------------------------------------------------
def filter_conditions(query: dict[str, Any]) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if query.get("status"):
        conditions.append(SalesOrder.status.in_(query["status"]))
    for name in (
        "customer_id",
        "opportunity_id",
        "quote_id",
        "owner_id",
        "department_id",
        "origin",
    ):
        if query.get(name) is not None:
            conditions.append(getattr(SalesOrder, name) == query[name])
    if query.get("created_from") is not None:
        conditions.append(SalesOrder.created_at >= query["created_from"])
    if query.get("created_to") is not None:
        conditions.append(SalesOrder.created_at < query["created_to"])
    if query.get("ordered_from") is not None:
        conditions.append(SalesOrder.order_date >= query["ordered_from"])
    if query.get("ordered_to") is not None:
        conditions.append(SalesOrder.order_date <= query["ordered_to"])
    if query.get("q"):
        text = query["q"]
        conditions.append(
            or_(
                SalesOrder.code.icontains(text, autoescape=True),
                SalesOrder.erp_order_no.icontains(text, autoescape=True),
            )
        )
    return conditions


def orders_page(session: Session, query: dict[str, Any], visible: ColumnElement[bool]) -> Page:
    """One page of the visible orders matching a validated ``OrderQuerySchema`` (the
    ``created_to`` day already turned into the instant after it)."""
    sort: str = query["sort"]
    key = SortKey(SORT_COLUMNS[sort.lstrip("-")], SalesOrder.id, descending=sort.startswith("-"))
    stmt = select(SalesOrder).where(visible, *filter_conditions(query))
    return keyset_page(session, stmt, key, query.get("cursor"), query.get("limit"))


# -- credit and opportunities ----------------------------------------------------------------
def open_orders_amount(
    session: Session, customer_id: uuid.UUID, currency: str, but: uuid.UUID
) -> Decimal:
    """The gross of the customer's open orders in ``currency`` other than ``but``."""
    stmt = select(func.coalesce(func.sum(SalesOrder.gross), 0)).where(
        SalesOrder.customer_id == customer_id,
        SalesOrder.currency == currency,
        SalesOrder.status.in_(OPEN_ORDER_STATUSES),
        SalesOrder.id != but,
    )
    return Decimal(str(session.scalar(stmt) or 0))


def other_sent_orders_of_opportunity(
    session: Session, opportunity_id: uuid.UUID, but: uuid.UUID
) -> int:
    stmt = select(func.count()).where(
        SalesOrder.opportunity_id == opportunity_id,
        SalesOrder.status.in_(SENT_STATUSES),
        SalesOrder.id != but,
    )
    return int(session.scalar(stmt) or 0)


# -- shipments -------------------------------------------------------------------------------
def shipment_nos(session: Session, order_id: uuid.UUID) -> frozenset[str]:
    stmt = select(SalesOrderShipment.shipment_no).where(SalesOrderShipment.order_id == order_id)
    return frozenset(session.scalars(stmt))


def known_shipments(session: Session, shipment_nos: Iterable[str]) -> set[str]:
    """Which of these shipment numbers are recorded."""
    wanted = sorted(set(shipment_nos))
    if not wanted:
        return set()
    stmt = select(SalesOrderShipment.shipment_no).where(SalesOrderShipment.shipment_no.in_(wanted))
    return set(session.scalars(stmt))


def shipment_known(session: Session, shipment_no: str) -> bool:
    stmt = select(SalesOrderShipment.id).where(SalesOrderShipment.shipment_no == shipment_no)
    return session.scalar(stmt) is not None


def add_shipment(
    session: Session,
    *,
    order_id: uuid.UUID,
    shipment_no: str,
    shipped_at: datetime,
    occurred_at: datetime,
    event_id: str | None,
    recorded_at: datetime,
    lines: Sequence[dict[str, Any]],
) -> None:
    """The shipment and its lines, written with the next flush (or with a batch's deferred
    rows: ``crm_common.deferred``)."""
    shipment_id = uuid.uuid4()
    add_row(
        session,
        SalesOrderShipment,
        {
            "id": shipment_id,
            "order_id": order_id,
            "shipment_no": shipment_no,
            "shipped_at": shipped_at,
            "occurred_at": occurred_at,
            "event_id": event_id,
            "recorded_at": recorded_at,
        },
    )
    for position, line in enumerate(lines, start=1):
        add_row(
            session,
            SalesOrderShipmentLine,
            {"shipment_id": shipment_id, "position": position, **line},
        )


def shipments_of(
    session: Session, order_id: uuid.UUID
) -> list[tuple[SalesOrderShipment, list[SalesOrderShipmentLine]]]:
    shipments = list(
        session.scalars(
            select(SalesOrderShipment)
            .where(SalesOrderShipment.order_id == order_id)
            .order_by(SalesOrderShipment.shipped_at, SalesOrderShipment.shipment_no)
        )
    )
    lines: dict[uuid.UUID, list[SalesOrderShipmentLine]] = {s.id: [] for s in shipments}
    if shipments:
        stmt = (
            select(SalesOrderShipmentLine)
            .where(SalesOrderShipmentLine.shipment_id.in_(list(lines)))
            .order_by(SalesOrderShipmentLine.shipment_id, SalesOrderShipmentLine.position)
        )
        for line in session.scalars(stmt):
            lines[line.shipment_id].append(line)
    return [(shipment, lines[shipment.id]) for shipment in shipments]


# -- ERP events waiting for their order ------------------------------------------------------
def waiting_event_known(session: Session, event_id: str, event_type: str, document: str) -> bool:
    """An event kept already: the same event id, or the same shipment (or cancellation) of
    the same ERP order."""
    stmt = select(ErpOrderEventWaiting.id).where(
        or_(
            ErpOrderEventWaiting.event_id == event_id,
            (ErpOrderEventWaiting.event_type == event_type)
            & (ErpOrderEventWaiting.document_no == document),
        )
    )
    return session.scalar(stmt.limit(1)) is not None


def waiting_events(
    session: Session,
    erp_order_nos: Iterable[str],
    event_ids: Iterable[str],
    document_nos: Iterable[str],
) -> list[ErpOrderEventWaiting]:
    """The waiting events of these ERP order numbers, or with these event ids or document
    numbers (what ``waiting_for`` and ``waiting_event_known`` of a batch ask), in the order
    they occurred."""
    numbers, ids, documents = (
        sorted(set(erp_order_nos)),
        sorted(set(event_ids)),
        sorted(set(document_nos)),
    )
    conditions = []
    if numbers:
        conditions.append(ErpOrderEventWaiting.erp_order_no.in_(numbers))
    if ids:
        conditions.append(ErpOrderEventWaiting.event_id.in_(ids))
    if documents:
        conditions.append(ErpOrderEventWaiting.document_no.in_(documents))
    if not conditions:
        return []
    stmt = select(ErpOrderEventWaiting).where(or_(*conditions))
    return list(session.scalars(stmt.order_by(ErpOrderEventWaiting.occurred_at)))


def keep_waiting(
    session: Session,
    *,
    event_id: str,
    event_type: str,
    erp_order_no: str,
    document_no: str,
    occurred_at: datetime,
    data: dict[str, Any],
    received_at: datetime,
) -> ErpOrderEventWaiting:
    """The event kept waiting, written with the next flush."""
    row = ErpOrderEventWaiting(
        id=uuid.uuid4(),
        event_id=event_id,
        event_type=event_type,
        erp_order_no=erp_order_no,
        document_no=document_no,
        occurred_at=occurred_at,
        data=data,
        received_at=received_at,
    )
    session.add(row)
    return row


def waiting_for(session: Session, erp_order_no: str) -> list[ErpOrderEventWaiting]:
    stmt = select(ErpOrderEventWaiting).where(ErpOrderEventWaiting.erp_order_no == erp_order_no)
    return list(session.scalars(stmt.order_by(ErpOrderEventWaiting.occurred_at)))


def drop_waiting(session: Session, applied: Iterable[ErpOrderEventWaiting]) -> None:
    """The applied waiting events deleted with the next flush (no flush now: a batch's
    reconciled orders flush together)."""
    for row in applied:
        if inspect(row).pending:  # kept in this transaction: never written
            session.expunge(row)
        else:
            session.delete(row)


def waiting_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(ErpOrderEventWaiting)) or 0)
