"""A local HTTP endpoint that behaves like the SMS providers and records what it gets, for
``make run`` and the tests: no SMS leaves the machine.

It answers as the notify service's three adapters expect:

* ``POST /aliyun``: Aliyun's RPC form (``Action=SendSms`` or ``QuerySendDetails``), its
  signature (version 1.0, HMAC-SHA1) checked when ``secrets["aliyun"]`` is set;
* ``POST /tencent``: Tencent Cloud's JSON API (``X-TC-Action: SendSms`` or
  ``PullSmsSendStatusByPhoneNumber``), its TC3-HMAC-SHA256 signature checked when
  ``secrets["tencent"]`` is set;
* ``POST /webhook`` and ``GET /webhook/<id>``: the generic JSON webhook, its ``X-Signature``
  checked when ``secrets["webhook"]`` is set.

What it does with a number is planned per number (:meth:`SmsCatcher.plan`), one behaviour per
request, then ``ok``: ``ok`` (accept), ``undelivered`` (accept, then report it not delivered),
``invalid`` (a permanent rejection: invalid number),
``error500`` (HTTP 500), ``throttle`` (the provider's rate limit), ``timeout`` (accept and
record it, but answer only after ``delay`` seconds: the client times out although the message
went out), ``lost`` (no answer and nothing recorded). Numbers starting ``100`` are always
invalid.

Listing: ``GET /`` (HTML), ``GET /messages`` (JSON), ``DELETE /messages``; ``POST /plan``
``{"13800000000": ["error500", "ok"]}`` plans from outside. With ``directory`` every accepted
SMS is also appended to ``sms.jsonl`` there.

**Delivery receipts.** With a ``receipt_url`` every accepted SMS is reported back, after
``receipt_delay`` seconds, as the provider it came in as reports it: Aliyun's SmsReport array
(``biz_id``, ``out_id``, ``success``, ``err_code``), Tencent's status array (``sid``,
``report_status``, ``session_context``) or the webhook's ``{"id", "status", "error"}``. The
URL names notify's receipt route (``…/api/alerts/sms-receipts/{provider}``; without
``{provider}`` the provider is appended to its path), ``receipt_token`` goes in the
``X-Receipt-Token`` header. A refused connection or a 5xx is tried again (three attempts); each
report's outcome is kept in ``receipts``.

``python -m tools.sms_catcher --port 8026 --directory var/sms
[--receipt-url http://localhost:8000/api/alerts/sms-receipts --receipt-token …]``
(or ``SMS_CATCHER_RECEIPT_URL`` and ``SMS_RECEIPT_TOKEN`` in the environment)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

BEHAVIOURS = ("ok", "undelivered", "invalid", "error500", "throttle", "timeout", "lost")
RECEIPT_ATTEMPTS = 3
CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")
"""China's time (no daylight saving): a fixed offset, so the catcher needs no tz database."""
FAILED_CODE, FAILED_TEXT = "MK:0001", "用户手机未开机或欠费"
"""What an ``undelivered`` SMS is reported with (the carrier's code for a handset off)."""


@dataclass
class CaughtSms:
    provider: str
    phone: str
    message_id: str
    text: str
    template: str | None
    params: Any
    reference: str | None
    """OutId (aliyun), SessionContext (tencent) or the id (webhook): the sender's delivery id."""
    sign_name: str | None
    received_at: datetime
    headers: dict[str, str] = field(default_factory=dict)
    form: dict[str, str] = field(default_factory=dict)
    delivered: bool = True
    """What the receipt and the status look-ups report."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "phone": self.phone,
            "message_id": self.message_id,
            "text": self.text,
            "template": self.template,
            "params": self.params,
            "reference": self.reference,
            "sign_name": self.sign_name,
            "received_at": self.received_at.isoformat(),
            "delivered": self.delivered,
        }


@dataclass
class SmsCatcher:
    host: str = "127.0.0.1"
    port: int = 0
    directory: Path | None = None
    secrets: dict[str, str] = field(default_factory=dict)
    delay: float = 2.0
    receipt_url: str | None = None
    receipt_token: str | None = None
    receipt_delay: float = 0.5
    messages: list[CaughtSms] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    """Every request (provider, action, phone, behaviour), accepted or not."""
    receipts: list[dict[str, Any]] = field(default_factory=list)
    """Every receipt reported back: provider, message id, url, HTTP status or error."""

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._plans: dict[str, deque[str]] = defaultdict(deque)
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def plan(self, phone: str, *behaviours: str) -> None:
        for behaviour in behaviours:
            if behaviour not in BEHAVIOURS:
                raise ValueError(f"unknown behaviour {behaviour!r}")
        with self._lock:
            self._plans[_digits(phone)].extend(behaviours)

    def next_behaviour(self, phone: str) -> str:
        digits = _digits(phone)
        if digits.startswith("100"):
            return "invalid"
        with self._lock:
            planned = self._plans.get(digits)
            return planned.popleft() if planned else "ok"

    def sent_to(self, phone: str) -> list[CaughtSms]:
        return [sms for sms in self.messages if sms.phone == _digits(phone)]

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()
            self.requests.clear()
            self._plans.clear()

    def record(self, sms: CaughtSms) -> None:
        with self._lock:
            self.messages.append(sms)
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            with (self.directory / "sms.jsonl").open("a", encoding="utf-8") as out:
                out.write(json.dumps(sms.as_dict(), ensure_ascii=False) + "\n")
        if self.receipt_url:
            timer = threading.Timer(self.receipt_delay, self.report, args=(sms,))
            timer.daemon = True
            timer.start()

    def receipt_target(self, provider: str) -> str:
        """The receipt URL for ``provider``'s reports."""
        url = str(self.receipt_url)
        if "{provider}" in url:
            return url.replace("{provider}", provider)
        parts = urllib.parse.urlsplit(url)
        return urllib.parse.urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}/{provider}"))

    def report(self, sms: CaughtSms) -> dict[str, Any]:
        """Post the delivery receipt of ``sms`` to the receipt URL, as its provider would."""
        url = self.receipt_target(sms.provider)
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if self.receipt_token:
            headers["X-Receipt-Token"] = self.receipt_token
        body = json.dumps(receipt_of(sms), ensure_ascii=False).encode()
        outcome: dict[str, Any] = {"provider": sms.provider, "message_id": sms.message_id}
        for attempt in range(1, RECEIPT_ATTEMPTS + 1):
            outcome.update(url=url, attempts=attempt, status=None, error=None)
            request = urllib.request.Request(url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=10) as answer:
                    outcome["status"] = answer.status
                    break
            except urllib.error.HTTPError as exc:
                outcome["status"] = exc.code
                if exc.code < 500:
                    break
            except OSError as exc:
                outcome["error"] = str(exc)
            time.sleep(self.receipt_delay)
        with self._lock:
            self.receipts.append(outcome)
        return outcome

    def start(self) -> SmsCatcher:
        self._server = _Server((self.host, self.port), _handler(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> SmsCatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def receipt_of(sms: CaughtSms) -> Any:
    """The delivery report ``sms``'s provider sends its callback, in that provider's shape."""
    moment = datetime.now(UTC).astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")
    if sms.provider == "aliyun":
        return [
            {
                "phone_number": sms.phone,
                "send_time": sms.received_at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S"),
                "report_time": moment,
                "success": sms.delivered,
                "err_code": "DELIVERED" if sms.delivered else FAILED_CODE,
                "err_msg": "用户接收成功" if sms.delivered else FAILED_TEXT,
                "sms_size": "1",
                "biz_id": sms.message_id,
                "out_id": sms.reference,
            }
        ]
    if sms.provider == "tencent":
        return [
            {
                "user_receive_time": moment,
                "nationcode": "86",
                "mobile": sms.phone,
                "report_status": "SUCCESS" if sms.delivered else "FAIL",
                "errmsg": "DELIVRD" if sms.delivered else FAILED_CODE,
                "description": "用户短信送达成功" if sms.delivered else FAILED_TEXT,
                "sid": sms.message_id,
                "session_context": sms.reference,
            }
        ]
    receipt = {"id": sms.message_id, "status": "delivered" if sms.delivered else "failed"}
    if not sms.delivered:
        receipt["error"] = "handset unreachable"
    return receipt


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up waiting (a ``timeout`` behaviour) is no error of ours."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _digits(phone: str) -> str:
    text = phone.strip()
    if text.startswith("+86"):
        text = text[3:]
    return text


# -- signatures, checked as the providers check them -----------------------------------------


def _aliyun_quote(value: str) -> str:
    return urllib.parse.quote(value, safe="-_.~")


def aliyun_signature_ok(form: dict[str, str], secret: str) -> bool:
    given = form.get("Signature", "")
    params = {key: value for key, value in form.items() if key != "Signature"}
    canonical = "&".join(f"{_aliyun_quote(k)}={_aliyun_quote(params[k])}" for k in sorted(params))
    to_sign = f"POST&{_aliyun_quote('/')}&{_aliyun_quote(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    return hmac.compare_digest(base64.b64encode(digest).decode(), given)


def tencent_signature_ok(headers: dict[str, str], body: bytes, secret: str) -> bool:
    authorization = headers.get("authorization", "")
    try:
        algorithm, rest = authorization.split(" ", 1)
        parts = dict(part.strip().split("=", 1) for part in rest.split(","))
        credential, signed_headers, given = (
            parts["Credential"],
            parts["SignedHeaders"],
            parts["Signature"],
        )
        _, day, service, _ = credential.split("/")
        timestamp = headers["x-tc-timestamp"]
    except (ValueError, KeyError):
        return False
    if algorithm != "TC3-HMAC-SHA256":
        return False
    names = signed_headers.split(";")
    values = {name: headers.get(name, "").strip() for name in names}
    if "x-tc-action" in values:
        values["x-tc-action"] = values["x-tc-action"].lower()
    canonical_headers = "".join(f"{name}:{values[name]}\n" for name in names)
    canonical = "\n".join(
        ["POST", "/", "", canonical_headers, signed_headers, hashlib.sha256(body).hexdigest()]
    )
    scope = f"{day}/{service}/tc3_request"
    to_sign = "\n".join(
        ["TC3-HMAC-SHA256", timestamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )

    def sign(key: bytes, text: str) -> bytes:
        return hmac.new(key, text.encode(), hashlib.sha256).digest()

    key = sign(sign(sign(f"TC3{secret}".encode(), day), service), "tc3_request")
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given)


def webhook_signature_ok(headers: dict[str, str], body: bytes, secret: str) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers.get("x-signature", ""))


# -- the HTTP side ---------------------------------------------------------------------------


def _handler(catcher: SmsCatcher) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, payload: Any, content_type: str = "application/json") -> None:
            if isinstance(payload, bytes):
                body = payload
            else:
                body = json.dumps(payload, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", f"{content_type}; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _headers(self) -> dict[str, str]:
            return {key.lower(): value for key, value in self.headers.items()}

        def _log(self, provider: str, action: str, phone: str, behaviour: str) -> None:
            with catcher._lock:
                catcher.requests.append(
                    {"provider": provider, "action": action, "phone": phone, "behaviour": behaviour}
                )

        def _hold(self, behaviour: str) -> bool:
            """Sleep through a ``timeout`` or ``lost``; False when no answer should follow."""
            if behaviour in ("timeout", "lost"):
                time.sleep(catcher.delay)
                self.close_connection = True
            return behaviour != "lost"

        def do_GET(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            if path == "/messages":
                self._reply(200, [sms.as_dict() for sms in catcher.messages])
            elif path.startswith("/webhook/"):
                reference = urllib.parse.unquote(path[len("/webhook/") :])
                found = [s for s in catcher.messages if s.reference == reference]
                if found:
                    self._reply(200, {"id": found[0].message_id, "status": "sent"})
                else:
                    self._reply(404, {"error": "unknown message"})
            elif path == "/":
                rows = "".join(
                    f"<tr><td>{html.escape(s.received_at.isoformat())}</td>"
                    f"<td>{html.escape(s.provider)}</td><td>{html.escape(s.phone)}</td>"
                    f"<td>{html.escape(s.template or '')}</td>"
                    f"<td>{html.escape(json.dumps(s.params, ensure_ascii=False))}</td>"
                    f"<td>{html.escape(s.text)}</td></tr>"
                    for s in catcher.messages
                )
                page = (
                    '<!DOCTYPE html><meta charset="utf-8"><title>Caught SMS</title>'
                    f"<h1>Caught SMS ({len(catcher.messages)})</h1><table border=1 cellpadding=4>"
                    "<tr><th>received</th><th>provider</th><th>to</th><th>template</th>"
                    f"<th>params</th><th>text</th></tr>{rows}</table>"
                )
                self._reply(200, page.encode(), "text/html")
            else:
                self._reply(404, {"error": "not found"})

        def do_DELETE(self) -> None:
            if urllib.parse.urlsplit(self.path).path == "/messages":
                catcher.clear()
                self._reply(200, {"cleared": True})
            else:
                self._reply(404, {"error": "not found"})

        def do_POST(self) -> None:
            path = urllib.parse.urlsplit(self.path).path.rstrip("/")
            body = self._body()
            if path == "/aliyun":
                self._aliyun(body)
            elif path == "/tencent":
                self._tencent(body)
            elif path == "/webhook":
                self._webhook(body)
            elif path == "/plan":
                try:
                    for phone, behaviours in json.loads(body or b"{}").items():
                        catcher.plan(phone, *behaviours)
                except (ValueError, AttributeError, TypeError) as exc:
                    self._reply(400, {"error": str(exc)})
                    return
                self._reply(200, {"planned": True})
            else:
                self._reply(404, {"error": "not found"})

        # aliyun ----------------------------------------------------------------------------

        def _aliyun(self, body: bytes) -> None:
            form = dict(urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True))
            secret = catcher.secrets.get("aliyun")
            request_id = str(uuid.uuid4()).upper()
            if secret and not aliyun_signature_ok(form, secret):
                self._reply(
                    400,
                    {
                        "Code": "SignatureDoesNotMatch",
                        "Message": "Specified signature is not matched with our calculation.",
                        "RequestId": request_id,
                    },
                )
                return
            action = form.get("Action")
            if action == "QuerySendDetails":
                phone = form.get("PhoneNumber", "")
                details = [
                    {
                        "PhoneNum": s.phone,
                        "SendStatus": 3 if s.delivered else 2,
                        "ErrCode": "DELIVERED" if s.delivered else FAILED_CODE,
                        "TemplateCode": s.template,
                        "Content": s.text,
                        "SendDate": s.received_at.strftime("%Y-%m-%d %H:%M:%S"),
                        "OutId": s.reference,
                        "BizId": s.message_id,
                    }
                    for s in catcher.messages
                    if s.provider == "aliyun" and s.phone == phone
                ]
                self._log("aliyun", "QuerySendDetails", phone, "ok")
                self._reply(
                    200,
                    {
                        "Code": "OK",
                        "Message": "OK",
                        "RequestId": request_id,
                        "TotalCount": len(details),
                        "SmsSendDetailDTOs": {"SmsSendDetailDTO": details},
                    },
                )
                return
            if action != "SendSms":
                self._reply(400, {"Code": "InvalidAction", "RequestId": request_id})
                return
            phone = form.get("PhoneNumbers", "")
            behaviour = catcher.next_behaviour(phone)
            self._log("aliyun", "SendSms", phone, behaviour)
            if behaviour == "invalid":
                self._reply(
                    200,
                    {
                        "Code": "isv.MOBILE_NUMBER_ILLEGAL",
                        "Message": "非法手机号",
                        "RequestId": request_id,
                    },
                )
                return
            if behaviour == "error500":
                self._reply(500, {"Code": "isp.SYSTEM_ERROR", "RequestId": request_id})
                return
            if behaviour == "throttle":
                self._reply(
                    200,
                    {
                        "Code": "isv.BUSINESS_LIMIT_CONTROL",
                        "Message": "触发分钟级流控Permits:1",
                        "RequestId": request_id,
                    },
                )
                return
            biz_id = f"{int(time.time() * 1000)}^{uuid.uuid4().int % 10**9}"
            try:
                params = json.loads(form.get("TemplateParam") or "{}")
            except ValueError:
                self._reply(200, {"Code": "isv.INVALID_JSON_PARAM", "RequestId": request_id})
                return
            if behaviour != "lost":
                catcher.record(
                    CaughtSms(
                        provider="aliyun",
                        phone=phone,
                        message_id=biz_id,
                        text=_render(form.get("TemplateCode"), params),
                        template=form.get("TemplateCode"),
                        params=params,
                        reference=form.get("OutId"),
                        sign_name=form.get("SignName"),
                        received_at=datetime.now(UTC),
                        headers=self._headers(),
                        form=form,
                        delivered=behaviour != "undelivered",
                    )
                )
            if self._hold(behaviour):
                self._reply(
                    200, {"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": request_id}
                )

        # tencent ---------------------------------------------------------------------------

        def _tencent(self, body: bytes) -> None:
            headers = self._headers()
            request_id = str(uuid.uuid4())
            secret = catcher.secrets.get("tencent")
            if secret and not tencent_signature_ok(headers, body, secret):
                self._reply(
                    200,
                    {
                        "Response": {
                            "Error": {
                                "Code": "AuthFailure.SignatureFailure",
                                "Message": "The provided credentials could not be validated.",
                            },
                            "RequestId": request_id,
                        }
                    },
                )
                return
            try:
                payload = json.loads(body.decode("utf-8"))
            except ValueError:
                self._reply(400, {"Response": {"Error": {"Code": "InvalidParameter"}}})
                return
            action = headers.get("x-tc-action")
            if action == "PullSmsSendStatusByPhoneNumber":
                phone = _digits(str(payload.get("PhoneNumber", "")))
                statuses = [
                    {
                        "UserReceiveTime": int(s.received_at.timestamp()),
                        "CountryCode": "86",
                        "SubscriberNumber": s.phone,
                        "PhoneNumber": f"+86{s.phone}",
                        "SerialNo": s.message_id,
                        "ReportStatus": "SUCCESS" if s.delivered else "FAIL",
                        "Description": "用户短信送达成功" if s.delivered else FAILED_TEXT,
                        "SessionContext": s.reference,
                    }
                    for s in catcher.messages
                    if s.provider == "tencent" and s.phone == phone
                ]
                self._log("tencent", action, phone, "ok")
                self._reply(
                    200, {"Response": {"PullSmsSendStatusSet": statuses, "RequestId": request_id}}
                )
                return
            if action != "SendSms":
                self._reply(200, {"Response": {"Error": {"Code": "InvalidAction"}}})
                return
            numbers = payload.get("PhoneNumberSet") or [""]
            phone = _digits(str(numbers[0]))
            behaviour = catcher.next_behaviour(phone)
            self._log("tencent", "SendSms", phone, behaviour)
            if behaviour == "error500":
                self._reply(500, {"error": "internal"})
                return
            code, message = {
                "invalid": ("InvalidParameterValue.IncorrectPhoneNumber", "手机号格式错误"),
                "throttle": (
                    "LimitExceeded.PhoneNumberThirtySecondLimit",
                    "单个手机号30秒内下发短信条数超过设定的上限",
                ),
            }.get(behaviour, ("Ok", "send success"))
            serial = f"{uuid.uuid4().int % 10**12}:{uuid.uuid4().hex[:20]}"
            params = payload.get("TemplateParamSet") or []
            if code == "Ok" and behaviour != "lost":
                catcher.record(
                    CaughtSms(
                        provider="tencent",
                        phone=phone,
                        message_id=serial,
                        text=_render(payload.get("TemplateId"), params),
                        template=payload.get("TemplateId"),
                        params=params,
                        reference=payload.get("SessionContext"),
                        sign_name=payload.get("SignName"),
                        received_at=datetime.now(UTC),
                        headers=headers,
                        delivered=behaviour != "undelivered",
                    )
                )
            if self._hold(behaviour):
                status = {
                    "SerialNo": serial if code == "Ok" else "",
                    "PhoneNumber": f"+86{phone}",
                    "Fee": 1 if code == "Ok" else 0,
                    "SessionContext": payload.get("SessionContext", ""),
                    "Code": code,
                    "Message": message,
                    "IsoCode": "CN",
                }
                self._reply(200, {"Response": {"SendStatusSet": [status], "RequestId": request_id}})

        # webhook ---------------------------------------------------------------------------

        def _webhook(self, body: bytes) -> None:
            headers = self._headers()
            secret = catcher.secrets.get("webhook")
            if secret and not webhook_signature_ok(headers, body, secret):
                self._reply(401, {"error": "bad signature"})
                return
            try:
                payload = json.loads(body.decode("utf-8"))
            except ValueError:
                self._reply(400, {"error": "not JSON"})
                return
            phone = str(payload.get("to", ""))
            reference = str(payload.get("id") or headers.get("idempotency-key") or "")
            behaviour = catcher.next_behaviour(phone)
            self._log("webhook", "send", phone, behaviour)
            if behaviour == "invalid":
                self._reply(422, {"error": "invalid number"})
                return
            if behaviour == "error500":
                self._reply(500, {"error": "internal"})
                return
            if behaviour == "throttle":
                self._reply(429, {"error": "slow down"})
                return
            known = [s for s in catcher.messages if reference and s.reference == reference]
            if known:  # the same Idempotency-Key again: the first answer, nothing new sent
                self._reply(200, {"id": known[0].message_id})
                return
            message_id = str(uuid.uuid4())
            if behaviour != "lost":
                catcher.record(
                    CaughtSms(
                        provider="webhook",
                        phone=phone,
                        message_id=message_id,
                        text=str(payload.get("text", "")),
                        template=payload.get("template"),
                        params=payload.get("params"),
                        reference=reference or None,
                        sign_name=None,
                        received_at=datetime.now(UTC),
                        headers=headers,
                        delivered=behaviour != "undelivered",
                    )
                )
            if self._hold(behaviour):
                self._reply(200, {"id": message_id})

    return Handler


def _render(template: Any, params: Any) -> str:
    """What the handset would show, as near as a catcher can tell without the template."""
    if isinstance(params, dict):
        values = ", ".join(f"{key}={value}" for key, value in params.items())
    else:
        values = ", ".join(str(value) for value in params or [])
    return f"[{template}] {values}"
