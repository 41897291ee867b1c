"""Rules fired by events and schedules: the owner's inbox once even when the event comes twice,
a schedule run twice in a day alerts once, recipients resolved from notify's copy of org,
preferences deciding the channels, email and SMS handed to deliveries in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from crm_common.consumer import ReceivedEvent
from notify.application.alerts import Alerts, RuleIndex
from notify.application.schedules import run_due
from notify.models import InboxEvent
from notify.models.rules import AlertKey, InboxItem

from . import rules_support
from .rules_support import ADMIN, NOW, SALES, envelope, event_rule, invoice_overdue

db = rules_support.db
service = rules_support.service
act_as = rules_support.act_as


@dataclass
class Handed:
    """What ``deliveries.enqueue`` was given, call by call (a stand-in for the hand-off
    only where the test is about what notify hands over)."""

    calls: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, session: Any, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return len(self.calls)

    def channels(self) -> list[tuple[str, str]]:
        return [(call["recipient"].user_id, call["channel"]) for call in self.calls]


def inbox(db, user_id: str | None = None) -> list[InboxItem]:
    with db.session() as session:
        stmt = select(InboxItem).order_by(InboxItem.created_at, InboxItem.user_id)
        if user_id:
            stmt = stmt.where(InboxItem.user_id == user_id)
        items = list(session.scalars(stmt))
        session.expunge_all()
        return items


def deliver(service, event_type: str, data: dict[str, Any], event_id: str | None = None) -> str:
    sent = envelope("sales", event_type, data, event_id)
    getattr(service, f"on_{event_type}")(ReceivedEvent(sent, f"notify.on_{event_type}", InboxEvent))
    return sent["event_id"]


@pytest.fixture
def notify(service):
    service.rule_index = RuleIndex()
    return service


def fire_event(
    db,
    source: str,
    event_type: str,
    data: dict[str, Any],
    handed: Handed,
    event_id: str | None = None,
):
    with db.session() as session:
        return Alerts(session, NOW, RuleIndex(), handoff=handed).on_event(
            source, envelope(source, event_type, data, event_id)
        )


def test_an_event_alerts_the_owner_once_even_when_delivered_twice(db, notify):
    notify.create_alert_rule(event_rule(channels={"inbox": event_rule()["channels"]["inbox"]}))
    event_id = deliver(notify, "invoice_overdue", invoice_overdue())
    deliver(notify, "invoice_overdue", invoice_overdue(), event_id)
    [item] = inbox(db)
    assert item.user_id == "u-sales-01"
    assert item.title == "发票 INV-1 已逾期 31 天"
    assert item.body == "华东机电设备有限公司 欠 1234.50"
    assert (item.record_type, item.record_id, item.severity) == ("invoice", "INV-1", "warning")
    # a new event about the same invoice is a new period: it alerts again
    deliver(notify, "invoice_overdue", invoice_overdue(days=61))
    assert len(inbox(db)) == 2


def test_the_same_event_id_redelivered_past_the_inbox_alerts_nobody_twice(db):
    """Even without the consumer's inbox (another handler, a replayed dead letter), the
    alert key keeps the event's alert single."""
    handed = Handed()
    with db.session() as session:
        from crm_common.application import UseCaseContext
        from crm_common.outbox import OutboxWriter
        from notify.application.rules import Rules
        from notify.models import OutboxMessage

        Rules(UseCaseContext(session, OutboxWriter(OutboxMessage, "notify"), ADMIN, NOW)).create(
            event_rule()
        )
    first = fire_event(db, "sales", "invoice_overdue", invoice_overdue(), handed, "e-1")
    again = fire_event(db, "sales", "invoice_overdue", invoice_overdue(), handed, "e-1")
    assert (first.alerts, first.inbox, first.email, first.sms) == (1, 1, 1, 1)
    assert (again.alerts, again.inbox, again.email, again.sms) == (0, 0, 0, 0)
    assert handed.channels() == [("u-sales-01", "email"), ("u-sales-01", "sms")]
    email, sms = handed.calls
    assert email["message"].subject == "发票 INV-1 逾期"
    assert email["message"].text == "未收 1234.50 CNY"
    assert email["recipient"].email == "Zhang@example.com"  # domain lower-cased only
    assert sms["recipient"].mobile == "13901880301"
    assert sms["message"].sms_template == "SMS_1"
    assert list(sms["message"].sms_params.items()) == [("code", "INV-1"), ("days", "31")]
    assert email["dedup_key"] == sms["dedup_key"] and email["critical"] is False
    assert email["digest"] is False and email["alert_type"] == "receivable_overdue"


def test_a_condition_that_does_not_hold_or_a_disabled_rule_alerts_nobody(db, notify):
    rule = notify.create_alert_rule(event_rule())
    deliver(notify, "invoice_overdue", invoice_overdue(days=10))
    assert inbox(db) == []
    notify.disable_alert_rule(rule["id"], rule["version"])
    deliver(notify, "invoice_overdue", invoice_overdue(days=90))
    assert inbox(db) == []


def test_the_rule_index_follows_rule_changes(db, notify):
    deliver(notify, "invoice_overdue", invoice_overdue())
    assert inbox(db) == []
    rule = notify.create_alert_rule(event_rule())
    deliver(notify, "invoice_overdue", invoice_overdue())
    assert len(inbox(db)) == 1
    changed = notify.update_alert_rule(
        rule["id"],
        {
            **{k: v for k, v in event_rule().items() if k != "code"},
            "conditions": {"field": "days_overdue", "op": ">=", "value": 90},
        },
        rule["version"],
    )
    assert changed["revision"] == 2
    deliver(notify, "invoice_overdue", invoice_overdue())
    assert len(inbox(db)) == 1


def test_recipients_owner_manager_department_named_users_and_record_fields(db):
    handed = Handed()
    with db.session() as session:
        from crm_common.application import UseCaseContext
        from crm_common.outbox import OutboxWriter
        from notify.application.rules import Rules
        from notify.models import OutboxMessage

        rules = Rules(UseCaseContext(session, OutboxWriter(OutboxMessage, "notify"), ADMIN, NOW))
        rules.create(
            event_rule(
                recipients=[
                    {"type": "owner"},
                    {"type": "manager"},
                    {"type": "department", "department_id": "d-east", "include_children": True},
                    {"type": "users", "user_ids": ["u-ceo", "u-left", "u-unknown"]},
                ],
                channels={"inbox": {"subject": "{code}", "body": "{recipient_name}"}},
            )
        )
        rules.create(
            event_rule(
                code="approver",
                trigger={"type": "event", "source": "sales", "event_type": "expense_submitted"},
                conditions=None,
                recipients=[{"type": "field", "path": "waiting_for.approver_user_id"}],
                channels={"inbox": {"subject": "费用 {code} 待您审批", "body": "{amount}"}},
            )
        )
    fire_event(db, "sales", "invoice_overdue", invoice_overdue(), handed)
    # the owner, their branch manager (the office has none), everyone in the branch and its
    # offices who is still here, the CEO, a user notify knows no person of; not who left
    assert sorted(item.user_id for item in inbox(db)) == [
        "u-branch-east",
        "u-ceo",
        "u-sales-01",
        "u-sales-02",
        "u-unknown",
    ]
    assert {item.body for item in inbox(db, "u-sales-02")} == {"王芳"}
    expense = {
        "expense": {
            "id": "9d2b8f59-1b0c-4a8e-9d5c-2f8f0c0e7a11",
            "code": "EXP-2026-000001",
            "submitter_id": "u-sales-01",
            "department_id": "d-east-sh",
            "amount": "800.00",
            "waiting_for": {"level": 1, "approver_user_id": "u-branch-east"},
        }
    }
    fire_event(db, "sales", "expense_submitted", expense, handed)
    [approval] = [item for item in inbox(db, "u-branch-east") if item.title.startswith("费用")]
    assert approval.title == "费用 EXP-2026-000001 待您审批" and approval.body == "800.00"
    assert approval.record_id == "9d2b8f59-1b0c-4a8e-9d5c-2f8f0c0e7a11"


def test_preferences_turn_channels_off_and_hold_for_the_digest(db, notify, act_as):
    notify.create_alert_rule(event_rule())
    act_as(SALES)
    notify.put_notification_preferences(
        {
            "settings": [
                {"alert_type": "*", "channel": "sms", "enabled": False},
                {"alert_type": "receivable_overdue", "channel": "email", "digest": "daily"},
                {"alert_type": "receivable_overdue", "channel": "inbox", "enabled": False},
            ]
        }
    )
    handed = Handed()
    fired = fire_event(db, "sales", "invoice_overdue", invoice_overdue(), handed)
    assert (fired.alerts, fired.inbox, fired.email, fired.sms) == (1, 0, 1, 0)
    assert inbox(db) == []
    [email] = handed.calls
    assert email["channel"] == "email" and email["digest"] is True


def test_a_critical_alert_is_never_held_for_the_digest_and_may_bypass_quiet_hours(
    db, notify, act_as
):
    notify.create_alert_rule(event_rule(severity="critical", bypass_quiet_hours=True))
    act_as(SALES)
    notify.put_notification_preferences(
        {"settings": [{"alert_type": "*", "channel": "email", "digest": "daily"}]}
    )
    handed = Handed()
    fire_event(db, "sales", "invoice_overdue", invoice_overdue(), handed)
    email = next(call for call in handed.calls if call["channel"] == "email")
    assert (
        email["digest"] is False and email["critical"] is True and email["severity"] == "critical"
    )


SCHEDULE = {
    "type": "schedule",
    "source": "sales",
    "daily_at": "09:00",
    "kind": "overdue_invoices",
    "params": {"days": 30},
}


def due_invoice(invoice_no: str, days: int, owner: str = "u-sales-01") -> dict[str, Any]:
    return {
        "record_type": "invoice",
        "record_id": invoice_no,
        "code": invoice_no,
        "owner_id": owner,
        "department_id": "d-east-sh",
        "customer_id": "5c1f5d1e-8a39-4d7f-9b61-6a0a4d1e2f01",
        "due_on": "2026-10-01",
        "fields": {
            "customer_name": "华东机电",
            "outstanding": "99.00",
            "currency": "CNY",
            "days_overdue": days,
        },
    }


class Source:
    """A due_records answerer: what it was asked, and the records it answers."""

    def __init__(self, *items: dict[str, Any]) -> None:
        self.items = list(items)
        self.asked: list[tuple[str, str, dict[str, Any]]] = []

    def __call__(self, source: str, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        self.asked.append((source, kind, params))
        return {"items": self.items}


def test_a_schedule_run_twice_in_a_day_alerts_once(db, notify):
    notify.create_alert_rule(
        event_rule(
            trigger=SCHEDULE,
            recipients=[{"type": "owner"}, {"type": "manager"}],
            channels={
                "inbox": {
                    "subject": "发票 {code} 已逾期 {days_overdue} 天",
                    "body": "{customer_name} {due_on}",
                }
            },
        )
    )
    source = Source(due_invoice("INV-1", 31), due_invoice("INV-2", 12), {"record_type": "invoice"})
    handed = Handed()
    first = run_due(db, source, NOW, handoff=handed)
    assert source.asked == [("sales", "overdue_invoices", {"days": 30})]
    assert first["overdue_event"].alerts == 2  # INV-1 to the owner and the branch manager
    assert sorted((i.user_id, i.title) for i in inbox(db)) == [
        ("u-branch-east", "发票 INV-1 已逾期 31 天"),
        ("u-sales-01", "发票 INV-1 已逾期 31 天"),
    ]
    # the same day again (a restart, a second replica): not due, and if run, nobody twice
    assert run_due(db, source, NOW + timedelta(hours=1), handoff=handed) == {}
    with db.session() as session:
        assert (
            Alerts(session, NOW + timedelta(hours=2), RuleIndex(), handoff=handed)
            .on_due_records(_compiled(session), source.items)
            .alerts
            == 0
        )
    assert len(inbox(db)) == 2
    # the next day it runs again and alerts again
    again = run_due(db, source, NOW + timedelta(days=1), handoff=handed)
    assert again["overdue_event"].alerts == 2 and len(inbox(db)) == 4


def _compiled(session):
    from notify.application.alerts import CompiledRule
    from notify.repository import rules as repository

    [rule] = repository.enabled_rules(session, "schedule")
    return CompiledRule.of(rule)


def test_a_daily_schedule_waits_for_its_time_and_every_minutes_for_its_interval(db, notify):
    notify.create_alert_rule(event_rule(trigger={**SCHEDULE, "daily_at": "10:30"}))
    frequent = notify.create_alert_rule(
        event_rule(code="frequent", trigger={**SCHEDULE, "daily_at": None, "every_minutes": 30})
    )
    source = Source()
    assert set(run_due(db, source, NOW)) == {"frequent"}  # 10:00 in Shanghai
    ran = notify.get_alert_rule(frequent["id"])
    assert ran["last_run_at"] is not None
    # a run is not a save: neither the version nor updated_at moves
    assert (ran["version"], ran["updated_at"]) == (frequent["version"], frequent["updated_at"])
    assert run_due(db, source, NOW + timedelta(minutes=20)) == {}
    assert set(run_due(db, source, NOW + timedelta(minutes=31))) == {"frequent", "overdue_event"}


def test_a_source_that_does_not_answer_is_asked_again_next_tick(db, notify):
    notify.create_alert_rule(event_rule(trigger=SCHEDULE))

    def down(source, kind, params):
        raise TimeoutError("no answer")

    assert run_due(db, down, NOW, failures=(TimeoutError,)) == {}
    source = Source(due_invoice("INV-1", 31))
    assert run_due(db, source, NOW + timedelta(minutes=1))["overdue_event"].alerts == 1
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(AlertKey)) == 1


def test_email_and_sms_are_stored_as_deliveries_in_the_same_transaction(db, notify):
    from notify.models.deliveries import Delivery

    notify.create_alert_rule(event_rule())
    event_id = deliver(notify, "invoice_overdue", invoice_overdue())
    deliver(notify, "invoice_overdue", invoice_overdue(), event_id)
    with db.session() as session:
        rows = session.execute(
            select(Delivery.channel, Delivery.address, Delivery.recipient_id)
        ).all()
    assert sorted(rows) == [
        ("email", "Zhang@example.com", "u-sales-01"),
        ("sms", "13901880301", "u-sales-01"),
    ]


def test_old_alert_keys_are_forgotten_and_alerts_counted(db, notify):
    from prometheus_client import REGISTRY

    from crm_common.models import utcnow
    from notify.application.alerts import KEY_DAYS, forget_old_keys

    def counted(channel: str) -> float:
        value = REGISTRY.get_sample_value(
            "notify_alerts_total", {"trigger": "event", "channel": channel}
        )
        return value or 0.0

    before = counted("alert"), counted("inbox")
    notify.create_alert_rule(event_rule(channels={"inbox": event_rule()["channels"]["inbox"]}))
    deliver(notify, "invoice_overdue", invoice_overdue())
    assert (counted("alert"), counted("inbox")) == (before[0] + 1, before[1] + 1)
    fired_at = utcnow()  # the handler fires at the time it runs
    with db.session() as session:
        assert forget_old_keys(session, fired_at + timedelta(days=KEY_DAYS - 1)) == 0
    with db.session() as session:
        assert forget_old_keys(session, fired_at + timedelta(days=KEY_DAYS, minutes=1)) == 1
        assert session.scalar(select(func.count()).select_from(AlertKey)) == 0


def test_the_record_of_each_kind_of_sales_event():
    from notify.domain.rules import subject_of_event

    won = subject_of_event(
        "opportunity_won",
        {"opportunity": {"id": "o-1", "code": "OPP-1", "owner_id": "u-1", "department_id": "d"}},
        "e-1",
    )
    assert (won.record_type, won.record_id, won.code, won.owner_id) == (
        "opportunity",
        "o-1",
        "OPP-1",
        "u-1",
    )
    order = subject_of_event(
        "order_confirmed",
        {
            "crm_order_id": "9f1c",
            "crm_order_code": "SO-2026-000001",
            "customer": {"crm_customer_id": "c-1", "erp_code": "C1", "name": "客户"},
            "owner_id": "u-2",
            "department_id": "d-east",
            "total_amount": "113.00",
        },
        "e-2",
    )
    assert (order.record_type, order.record_id, order.code, order.owner_id) == (
        "order",
        "9f1c",
        "SO-2026-000001",
        "u-2",
    )
    assert order.fields["total_amount"] == "113.00"
    overdue = subject_of_event("invoice_overdue", invoice_overdue(), "e-3")
    assert (overdue.record_type, overdue.record_id, overdue.code) == ("invoice", "INV-1", "INV-1")
    assert overdue.fields["days_overdue"] == 31 and overdue.fields["outstanding"] == "1234.50"
    expense = subject_of_event(
        "expense_submitted", {"expense": {"id": "x", "submitter_id": "u-3"}}, "e"
    )
    assert expense.owner_id == "u-3"


def test_a_source_refusing_a_rule_is_not_asked_again_every_tick(db, notify):
    notify.create_alert_rule(event_rule(trigger={**SCHEDULE, "kind": "no_such_kind"}))
    asked = []

    def refuses(source, kind, params):
        asked.append(kind)
        raise LookupError("kind: is one of overdue_invoices, ...")

    ran = run_due(db, refuses, NOW, refusals=(LookupError,))
    assert ran["overdue_event"].alerts == 0
    assert run_due(db, refuses, NOW + timedelta(minutes=5), refusals=(LookupError,)) == {}
    assert asked == ["no_such_kind"]
