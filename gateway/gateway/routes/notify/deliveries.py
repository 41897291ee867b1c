"""Routes of deliveries by email and SMS: the admin's search, a delivery with its attempts, a
manual retry, and the SMS providers' delivery receipts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from gateway import parsing
from gateway.problems import HttpProblem, bad_request
from gateway.table import Incoming, Path, Query, Row

DELIVERY = Path("delivery_id")
DELIVERIES = ("alert deliveries",)
ADMIN = "Needs alerts:admin (or the admin role)."
TOKEN_HEADER = "X-Receipt-Token"


@dataclass(frozen=True)
class ReceiptToken:
    """The shared secret of the receipt callback: ``?token=`` (what a provider's callback URL
    can carry) or the ``X-Receipt-Token`` header."""

    def __call__(self, incoming: Incoming) -> Any:
        request = incoming.request
        return request.headers.get(TOKEN_HEADER) or request.args.get("token")


@dataclass(frozen=True)
class ReceiptBody:
    """The JSON of a provider's report: an array (Aliyun, Tencent) or an object."""

    def __call__(self, incoming: Incoming) -> Any:
        request = incoming.request
        mimetype = request.mimetype or ""
        if mimetype and mimetype != "application/json" and not mimetype.endswith("+json"):
            raise HttpProblem(415, "unsupported_media_type", "send the report as application/json")
        raw = parsing._body_bytes(request)
        try:
            data = json.loads(raw.decode("utf-8-sig")) if raw.strip() else None
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise bad_request("the body is not valid JSON", "invalid_json") from None
        if not isinstance(data, list | dict):
            raise bad_request("the body must be a JSON array or object", "invalid_json")
        parsing.check_json_text(data)
        return data


ROWS: tuple[Row, ...] = (
    Row(
        "GET",
        "/api/alerts/deliveries",
        "list_deliveries",
        (Query(),),
        summary="Search deliveries by recipient, rule, channel, status, kind and period, "
        "newest first",
        description=f"Every email and SMS is a delivery: queued → sending → sent → delivered, "
        f"or failed with its reason. {ADMIN}",
        tags=DELIVERIES,
        shape="page",
        response="Delivery",
        query="DeliveryQuery",
    ),
    Row(
        "GET",
        "/api/alerts/deliveries/<delivery_id>",
        "get_delivery",
        (DELIVERY,),
        summary="A delivery with the log of its attempts",
        description=ADMIN,
        tags=DELIVERIES,
        shape="object",
        response="DeliveryDetail",
    ),
    Row(
        "POST",
        "/api/alerts/deliveries/<delivery_id>/retry",
        "retry_delivery",
        (DELIVERY,),
        summary="Send a failed delivery again, now",
        description=f"409 unless the delivery has failed. {ADMIN}",
        tags=DELIVERIES,
        shape="object",
        response="DeliveryDetail",
        errors=(409,),
    ),
    Row(
        "POST",
        "/api/alerts/sms-receipts/<provider>",
        "receive_sms_receipts",
        (Path("provider"), ReceiptToken(), ReceiptBody()),
        summary="The SMS provider's delivery reports (aliyun, tencent or webhook)",
        description="Called by the provider, not by users: no bearer token, but the shared "
        "SMS_RECEIPT_TOKEN as ?token= or the X-Receipt-Token header (403 without it). The "
        "body is the provider's own report: Aliyun's SmsReport array (biz_id, out_id, "
        "success, err_code), Tencent's status array (sid, report_status, errmsg), or the "
        'webhook\'s {"id", "status": "delivered"|"failed", "error"}. A report of a message '
        "id already reported changes nothing.",
        tags=DELIVERIES,
        shape="object",
        response="SmsReceiptAnswer",
        query="SmsReceiptQuery",
        auth=False,
        errors=(400, 403, 413, 415),
    ),
)
