"""Deliveries end to end inside the service: enqueue's rules (dedup, quiet hours, storms folded
into a summary, the daily digest), the worker on a clock the test sets, the admin's RPCs and
the providers' receipts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from nameko.testing.services import worker_factory

from crm_common.context import Principal, bind
from crm_common.errors import Conflict, Forbidden, NotFound, ValidationFailed
from crm_common.models import utcnow
from crm_common.outbox import OutboxWriter
from notify.application.delivery_runtime import DeliveryRuntime
from notify.domain.delivery import BUNDLED, DELIVERED, FAILED, QUEUED, SENT, RateLimit
from notify.models import OutboxMessage
from notify.service import NotifyService
from tests.unit.notify import delivery_support as support

NOON = support.local("2026-03-02 12:00")
ADMIN = Principal(user_id="u-ops", roles=("ops",), permissions=("alerts:admin",), grants=({},))
SALES = Principal(user_id="u-sales-01", roles=("sales",), permissions=(), grants=({},))
TOKEN = "receipt-token-0123456789"


@pytest.fixture
def db(sqlite_uri):
    return support.database(sqlite_uri)


@pytest.fixture
def admin():
    bind(ADMIN, "req-test")
    yield ADMIN
    bind(None, None)


def runtime(catcher=None, **config):
    values = {
        "SMS_PROVIDER": "aliyun",
        "SMS_ENDPOINT": f"{catcher.url}/aliyun" if catcher else "http://127.0.0.1:9/aliyun",
        "SMS_RECEIPT_TOKEN": TOKEN,
        **config,
    }
    return DeliveryRuntime.from_config(values)


def service(db, channels):
    return worker_factory(
        NotifyService, db=db, outbox=OutboxWriter(OutboxMessage, "notify"), channels=channels
    )


def test_the_same_dedup_key_on_the_same_channel_is_stored_once(db):
    first = support.put(db, "sms", NOON, dedup_key="rule-1:INV-42:u-sales-01:2026-03-02")
    again = support.put(db, "sms", NOON, dedup_key="rule-1:INV-42:u-sales-01:2026-03-02")
    email = support.put(db, "email", NOON, dedup_key="rule-1:INV-42:u-sales-01:2026-03-02")
    assert first is not None and email is not None
    assert again is None
    assert len(support.rows(db)) == 2


def test_quiet_hours_defer_to_08_00_and_the_message_leaves_then(db):
    evening = support.local("2026-03-02 22:15")
    with support.mail_catcher() as catcher:
        delivery_id = support.put(db, "email", evening)
        assert support.row(db, delivery_id).not_before.replace(
            tzinfo=evening.tzinfo
        ) == support.local("2026-03-03 08:00")
        worker = support.worker(db, mail_port=catcher.smtp_port)
        assert worker.run_once(evening + timedelta(minutes=1)).handled == 0
        assert worker.run_once(support.local("2026-03-03 07:59:59")).handled == 0
        assert catcher.messages == []
        assert worker.run_once(support.local("2026-03-03 08:00")).sent == 1
        assert worker.run_once(support.local("2026-03-03 09:00")).handled == 0
        assert len(catcher.messages) == 1
    assert support.row(db, delivery_id).status == SENT


def test_a_critical_alert_goes_out_in_quiet_hours(db):
    night = support.local("2026-03-02 23:40")
    with support.sms_catcher() as catcher:
        support.put(db, "sms", night, critical=True, severity="critical")
        worker = support.worker(db, sms=support.sms_settings(catcher, "webhook"))
        assert worker.run_once(night).sent == 1
        assert len(catcher.messages) == 1


def test_a_storm_becomes_a_few_messages_and_one_summary(db):
    with support.sms_catcher() as catcher:
        for n in range(50):
            message = support.OutgoingMessage(
                subject=f"工单 SR-{n:03d} 即将超时",
                text=f"服务工单 SR-{n:03d} 将在 30 分钟内超出 SLA。",
                html=None,
                sms_template=None,
            )
            support.put(
                db, "sms", NOON + timedelta(seconds=n), message=message, dedup_key=f"sla:{n}"
            )
        stored = support.rows(db)
        assert sum(1 for d in stored if d.kind == "alert" and d.status == QUEUED) == 5
        assert sum(1 for d in stored if d.status == BUNDLED) == 45
        (summary,) = [d for d in stored if d.kind == "summary"]
        assert {d.bundle_id for d in stored if d.status == BUNDLED} == {summary.id}

        worker = support.worker(db, sms=support.sms_settings(catcher, "webhook"))
        assert worker.run_once(NOON + timedelta(minutes=1)).sent == 5
        assert len(catcher.messages) == 5
        assert worker.run_once(NOON + timedelta(minutes=9)).handled == 0
        assert worker.run_once(NOON + timedelta(minutes=11)).sent == 1
        assert worker.run_once(NOON + timedelta(hours=2)).handled == 0
        assert len(catcher.messages) == 6
        text = catcher.messages[-1].text
    assert text.startswith("提醒合并：另有 45 条提醒")
    assert "SR-005" in text and "等共 45 条" in text
    members = [d for d in support.rows(db) if d.bundle_id == summary.id]
    assert all(d.sent_at is not None for d in members)


def test_digest_messages_wait_for_the_morning_in_one_email(db):
    with support.mail_catcher() as catcher:
        for n in range(3):
            message = support.OutgoingMessage(
                subject=f"客户生日提醒 {n}", text=f"客户 {n} 明天生日", html=None, sms_template=None
            )
            support.put(
                db,
                "email",
                NOON + timedelta(hours=n),
                message=message,
                dedup_key=f"b{n}",
                digest=True,
            )
        urgent = support.put(
            db, "email", NOON, dedup_key="urgent", digest=True, critical=True, severity="critical"
        )
        worker = support.worker(db, mail_port=catcher.smtp_port)
        assert worker.run_once(NOON + timedelta(hours=3)).sent == 1  # the critical one only
        assert support.row(db, urgent).status == SENT
        assert worker.run_once(support.local("2026-03-03 07:59")).handled == 0
        assert worker.run_once(support.local("2026-03-03 08:00")).sent == 1
        digest = catcher.messages[-1]
    assert digest.message["Subject"] == "今日提醒汇总：共 3 条"
    plain = digest.part("plain")
    assert (
        plain.index("客户生日提醒 0")
        < plain.index("客户生日提醒 1")
        < plain.index("客户生日提醒 2")
    )


def test_a_worker_that_stopped_mid_send_is_looked_up_before_sending_again(db):
    with support.sms_catcher(aliyun="s") as catcher:
        delivery_id = support.put(db, "sms", NOON)
        worker = support.worker(db, sms=support.sms_settings(catcher, "aliyun"))
        (claimed,) = worker.claim(NOON)  # the worker claims it, sends it, and dies
        worker.senders["sms"].send(claimed.message)
        assert worker.run_once(NOON + timedelta(minutes=1)).handled == 0  # its lease holds
        assert worker.run_once(NOON + timedelta(minutes=3)).found == 1
        assert len(catcher.messages) == 1
    assert support.attempts(db, delivery_id) == [(1, "uncertain"), (2, "found")]


def test_admins_search_read_and_retry_deliveries(db, admin):
    with support.sms_catcher(aliyun="s") as catcher:
        catcher.plan(support.WANG.mobile, "invalid")
        channels = runtime(catcher)
        failed = support.put(db, "sms", NOON, dedup_key="one")
        email = support.put(db, "email", NOON, dedup_key="two")
        support.worker(db, sms=support.sms_settings(catcher, "aliyun")).run_once(NOON)
        notify = service(db, channels)

        page = notify.list_deliveries({"channel": "sms", "status": "failed"})
        assert [item["id"] for item in page["items"]] == [str(failed)]
        assert page["items"][0]["last_error"].startswith("aliyun isv.MOBILE_NUMBER_ILLEGAL")
        everything = notify.list_deliveries({"recipient_id": "u-sales-01", "limit": 1})
        assert len(everything["items"]) == 1 and everything["next_cursor"]
        rest = notify.list_deliveries(
            {"recipient_id": "u-sales-01", "limit": 1, "cursor": everything["next_cursor"]}
        )
        assert {everything["items"][0]["id"], rest["items"][0]["id"]} == {
            str(failed),
            str(email),
        }
        period = notify.list_deliveries({"created_from": "2026-03-03"})
        assert period["items"] == []
        with pytest.raises(ValidationFailed):
            notify.list_deliveries({"status": "lost"})

        detail = notify.get_delivery(str(failed))
        assert detail["status"] == FAILED
        assert [a["outcome"] for a in detail["attempt_log"]] == ["permanent"]

        retried = notify.retry_delivery(str(failed))
        assert retried["status"] == QUEUED and retried["attempts"] == 0
        with pytest.raises(Conflict):
            notify.retry_delivery(str(failed))
        worker = support.worker(db, sms=support.sms_settings(catcher, "aliyun"))
        assert worker.run_until_idle(utcnow() + timedelta(seconds=1)).sent == 1  # real now
        assert len(catcher.messages) == 1
        with pytest.raises(NotFound):
            notify.get_delivery("00000000-0000-0000-0000-000000000000")
        for malformed in ("0", "not-an-id"):  # names no delivery, as an unknown id does
            with pytest.raises(NotFound):
                notify.get_delivery(malformed)
            with pytest.raises(NotFound):
                notify.retry_delivery(malformed)


def test_others_may_not_see_deliveries(db, admin):
    notify = service(db, runtime())
    bind(SALES, "req-test")
    with pytest.raises(Forbidden):
        notify.list_deliveries({})


def test_a_receipt_sent_twice_changes_the_delivery_once(db, admin):
    with support.sms_catcher(aliyun="s") as catcher:
        delivery_id = support.put(db, "sms", NOON)
        support.worker(db, sms=support.sms_settings(catcher, "aliyun")).run_once(NOON)
        biz_id = catcher.messages[0].message_id
    version = support.row(db, delivery_id).version
    notify = service(db, runtime())
    report = [
        {
            "phone_number": "13812345678",
            "send_time": "2026-03-02 12:00:01",
            "report_time": "2026-03-02 12:00:05",
            "success": True,
            "err_code": "DELIVERED",
            "err_msg": "用户接收成功",
            "sms_size": "1",
            "biz_id": biz_id,
            "out_id": str(delivery_id),
        }
    ]
    first = notify.receive_sms_receipts("aliyun", TOKEN, report)
    second = notify.receive_sms_receipts("aliyun", TOKEN, report)
    assert (first["applied"], first["duplicates"]) == (1, 0)
    assert (second["applied"], second["duplicates"]) == (0, 1)
    assert first["code"] == 0 and first["result"] == 0
    stored = support.row(db, delivery_id)
    assert stored.status == DELIVERED and stored.delivered_at is not None
    assert stored.version == version + 1


def test_receipts_need_the_token_and_a_known_provider(db):
    notify = service(db, runtime())
    with pytest.raises(Forbidden):
        notify.receive_sms_receipts("aliyun", "wrong", [])
    with pytest.raises(Forbidden):
        service(db, runtime(SMS_RECEIPT_TOKEN="")).receive_sms_receipts("aliyun", "", [])
    with pytest.raises(NotFound):
        notify.receive_sms_receipts("carrier-pigeon", TOKEN, [])
    with pytest.raises(ValidationFailed):
        notify.receive_sms_receipts("webhook", TOKEN, "delivered")


def test_a_failure_report_fails_the_delivery_with_the_providers_reason(db):
    with support.sms_catcher(tencent="t") as catcher:
        delivery_id = support.put(db, "sms", NOON)
        support.worker(db, sms=support.sms_settings(catcher, "tencent")).run_once(NOON)
        serial = catcher.messages[0].message_id
    notify = service(db, runtime(SMS_PROVIDER="tencent"))
    answer = notify.receive_sms_receipts(
        "tencent",
        TOKEN,
        [{"sid": serial, "report_status": "FAIL", "errmsg": "MK:0005", "description": "空号"}],
    )
    assert answer["applied"] == 1
    stored = support.row(db, delivery_id)
    assert stored.status == FAILED and "空号" in (stored.last_error or "")


def test_the_rate_limit_comes_from_config():
    channels = runtime(RATE_LIMIT_COUNT="2", RATE_LIMIT_WINDOW_SECONDS="60")
    assert channels.rate_limit == RateLimit(limit=2, window=timedelta(seconds=60))


def test_a_batch_is_leased_for_longer_than_it_can_take():
    channels = runtime(DELIVERY_BATCH="20", SMTP_TIMEOUT="5", SMS_TIMEOUT="10")
    assert channels.lease == timedelta(seconds=20 * 10 * 2 + 30)
    assert runtime(DELIVERY_BATCH="1", SMS_TIMEOUT="1").lease == timedelta(minutes=2)


def test_queue_lag_is_the_wait_of_the_oldest_due_delivery(db):
    from prometheus_client import REGISTRY

    support.put(db, "email", NOON, dedup_key="a")
    support.put(db, "email", NOON + timedelta(seconds=30), dedup_key="b")
    support.put(db, "sms", support.local("2026-03-02 22:00"), dedup_key="night")  # not due
    worker = support.worker(db)
    assert worker.measure_lag(NOON + timedelta(seconds=90)) == {"email": 90.0}
    gauge = REGISTRY.get_sample_value("crm_notify_queue_lag_seconds", {"channel": "email"})
    assert gauge == 90.0
    assert REGISTRY.get_sample_value("crm_notify_queue_lag_seconds", {"channel": "sms"}) == 0.0
