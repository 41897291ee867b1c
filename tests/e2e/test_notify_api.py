"""Alerts through the gateway, every service its own process: the ERP issues an invoice of a
customer of sales01 that fell due 40 days ago; an administrator reviews the built-in
overdue-receivable rule (shipped disabled), sets it to run at 00:00 (so that it is due whatever
the hour the test runs) and enables it; notify's schedule asks sales for its overdue invoices as
its own service identity, and the owner (sales01) and the branch manager above the Shanghai
office (branch.east) find the alert in their inboxes, once; the local SMTP server started by
the test has sales01's email and the SMS endpoint sales01's SMS; sales01 marks the alert read;
another salesperson sees none of it; rules and preferences answer as their API says."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import pika
import pytest

from devstack import topology
from devstack.stack import Suite
from tests.support.polling import eventually
from tools.mail_catcher import MailCatcher
from tools.sms_catcher import SmsCatcher

ERP_CODE = "E2E-N-001"
SALES01_EMAIL, SALES01_MOBILE = "wang.wei@example.com", "13901880103"  # demo.org's 王伟
SALES01_ID = "u-sales-01"
SHANGHAI = timezone(timedelta(hours=8))


@pytest.fixture(scope="module")
def catchers():
    with MailCatcher() as mail, SmsCatcher() as sms:
        yield mail, sms


class CaughtSuite(Suite):
    """The stack with notify's email and SMS going to the test's catchers."""

    def __init__(self, workdir, mail: MailCatcher, sms: SmsCatcher) -> None:
        super().__init__(workdir)
        self.mail, self.sms = mail, sms

    def config(self):
        return {
            **super().config(),
            "SMTP_HOST": self.mail.host,
            "SMTP_PORT": self.mail.smtp_port,
            "SMTP_SECURITY": "plain",
            "SMS_PROVIDER": "webhook",
            "SMS_ENDPOINT": f"{self.sms.url}/webhook",
            # a send that fails while the machine is busy is tried again within seconds
            "DELIVERY_RETRY_BASE_SECONDS": 1,
        }


@pytest.fixture(scope="module")
def suite(tmp_path_factory, catchers):
    mail, sms = catchers
    with CaughtSuite(tmp_path_factory.mktemp("e2e-notify"), mail, sms) as running:
        yield running


@pytest.fixture(scope="module")
def admin(suite):
    return suite.client("admin")


@pytest.fixture(scope="module")
def salesperson(suite):
    return suite.client("sales01")


def deliveries_to(suite, admin, recipient_id):
    """What notify did with its deliveries to ``recipient_id`` (for a failure's message)."""
    answer = admin.get(
        suite.url("/api/alerts/deliveries"), params={"recipient_id": recipient_id, "limit": 50}
    )
    if answer.status_code != 200:
        return answer.text
    keys = ("channel", "address", "status", "attempts", "not_before", "last_error")
    return [{key: item.get(key) for key in keys} for item in answer.json()["items"]]


def answered(response, status=200):
    assert response.status_code == status, response.text
    return response.json()


def publish_as_erp(suite, envelope):
    uri = f"amqp://guest:guest@{suite.amqp_host}/{suite.vhost}"
    connection = pika.BlockingConnection(pika.URLParameters(uri))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            exchange=topology.ERP_EXCHANGE,
            routing_key=envelope["type"],
            body=json.dumps(envelope).encode(),
            properties=pika.BasicProperties(
                content_type="application/json",
                delivery_mode=pika.DeliveryMode.Persistent,
                message_id=envelope["event_id"],
            ),
            mandatory=True,
        )
    finally:
        connection.close()


@pytest.fixture(scope="module")
def overdue_invoice(suite, salesperson):
    """A customer of sales01 and an invoice of it 40 days past due, once sales has it."""
    customer = answered(
        salesperson.post(
            suite.url("/api/customers"),
            json={"name": "苏州工业园区精工机电有限公司", "region": "华东/江苏", "category": "A"},
        ),
        201,
    )
    invoice_no = f"INV-E2E-{uuid.uuid4().hex[:6]}"
    envelope = {
        "event_id": str(uuid.uuid4()),
        "type": "invoice_issued",
        "version": 1,
        "occurred_at": datetime.now(UTC).isoformat(),
        "source": "erp",
        "data": {
            "invoice_no": invoice_no,
            "erp_order_no": None,
            "customer": {
                "crm_customer_id": customer["id"],
                "erp_code": ERP_CODE,
                "credit_code": None,
                "name": customer["name"],
            },
            "issued_at": (datetime.now(UTC) - timedelta(days=70)).isoformat(),
            "due_date": (datetime.now(SHANGHAI).date() - timedelta(days=40)).isoformat(),
            "amount": "11300.00",
            "tax_amount": "1300.00",
            "currency": "CNY",
        },
    }

    def listed():
        # the invoice waits in sales until sales' copy of the customer arrives
        publish = listed.attempts % 10 == 0
        listed.attempts += 1
        if publish:
            publish_as_erp(suite, envelope)
        response = salesperson.get(suite.url("/api/receivables/invoices"), params={"q": invoice_no})
        if response.status_code != 200:
            return None
        items = [i for i in response.json()["items"] if i["invoice_no"] == invoice_no]
        return items[0] if items else None

    listed.attempts = 0
    invoice = eventually(listed, timeout=60, what="the ERP's invoice in sales")
    return {**invoice, "customer": customer}


def test_rules_are_for_administrators_and_the_u8_set_ships_disabled(suite, admin, salesperson):
    refused = salesperson.get(suite.url("/api/alerts/rules"))
    assert refused.status_code == 403, refused.text

    def shipped():
        items = answered(admin.get(suite.url("/api/alerts/rules"), params={"limit": 50}))["items"]
        codes = {rule["code"] for rule in items}
        return items if "overdue_receivable" in codes else None

    rules = eventually(shipped, timeout=30, what="the built-in rules")
    assert all(rule["built_in"] and not rule["enabled"] for rule in rules)
    bad = admin.post(
        suite.url("/api/alerts/rules"),
        json={
            "code": "broken",
            "name": "坏规则",
            "alert_type": "x",
            "trigger": {"type": "event", "source": "sales", "event_type": "invoice_overdue"},
            "conditions": {"all": [{"field": "days_overdue", "op": "~", "value": 1}]},
            "recipients": [{"type": "owner"}],
            "channels": {"inbox": {"subject": "s", "body": "b"}},
        },
    )
    assert bad.status_code == 422, bad.text
    assert "conditions.all.0.op" in bad.json()["errors"]


def test_an_enabled_overdue_receivable_rule_reaches_the_owners_inbox(
    suite, admin, salesperson, overdue_invoice, catchers
):
    mail, sms = catchers
    # quiet hours far from now, so that the email and SMS are not deferred whatever the hour
    quiet = datetime.now(SHANGHAI) + timedelta(hours=6)
    answered(
        salesperson.put(
            suite.url("/api/me/notification-preferences"),
            json={
                "quiet_start": quiet.strftime("%H:%M"),
                "quiet_end": (quiet + timedelta(hours=1)).strftime("%H:%M"),
            },
        )
    )
    rules = answered(admin.get(suite.url("/api/alerts/rules"), params={"limit": 50}))["items"]
    [rule] = [rule for rule in rules if rule["code"] == "overdue_receivable"]
    assert rule["trigger"]["kind"] == "overdue_invoices"
    definition = {
        key: rule[key]
        for key in (
            "name",
            "alert_type",
            "description",
            "conditions",
            "recipients",
            "channels",
            "severity",
            "bypass_quiet_hours",
        )
    }
    changed = answered(
        admin.put(
            suite.url(f"/api/alerts/rules/{rule['id']}"),
            json={**definition, "trigger": {**rule["trigger"], "daily_at": "00:00"}},
            headers={"If-Match": f'"{rule["version"]}"'},
        )
    )
    assert changed["revision"] == 2 and changed["enabled"] is False
    stale = admin.post(
        suite.url(f"/api/alerts/rules/{rule['id']}/enable"),
        json={},
        headers={"If-Match": f'"{rule["version"]}"'},
    )
    assert stale.status_code == 409, stale.text
    enabled = answered(
        admin.post(
            suite.url(f"/api/alerts/rules/{rule['id']}/enable"),
            json={},
            headers={"If-Match": f'"{changed["version"]}"'},
        )
    )
    assert enabled["enabled"] is True and enabled["revision"] == 3
    versions = answered(admin.get(suite.url(f"/api/alerts/rules/{rule['id']}/versions")))
    assert [v["revision"] for v in versions["items"]] == [3, 2, 1]
    assert versions["items"][-1]["trigger"]["daily_at"] == "09:00"

    invoice_no = overdue_invoice["invoice_no"]

    def alerted():
        items = answered(salesperson.get(suite.url("/api/inbox")))["items"]
        found = [item for item in items if item["record_id"] == invoice_no]
        return found or None

    [item] = eventually(alerted, timeout=60, what="the alert in sales01's inbox")
    assert item["title"] == f"发票 {invoice_no} 已逾期 40 天"
    assert "苏州工业园区精工机电有限公司" in item["body"] and "11300.00" in item["body"]
    assert item["severity"] == "warning" and item["read"] is False
    assert answered(salesperson.get(suite.url("/api/inbox/unread-count")))["unread"] >= 1

    def emailed():
        caught = [m for m in mail.messages if SALES01_EMAIL in m.rcpt_tos]
        assert caught, deliveries_to(suite, admin, SALES01_ID)
        return caught

    [email] = eventually(emailed, timeout=60, what="sales01's email at the SMTP server")
    assert email.message["Subject"] == f"发票 {invoice_no} 已逾期 40 天"
    assert "苏州工业园区精工机电有限公司" in email.part("plain")
    assert "11300.00 CNY" in email.part("plain")

    def texted():
        sent = sms.sent_to(SALES01_MOBILE)
        assert sent, deliveries_to(suite, admin, SALES01_ID)
        return sent

    [text] = eventually(texted, timeout=60, what="sales01's SMS")
    assert text.provider == "webhook" and text.template == "SMS_OVERDUE"
    assert f"发票{invoice_no}" in text.text and "已逾期40天" in text.text
    assert text.params == {
        "code": invoice_no,
        "customer": overdue_invoice["customer"]["name"],
        "days": "40",
    }

    manager = suite.client("branch.east")
    managed = eventually(
        lambda: (
            [
                i
                for i in answered(manager.get(suite.url("/api/inbox")))["items"]
                if i["record_id"] == invoice_no
            ]
            or None
        ),
        timeout=30,
        what="the alert in the branch manager's inbox",
    )
    assert len(managed) == 1

    other = suite.client("sales03")
    assert all(
        i["record_id"] != invoice_no for i in answered(other.get(suite.url("/api/inbox")))["items"]
    )
    missing = other.post(suite.url(f"/api/inbox/{item['id']}/read"))
    assert missing.status_code == 404, missing.text

    read = answered(salesperson.post(suite.url(f"/api/inbox/{item['id']}/read")))
    assert read["read"] is True
    unread = answered(salesperson.get(suite.url("/api/inbox"), params={"unread": "true"}))
    assert all(i["id"] != item["id"] for i in unread["items"])
    # the schedule keeps running: the same invoice does not alert again the same day
    still = answered(salesperson.get(suite.url("/api/inbox")))["items"]
    assert [i["record_id"] for i in still].count(invoice_no) == 1
    assert len([m for m in mail.messages if SALES01_EMAIL in m.rcpt_tos]) == 1
    assert len(sms.sent_to(SALES01_MOBILE)) == 1


def test_preferences_are_the_callers_own(suite):
    someone = suite.client("manager01")
    defaults = answered(someone.get(suite.url("/api/me/notification-preferences")))
    assert defaults["quiet_start"] == "21:00" and defaults["time_zone"] == "Asia/Shanghai"
    assert defaults["version"] == 0 and defaults["user_id"] == "u-manager-01"
    saved = answered(
        someone.put(
            suite.url("/api/me/notification-preferences"),
            json={
                "quiet_start": "22:00",
                "settings": [
                    {"alert_type": "customer_birthday", "channel": "sms", "enabled": False}
                ],
                "version": defaults["version"],
            },
        )
    )
    assert saved["quiet_start"] == "22:00" and saved["version"] == defaults["version"] + 1
    stale = someone.put(
        suite.url("/api/me/notification-preferences"),
        json={"settings": [], "version": defaults["version"]},
    )
    assert stale.status_code == 409, stale.text


def test_an_expense_submitted_reaches_its_approver_at_once(suite, admin, salesperson):
    """The event path: sales publishes expense_submitted, notify's handler fires the enabled
    built-in rule for the approver the expense waits for."""
    rules = answered(admin.get(suite.url("/api/alerts/rules"), params={"limit": 50}))["items"]
    [rule] = [rule for rule in rules if rule["code"] == "expense_awaiting_approval"]
    answered(
        admin.post(
            suite.url(f"/api/alerts/rules/{rule['id']}/enable"),
            json={},
            headers={"If-Match": f'"{rule["version"]}"'},
        )
    )
    body = {"expense_category": "travel", "amount": "320.00", "spent_on": date.today().isoformat()}

    def submitted():
        # 4xx until sales has its copy of the org chart
        response = salesperson.post(suite.url("/api/expenses"), json=body)
        return response.json() if response.status_code == 201 else None

    expense = eventually(submitted, timeout=30, what="an expense of sales01")
    assert expense["waiting_for"]["approver_user_id"] == "u-branch-east"
    manager = suite.client("branch.east")

    def alerted():
        items = answered(manager.get(suite.url("/api/inbox")))["items"]
        return [item for item in items if item["record_id"] == expense["id"]] or None

    [item] = eventually(alerted, timeout=30, what="the approver's alert")
    assert item["title"] == f"费用 {expense['code']} 待您审批"
    assert item["body"] == "320.00 CNY（travel）"
    mine = answered(salesperson.get(suite.url("/api/inbox")))["items"]
    assert all(i["record_id"] != expense["id"] for i in mine)
