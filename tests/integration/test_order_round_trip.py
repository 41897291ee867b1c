"""A sales order's round trip on the real RabbitMQ with the pika ERP simulator: confirmed in
the CRM, ``order_confirmed`` leaves through the outbox to the ERP's queue the topology binds;
the simulated ERP books it, ships it, invoices it and is paid; sales applies the answers and
the order ends shipped with its ERP number and shipment, its invoice paid. A cancellation the
CRM asks for is answered by the ERP and cancels the order."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import select

from crm_common.context import Principal
from crm_common.db import SessionScope, engine_for
from crm_common.migrations import upgrade
from devstack import registry, topology
from sales.application.catch_up import SNAPSHOTS
from sales.application.read_models import ReadModels
from sales.models import CatchUp
from sales.models.receivables import Invoice
from sales.service import SalesService
from tests.support.polling import eventually
from tests.support.tokens import context_of

CUSTOMER = uuid.UUID("00000000-0000-4000-8000-00000000c001")
SELLER = context_of(
    Principal(
        "u-sales-01",
        department_id="d-east-sh",
        permissions=("order:read", "order:write"),
        grants=({"owner": "self"},),
    )
)
LINE = {
    "item_code": "BRG-6205",
    "item_name": "深沟球轴承",
    "spec": "6205-2RS",
    "unit": "套",
    "quantity": "200",
    "unit_price": "17.20",
}


@pytest.fixture
def amqp(rabbit_config):
    assert topology.main(["--amqp-uri", rabbit_config["AMQP_URI"]]) == 0
    return rabbit_config


@pytest.fixture
def sales(amqp, container_factory, tmp_path):
    db_uri = f"sqlite:///{tmp_path / 'sales.db'}"
    upgrade("sales", db_uri)
    now = datetime.now(UTC)
    with SessionScope(engine_for(db_uri)).session() as session:
        for snapshot in SNAPSHOTS:
            session.merge(CatchUp(source=snapshot.source, rows=0, finished_at=now))
        ReadModels(session).keep_customer(
            {
                "id": str(CUSTOMER),
                "code": "C2026000001",
                "name": "上海华东机电设备有限公司",
                "status": "formal",
                "category": "A",
                "region": "华东/上海",
                "owner_id": "u-sales-01",
                "department_id": "d-east-sh",
                "erp_code": "0101001",
                "version": 1,
            }
        )
    config = {
        **amqp,
        "DB_URIS": {"sales": db_uri},
        "OUTBOX_POLL_SECONDS": 0.2,
        "METRICS_PORT": 0,
    }
    container_factory(SalesService, config).start()
    return config, db_uri


def simulator(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.erp_simulator", *args],
        cwd=registry.ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def order_of(config: dict[str, Any], order_id: str) -> dict[str, Any]:
    with ServiceRpcProxy("sales", config, context_data=SELLER, timeout=10) as proxy:
        found: dict[str, Any] = proxy.get_order(order_id)
        return found


def test_a_confirmed_order_is_booked_shipped_invoiced_and_paid_by_the_erp(sales):
    config, db_uri = sales
    with ServiceRpcProxy("sales", config, context_data=SELLER, timeout=10) as proxy:
        order = proxy.create_order({"customer_id": str(CUSTOMER), "lines": [LINE]})
        confirmed = proxy.confirm_order(order["id"])
    assert confirmed["status"] == "confirmed"

    result = simulator("respond", "--amqp-uri", config["AMQP_URI"], "--count", "1", "--fulfil",
                       "--pay")  # fmt: skip
    assert result.returncode == 0, result.stderr

    eventually(
        lambda: order_of(config, order["id"])["status"] == "shipped",
        timeout=30,
        what="the order booked and shipped by the ERP",
    )
    shipped = order_of(config, order["id"])
    assert shipped["erp_order_no"] and shipped["lines"][0]["shipped"] == "200.0000"
    with ServiceRpcProxy("sales", config, context_data=SELLER, timeout=10) as proxy:
        [shipment] = proxy.order_shipments(order["id"])["items"]
    assert shipment["lines"][0]["quantity"] == "200.0000"

    def invoice_paid() -> bool:
        with SessionScope(engine_for(db_uri)).session() as session:
            invoices = list(session.scalars(select(Invoice)))
        return (
            len(invoices) == 1
            and invoices[0].erp_order_no == shipped["erp_order_no"]
            and f"{invoices[0].amount:.2f}" == shipped["gross"]
            and invoices[0].outstanding == 0
        )

    eventually(invoice_paid, timeout=30, what="the order's invoice issued and paid")


def test_a_cancellation_the_crm_asks_for_is_answered_by_the_erp(sales):
    config, _db_uri = sales
    erp = subprocess.Popen(
        [sys.executable, "-m", "tools.erp_simulator", "respond", "--amqp-uri",
         config["AMQP_URI"], "--count", "2"],
        cwd=registry.ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        with ServiceRpcProxy("sales", config, context_data=SELLER, timeout=10) as proxy:
            order = proxy.create_order({"customer_id": str(CUSTOMER), "lines": [LINE]})
            proxy.confirm_order(order["id"])
        eventually(
            lambda: order_of(config, order["id"])["status"] == "erp_created",
            timeout=30,
            what="the order booked by the ERP",
        )
        with ServiceRpcProxy("sales", config, context_data=SELLER, timeout=10) as proxy:
            asked = proxy.cancel_order(order["id"], {"reason": "客户项目延期"})
        assert asked["status"] == "cancel_requested"
        eventually(
            lambda: order_of(config, order["id"])["status"] == "cancelled",
            timeout=30,
            what="the order cancelled by the ERP",
        )
        assert order_of(config, order["id"])["erp_reason"] == "客户项目延期"
        assert erp.wait(timeout=30) == 0, erp.stderr.read() if erp.stderr else ""
    finally:
        if erp.poll() is None:
            erp.terminate()
            erp.wait(timeout=10)
