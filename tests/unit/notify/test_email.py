"""Email deliveries against a real SMTP server started by the test (aiosmtpd): what it
receives, and what the worker does when the server is down, defers or refuses."""

from __future__ import annotations

from datetime import timedelta

import pytest

from notify.channels.email import SmtpSettings
from notify.domain.delivery import FAILED, QUEUED, SENT
from tests.unit.notify import delivery_support as support
from tools.mail_catcher import free_port

NOON = support.local("2026-03-02 12:00")


@pytest.fixture
def db(sqlite_uri):
    return support.database(sqlite_uri)


def test_the_server_receives_a_utf8_multipart_message_from_our_own_address(db):
    with support.mail_catcher() as catcher:
        delivery_id = support.put(db, "email", NOON)
        result = support.worker(db, mail_port=catcher.smtp_port).run_once(NOON)
        assert result.sent == 1
        assert len(catcher.messages) == 1
        caught = catcher.messages[0]

    raw_headers = caught.raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    assert "Subject: =?utf-8?" in raw_headers  # RFC 2047, the raw header is ASCII
    assert caught.rcpt_tos == ["wang.xiaoming@example.cn"]
    assert caught.mail_from == "alerts@crm.example.cn"
    message = caught.message
    assert message["Subject"] == support.OVERDUE.subject
    assert message["From"].addresses[0].addr_spec == "alerts@crm.example.cn"
    assert message["From"].addresses[0].display_name == "CRM 消息提醒"
    assert message["To"].addresses[0].display_name == "王小明"
    assert message["Reply-To"] == "crm-support@example.cn"
    assert message["List-Unsubscribe"] == "<https://crm.example.cn/me/notification-preferences>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert str(delivery_id) in message["Message-ID"]
    assert message.get_content_type() == "multipart/alternative"
    plain, html = caught.part("plain"), caught.part("html")
    assert support.OVERDUE.text in plain
    assert "https://crm.example.cn/me/notification-preferences" in plain
    assert support.OVERDUE.link in plain
    assert "上海华东机电设备有限公司" in html
    assert 'href="https://crm.example.cn/me/notification-preferences"' in html
    assert f'href="{support.OVERDUE.link}"' in html
    stored = support.row(db, delivery_id)
    assert stored.status == SENT
    assert stored.provider == "smtp"
    assert stored.provider_id == message["Message-ID"]
    assert support.attempts(db, delivery_id) == [(1, "sent")]


def test_the_from_address_must_be_an_address_and_is_never_the_alerts(db):
    with pytest.raises(ValueError):
        SmtpSettings(from_address="not an address")
    outside = support.OutgoingMessage(
        subject="客户来信",
        text="From: boss@customer.example.com 请回电",
        html=None,
        sms_template=None,
    )
    with support.mail_catcher() as catcher:
        support.put(db, "email", NOON, message=outside)
        support.worker(db, mail_port=catcher.smtp_port).run_once(NOON)
        (caught,) = catcher.messages
    assert caught.message["From"].addresses[0].addr_spec == "alerts@crm.example.cn"
    assert caught.mail_from == "alerts@crm.example.cn"


def test_smtp_down_is_retried_and_the_message_delivered_once_when_it_is_back(db):
    port = free_port()
    delivery_id = support.put(db, "email", NOON)
    worker = support.worker(db, mail_port=port)

    first = worker.run_once(NOON)
    assert first.retried == 1
    stored = support.row(db, delivery_id)
    assert stored.status == QUEUED
    assert "Connection refused" in (stored.last_error or "") or "ECONNREFUSED" in (
        stored.last_error or ""
    )
    retry_at = stored.not_before.replace(tzinfo=NOON.tzinfo)
    assert NOON + timedelta(seconds=5) <= retry_at <= NOON + timedelta(seconds=10)

    with support.mail_catcher(smtp_port=port) as catcher:
        assert worker.run_once(retry_at - timedelta(seconds=1)).handled == 0  # not yet due
        assert worker.run_once(retry_at).sent == 1
        assert worker.run_once(retry_at + timedelta(hours=1)).handled == 0
        assert len(catcher.messages) == 1
    stored = support.row(db, delivery_id)
    assert stored.status == SENT
    assert stored.attempts == 2
    assert support.attempts(db, delivery_id) == [(1, "transient"), (2, "sent")]


def test_a_4xx_answer_is_retried_and_a_5xx_fails_at_once_with_its_reason(db):
    with support.mail_catcher(reject_with="451 4.3.0 Mailbox busy, try later") as catcher:
        busy = support.put(db, "email", NOON, dedup_key="busy")
        worker = support.worker(db, mail_port=catcher.smtp_port)
        assert worker.run_once(NOON).retried == 1
        assert "451" in (support.row(db, busy).last_error or "")

        catcher.reject_with = "550 5.1.1 <wang.xiaoming@example.cn>: user unknown"
        later = NOON + timedelta(minutes=1)
        assert worker.run_once(later).failed == 1
        stored = support.row(db, busy)
        assert stored.status == FAILED
        assert "550" in (stored.last_error or "") and "user unknown" in (stored.last_error or "")
        assert worker.run_once(later + timedelta(hours=2)).handled == 0
        assert catcher.messages == []


def test_a_recipient_without_an_email_address_is_recorded_as_failed(db):
    nobody = support.Recipient(user_id="u-9", name="赵六", email=None, mobile=None)
    delivery_id = support.put(db, "email", NOON, recipient=nobody)
    stored = support.row(db, delivery_id)
    assert stored.status == FAILED
    assert stored.last_error == "the recipient has no email address"


def test_starttls_with_auth_delivers_and_a_wrong_password_fails_for_good(db, tmp_path):
    tls = support.tls_context(tmp_path)
    with support.mail_catcher(tls=tls, credentials=("crm-alerts", "s3cret")) as catcher:
        good = support.put(db, "email", NOON, dedup_key="good")
        settings = support.smtp_settings(
            catcher.smtp_port,
            security="starttls",
            username="crm-alerts",
            password="s3cret",
            verify_tls=False,
        )
        worker = support.DeliveryWorker(db, {"email": support.SmtpSender(settings)})
        assert worker.run_once(NOON).sent == 1
        assert len(catcher.messages) == 1

        bad = support.put(db, "email", NOON, dedup_key="bad")
        wrong = support.smtp_settings(
            catcher.smtp_port,
            security="starttls",
            username="crm-alerts",
            password="guessed",
            verify_tls=False,
        )
        worker = support.DeliveryWorker(db, {"email": support.SmtpSender(wrong)})
        assert worker.run_once(NOON).failed == 1
        assert len(catcher.messages) == 1
    assert support.row(db, good).status == SENT
    assert "535" in (support.row(db, bad).last_error or "")


def test_implicit_tls_delivers(db, tmp_path):
    tls = support.tls_context(tmp_path)
    with support.mail_catcher(tls=tls, implicit_tls=True) as catcher:
        support.put(db, "email", NOON)
        settings = support.smtp_settings(catcher.smtp_port, security="tls", verify_tls=False)
        worker = support.DeliveryWorker(db, {"email": support.SmtpSender(settings)})
        assert worker.run_once(NOON).sent == 1
        assert catcher.messages[0].message["Subject"] == support.OVERDUE.subject


def test_plain_smtp_to_a_server_that_requires_starttls_is_refused(db, tmp_path):
    with support.mail_catcher(tls=support.tls_context(tmp_path)) as catcher:
        delivery_id = support.put(db, "email", NOON)
        worker = support.worker(db, mail_port=catcher.smtp_port)
        worker.run_once(NOON)
        assert catcher.messages == []
    assert "530" in (support.row(db, delivery_id).last_error or "")
