"""What the delivery tests share: a fresh notify database, a recipient, a clock, the local
SMTP and SMS servers, and a delivery worker pointed at them."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from crm_common.db import SessionScope, engine_for
from notify.application.deliveries import OutgoingMessage, Recipient, enqueue
from notify.application.sending import DeliveryWorker
from notify.channels.email import SmtpSender, SmtpSettings
from notify.channels.sms import SmsSettings, sms_sender
from notify.domain.delivery import RetryPolicy
from notify.models import Base
from notify.models.deliveries import Delivery, DeliveryAttempt
from tools.mail_catcher import MailCatcher
from tools.sms_catcher import SmsCatcher

SHANGHAI = ZoneInfo("Asia/Shanghai")
WANG = Recipient(
    user_id="u-sales-01",
    name="王小明",
    email="wang.xiaoming@example.cn",
    mobile="13812345678",
)
OVERDUE = OutgoingMessage(
    subject="应收逾期：华东机电 INV-2026-0042 已逾期 30 天",
    text="客户 上海华东机电设备有限公司 的发票 INV-2026-0042（¥128,000.00）"
    "已逾期 30 天，请跟进催收。",
    html=None,
    sms_template="SMS_270145001",
    sms_params={"customer": "华东机电", "invoice": "INV-2026-0042", "days": "30"},
    link="http://localhost:8000/receivables/INV-2026-0042",
)
POLICY = RetryPolicy(max_attempts=4, base=timedelta(seconds=10), cap=timedelta(minutes=5))


def local(text: str) -> datetime:
    """A Shanghai wall-clock time as UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI).astimezone(UTC)


def database(uri: str) -> SessionScope:
    engine = engine_for(uri)
    Base.metadata.create_all(engine)
    return SessionScope(engine)


def put(
    db: SessionScope,
    channel: str,
    now: datetime,
    *,
    recipient: Recipient = WANG,
    message: OutgoingMessage = OVERDUE,
    dedup_key: str | None = None,
    **options: Any,
) -> Any:
    values: dict[str, Any] = {
        "alert_type": "invoice_overdue",
        "rule_id": None,
        "severity": "warning",
        "critical": False,
    }
    values.update(options)
    with db.session() as session:
        return enqueue(
            session,
            recipient=recipient,
            channel=channel,
            message=message,
            dedup_key=dedup_key or f"rule:invoice:{now.isoformat()}:{channel}",
            now=now,
            **values,
        )


def row(db: SessionScope, delivery_id: Any) -> Delivery:
    with db.session() as session:
        found = session.get(Delivery, delivery_id)
        assert found is not None
        session.expunge(found)
        return found


def rows(db: SessionScope) -> list[Delivery]:
    with db.session() as session:
        found = list(session.scalars(select(Delivery).order_by(Delivery.created_at)))
        for item in found:
            session.expunge(item)
        return found


def attempts(db: SessionScope, delivery_id: Any) -> list[tuple[int, str]]:
    with db.session() as session:
        return [
            (a.number, a.outcome)
            for a in session.scalars(
                select(DeliveryAttempt)
                .where(DeliveryAttempt.delivery_id == delivery_id)
                .order_by(DeliveryAttempt.number)
            )
        ]


def smtp_settings(port: int, **overrides: Any) -> SmtpSettings:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "timeout": 2.0,
        "from_address": "alerts@crm.example.cn",
        "from_name": "CRM 消息提醒",
        "reply_to": "crm-support@example.cn",
        "preferences_url": "https://crm.example.cn/me/notification-preferences",
    }
    values.update(overrides)
    return SmtpSettings(**values)


def sms_settings(catcher: SmsCatcher, provider: str, **overrides: Any) -> SmsSettings:
    values: dict[str, Any] = {
        "provider": provider,
        "endpoint": f"{catcher.url}/{provider}",
        "key_id": "LTAI-test",
        "key_secret": catcher.secrets.get(provider, ""),
        "sign_name": "工业品CRM",
        "app_id": "1400000001",
        "timeout": 0.5,
    }
    values.update(overrides)
    return SmsSettings(**values)


def worker(
    db: SessionScope,
    *,
    mail_port: int | None = None,
    sms: SmsSettings | None = None,
    seed: int = 1,
) -> DeliveryWorker:
    senders: dict[str, Any] = {}
    if mail_port is not None:
        senders["email"] = SmtpSender(smtp_settings(mail_port))
    if sms is not None:
        senders["sms"] = sms_sender(sms)
    return DeliveryWorker(db, senders, policy=POLICY, rand=random.Random(seed).random)


@contextmanager
def mail_catcher(**options: Any) -> Iterator[MailCatcher]:
    with MailCatcher(**options) as catcher:
        yield catcher


@contextmanager
def sms_catcher(**secrets: str) -> Iterator[SmsCatcher]:
    with SmsCatcher(secrets=secrets, delay=1.0) as catcher:
        yield catcher


def tls_context(directory: Any) -> Any:
    """A server TLS context with a fresh self-signed certificate for 127.0.0.1."""
    import ipaddress
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "smtp.crt", directory / "smtp.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context
