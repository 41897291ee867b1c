"""Notify's deliveries on the real broker: the service's delivery timer sends what the rules
handed over to a real local SMTP server and an Aliyun-shaped SMS endpoint, retries a 500, and
the gateway serves the admin's search and the provider's receipt callback. A rule naming a
role texts the people org says hold it, and follows org's changes of who does."""

from __future__ import annotations

from datetime import timedelta

import pytest
from kombu import Connection, Exchange
from nameko.standalone.rpc import ServiceRpcProxy
from prometheus_client import REGISTRY
from sqlalchemy import select

from crm_common.application import UseCaseContext
from crm_common.context import Principal
from crm_common.db import SessionScope, dispose_engine, engine_for
from crm_common.events import make_envelope
from crm_common.migrations import upgrade
from crm_common.models import utcnow
from crm_common.outbox import OutboxWriter
from demo.org import load_demo
from gateway.service import GatewayService
from notify.application.deliveries import OutgoingMessage, Recipient, enqueue
from notify.application.rules import Rules
from notify.models import OutboxMessage
from notify.models.rules import CatchUp
from notify.repository import rules as notify_rules
from notify.service import NotifyService
from org.hashing import HashCost, Passwords
from org.models import Person as OrgPerson
from org.service import OrgService
from tests.integration.standins import Api, find_free_port
from tests.support.polling import eventually
from tests.support.tokens import KEYS, context_of, user_token
from tools.mail_catcher import MailCatcher
from tools.sms_catcher import SmsCatcher

TOKEN = "receipt-token-integration"
ADMIN_CLAIMS = {"roles": ["ops"], "permissions": ["alerts:admin"], "grants": [{}]}
OWNER = Recipient(
    user_id="u-sales-01", name="王小明", email="wang@example.cn", mobile="13812345678"
)
MESSAGE = OutgoingMessage(
    subject="应收逾期：INV-2026-0042 已逾期 30 天",
    text="客户 上海华东机电设备有限公司 的发票 INV-2026-0042 已逾期 30 天，请跟进催收。",
    html=None,
    sms_template="SMS_270145001",
    sms_params={"invoice": "INV-2026-0042", "days": "30"},
    link=None,
)


def counted(channel: str, outcome: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "crm_notify_deliveries_total", {"channel": channel, "outcome": outcome}
        )
        or 0.0
    )


@pytest.fixture
def stack(rabbit_config, runner_factory, tmp_path):
    if "notify.test" not in KEYS.private:
        KEYS.add("notify.test")  # notify calls org as itself (catch-up), with its own key
    uri = f"sqlite:///{tmp_path / 'notify.db'}"
    upgrade("notify", uri)
    with MailCatcher() as mail, SmsCatcher(secrets={"aliyun": "aliyun-secret"}) as sms:
        config = {
            **rabbit_config,
            **KEYS.config(),
            "DB_URIS": {"notify": uri},
            "WEB_SERVER_ADDRESS": f"127.0.0.1:{find_free_port()}",
            "BACKEND_SERVICES": "notify",
            "RPC_TIMEOUT": 10,
            "METRICS_PORT": 0,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": mail.smtp_port,
            "MAIL_FROM": "alerts@crm.example.cn",
            "SMS_PROVIDER": "aliyun",
            "SMS_ENDPOINT": f"{sms.url}/aliyun",
            "SMS_KEY_ID": "LTAI-test",
            "SMS_KEY_SECRET": "aliyun-secret",
            "SMS_RECEIPT_TOKEN": TOKEN,
            "DELIVERY_RETRY_BASE_SECONDS": 0.2,
        }
        runner = runner_factory(config, GatewayService, NotifyService)
        runner.start()
        yield (
            Api(f"http://{config['WEB_SERVER_ADDRESS']}"),
            SessionScope(engine_for(uri)),
            mail,
            sms,
        )
        runner.stop()
    dispose_engine(uri)


def test_alerts_are_sent_retried_searched_and_receipted_through_the_stack(stack):
    api, db, mail, sms = stack
    sms.plan(OWNER.mobile, "error500")
    sent_before, retried_before = counted("sms", "sent"), counted("sms", "retry")
    now = utcnow() - timedelta(seconds=1)
    with db.session() as session:
        for channel in ("email", "sms"):
            enqueue(
                session,
                recipient=OWNER,
                channel=channel,
                message=MESSAGE,
                alert_type="invoice_overdue",
                rule_id=None,
                dedup_key=f"overdue:INV-2026-0042:u-sales-01:2026-03:{channel}",
                severity="warning",
                critical=True,  # whatever the hour the test runs at
                now=now,
            )

    eventually(
        lambda: len(mail.messages) == 1 and len(sms.messages) == 1,
        timeout=15,
        what="the email and the SMS",
    )
    assert mail.messages[0].message["Subject"] == MESSAGE.subject
    assert "上海华东机电设备有限公司" in mail.messages[0].part("plain")
    assert [r["behaviour"] for r in sms.requests if r["action"] == "SendSms"] == [
        "error500",
        "ok",
    ]
    assert counted("sms", "retry") == retried_before + 1

    admin = user_token("u-ops", **ADMIN_CLAIMS)

    def answered():  # the gateway's first calls may find a busy machine's broker slow
        response = api.get("/api/alerts/deliveries?channel=sms", token=admin)
        return response if response.status_code != 503 else None

    listed = eventually(answered, what="the gateway's first answer")
    assert listed.status_code == 200, listed.text
    (delivery,) = listed.json()["items"]

    def sent():
        answer = api.get(f"/api/alerts/deliveries/{delivery['id']}", token=admin).json()
        return answer if answer["status"] == "sent" else None

    detail = eventually(sent, what="the SMS recorded as sent")
    assert [a["outcome"] for a in detail["attempt_log"]] == ["transient", "sent"]
    assert counted("sms", "sent") == sent_before + 1
    assert api.get("/api/alerts/deliveries", token=user_token("u-sales-01")).status_code == 403

    report = [
        {
            "biz_id": detail["provider_id"],
            "out_id": delivery["id"],
            "success": True,
            "err_code": "DELIVERED",
            "err_msg": "用户接收成功",
        }
    ]
    path = f"/api/alerts/sms-receipts/aliyun?token={TOKEN}"
    first = api.post(path, json=report, auth=False)
    again = api.post(path, json=report, auth=False)
    assert first.status_code == again.status_code == 200, first.text
    assert (first.json()["applied"], again.json()["duplicates"]) == (1, 1)
    assert first.json()["code"] == 0
    refused = api.post("/api/alerts/sms-receipts/aliyun?token=wrong", json=report, auth=False)
    assert refused.status_code == 403
    detail = api.get(f"/api/alerts/deliveries/{delivery['id']}", token=admin).json()
    assert detail["status"] == "delivered"


def test_the_catcher_reports_each_sms_back_through_the_gateway(stack):
    api, db, _, sms = stack
    sms.receipt_url = f"{api.base_url}/api/alerts/sms-receipts"
    sms.receipt_token = TOKEN
    sms.receipt_delay = 0.2
    sms.plan("13812340002", "undelivered")
    now = utcnow() - timedelta(seconds=1)
    with db.session() as session:
        for mobile in ("13812340001", "13812340002"):
            recipient = Recipient(user_id=f"u-{mobile}", name="王小明", email=None, mobile=mobile)
            enqueue(
                session,
                recipient=recipient,
                channel="sms",
                message=MESSAGE,
                alert_type="invoice_overdue",
                rule_id=None,
                dedup_key=f"overdue:INV-2026-0042:{mobile}:sms",
                severity="warning",
                critical=True,
                now=now,
            )
    admin = user_token("u-ops", **ADMIN_CLAIMS)

    def settled():
        answer = api.get("/api/alerts/deliveries?channel=sms", token=admin)
        if answer.status_code != 200:
            return None
        statuses = {item["address"]: item["status"] for item in answer.json()["items"]}
        return statuses if set(statuses.values()) == {"delivered", "failed"} else None

    assert eventually(settled, timeout=20, what="both SMS receipted") == {
        "13812340001": "delivered",
        "13812340002": "failed",
    }

    def answered():
        """The catcher notes a receipt once the gateway answered it, after it was applied."""
        found = [(r["provider"], r["status"]) for r in sms.receipts]
        return found if len(found) == 2 else None

    assert eventually(answered, what="both receipts answered") == [("aliyun", 200)] * 2


# -- role recipients, from org's people to an SMS ------------------------------------------
ORG_ADMIN = Principal("u-root", permissions=("org:admin",))
ALERTS_ADMIN = Principal("u-ops", roles=("ops",), permissions=("alerts:admin",))
ROLE_RULE = {
    "code": "overdue_to_branch_managers",
    "name": "逾期通知分公司总经理",
    "alert_type": "receivable_overdue",
    "enabled": True,
    "trigger": {"type": "event", "source": "sales", "event_type": "invoice_overdue"},
    "recipients": [{"type": "role", "role": "branch_manager"}],
    "channels": {
        "inbox": {"subject": "发票 {code} 逾期", "body": "{customer_name}"},
        "sms": {"template": "SMS_1", "params": {"code": "{code}"}, "text": "发票{code}逾期"},
    },
    "severity": "warning",
    "bypass_quiet_hours": True,  # whatever the hour the test runs at
}


def publish_invoice_overdue(config, invoice_no):
    """Sales' ``invoice_overdue`` as its outbox publishes it."""
    data = {
        "invoice": {
            "invoice_no": invoice_no,
            "customer_name": "华东机电设备有限公司",
            "outstanding": "1234.50",
            "owner_id": "u-sales-02",
            "department_id": "d-east-js",
        },
        "days_overdue": 31,
        "owner_id": "u-sales-02",
        "department_id": "d-east-js",
    }
    body = make_envelope("invoice_overdue", data, source="sales", actor_id=None)
    exchange = Exchange("sales.events", type="topic", durable=True)
    with Connection(config["AMQP_URI"]) as connection:
        connection.Producer().publish(
            body,
            exchange=exchange,
            routing_key="invoice_overdue",
            serializer="json",
            declare=[exchange],
        )


def mobiles(org_uri, *person_ids):
    with SessionScope(engine_for(org_uri)).session() as session:
        stmt = select(OrgPerson.mobile).where(OrgPerson.id.in_(person_ids))
        return sorted(session.scalars(stmt))


@pytest.fixture
def org_and_notify(rabbit_config, runner_factory, tmp_path):
    """The real org service on the demo org chart and notify texting through the catcher."""
    if "notify.test" not in KEYS.private:
        KEYS.add("notify.test")
    org_uri = f"sqlite:///{tmp_path / 'org.db'}"
    notify_uri = f"sqlite:///{tmp_path / 'notify.db'}"
    upgrade("org", org_uri)
    upgrade("notify", notify_uri)
    with SessionScope(engine_for(org_uri)).session() as session:
        load_demo(session, Passwords(HashCost(1, 8, 1)).hash("Crm-demo-2026"), with_events=False)
    with SmsCatcher() as sms:
        config = {
            **rabbit_config,
            **KEYS.config(),
            "DB_URIS": {"org": org_uri, "notify": notify_uri},
            "RPC_TIMEOUT": 10,
            "METRICS_PORT": 0,
            "OUTBOX_POLL_SECONDS": 0.2,
            "SMS_PROVIDER": "webhook",
            "SMS_ENDPOINT": f"{sms.url}/webhook",
        }
        runner = runner_factory(config, OrgService, NotifyService)
        runner.start()
        yield config, SessionScope(engine_for(notify_uri)), sms
        runner.stop()
    dispose_engine(org_uri)
    dispose_engine(notify_uri)


def test_a_role_rule_texts_the_holders_of_the_role_as_org_tells_them(org_and_notify):
    config, db, sms = org_and_notify
    org_uri = config["DB_URIS"]["org"]

    def caught_up():
        with db.session() as session:
            return session.get(CatchUp, "org.people") is not None

    eventually(caught_up, timeout=30, what="notify caught up from org's people snapshot")
    with db.session() as session:
        context = UseCaseContext(
            session, OutboxWriter(OutboxMessage, "notify"), ALERTS_ADMIN, utcnow()
        )
        Rules(context).create(ROLE_RULE)

    managers = mobiles(org_uri, "p-branch-east", "p-branch-north", "p-branch-south")
    publish_invoice_overdue(config, "INV-ROLE-1")
    eventually(
        lambda: sorted(s.phone for s in sms.messages) == managers,
        timeout=20,
        what="an SMS to each branch manager",
    )
    assert {s.text for s in sms.messages} == {"发票INV-ROLE-1逾期"}

    # org makes a sales rep a branch manager too: notify hears it and texts them as well
    with ServiceRpcProxy("org", config, context_data=context_of(ORG_ADMIN), timeout=10) as org:
        user = org.get_record("users", "u-sales-01")
        org.update_record(
            "users",
            "u-sales-01",
            {"role_ids": ["role-sales-rep", "role-branch-manager"]},
            user["version"],
        )
    sms.clear()

    def holders():
        with db.session() as session:
            return {p.user_id for p in notify_rules.people_with_role(session, "branch_manager")}

    eventually(lambda: "u-sales-01" in holders(), timeout=20, what="person_changed applied")
    publish_invoice_overdue(config, "INV-ROLE-2")
    texted = sorted([*managers, *mobiles(org_uri, "p-sales-01")])
    eventually(
        lambda: sorted(s.phone for s in sms.messages) == texted,
        timeout=20,
        what="an SMS to each branch manager, the new one included",
    )
