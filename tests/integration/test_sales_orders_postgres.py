"""ERP order events on PostgreSQL: a shipment and the order_created bringing its order applied
at the same time never miss each other (whichever transaction starts first, the other waits
for it on the ERP order number's lock and then sees what it did); a shuffled stream with
duplicates ends every order as the stream in order does."""

from __future__ import annotations

import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import eventlet
import pytest
from sqlalchemy import func, select, text

from crm_common.db import SessionScope, engine_for
from crm_common.migrations import upgrade
from crm_common.outbox import OutboxWriter
from sales.application.erp_orders import apply_order_event
from sales.models import OutboxMessage
from sales.models.orders import ErpOrderEventWaiting, SalesOrder, SalesOrderLine
from sales.schemas.erp import ERP_EVENT_SCHEMAS
from tests.unit.sales.sample_org import EAST_MACHINERY, seed

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
outbox = OutboxWriter(OutboxMessage, "sales")


def created(erp_order_no: str) -> dict[str, Any]:
    return {
        "erp_order_no": erp_order_no,
        "crm_order_id": None,
        "customer": {"crm_customer_id": str(EAST_MACHINERY), "erp_code": "E001", "name": "客户"},
        "order_date": "2026-03-01",
        "currency": "CNY",
        "lines": [
            {
                "line_no": 1,
                "item_code": "BRG-6205",
                "item_name": "深沟球轴承",
                "quantity": "10",
                "unit": "套",
                "unit_price": "18.00",
                "tax_rate": "0.13",
                "amount": "203.40",
            }
        ],
        "total_amount": "203.40",
    }


def shipped(erp_order_no: str, shipment_no: str, quantity: str) -> dict[str, Any]:
    return {
        "erp_order_no": erp_order_no,
        "shipment_no": shipment_no,
        "shipped_at": T0.isoformat(),
        "lines": [{"line_no": 1, "item_code": "BRG-6205", "quantity": quantity}],
    }


def apply(session: Any, event_type: str, raw: dict[str, Any], minutes: int = 0) -> None:
    apply_order_event(
        session,
        outbox,
        event_type,
        ERP_EVENT_SCHEMAS[event_type]().load(raw),
        T0 + timedelta(minutes=minutes),
        str(uuid.uuid4()),
        EAST_MACHINERY,
    )


@pytest.fixture
def db(pg_uri):
    upgrade("sales", pg_uri)
    scope = SessionScope(engine_for(pg_uri))
    with scope.session() as session:
        seed(session)
    return scope


def waiting_on_a_lock(engine: Any) -> bool:
    with engine.connect() as connection:
        waiting = connection.scalar(
            text("select count(*) from pg_locks where locktype = 'advisory' and not granted")
        )
    return bool(waiting)


def shipped_of(db: SessionScope, erp_order_no: str) -> tuple[str, Decimal] | None:
    with db.session() as session:
        order = session.scalar(select(SalesOrder).where(SalesOrder.erp_order_no == erp_order_no))
        if order is None:
            return None
        line = session.scalar(select(SalesOrderLine).where(SalesOrderLine.order_id == order.id))
        assert line is not None
        return order.status, line.shipped


@pytest.mark.parametrize("first", ["order_shipped", "order_created"])
def test_a_shipment_and_its_order_applied_at_once_see_each_other(db, pg_uri, first):
    events = {
        "order_created": created("SO-RACE"),
        "order_shipped": shipped("SO-RACE", "FH-RACE", "4"),
    }
    second = next(kind for kind in events if kind != first)

    def apply_second() -> None:
        with db.session() as session:
            apply(session, second, events[second])

    with db.session() as session:
        apply(session, first, events[first])
        session.flush()
        other = eventlet.spawn(apply_second)
        deadline = time.monotonic() + 10
        while not waiting_on_a_lock(engine_for(pg_uri)):
            assert time.monotonic() < deadline, f"{second} never waited for {first}"
            eventlet.sleep(0.01)
        assert not other.dead
    other.wait()
    assert shipped_of(db, "SO-RACE") == ("partially_shipped", Decimal("4"))
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(ErpOrderEventWaiting)) == 0


def test_a_shuffled_stream_with_duplicates_ends_as_the_stream_in_order(db):
    rng = random.Random(5)
    stream: list[tuple[str, dict[str, Any], int]] = []
    for number in range(40):
        no = f"SO-{number:04d}"
        stream.append(("order_created", created(no), 1))
        stream.append(("order_shipped", shipped(no, f"FH-{number:04d}-1", "6"), 2))
        if number % 2:
            stream.append(("order_shipped", shipped(no, f"FH-{number:04d}-2", "4"), 3))
        if number % 5 == 0:
            stream.append(("order_cancelled", {"erp_order_no": no, "reason": "客户取消"}, 4))
    delivered = stream + rng.sample(stream, len(stream) // 5)
    rng.shuffle(delivered)
    for start in range(0, len(delivered), 25):
        with db.session() as session:
            for event_type, raw, minutes in delivered[start : start + 25]:
                with session.begin_nested():
                    apply(session, event_type, raw, minutes)
    for number in range(40):
        status, quantity = shipped_of(db, f"SO-{number:04d}") or ("missing", Decimal(0))
        expected_quantity = Decimal(10 if number % 2 else 6)
        if number % 5 == 0:
            expected_status = "cancelled"
        else:
            expected_status = "shipped" if number % 2 else "partially_shipped"
        assert (status, quantity) == (expected_status, expected_quantity), number
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(ErpOrderEventWaiting)) == 0
        assert session.scalar(select(func.count()).select_from(SalesOrder)) == 40
