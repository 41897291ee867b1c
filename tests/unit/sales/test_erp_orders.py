"""The ERP's order events applied to sales orders (``apply_order_event``): in order and out of
order (a shipment or cancellation before ``order_created``), duplicated, late; orders entered
in the ERP; data that can never apply refused for the dead-letter queue."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from nameko.testing.services import worker_factory

from crm_common.context import Principal
from crm_common.errors import Conflict, ValidationFailed
from crm_common.outbox import OutboxWriter
from sales.application.erp_orders import apply_order_event
from sales.domain.credit import WhenNoLimit
from sales.models import OutboxMessage
from sales.models.orders import ErpOrderEventWaiting
from sales.schemas.erp import ERP_EVENT_SCHEMAS
from sales.service import SalesService

from .sample_org import EAST_MACHINERY, SALES_PERMISSIONS

SELLER = Principal(
    user_id="u-sales-01",
    department_id="d-east-sh",
    roles=("sales",),
    permissions=(*SALES_PERMISSIONS, "order:read", "order:write"),
    grants=({"owner": "self"},),
)
GZ_SELLER = Principal(
    user_id="u-gz-01",
    department_id="d-south-gz",
    roles=("sales",),
    permissions=(*SALES_PERMISSIONS, "order:read", "order:write"),
    grants=({"owner": "self"},),
)
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LINES = [
    {
        "item_code": "BRG-6205",
        "item_name": "深沟球轴承",
        "unit": "套",
        "quantity": "100",
        "unit_price": "18.00",
    },
    {
        "item_code": "MTR-Y2-132",
        "item_name": "三相异步电动机",
        "unit": "台",
        "quantity": "2",
        "unit_price": "2680.00",
    },
]
counter = itertools.count(1)


@pytest.fixture(autouse=True)
def seller(principal, act_as):
    act_as(SELLER)


@pytest.fixture
def service(db, principal):
    return worker_factory(
        SalesService,
        db=db,
        outbox=OutboxWriter(OutboxMessage, "sales"),
        credit_policy=WhenNoLimit.ALLOW,
    )


@pytest.fixture
def erp(db):
    """Apply an ERP event as the ERP consumer does: ``data`` loaded by its schema, in a
    transaction of its own."""
    outbox = OutboxWriter(OutboxMessage, "sales")

    def send(event_type, data, minutes=0, customer_id=None, event_id=None):
        loaded = ERP_EVENT_SCHEMAS[event_type]().load(data)
        with db.session() as session:
            apply_order_event(
                session,
                outbox,
                event_type,
                loaded,
                T0 + timedelta(minutes=minutes),
                event_id or f"erp-{next(counter)}",
                customer_id,
            )

    return send


@pytest.fixture
def confirmed(service):
    order = service.create_order({"customer_id": str(EAST_MACHINERY), "lines": LINES})
    return service.confirm_order(order["id"])


def created(order, erp_order_no="SO2026-0457", **extra):
    return {
        "erp_order_no": erp_order_no,
        "crm_order_id": order["id"] if order else None,
        "customer": {
            "crm_customer_id": str(EAST_MACHINERY),
            "erp_code": "0101001",
            "credit_code": None,
            "name": "上海华东机电设备有限公司",
        },
        "order_date": "2026-03-02",
        "currency": "CNY",
        "lines": [
            {
                "line_no": 1,
                "item_code": "BRG-6205",
                "item_name": "深沟球轴承",
                "quantity": "100",
                "unit": "套",
                "unit_price": "18.00",
                "tax_rate": "0.13",
                "amount": "2034.00",
            },
            {
                "line_no": 2,
                "item_code": "MTR-Y2-132",
                "item_name": "三相异步电动机",
                "quantity": "2",
                "unit": "台",
                "unit_price": "2680.00",
                "tax_rate": "0.13",
                "amount": "6056.80",
            },
        ],
        "total_amount": "8090.80",
        "salesperson_code": "P0004",
        "department_code": "d-east-sh",
        **extra,
    }


def shipped(shipment_no, *lines, erp_order_no="SO2026-0457"):
    return {
        "erp_order_no": erp_order_no,
        "shipment_no": shipment_no,
        "shipped_at": "2026-03-05T10:00:00+08:00",
        "lines": [
            {"line_no": no, "item_code": code, "quantity": qty, "serial_numbers": serials}
            for no, code, qty, serials in lines
        ],
    }


FIRST_HALF = ("FH-001", (1, "BRG-6205", "60", []), (2, "MTR-Y2-132", "1", ["M2026A0001"]))
SECOND_HALF = ("FH-002", (1, "BRG-6205", "40", []), (2, "MTR-Y2-132", "1", ["M2026A0002"]))


def state(service, order_id):
    order = service.get_order(order_id)
    shipments = service.order_shipments(order_id)["items"]
    return (
        order["status"],
        order["erp_order_no"],
        [line["shipped"] for line in order["lines"]],
        sorted(s["shipment_no"] for s in shipments),
    )


def waiting(db):
    with db.session() as session:
        return session.query(ErpOrderEventWaiting).count()


def status_events(outbox_events):
    return [
        (data["from_status"], data["to_status"], data["source"])
        for kind, data in outbox_events()
        if kind == "order_status_changed"
    ]


# -- in order --------------------------------------------------------------------------------
def test_created_then_shipped_in_two_moves_the_order_through_its_statuses(
    service, erp, confirmed, outbox_events
):
    erp("order_created", created(confirmed), minutes=1)
    assert state(service, confirmed["id"])[:2] == ("erp_created", "SO2026-0457")
    erp("order_shipped", shipped(*FIRST_HALF), minutes=2)
    assert state(service, confirmed["id"]) == (
        "partially_shipped",
        "SO2026-0457",
        ["60.0000", "1.0000"],
        ["FH-001"],
    )
    erp("order_shipped", shipped(*SECOND_HALF), minutes=3)
    assert state(service, confirmed["id"])[0] == "shipped"
    shipments = service.order_shipments(confirmed["id"])["items"]
    assert shipments[1]["lines"][1]["serial_numbers"] == ["M2026A0002"]
    assert all(line["issue"] is None for s in shipments for line in s["lines"])
    assert status_events(outbox_events)[1:] == [
        ("confirmed", "erp_created", "erp"),
        ("erp_created", "partially_shipped", "erp"),
        ("partially_shipped", "shipped", "erp"),
    ]
    routed = [data for kind, data in outbox_events() if kind == "order_status_changed"][-1]
    assert (routed["customer_id"], routed["owner_id"]) == (str(EAST_MACHINERY), "u-sales-01")
    history = service.order_history(confirmed["id"])["items"]
    assert [(e["change"], e["old"], e["new"]) for e in history][:3] == [
        ("erp_shipped", "partially_shipped", "shipped"),
        ("erp_shipped", "erp_created", "partially_shipped"),
        ("erp_created", "confirmed", "erp_created"),
    ]
    assert history[0]["actor_id"] is None


def test_a_duplicate_shipment_never_doubles_a_quantity(service, erp, confirmed):
    erp("order_created", created(confirmed), minutes=1)
    erp("order_shipped", shipped(*FIRST_HALF), minutes=2)
    erp("order_shipped", shipped(*FIRST_HALF), minutes=2)
    erp("order_shipped", shipped(*FIRST_HALF), minutes=5, event_id="another-delivery")
    assert state(service, confirmed["id"])[2] == ["60.0000", "1.0000"]


def test_an_over_shipment_counts_and_is_flagged(service, erp, confirmed):
    erp("order_created", created(confirmed), minutes=1)
    erp("order_shipped", shipped("FH-009", (1, "BRG-6205", "120", []), (7, "X", "1", [])))
    order = service.get_order(confirmed["id"])
    assert order["lines"][0]["shipped"] == "120.0000" and order["status"] == "partially_shipped"
    [shipment] = service.order_shipments(confirmed["id"])["items"]
    assert [(line["issue"], line["issue_quantity"]) for line in shipment["lines"]] == [
        ("over_shipped", "20.0000"),
        ("unknown_line", "1.0000"),
    ]


# -- out of order ----------------------------------------------------------------------------
def test_shipments_before_the_order_wait_and_end_in_the_same_state(
    db, service, erp, confirmed, act_as
):
    erp("order_shipped", shipped(*SECOND_HALF), minutes=3)
    erp("order_shipped", shipped(*FIRST_HALF), minutes=2)
    erp("order_shipped", shipped(*FIRST_HALF), minutes=2)
    assert waiting(db) == 2
    assert state(service, confirmed["id"])[0] == "confirmed"
    erp("order_created", created(confirmed), minutes=1)
    assert waiting(db) == 0
    out_of_order = state(service, confirmed["id"])

    other = service.confirm_order(
        service.create_order({"customer_id": str(EAST_MACHINERY), "lines": LINES})["id"]
    )
    erp("order_created", created(other, "SO2026-0458"), minutes=1)
    erp("order_shipped", shipped("FH-101", *FIRST_HALF[1:], erp_order_no="SO2026-0458"), minutes=2)
    erp("order_shipped", shipped("FH-102", *SECOND_HALF[1:], erp_order_no="SO2026-0458"), minutes=3)
    in_order = state(service, other["id"])
    assert out_of_order[0] == in_order[0] == "shipped"
    assert out_of_order[2] == in_order[2] == ["100.0000", "2.0000"]


def test_a_cancellation_before_the_order_waits_for_it(db, service, erp, confirmed):
    asked = service.cancel_order(confirmed["id"], {"reason": "客户取消"})
    assert asked["status"] == "cancel_requested"
    erp("order_cancelled", {"erp_order_no": "SO2026-0457", "reason": "客户取消"}, minutes=2)
    assert waiting(db) == 1
    erp("order_created", created(confirmed), minutes=1)
    order = service.get_order(confirmed["id"])
    assert (order["status"], order["erp_reason"], order["erp_order_no"]) == (
        "cancelled",
        "客户取消",
        "SO2026-0457",
    )
    assert waiting(db) == 0


def test_of_two_status_changes_the_later_in_the_erp_wins(service, erp, confirmed):
    erp("order_rejected", {"crm_order_id": confirmed["id"], "reason": "信用冻结"}, minutes=5)
    erp("order_created", created(confirmed), minutes=1)
    order = service.get_order(confirmed["id"])
    assert (order["status"], order["erp_reason"]) == ("rejected", "信用冻结")
    assert order["erp_order_no"] == "SO2026-0457"
    erp("order_created", created(confirmed), minutes=9)
    assert service.get_order(confirmed["id"])["status"] == "erp_created"


def test_an_order_the_erp_rejected_is_reworked_and_sent_again(
    service, erp, confirmed, outbox_events
):
    with pytest.raises(Conflict):
        service.rework_order(confirmed["id"], {})
    erp("order_rejected", {"crm_order_id": confirmed["id"], "reason": "物料停产"}, minutes=1)
    order = service.get_order(confirmed["id"])
    assert (order["status"], order["erp_reason"]) == ("rejected", "物料停产")
    draft = service.rework_order(confirmed["id"], {"version": order["version"]})
    assert (draft["status"], draft["credit_outcome"], draft["confirmed_at"]) == (
        "draft",
        None,
        None,
    )
    changed = service.update_order(
        draft["id"], {"lines": [{**LINES[0], "item_code": "BRG-6206"}]}, draft["version"]
    )
    assert service.confirm_order(changed["id"])["status"] == "confirmed"
    assert len([1 for kind, _ in outbox_events() if kind == "order_confirmed"]) == 2
    erp("order_created", created(confirmed), minutes=5)
    assert service.get_order(confirmed["id"])["status"] == "erp_created"


# -- orders entered in the ERP ---------------------------------------------------------------
def test_an_order_entered_in_the_erp_appears_once_for_its_customers_owner(
    service, erp, outbox_events, act_as
):
    erp("order_created", created(None, "SO2026-0999"), customer_id=EAST_MACHINERY)
    erp("order_created", created(None, "SO2026-0999"), customer_id=EAST_MACHINERY)
    [order] = service.list_orders({"origin": "erp"})["items"]
    assert (order["status"], order["erp_order_no"], order["owner_id"]) == (
        "erp_created",
        "SO2026-0999",
        "u-sales-01",
    )
    assert (order["region"], order["category"], order["gross"]) == ("华东/上海", "A", "8090.80")
    detail = service.get_order(order["id"])
    assert [line["item_code"] for line in detail["lines"]] == ["BRG-6205", "MTR-Y2-132"]
    assert Decimal(detail["net"]) + Decimal(detail["tax"]) == Decimal("8090.80")
    assert status_events(outbox_events) == [(None, "erp_created", "erp")]
    act_as(GZ_SELLER)
    assert service.list_orders({"origin": "erp"})["items"] == []


def test_a_later_version_of_an_erp_order_replaces_its_lines(service, erp):
    erp("order_created", created(None, "SO2026-0999"), minutes=1, customer_id=EAST_MACHINERY)
    revised = created(None, "SO2026-0999")
    revised["lines"] = revised["lines"][:1]
    erp("order_created", revised, minutes=3, customer_id=EAST_MACHINERY)
    erp("order_created", created(None, "SO2026-0999"), minutes=2, customer_id=EAST_MACHINERY)
    [order] = service.list_orders({"origin": "erp"})["items"]
    assert order["gross"] == "2034.00"


def test_a_shipment_of_an_erp_order_before_it_arrives(db, service, erp, outbox_events):
    erp("order_shipped", shipped("FH-500", (1, "BRG-6205", "100", [])), minutes=2)
    erp(
        "order_shipped",
        shipped("FH-501", (1, "BRG-6205", "40", ["B1"]), erp_order_no="SO2026-0999"),
        minutes=2,
    )
    erp(
        "order_shipped",
        shipped(
            "FH-502",
            (1, "BRG-6205", "60", []),
            (2, "MTR-Y2-132", "2", ["M1", "M2"]),
            erp_order_no="SO2026-0999",
        ),
        minutes=3,
    )
    assert waiting(db) == 3
    erp("order_created", created(None, "SO2026-0999"), minutes=1, customer_id=EAST_MACHINERY)
    [order] = service.list_orders({"origin": "erp"})["items"]
    assert order["status"] == "shipped"
    assert service.get_order(order["id"])["lines"][0]["shipped"] == "100.0000"
    assert waiting(db) == 1
    # created, then each shipment that waited for it a version of its own
    announced = [data["order"] for kind, data in outbox_events() if kind == "order_status_changed"]
    assert [(o["status"], o["version"]) for o in announced] == [
        ("erp_created", 1),
        ("partially_shipped", 2),
        ("shipped", 3),
    ]
    assert order["version"] == 3


# -- what can never apply --------------------------------------------------------------------
def test_events_that_can_never_apply_are_refused(service, erp, confirmed):
    with pytest.raises(ValidationFailed) as info:
        erp("order_rejected", {"crm_order_id": str(uuid.uuid4()), "reason": "x"})
    assert set(info.value.field_errors) == {"crm_order_id"}
    with pytest.raises(ValidationFailed):
        erp("order_created", created(None, "SO2026-0777"))
    erp("order_created", created(confirmed), minutes=1)
    other = service.confirm_order(
        service.create_order({"customer_id": str(EAST_MACHINERY), "lines": LINES})["id"]
    )
    with pytest.raises(ValidationFailed) as info:
        erp("order_created", created(other), minutes=1)
    assert set(info.value.field_errors) == {"erp_order_no"}
    erp("order_shipped", shipped(*FIRST_HALF), minutes=2)
    with pytest.raises(ValidationFailed):
        erp("order_rejected", {"crm_order_id": confirmed["id"], "reason": "晚了"}, minutes=3)
