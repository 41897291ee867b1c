"""SMS deliveries against a real local HTTP server that behaves like the providers
(``tools.sms_catcher``): what it receives, signatures it checks, and the worker's answer to
500s, rejections, throttling and timeouts."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from notify.domain.delivery import FAILED, OPT_OUT_TEXT, QUEUED, SENT
from tests.unit.notify import delivery_support as support

NOON = support.local("2026-03-02 12:00")
MOBILE = support.WANG.mobile
LATER = NOON + timedelta(hours=1)


@pytest.fixture
def db(sqlite_uri):
    return support.database(sqlite_uri)


def send_requests(catcher, provider="aliyun"):
    return [
        r
        for r in catcher.requests
        if r["provider"] == provider
        and r["action"] != "QuerySendDetails"
        and not r["action"].startswith("Pull")
    ]


def test_aliyun_receives_a_signed_sendsms_with_the_template_parameters_as_json(db):
    with support.sms_catcher(aliyun="aliyun-secret") as catcher:
        delivery_id = support.put(db, "sms", NOON)
        worker = support.worker(db, sms=support.sms_settings(catcher, "aliyun"))
        assert worker.run_once(NOON).sent == 1
        (sms,) = catcher.messages
    assert sms.form["Action"] == "SendSms"
    assert sms.form["PhoneNumbers"] == "13812345678"
    assert sms.form["SignName"] == "工业品CRM"
    assert sms.form["TemplateCode"] == "SMS_270145001"
    assert json.loads(sms.form["TemplateParam"]) == {
        "customer": "华东机电",
        "invoice": "INV-2026-0042",
        "days": "30",
    }
    assert sms.form["OutId"] == str(delivery_id)
    assert sms.form["SignatureMethod"] == "HMAC-SHA1" and sms.form["AccessKeyId"] == "LTAI-test"
    stored = support.row(db, delivery_id)
    assert (stored.status, stored.provider, stored.provider_id) == (SENT, "aliyun", sms.message_id)


def test_a_wrong_aliyun_secret_is_refused_for_good(db):
    with support.sms_catcher(aliyun="the-real-secret") as catcher:
        delivery_id = support.put(db, "sms", NOON)
        settings = support.sms_settings(catcher, "aliyun", key_secret="a-wrong-one")
        assert support.worker(db, sms=settings).run_once(NOON).failed == 1
        assert catcher.messages == []
    assert "SignatureDoesNotMatch" in (support.row(db, delivery_id).last_error or "")


def test_two_500s_then_ok_sends_exactly_one_sms(db):
    with support.sms_catcher(aliyun="s") as catcher:
        catcher.plan(MOBILE, "error500", "error500")
        delivery_id = support.put(db, "sms", NOON)
        worker = support.worker(db, sms=support.sms_settings(catcher, "aliyun"))
        moment = NOON
        for _ in range(3):
            worker.run_once(moment)
            moment = moment + timedelta(minutes=10)
        worker.run_once(moment + timedelta(hours=3))
        assert len(catcher.messages) == 1
        assert [r["behaviour"] for r in send_requests(catcher)] == ["error500", "error500", "ok"]
    stored = support.row(db, delivery_id)
    assert stored.status == SENT and stored.attempts == 3
    assert support.attempts(db, delivery_id) == [(1, "transient"), (2, "transient"), (3, "sent")]


def test_an_invalid_number_fails_at_once_with_the_reason_and_is_not_retried(db):
    with support.sms_catcher(aliyun="s") as catcher:
        catcher.plan(MOBILE, "invalid")
        delivery_id = support.put(db, "sms", NOON)
        worker = support.worker(db, sms=support.sms_settings(catcher, "aliyun"))
        assert worker.run_once(NOON).failed == 1
        worker.run_once(NOON + timedelta(days=1))
        assert len(send_requests(catcher)) == 1
        assert catcher.messages == []
    stored = support.row(db, delivery_id)
    assert stored.status == FAILED and stored.attempts == 1
    assert "isv.MOBILE_NUMBER_ILLEGAL" in (stored.last_error or "")


def test_throttling_is_retried_until_the_limit_then_fails(db):
    with support.sms_catcher(aliyun="s") as catcher:
        catcher.plan(MOBILE, *["throttle"] * 10)
        delivery_id = support.put(db, "sms", NOON)
        worker = support.worker(db, sms=support.sms_settings(catcher, "aliyun"))
        moment = NOON
        for _ in range(6):
            worker.run_once(moment)
            moment = moment + timedelta(minutes=10)
        assert len(send_requests(catcher)) == support.POLICY.max_attempts
    stored = support.row(db, delivery_id)
    assert stored.status == FAILED
    assert stored.last_error.startswith("gave up after 4 attempts: aliyun isv.BUSINESS_LIMIT")


def test_a_timeout_is_looked_up_and_not_sent_again_when_the_provider_has_it(db):
    with support.sms_catcher(aliyun="s") as catcher:
        catcher.plan(MOBILE, "timeout")
        delivery_id = support.put(db, "sms", NOON)
        worker = support.worker(db, sms=support.sms_settings(catcher, "aliyun"))
        assert worker.run_once(NOON).retried == 1
        assert support.row(db, delivery_id).status == QUEUED
        result = worker.run_once(LATER)
        assert result.found == 1
        assert len(catcher.messages) == 1
        assert [r["action"] for r in catcher.requests] == ["SendSms", "QuerySendDetails"]
    stored = support.row(db, delivery_id)
    assert stored.status == SENT
    assert support.attempts(db, delivery_id) == [(1, "uncertain"), (2, "found")]


def test_a_timeout_the_provider_never_got_is_sent_again_once(db):
    with support.sms_catcher(aliyun="s") as catcher:
        catcher.plan(MOBILE, "lost")
        delivery_id = support.put(db, "sms", NOON)
        worker = support.worker(db, sms=support.sms_settings(catcher, "aliyun"))
        worker.run_once(NOON)
        assert worker.run_once(LATER).sent == 1
        assert len(catcher.messages) == 1
        assert [r["action"] for r in catcher.requests] == [
            "SendSms",
            "QuerySendDetails",
            "SendSms",
        ]
    assert support.row(db, delivery_id).status == SENT


def test_tencent_receives_e164_numbers_positional_parameters_and_a_valid_tc3_signature(db):
    with support.sms_catcher(tencent="tencent-secret") as catcher:
        delivery_id = support.put(db, "sms", NOON)
        worker = support.worker(db, sms=support.sms_settings(catcher, "tencent"))
        assert worker.run_once(NOON).sent == 1
        (sms,) = catcher.messages
    assert sms.provider == "tencent"
    assert sms.headers["x-tc-action"] == "SendSms"
    assert sms.headers["authorization"].startswith("TC3-HMAC-SHA256 Credential=LTAI-test/")
    assert sms.params == ["华东机电", "INV-2026-0042", "30"]
    assert sms.template == "SMS_270145001"
    assert sms.reference == str(delivery_id)
    assert sms.sign_name == "工业品CRM"
    assert support.row(db, delivery_id).provider_id == sms.message_id


def test_tencent_timeout_is_looked_up_by_session_context(db):
    with support.sms_catcher(tencent="t") as catcher:
        catcher.plan(MOBILE, "timeout")
        delivery_id = support.put(db, "sms", NOON)
        worker = support.worker(db, sms=support.sms_settings(catcher, "tencent"))
        worker.run_once(NOON)
        assert worker.run_once(LATER).found == 1
        assert len(catcher.messages) == 1
    stored = support.row(db, delivery_id)
    assert stored.status == SENT and stored.provider_id == catcher.messages[0].message_id


def test_tencent_permanent_and_transient_codes(db):
    with support.sms_catcher(tencent="t") as catcher:
        catcher.plan(MOBILE, "invalid")
        catcher.plan("13900000000", "throttle")
        bad = support.put(db, "sms", NOON, dedup_key="bad")
        busy = support.put(
            db,
            "sms",
            NOON,
            dedup_key="busy",
            recipient=support.Recipient("u-2", "李四", None, "13900000000"),
        )
        result = support.worker(db, sms=support.sms_settings(catcher, "tencent")).run_once(NOON)
        assert (result.failed, result.retried) == (1, 1)
    assert "IncorrectPhoneNumber" in (support.row(db, bad).last_error or "")
    assert support.row(db, busy).status == QUEUED


def test_the_webhook_gets_the_text_signed_with_an_idempotency_key(db):
    with support.sms_catcher(webhook="hook-secret") as catcher:
        delivery_id = support.put(db, "sms", NOON)
        worker = support.worker(db, sms=support.sms_settings(catcher, "webhook"))
        assert worker.run_once(NOON).sent == 1
        (sms,) = catcher.messages
    assert sms.text == support.OVERDUE.text
    assert sms.params == support.OVERDUE.sms_params
    assert sms.headers["idempotency-key"] == str(delivery_id)
    assert sms.headers["x-signature"].startswith("sha256=")


def test_a_webhook_4xx_is_permanent(db):
    with support.sms_catcher() as catcher:
        catcher.plan(MOBILE, "invalid")
        delivery_id = support.put(db, "sms", NOON)
        support.worker(db, sms=support.sms_settings(catcher, "webhook")).run_once(NOON)
    stored = support.row(db, delivery_id)
    assert stored.status == FAILED and "HTTP 422" in (stored.last_error or "")


def test_marketing_sms_carries_the_opt_out_text_and_waits_for_the_day(db):
    promotion = support.OutgoingMessage(
        subject="春季促销", text="春季工业品促销，轴承全场九折。", html=None, sms_template=None
    )
    early = support.local("2026-03-02 07:30")
    with support.sms_catcher() as catcher:
        delivery_id = support.put(db, "sms", early, message=promotion, kind="marketing")
        worker = support.worker(db, sms=support.sms_settings(catcher, "webhook"))
        assert worker.run_once(early).handled == 0
        assert worker.run_once(support.local("2026-03-02 08:00")).sent == 1
        (sms,) = catcher.messages
    assert sms.text.endswith(OPT_OUT_TEXT)
    assert support.row(db, delivery_id).kind == "marketing"


def test_an_unreachable_provider_is_transient(db):
    from tools.mail_catcher import free_port

    delivery_id = support.put(db, "sms", NOON)
    settings = support.SmsSettings(
        provider="webhook", endpoint=f"http://127.0.0.1:{free_port()}/webhook", timeout=1.0
    )
    assert support.worker(db, sms=settings).run_once(NOON).retried == 1
    assert support.row(db, delivery_id).status == QUEUED


def test_mobiles_are_normalised_and_a_number_that_is_none_fails_with_the_reason(db):
    typed = support.Recipient("u-3", "王五", None, "+86 139-0188-0301")
    nonsense = support.Recipient("u-4", "赵六", None, "not a phone")
    kept = support.put(db, "sms", NOON, recipient=typed, dedup_key="typed")
    refused = support.put(db, "sms", NOON, recipient=nonsense, dedup_key="nonsense")
    assert support.row(db, kept).address == "13901880301"
    stored = support.row(db, refused)
    assert stored.status == FAILED
    assert stored.last_error == "'not a phone' is not a mainland mobile number"


def test_a_wrong_tencent_secret_is_refused_for_good(db):
    with support.sms_catcher(tencent="the-real-key") as catcher:
        delivery_id = support.put(db, "sms", NOON)
        settings = support.sms_settings(catcher, "tencent", key_secret="another-key")
        assert support.worker(db, sms=settings).run_once(NOON).failed == 1
        assert catcher.messages == []
    assert "AuthFailure.SignatureFailure" in (support.row(db, delivery_id).last_error or "")
