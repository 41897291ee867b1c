"""Applying ERP events in sales: data read by the contract's schemas, customers matched by CRM
id, credit code, ERP code or an administrator's mapping, unmatched events kept and applied
as soon as a mapping exists, and the administrator's list and mapping action."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from marshmallow import ValidationError
from nameko.testing.services import worker_factory
from sqlalchemy import select

from crm_common.consumer import ReceivedEvent
from crm_common.errors import Forbidden, NotFound, ValidationFailed
from crm_common.outbox import OutboxWriter
from devstack import topology
from sales.application.erp_inbound import APPLIERS, DOCUMENT_FAMILIES, ErpInbound
from sales.application.read_models import ReadModels
from sales.models import InboxEvent, OutboxMessage
from sales.models.erp import ErpUnmatchedEvent
from sales.service import SalesService

from .sample_org import ADMIN, EAST_MACHINERY, GUANGZHOU_HEAVY, OLD_EAST, SHANGHAI_PRECISION

CREDIT_CODE = "91310115MA1K4LXX1T"
T1 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Recorder:
    """Stands in for the quote-to-cash use cases: what each event type was applied with."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, uuid.UUID | None]] = []

    def __call__(self, session, events, event_type, data, occurred_at, event_id, customer_id):
        assert occurred_at.tzinfo is not None
        self.calls.append((event_type, event_id, customer_id))


def customer(crm_id=None, erp_code="C00001", credit_code=None, name="华东机电"):
    return {
        "crm_customer_id": None if crm_id is None else str(crm_id),
        "erp_code": erp_code,
        "credit_code": credit_code,
        "name": name,
    }


def invoice(who, number="INV-1"):
    return {
        "invoice_no": number,
        "erp_order_no": "SO-1",
        "customer": who,
        "issued_at": "2026-03-02T09:00:00+08:00",
        "due_date": "2026-04-01",
        "amount": "113.00",
        "tax_amount": "13.00",
        "currency": "CNY",
    }


def received(event_type, data, event_id=None):
    envelope = {
        "event_id": event_id or str(uuid.uuid4()),
        "type": event_type,
        "version": 1,
        "occurred_at": T1.isoformat(),
        "source": "erp",
        "data": data,
    }
    return ReceivedEvent(envelope, "sales.on_erp_" + event_type, InboxEvent)


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture
def inbound(db, recorder):
    def make(session):
        return ErpInbound(
            session, OutboxWriter(OutboxMessage, "sales"), appliers=dict.fromkeys(TYPES, recorder)
        )

    return make


TYPES = (
    "item_updated",
    "order_created",
    "order_shipped",
    "invoice_issued",
    "payment_received",
    "customer_credit_updated",
)


def give_codes(session, customer_id, erp_code=None, credit_code=None, version=2):
    ReadModels(session).keep_customer(
        {
            "id": str(customer_id),
            "code": "C2026000001",
            "name": "上海华东机电设备有限公司",
            "status": "formal",
            "erp_code": erp_code,
            "credit_code": credit_code,
            "version": version,
        }
    )


def test_customers_match_by_crm_id_then_credit_code_then_erp_code(db, inbound, recorder):
    with db.session() as session:
        give_codes(session, EAST_MACHINERY, erp_code="C00001")
        ReadModels(session).keep_customer(
            {
                "id": str(SHANGHAI_PRECISION),
                "code": "C2026000002",
                "name": "上海精工轴承有限公司",
                "status": "formal",
                "credit_code": CREDIT_CODE,
                "version": 2,
            }
        )
        apply = inbound(session).apply
        assert apply(received("invoice_issued", invoice(customer(GUANGZHOU_HEAVY, "C00001"))))
        by_credit = customer(None, "C00001", CREDIT_CODE)
        assert apply(received("invoice_issued", invoice(by_credit, "INV-2")))
        assert apply(received("invoice_issued", invoice(customer(None, "C00001"), "INV-3")))
        unknown_id = customer(uuid.uuid4(), "C00001")  # an id sales never heard of
        assert apply(received("invoice_issued", invoice(unknown_id, "INV-4")))

    assert [who for _, _, who in recorder.calls] == [
        GUANGZHOU_HEAVY,
        SHANGHAI_PRECISION,
        EAST_MACHINERY,
        EAST_MACHINERY,
    ]


def test_a_merged_customer_is_matched_to_its_survivor(db, inbound, recorder):
    with db.session() as session:
        give_codes(session, OLD_EAST, erp_code="C00099")
        ReadModels(session).merge(
            {
                "merged_id": str(OLD_EAST),
                "survivor_id": str(EAST_MACHINERY),
                "survivor": {
                    "id": str(EAST_MACHINERY),
                    "code": "C2026000001",
                    "name": "上海华东机电设备有限公司",
                    "status": "formal",
                    "version": 5,
                },
            },
            "u-admin",
        )
        inbound(session).apply(received("invoice_issued", invoice(customer(None, "C00099"))))
    assert recorder.calls[0][2] == EAST_MACHINERY


def test_documents_without_a_customer_apply_as_they_are(db, inbound, recorder):
    shipped = {
        "erp_order_no": "SO-1",
        "shipment_no": "SH-1",
        "shipped_at": "2026-03-02T10:00:00+08:00",
        "lines": [{"line_no": 1, "item_code": "BRG-6204", "quantity": "10"}],
    }
    crm_order = {
        "erp_order_no": "SO-2",
        "crm_order_id": str(uuid.uuid4()),
        "customer": customer(None, "C09999"),
        "order_date": "2026-03-02",
        "currency": "CNY",
        "lines": [
            {
                "line_no": 1,
                "item_code": "BRG-6204",
                "item_name": "深沟球轴承",
                "quantity": "10",
                "unit": "个",
                "unit_price": "14.00",
                "tax_rate": "0.13",
                "amount": "158.20",
            }
        ],
        "total_amount": "158.20",
    }
    with db.session() as session:
        apply = inbound(session).apply
        assert apply(received("order_shipped", shipped))
        assert apply(received("order_created", crm_order))  # its CRM order knows the customer

    assert [(kind, who) for kind, _, who in recorder.calls] == [
        ("order_shipped", None),
        ("order_created", None),
    ]


def test_data_that_can_never_apply_is_refused_with_its_reasons(db, inbound, recorder):
    bad = {**invoice(customer(EAST_MACHINERY)), "amount": 113.0, "due_date": "tomorrow"}
    with db.session() as session, pytest.raises(ValidationError) as refused:
        inbound(session).apply(received("invoice_issued", bad))
    assert set(refused.value.messages) == {"amount", "due_date"}
    with db.session() as session, pytest.raises(ValidationError):
        inbound(session).apply(received("invoice_issued", {**invoice(customer()), "customer": 1}))
    assert recorder.calls == []


def test_an_unmatched_event_waits_and_applies_when_a_customer_brings_its_code(
    db, inbound, recorder
):
    first = received("invoice_issued", invoice(customer(None, "C00007", name="新客户")))
    later = received("payment_received", payment(customer(None, "C00007", name="新客户")))
    with db.session() as session:
        assert not inbound(session).apply(first)
        assert not inbound(session).apply(later)
    assert recorder.calls == []
    with db.session() as session:
        [row, _] = session.scalars(select(ErpUnmatchedEvent).order_by(ErpUnmatchedEvent.event_id))
        assert {row.erp_code, row.status, row.attempts} == {"C00007", "waiting", 1}

    with db.session() as session:
        give_codes(session, EAST_MACHINERY, erp_code="C00007")
        applied = inbound(session).customer_known({"id": str(EAST_MACHINERY), "erp_code": "C00007"})

    assert applied == 2
    assert sorted(recorder.calls) == sorted(
        [
            ("invoice_issued", first.event_id, EAST_MACHINERY),
            ("payment_received", later.event_id, EAST_MACHINERY),
        ]
    )
    with db.session() as session:
        rows = session.scalars(select(ErpUnmatchedEvent)).all()
        assert {(row.status, row.customer_id) for row in rows} == {("applied", EAST_MACHINERY)}


def payment(who):
    return {
        "payment_no": "RC-1",
        "customer": who,
        "received_at": "2026-03-03T09:00:00+08:00",
        "amount": "113.00",
        "currency": "CNY",
        "allocations": [{"invoice_no": "INV-1", "amount": "113.00"}],
    }


def test_an_administrator_maps_an_erp_customer_and_its_events_apply(
    db, inbound, recorder, principal, act_as
):
    event = received("invoice_issued", invoice(customer(None, "C00042", name="外部客户")))
    with db.session() as session:
        inbound(session).apply(event)
        inbound(session).apply(received("invoice_issued", invoice(customer(None, "C00043"))))
    service = worker_factory(SalesService, db=db, outbox=OutboxWriter(OutboxMessage, "sales"))

    with pytest.raises(Forbidden):
        service.list_erp_unmatched_events()
    act_as(ADMIN)
    page = service.list_erp_unmatched_events({"erp_code": "C00042"})
    [item] = page["items"]
    assert item["event_type"] == "invoice_issued" and item["customer_name"] == "外部客户"
    assert item["status"] == "waiting" and item["data"]["invoice_no"] == "INV-1"
    with pytest.raises(ValidationFailed):
        service.apply_erp_unmatched_event(item["id"], {"customer_id": str(uuid.uuid4())})
    with pytest.raises(NotFound):
        service.apply_erp_unmatched_event(str(uuid.uuid4()), {"customer_id": str(EAST_MACHINERY)})

    # the service's own appliers are the quote-to-cash use cases: stand the recorder in
    import sales.application.erp_inbound as erp_inbound

    saved = dict(erp_inbound.APPLIERS)
    erp_inbound.APPLIERS.update(dict.fromkeys(TYPES, recorder))
    try:
        answer = service.apply_erp_unmatched_event(
            item["id"], {"customer_id": str(GUANGZHOU_HEAVY)}
        )
        assert answer["applied"] == 1 and answer["failed"] == 0
        assert recorder.calls == [("invoice_issued", event.event_id, GUANGZHOU_HEAVY)]
        assert service.list_erp_unmatched_events({"erp_code": "C00042"})["items"] == []
        applied = service.list_erp_unmatched_events({"status": "applied"})["items"]
        assert [row["customer_id"] for row in applied] == [str(GUANGZHOU_HEAVY)]

        with db.session() as session:  # the mapping stays: the next event matches
            assert inbound(session).apply(
                received("invoice_issued", invoice(customer(None, "C00042"), "INV-9"))
            )
        assert recorder.calls[-1][2] == GUANGZHOU_HEAVY
    finally:
        erp_inbound.APPLIERS.clear()
        erp_inbound.APPLIERS.update(saved)


def test_a_waiting_event_that_fails_keeps_waiting_with_its_error(db, act_as):
    def failing(*args):
        raise RuntimeError("the invoice cannot be stored")

    with db.session() as session:
        writer = OutboxWriter(OutboxMessage, "sales")
        ErpInbound(session, writer, appliers={"invoice_issued": failing}).apply(
            received("invoice_issued", invoice(customer(None, "C00050")))
        )
    with db.session() as session:
        row = session.scalars(select(ErpUnmatchedEvent)).one()
        ok = ErpInbound(session, writer, appliers={"invoice_issued": failing}).apply_waiting(
            row, EAST_MACHINERY
        )
    assert not ok
    with db.session() as session:
        row = session.scalars(select(ErpUnmatchedEvent)).one()
        assert (row.status, row.attempts) == ("waiting", 2)
        assert "the invoice cannot be stored" in row.last_error


def test_every_erp_event_type_has_its_use_case_its_family_of_documents_and_its_handler():
    assert set(APPLIERS) == set(DOCUMENT_FAMILIES) == set(topology.ERP_EVENT_TYPES)
    assert all(callable(getattr(SalesService, f"on_erp_{kind}")) for kind in DOCUMENT_FAMILIES)
