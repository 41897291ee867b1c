"""SMS through an HTTP provider, chosen by ``SMS_PROVIDER``: ``aliyun`` (modelled on Aliyun's
SendSms), ``tencent`` (Tencent Cloud SMS ``SendSms``, API 2021-01-11) or ``webhook`` (a generic
JSON endpoint).

What each adapter sends:

* **aliyun**: an RPC-style POST of form fields ``Action=SendSms``, ``PhoneNumbers`` (11 digits),
  ``SignName``, ``TemplateCode``, ``TemplateParam`` (a JSON string), ``OutId`` (the delivery's
  id), signed with signature version 1.0 (HMAC-SHA1 over the canonical query, key
  ``AccessKeySecret&``). Answer ``Code``/``BizId``/``Message``. After a timeout it asks
  ``QuerySendDetails`` for the number and the day, and looks for its ``OutId``.
* **tencent**: a JSON POST with ``X-TC-Action: SendSms``: ``PhoneNumberSet`` in E.164
  (``+8613812345678``), ``SmsSdkAppId``, ``SignName``, ``TemplateId``, the template's values in
  order as ``TemplateParamSet``, ``SessionContext`` (the delivery's id), signed TC3-HMAC-SHA256.
  Answer ``Response.SendStatusSet[].SerialNo/Code``. After a timeout it asks
  ``PullSmsSendStatusByPhoneNumber`` and looks for its ``SessionContext``; Tencent lists only
  messages it has a status report for, so a message still in flight counts as not arrived.
* **webhook**: a JSON POST ``{"id", "to", "text", "template", "params"}`` with
  ``Idempotency-Key: <delivery id>`` and ``X-Signature: sha256=<HMAC of the body>`` when
  ``SMS_WEBHOOK_SECRET`` is set; after a timeout it asks ``GET <url>/<delivery id>``.

Both signatures are computed as the providers specify them; the local SMS catcher
(``tools/sms_catcher``) checks them with the configured secret. What only the real providers
can check (a real AccessKey, an approved sign name and template) is not checked locally.

Marketing SMS: ``enqueue`` ends their text with "回T退订", which the webhook sends as is; with
Aliyun and Tencent the text is the approved template's, so a marketing template must carry the
opt-out itself (the carriers refuse one without it).

Failures: connection refused, a 5xx, 429 and the providers' throttling codes are transient; an
invalid number, an unknown or unapproved template and any other 4xx are permanent. A read
timeout is an :class:`UncertainOutcome`: the worker looks the message up before sending again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from notify.channels import Outgoing, Receipt, Sent
from notify.domain.delivery import (
    DeliveryFailure,
    PermanentFailure,
    TransientFailure,
    UncertainOutcome,
)

PROVIDERS = ("aliyun", "tencent", "webhook")
CHINA = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class SmsSettings:
    provider: str = "webhook"
    endpoint: str = "http://127.0.0.1:8026/webhook"
    key_id: str = ""
    key_secret: str = ""
    sign_name: str = "CRM"
    app_id: str = ""
    region: str = ""
    timeout: float = 10.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SmsSettings:
        def text(name: str, default: str = "") -> str:
            value = config.get(name)
            return default if value in (None, "") else str(value)

        provider = text("SMS_PROVIDER", "webhook").lower()
        if provider not in PROVIDERS:
            raise ValueError(f"SMS_PROVIDER must be one of {', '.join(PROVIDERS)}")
        default_endpoint = {
            "aliyun": "https://dysmsapi.aliyuncs.com/",
            "tencent": "https://sms.tencentcloudapi.com/",
            "webhook": "http://127.0.0.1:8026/webhook",
        }[provider]
        return cls(
            provider=provider,
            endpoint=text("SMS_ENDPOINT", default_endpoint),
            key_id=text("SMS_KEY_ID"),
            key_secret=text("SMS_KEY_SECRET"),
            sign_name=text("SMS_SIGN_NAME", "CRM"),
            app_id=text("SMS_APP_ID"),
            region=text("SMS_REGION"),
            timeout=float(text("SMS_TIMEOUT", "10")),
        )


def sms_sender(settings: SmsSettings) -> HttpSms:
    if settings.provider == "aliyun":
        return AliyunSms(settings)
    if settings.provider == "tencent":
        return TencentSms(settings)
    return WebhookSms(settings)


def e164(mobile: str) -> str:
    return mobile if mobile.startswith("+") else f"+86{mobile}"


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any


class HttpSms:
    """What the three adapters share: one HTTP exchange, its failures classified."""

    provider = "webhook"

    def __init__(self, settings: SmsSettings) -> None:
        self.settings = settings

    def exchange(
        self, method: str, url: str, body: bytes | None, headers: Mapping[str, str]
    ) -> Answer:
        request = urllib.request.Request(url, data=body, method=method, headers=dict(headers))
        try:
            with urllib.request.urlopen(request, timeout=self.settings.timeout) as response:
                raw = response.read()
                status = response.status
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            status = exc.code
        except urllib.error.URLError as exc:
            # failed before the request was out: connection refused, name unknown, connect
            # timeout
            raise TransientFailure(f"{self.provider} {url}: {exc.reason}") from None
        except TimeoutError:
            raise UncertainOutcome(f"{self.provider}: no answer within the timeout") from None
        except OSError as exc:
            raise UncertainOutcome(f"{self.provider}: connection lost: {exc}") from None
        try:
            decoded = json.loads(raw.decode("utf-8")) if raw.strip() else None
        except (UnicodeDecodeError, ValueError):
            decoded = None
        return Answer(status, decoded)

    def status_failure(self, answer: Answer) -> DeliveryFailure | None:
        """The failure an HTTP status alone says, before the provider's own code is read."""
        if answer.status >= 500 or answer.status in (408, 429):
            return TransientFailure(f"{self.provider} answered HTTP {answer.status}")
        return None

    def send(self, message: Outgoing) -> Sent:
        raise NotImplementedError

    def lookup(self, message: Outgoing) -> Sent | None:
        return None

    def close(self) -> None:
        pass

    def parse_receipts(self, body: Any) -> list[Receipt]:
        raise NotImplementedError


# -- Aliyun ----------------------------------------------------------------------------------

ALIYUN_TRANSIENT = frozenset(
    {
        "isv.BUSINESS_LIMIT_CONTROL",
        "isv.OUT_OF_SERVICE",
        "isv.AMOUNT_NOT_ENOUGH",
        "isp.SYSTEM_ERROR",
        "isp.GATEWAY_ERROR",
        "Throttling",
        "Throttling.User",
        "ServiceUnavailable",
        "InternalError",
    }
)


def aliyun_percent(value: str) -> str:
    return urllib.parse.quote(value, safe="-_.~")


def aliyun_signature(method: str, params: Mapping[str, str], secret: str) -> str:
    """Signature version 1.0 of Aliyun's RPC APIs."""
    canonical = "&".join(
        f"{aliyun_percent(key)}={aliyun_percent(params[key])}" for key in sorted(params)
    )
    to_sign = f"{method}&{aliyun_percent('/')}&{aliyun_percent(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class AliyunSms(HttpSms):
    provider = "aliyun"

    def _call(self, action: str, fields: Mapping[str, str]) -> Answer:
        settings = self.settings
        params = {
            "AccessKeyId": settings.key_id,
            "Action": action,
            "Format": "JSON",
            "RegionId": settings.region or "cn-hangzhou",
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": "2017-05-25",
            **fields,
        }
        params["Signature"] = aliyun_signature("POST", params, settings.key_secret)
        body = urllib.parse.urlencode(params).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        return self.exchange("POST", settings.endpoint, body, headers)

    def send(self, message: Outgoing) -> Sent:
        if not message.sms_template:
            raise PermanentFailure("aliyun: the alert has no SMS template code")
        answer = self._call(
            "SendSms",
            {
                "PhoneNumbers": message.address,
                "SignName": self.settings.sign_name,
                "TemplateCode": message.sms_template,
                "TemplateParam": json.dumps(message.sms_params, ensure_ascii=False),
                "OutId": message.delivery_id,
            },
        )
        body = answer.body if isinstance(answer.body, dict) else {}
        code = str(body.get("Code") or "")
        if code == "OK":
            return Sent(self.provider, str(body.get("BizId") or "") or None)
        if not code:
            failure = self.status_failure(answer)
            if failure is not None:
                raise failure
            raise PermanentFailure(f"aliyun answered HTTP {answer.status} without a Code")
        reason = f"aliyun {code}: {body.get('Message', '')}"
        if code in ALIYUN_TRANSIENT or code.startswith("isp.") or answer.status >= 500:
            raise TransientFailure(reason)
        raise PermanentFailure(reason)

    def lookup(self, message: Outgoing) -> Sent | None:
        sent_at = message.first_sent_at or message.created_at or datetime.now(UTC)
        answer = self._call(
            "QuerySendDetails",
            {
                "PhoneNumber": message.address,
                "SendDate": sent_at.astimezone(CHINA).strftime("%Y%m%d"),
                "PageSize": "50",
                "CurrentPage": "1",
            },
        )
        body = answer.body if isinstance(answer.body, dict) else {}
        if body.get("Code") != "OK":
            raise TransientFailure(f"aliyun QuerySendDetails: {body.get('Code') or answer.status}")
        details = (body.get("SmsSendDetailDTOs") or {}).get("SmsSendDetailDTO") or []
        for detail in details:
            if isinstance(detail, dict) and detail.get("OutId") == message.delivery_id:
                return Sent(self.provider, str(detail.get("BizId") or "") or None)
        return None

    def parse_receipts(self, body: Any) -> list[Receipt]:
        """Aliyun's SmsReport: a JSON array of ``{biz_id, out_id, success, err_code,
        err_msg, ...}``."""
        items = body if isinstance(body, list) else [body]
        receipts = []
        for item in items:
            if not isinstance(item, dict) or not item.get("biz_id"):
                continue
            success = item.get("success") in (True, "true", "True", 1)
            detail = f"{item.get('err_code', '')} {item.get('err_msg', '')}".strip()
            receipts.append(
                Receipt(
                    provider_id=str(item["biz_id"]),
                    delivered=success,
                    detail=detail or None,
                    delivery_id=str(item["out_id"]) if item.get("out_id") else None,
                )
            )
        return receipts


# -- Tencent ---------------------------------------------------------------------------------

TENCENT_VERSION = "2021-01-11"
TENCENT_TRANSIENT_PREFIXES = ("InternalError", "LimitExceeded", "RequestLimitExceeded")


def tencent_authorization(
    *,
    secret_id: str,
    secret_key: str,
    host: str,
    action: str,
    payload: bytes,
    timestamp: int,
    service: str = "sms",
) -> str:
    """The ``Authorization`` header of TC3-HMAC-SHA256 for a JSON POST to ``/``."""
    content_type = "application/json; charset=utf-8"
    canonical_headers = f"content-type:{content_type}\nhost:{host}\nx-tc-action:{action.lower()}\n"
    signed_headers = "content-type;host;x-tc-action"
    canonical_request = "\n".join(
        [
            "POST",
            "/",
            "",
            canonical_headers,
            signed_headers,
            hashlib.sha256(payload).hexdigest(),
        ]
    )
    day = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    scope = f"{day}/{service}/tc3_request"
    to_sign = "\n".join(
        [
            "TC3-HMAC-SHA256",
            str(timestamp),
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )

    def sign(key: bytes, text: str) -> bytes:
        return hmac.new(key, text.encode(), hashlib.sha256).digest()

    key = sign(sign(sign(f"TC3{secret_key}".encode(), day), service), "tc3_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return (
        f"TC3-HMAC-SHA256 Credential={secret_id}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )


def _tencent_failure(code: str, message: str) -> DeliveryFailure:
    reason = f"tencent {code}: {message}"
    if code.startswith(TENCENT_TRANSIENT_PREFIXES):
        return TransientFailure(reason)
    return PermanentFailure(reason)


class TencentSms(HttpSms):
    provider = "tencent"

    def _call(self, action: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        settings = self.settings
        body = json.dumps(payload, ensure_ascii=False).encode()
        host = urllib.parse.urlsplit(settings.endpoint).netloc
        timestamp = int(datetime.now(UTC).timestamp())
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Host": host,
            "X-TC-Action": action,
            "X-TC-Version": TENCENT_VERSION,
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Region": settings.region or "ap-guangzhou",
            "Authorization": tencent_authorization(
                secret_id=settings.key_id,
                secret_key=settings.key_secret,
                host=host,
                action=action,
                payload=body,
                timestamp=timestamp,
            ),
        }
        answer = self.exchange("POST", settings.endpoint, body, headers)
        response = answer.body.get("Response") if isinstance(answer.body, dict) else None
        if not isinstance(response, dict):
            failure = self.status_failure(answer)
            if failure is not None:
                raise failure
            raise PermanentFailure(f"tencent answered HTTP {answer.status} without a Response")
        error = response.get("Error")
        if isinstance(error, dict):
            raise _tencent_failure(str(error.get("Code")), str(error.get("Message", "")))
        return response

    def send(self, message: Outgoing) -> Sent:
        if not message.sms_template:
            raise PermanentFailure("tencent: the alert has no SMS template id")
        response = self._call(
            "SendSms",
            {
                "PhoneNumberSet": [e164(message.address)],
                "SmsSdkAppId": self.settings.app_id,
                "SignName": self.settings.sign_name,
                "TemplateId": message.sms_template,
                "TemplateParamSet": [str(value) for value in message.sms_params.values()],
                "SessionContext": message.delivery_id,
            },
        )
        statuses = response.get("SendStatusSet") or []
        if not statuses or not isinstance(statuses[0], dict):
            raise TransientFailure("tencent answered without a SendStatusSet")
        status = statuses[0]
        code = str(status.get("Code"))
        if code != "Ok":
            raise _tencent_failure(code, str(status.get("Message", "")))
        return Sent(self.provider, str(status.get("SerialNo") or "") or None)

    def lookup(self, message: Outgoing) -> Sent | None:
        sent_at = message.first_sent_at or message.created_at or datetime.now(UTC)
        response = self._call(
            "PullSmsSendStatusByPhoneNumber",
            {
                "BeginTime": int(sent_at.timestamp()) - 60,
                "Offset": 0,
                "Limit": 100,
                "PhoneNumber": e164(message.address),
                "SmsSdkAppId": self.settings.app_id,
            },
        )
        for status in response.get("PullSmsSendStatusSet") or []:
            if isinstance(status, dict) and status.get("SessionContext") == message.delivery_id:
                return Sent(self.provider, str(status.get("SerialNo") or "") or None)
        return None

    def parse_receipts(self, body: Any) -> list[Receipt]:
        """Tencent's status callback: a JSON array of ``{sid, report_status (SUCCESS|FAIL),
        errmsg, description, mobile, ...}``."""
        items = body if isinstance(body, list) else [body]
        receipts = []
        for item in items:
            if not isinstance(item, dict) or not item.get("sid"):
                continue
            detail = f"{item.get('errmsg', '')} {item.get('description', '')}".strip()
            receipts.append(
                Receipt(
                    provider_id=str(item["sid"]),
                    delivered=item.get("report_status") == "SUCCESS",
                    detail=detail or None,
                    delivery_id=str(item["session_context"])
                    if item.get("session_context")
                    else None,
                )
            )
        return receipts


# -- a generic JSON webhook ------------------------------------------------------------------


def webhook_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookSms(HttpSms):
    provider = "webhook"

    def _headers(self, message: Outgoing, body: bytes) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Idempotency-Key": message.delivery_id,
        }
        if self.settings.key_secret:
            headers["X-Signature"] = webhook_signature(self.settings.key_secret, body)
        return headers

    def send(self, message: Outgoing) -> Sent:
        payload = {
            "id": message.delivery_id,
            "to": message.address,
            "text": message.text,
            "template": message.sms_template,
            "params": message.sms_params,
        }
        body = json.dumps(payload, ensure_ascii=False).encode()
        answer = self.exchange("POST", self.settings.endpoint, body, self._headers(message, body))
        failure = self.status_failure(answer)
        if failure is not None:
            raise failure
        if answer.status >= 400:
            detail = answer.body.get("error") if isinstance(answer.body, dict) else None
            raise PermanentFailure(f"webhook answered HTTP {answer.status}: {detail or ''}")
        provider_id = answer.body.get("id") if isinstance(answer.body, dict) else None
        return Sent(self.provider, str(provider_id or message.delivery_id))

    def lookup(self, message: Outgoing) -> Sent | None:
        url = f"{self.settings.endpoint.rstrip('/')}/{urllib.parse.quote(message.delivery_id)}"
        answer = self.exchange("GET", url, None, self._headers(message, b""))
        if answer.status == 404:
            return None
        failure = self.status_failure(answer)
        if failure is not None:
            raise failure
        if answer.status >= 400:
            raise TransientFailure(f"webhook look-up answered HTTP {answer.status}")
        provider_id = answer.body.get("id") if isinstance(answer.body, dict) else None
        return Sent(self.provider, str(provider_id or message.delivery_id))

    def parse_receipts(self, body: Any) -> list[Receipt]:
        """``{"id", "status": "delivered"|"failed", "error"}`` or an array of them."""
        items = body if isinstance(body, list) else [body]
        receipts = []
        for item in items:
            if not isinstance(item, dict) or not item.get("id"):
                continue
            receipts.append(
                Receipt(
                    provider_id=str(item["id"]),
                    delivered=item.get("status") == "delivered",
                    detail=str(item["error"]) if item.get("error") else None,
                )
            )
        return receipts
