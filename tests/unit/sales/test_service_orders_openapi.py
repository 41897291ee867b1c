"""Order, shipment and contract answers as the gateway's OpenAPI document describes them: a
front end generated from the document reads what the service really sends (decimals as
strings, nullable fields nullable)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from jsonschema import Draft202012Validator
from nameko.testing.services import worker_factory

from crm_common.context import Principal
from crm_common.outbox import OutboxWriter
from crm_common.schemas import json_schemas
from gateway import openapi
from gateway.service import GatewayService
from gateway.web import api_routes
from sales.application.erp_orders import apply_order_event
from sales.domain.credit import WhenNoLimit
from sales.models import OutboxMessage
from sales.schemas import PUBLIC_SCHEMAS
from sales.schemas.erp import ERP_EVENT_SCHEMAS
from sales.service import SalesService

from .sample_org import EAST_MACHINERY, SALES_PERMISSIONS

SELLER = Principal(
    user_id="u-sales-01",
    department_id="d-east-sh",
    roles=("sales",),
    permissions=(
        *SALES_PERMISSIONS,
        "order:read",
        "order:write",
        "contract:read",
        "contract:write",
    ),
    grants=({"owner": "self"},),
)


@pytest.fixture(scope="module")
def document():
    published = {"sales": json_schemas("sales", PUBLIC_SCHEMAS)}
    return openapi.build_document(api_routes(GatewayService), published)


@pytest.fixture
def service(db, principal, act_as):
    act_as(SELLER)
    return worker_factory(
        SalesService,
        db=db,
        outbox=OutboxWriter(OutboxMessage, "sales"),
        credit_policy=WhenNoLimit.ALLOW,
    )


def conforms(document, schema_name, answer):
    schema = {"$ref": f"#/components/schemas/sales.{schema_name}"}
    Draft202012Validator({**schema, "components": document["components"]}).validate(answer)


def test_order_and_contract_answers_match_their_documented_schemas(document, service, db):
    order = service.create_order(
        {
            "customer_id": str(EAST_MACHINERY),
            "requested_delivery_date": "2026-04-01",
            "document_discount": {"kind": "amount", "value": "10.00"},
            "lines": [
                {
                    "item_code": "VLV-DN50",
                    "item_name": "法兰球阀",
                    "spec": "DN50 PN16",
                    "unit": "台",
                    "quantity": "4",
                    "unit_price": "865.00",
                    "discount": {"kind": "percent", "value": "3"},
                }
            ],
        }
    )
    conforms(document, "Order", order)
    confirmed = service.confirm_order(order["id"])
    conforms(document, "Order", confirmed)
    with db.session() as session:
        for event_type, data in (
            (
                "order_created",
                {
                    "erp_order_no": "SO2026-1001",
                    "crm_order_id": order["id"],
                    "customer": {"erp_code": "0101001", "name": "上海华东机电设备有限公司"},
                    "order_date": "2026-03-02",
                    "currency": "CNY",
                    "lines": [
                        {
                            "line_no": 1,
                            "item_code": "VLV-DN50",
                            "item_name": "法兰球阀",
                            "quantity": "4",
                            "unit": "台",
                            "unit_price": "865.00",
                            "tax_rate": "0.13",
                            "amount": confirmed["gross"],
                        }
                    ],
                    "total_amount": confirmed["gross"],
                },
            ),
            (
                "order_shipped",
                {
                    "erp_order_no": "SO2026-1001",
                    "shipment_no": "FH-1001",
                    "shipped_at": "2026-03-04T09:00:00+08:00",
                    "lines": [
                        {"line_no": 1, "item_code": "VLV-DN50", "quantity": "3"},
                        {"line_no": 9, "item_code": "X", "quantity": "1"},
                    ],
                },
            ),
        ):
            apply_order_event(
                session,
                OutboxWriter(OutboxMessage, "sales"),
                event_type,
                ERP_EVENT_SCHEMAS[event_type]().load(data),
                datetime(2026, 3, 3, tzinfo=UTC),
                f"erp-{event_type}",
                None,
            )
    conforms(document, "Order", service.get_order(order["id"]))
    conforms(document, "OrderShipmentList", service.order_shipments(order["id"]))
    conforms(document, "OrderPage", service.list_orders({}))
    conforms(document, "OrderPage", service.list_orders({"status": "draft"}))

    contract = service.create_contract(
        {
            "title": "球阀供货合同",
            "customer_id": str(EAST_MACHINERY),
            "our_entity": "华东工业品供应链有限公司",
            "amount": "3355.00",
            "start_date": "2026-03-01",
            "end_date": "2026-12-31",
            "milestones": [
                {"name": "预付款", "due_date": "2026-03-10", "percent": "30"},
                {"name": "尾款", "due_date": "2026-06-30", "percent": "70"},
            ],
        }
    )
    conforms(document, "Contract", contract)
    conforms(document, "Contract", service.sign_contract(contract["id"], {}))
    conforms(document, "ContractPage", service.list_contracts({}))
    conforms(document, "ContractPage", service.expiring_contracts({"days": 3660}))
