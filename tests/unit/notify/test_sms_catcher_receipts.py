"""The SMS catcher reports each SMS it takes to a receipt URL, over real HTTP on localhost, in
the shape of the provider it came in as: notify's own adapter reads every report back as the
receipt of the message it sent (the provider's id, its delivery id, delivered or not)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from notify.channels import Outgoing
from notify.channels.sms import SmsSettings, sms_sender
from tests.support.polling import eventually
from tools.sms_catcher import SmsCatcher


class ReceiptEndpoint:
    """A local HTTP server standing in for notify's receipt route: it keeps each report and
    answers the planned statuses, then 200."""

    def __init__(self) -> None:
        self.reports: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                endpoint.reports.append(
                    {
                        "path": self.path,
                        "token": self.headers.get("X-Receipt-Token"),
                        "type": self.headers.get("Content-Type"),
                        "body": json.loads(self.rfile.read(length)),
                    }
                )
                status = endpoint.statuses.pop(0) if endpoint.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint() -> Iterator[ReceiptEndpoint]:
    receiver = ReceiptEndpoint()
    yield receiver
    receiver.close()


@pytest.fixture
def catcher(endpoint: ReceiptEndpoint) -> Iterator[SmsCatcher]:
    with SmsCatcher(
        receipt_url=f"{endpoint.url}/api/alerts/sms-receipts",
        receipt_token="receipt-secret",
        receipt_delay=0.05,
    ) as sms:
        yield sms


def send(catcher: SmsCatcher, provider: str, mobile: str = "13812345678") -> tuple[str, Any]:
    """An SMS sent by notify's adapter of ``provider``: its delivery id and the answer."""
    settings = SmsSettings(
        provider=provider,
        endpoint=f"{catcher.url}/{provider}",
        key_id="LTAI-test",
        sign_name="工业品CRM",
        app_id="1400000001",
        timeout=2,
    )
    delivery_id = str(uuid.uuid4())
    message = Outgoing(
        delivery_id=delivery_id,
        address=mobile,
        recipient_name="王小明",
        subject="应收逾期",
        text="发票 INV-2026-0042 已逾期 30 天",
        sms_template="SMS_270145001",
        sms_params={"invoice": "INV-2026-0042", "days": "30"},
    )
    return delivery_id, sms_sender(settings).send(message)


@pytest.mark.parametrize("provider", ["aliyun", "tencent", "webhook"])
def test_each_sms_taken_is_reported_as_its_provider_reports_it(catcher, endpoint, provider):
    delivery_id, sent = send(catcher, provider)
    eventually(lambda: endpoint.reports, what="the receipt")
    (report,) = endpoint.reports
    assert report["path"] == f"/api/alerts/sms-receipts/{provider}"
    assert report["token"] == "receipt-secret"
    assert report["type"].startswith("application/json")

    (receipt,) = sms_sender(SmsSettings(provider=provider)).parse_receipts(report["body"])
    assert receipt.provider_id == sent.provider_id == catcher.messages[0].message_id
    assert receipt.delivered
    if provider != "webhook":  # the webhook's report carries its own id only
        assert receipt.delivery_id == delivery_id
    assert catcher.receipts == [
        {
            "provider": provider,
            "message_id": sent.provider_id,
            "url": f"{endpoint.url}/api/alerts/sms-receipts/{provider}",
            "attempts": 1,
            "status": 200,
            "error": None,
        }
    ]


@pytest.mark.parametrize("provider", ["aliyun", "tencent", "webhook"])
def test_an_undelivered_sms_is_reported_failed(catcher, endpoint, provider):
    catcher.plan("13812345678", "undelivered")
    send(catcher, provider)
    eventually(lambda: endpoint.reports, what="the receipt")
    (receipt,) = sms_sender(SmsSettings(provider=provider)).parse_receipts(
        endpoint.reports[0]["body"]
    )
    assert not receipt.delivered and receipt.detail


def test_a_refused_report_is_tried_again_and_none_goes_out_without_a_url(catcher, endpoint):
    endpoint.statuses = [503]
    send(catcher, "webhook")
    eventually(lambda: catcher.receipts, what="the report's outcome")
    assert len(endpoint.reports) == 2
    assert (catcher.receipts[0]["attempts"], catcher.receipts[0]["status"]) == (2, 200)

    with SmsCatcher() as silent:
        send(silent, "webhook")
        assert silent.messages and silent.receipts == []


def test_the_receipt_url_may_name_the_provider_and_carry_the_token():
    catcher = SmsCatcher(receipt_url="http://notify.local/receipts/{provider}?token=t0k")
    assert catcher.receipt_target("tencent") == "http://notify.local/receipts/tencent?token=t0k"
    catcher.receipt_url = "http://notify.local/api/alerts/sms-receipts/?token=t0k"
    assert (
        catcher.receipt_target("aliyun")
        == "http://notify.local/api/alerts/sms-receipts/aliyun?token=t0k"
    )
