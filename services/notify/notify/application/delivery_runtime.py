"""The delivery settings of a notify process, read from its config at start: the senders
(SMTP, the SMS provider), the retry policy, the rate limit and the receipt token.

Config keys (every one with a default that sends to the local catchers of ``make run``):

``SMTP_HOST``, ``SMTP_PORT``, ``SMTP_SECURITY`` (plain | starttls | tls), ``SMTP_USERNAME``,
``SMTP_PASSWORD``, ``SMTP_TIMEOUT``, ``MAIL_FROM``, ``MAIL_FROM_NAME``, ``MAIL_REPLY_TO``,
``PREFERENCES_URL``; ``SMS_PROVIDER`` (aliyun | tencent | webhook), ``SMS_ENDPOINT``,
``SMS_KEY_ID``, ``SMS_KEY_SECRET``, ``SMS_SIGN_NAME``, ``SMS_APP_ID``, ``SMS_REGION``,
``SMS_TIMEOUT``, ``SMS_SUMMARY_TEMPLATE``, ``SMS_RECEIPT_TOKEN``; ``DELIVERY_ENABLED``,
``DELIVERY_BATCH``, ``DELIVERY_MAX_ATTEMPTS``, ``DELIVERY_RETRY_BASE_SECONDS``,
``DELIVERY_RETRY_CAP_SECONDS``, ``RATE_LIMIT_COUNT``, ``RATE_LIMIT_WINDOW_SECONDS``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from nameko.extensions import DependencyProvider

from crm_common.application import NO_EVENTS, UseCaseContext
from crm_common.context import Principal
from crm_common.db import SessionScope
from crm_common.errors import NotFound
from notify.application import deliveries
from notify.application.sending import DeliveryWorker, Sessions
from notify.channels import Sender
from notify.channels.email import SmtpSender, SmtpSettings
from notify.channels.sms import PROVIDERS, HttpSms, SmsSettings, sms_sender
from notify.domain.delivery import EMAIL, SMS, RateLimit, RetryPolicy

DELIVERY_POLL_SECONDS = 1.0
"""How often the delivery worker looks for due deliveries."""


def _number(config: Mapping[str, Any], name: str, default: float) -> float:
    value = config.get(name)
    return default if value in (None, "") else float(value)


def _flag(config: Mapping[str, Any], name: str, default: bool = True) -> bool:
    value = config.get(name)
    if value in (None, ""):
        return default
    return str(value).strip().lower() in ("1", "true", "yes", "on")


@dataclasses.dataclass
class DeliveryRuntime:
    smtp: SmtpSettings
    sms: SmsSettings
    policy: RetryPolicy
    rate_limit: RateLimit
    receipt_token: str = ""
    enabled: bool = True
    batch: int = 50
    summary_template: str | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DeliveryRuntime:
        return cls(
            smtp=SmtpSettings.from_config(config),
            sms=SmsSettings.from_config(config),
            policy=RetryPolicy(
                max_attempts=int(_number(config, "DELIVERY_MAX_ATTEMPTS", 6)),
                base=timedelta(seconds=_number(config, "DELIVERY_RETRY_BASE_SECONDS", 30)),
                cap=timedelta(seconds=_number(config, "DELIVERY_RETRY_CAP_SECONDS", 3600)),
            ),
            rate_limit=RateLimit(
                limit=int(_number(config, "RATE_LIMIT_COUNT", 5)),
                window=timedelta(seconds=_number(config, "RATE_LIMIT_WINDOW_SECONDS", 600)),
            ),
            receipt_token=str(config.get("SMS_RECEIPT_TOKEN") or ""),
            enabled=_flag(config, "DELIVERY_ENABLED"),
            batch=int(_number(config, "DELIVERY_BATCH", 50)),
            summary_template=str(config.get("SMS_SUMMARY_TEMPLATE") or "") or None,
        )

    def senders(self) -> dict[str, Sender]:
        return {EMAIL: SmtpSender(self.smtp), SMS: sms_sender(self.sms)}

    @property
    def lease(self) -> timedelta:
        """How long a claimed batch is a worker's own: longer than the batch can take with
        every send running into its timeout, so no other process takes a row still being
        sent (a worker that died leaves its rows to others after it)."""
        slowest = max(self.smtp.timeout, self.sms.timeout)
        return timedelta(seconds=max(120.0, self.batch * slowest * 2 + 30))

    def worker(self, db: Sessions) -> DeliveryWorker:
        return DeliveryWorker(
            db, self.senders(), policy=self.policy, batch=self.batch, lease=self.lease
        )

    def receipt_parser(self, provider: str) -> HttpSms:
        """The adapter that reads ``provider``'s delivery reports."""
        if provider not in PROVIDERS:
            raise ValueError(provider)
        return sms_sender(dataclasses.replace(self.sms, provider=provider))

    def apply_limits(self) -> None:
        """Make ``enqueue`` (which the rules call with a session, not a worker) use this
        process's rate limit and summary template."""
        deliveries.SETTINGS.rate_limit = self.rate_limit
        deliveries.SETTINGS.summary_template = self.summary_template


class DeliveryChannels(DependencyProvider):
    """The process's :class:`DeliveryRuntime`, read once from the container's config."""

    def setup(self) -> None:
        self.runtime = DeliveryRuntime.from_config(self.container.config)
        self.runtime.apply_limits()

    def get_dependency(self, worker_ctx: Any) -> DeliveryRuntime:
        return self.runtime


def send_due(db: Sessions, runtime: DeliveryRuntime, clock: Callable[[], datetime]) -> int:
    """One tick of the delivery timer: passes until fewer than a batch were due (at most ten
    batches, so the timer comes round again), then the queue lag measured. How many were
    handled."""
    worker = runtime.worker(db)
    handled = 0
    for _ in range(10):
        result = worker.run_once(clock())
        handled += result.handled
        if result.handled < worker.batch:
            break
    worker.measure_lag(clock())
    return handled


def receive_receipts(
    db: SessionScope, runtime: DeliveryRuntime, provider: str, token: Any, body: Any
) -> dict[str, Any]:
    """A provider's delivery reports, sent to the public receipt route with the shared token.
    The answer also carries what Aliyun (``code``/``msg``) and Tencent (``result``/``errmsg``)
    expect of a callback."""
    deliveries.check_receipt_token(runtime.receipt_token, token)
    if provider not in PROVIDERS:
        raise NotFound.of("SMS provider", provider)
    receipts = runtime.receipt_parser(provider).parse_receipts(deliveries.receipt_body(body))
    with db.session() as session:
        context = UseCaseContext(session, NO_EVENTS, Principal.for_service("notify"))
        answer = deliveries.Deliveries(context).receive_receipts(provider, receipts)
    return {**answer, "code": 0, "msg": "成功", "result": 0, "errmsg": "OK"}
