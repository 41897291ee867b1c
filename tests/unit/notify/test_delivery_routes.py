"""The gateway's delivery routes: in the OpenAPI document as the service publishes their
schemas, the receipt route open to providers (no bearer token), its token and body read as
providers send them."""

from __future__ import annotations

import json

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from crm_common.schemas import json_schemas
from gateway import openapi
from gateway.problems import HttpProblem
from gateway.routes.notify.deliveries import ReceiptBody, ReceiptToken
from gateway.service import GatewayService
from gateway.table import Incoming
from gateway.web import api_routes
from notify.schemas import PUBLIC_SCHEMAS


@pytest.fixture(scope="module")
def document():
    return openapi.build_document(
        api_routes(GatewayService), {"notify": json_schemas("notify", PUBLIC_SCHEMAS)}
    )


def test_the_delivery_routes_are_documented(document):
    paths = document["paths"]
    listing = paths["/api/alerts/deliveries"]["get"]
    names = {p["$ref"].rsplit("/", 1)[-1] for p in listing["parameters"] if "$ref" in p}
    assert {"notify.DeliveryQuery.status", "notify.DeliveryQuery.created_from"} <= names
    assert "/api/alerts/deliveries/{delivery_id}" in paths
    retry = paths["/api/alerts/deliveries/{delivery_id}/retry"]["post"]
    assert "409" in retry["responses"]
    receipts = paths["/api/alerts/sms-receipts/{provider}"]["post"]
    assert receipts["security"] == []
    assert "401" not in receipts["responses"]
    assert {"400", "403", "413", "415"} <= set(receipts["responses"])
    assert "notify.SmsReceiptAnswer" in json.dumps(receipts["responses"]["200"])


def test_the_receipt_route_is_open_to_callers_without_a_token():
    routes = dict(api_routes(GatewayService))
    assert routes["receive_sms_receipts"].auth is False
    assert routes["list_deliveries"].auth is True


def incoming(body: bytes, content_type: str = "application/json", **kwargs) -> Incoming:
    environ = EnvironBuilder(
        method="POST", data=body, content_type=content_type, **kwargs
    ).get_environ()
    return Incoming(Request(environ), {})


def test_the_token_comes_from_the_query_or_a_header():
    assert ReceiptToken()(incoming(b"[]", query_string="token=abc")) == "abc"
    assert ReceiptToken()(incoming(b"[]", headers={"X-Receipt-Token": "xyz"})) == "xyz"
    assert ReceiptToken()(incoming(b"[]")) is None


def test_a_report_body_is_a_json_array_or_object():
    report = [{"biz_id": "1^0", "success": True, "err_msg": "用户接收成功"}]
    assert ReceiptBody()(incoming(json.dumps(report, ensure_ascii=False).encode())) == report
    assert ReceiptBody()(incoming(b'{"id": "m-1", "status": "delivered"}'))["id"] == "m-1"
    for body, content_type, status in (
        (b"not json", "application/json", 400),
        (b'"text"', "application/json", 400),
        (b"[]", "text/plain", 415),
    ):
        with pytest.raises(HttpProblem) as refused:
            ReceiptBody()(incoming(body, content_type))
        assert refused.value.status == status
