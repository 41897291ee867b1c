"""What the tests of notify's rules, triggers, inbox and preferences share: a fresh SQLite
database with a small organisation in notify's copy of org, principals, envelopes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from nameko.testing.services import worker_factory

from crm_common.context import Principal, bind
from crm_common.db import SessionScope, engine_for
from crm_common.outbox import OutboxWriter
from notify.application.read_models import ReadModels
from notify.models import Base, OutboxMessage
from notify.service import NotifyService

ADMIN = Principal("u-admin", "d-hq", roles=("admin",), permissions=())
ALERTS_ADMIN = Principal("u-ops", "d-hq", roles=("operator",), permissions=("alerts:admin",))
SALES = Principal("u-sales-01", "d-east-sh", roles=("sales_rep",), permissions=())
OTHER = Principal("u-sales-02", "d-east-js", roles=("sales_rep",), permissions=())

DEPARTMENTS = (
    # id, parent, manager person id
    ("d-hq", None, "p-ceo"),
    ("d-east", "d-hq", "p-branch-east"),
    ("d-east-sh", "d-east", None),
    ("d-east-js", "d-east", None),
)
PEOPLE = (
    # person id, user id, name, department, mobile, email, status
    ("p-ceo", "u-ceo", "王总", "d-hq", "13901880001", "ceo@example.com", "active"),
    ("p-admin", "u-admin", "赵立新", "d-hq", "+86 139 0188 0002", "zhao@example.com", "active"),
    (
        "p-branch-east",
        "u-branch-east",
        "李华东",
        "d-east",
        "13901880201",
        "li@example.com",
        "active",
    ),
    (
        "p-sales-01",
        "u-sales-01",
        "张伟",
        "d-east-sh",
        "139-0188-0301",
        " Zhang@Example.COM ",
        "active",
    ),
    ("p-sales-02", "u-sales-02", "王芳", "d-east-js", "not a phone", "wang@example.com", "active"),
    ("p-left", "u-left", "离职者", "d-east-sh", "13901880999", "left@example.com", "left"),
)
ROLE_CODES = {
    # person id: the codes of their user's roles
    "p-ceo": ["general_manager"],
    "p-admin": ["admin"],
    "p-branch-east": ["branch_manager", "sales_manager"],
    "p-sales-01": ["sales_rep"],
    "p-sales-02": ["sales_rep"],
    "p-left": ["sales_manager"],
}
NOW = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def seed_org(session: Any) -> None:
    models = ReadModels(session, NOW)
    for department_id, parent_id, manager_id in DEPARTMENTS:
        models.keep_department(
            {
                "id": department_id,
                "version": 1,
                "code": department_id,
                "name": department_id,
                "parent_id": parent_id,
                "manager_id": manager_id,
                "path": department_id,
            }
        )
    for person_id, user_id, name, department_id, mobile, email, status in PEOPLE:
        models.keep_person(
            {
                "id": person_id,
                "version": 1,
                "user_id": user_id,
                "code": person_id,
                "name": name,
                "department_id": department_id,
                "mobile": mobile,
                "email": email,
                "status": status,
                "role_codes": ROLE_CODES.get(person_id, []),
            }
        )


@pytest.fixture
def db(sqlite_uri):
    engine = engine_for(sqlite_uri)
    Base.metadata.create_all(engine)
    scope = SessionScope(engine)
    with scope.session() as session:
        seed_org(session)
    return scope


@pytest.fixture
def act_as():
    def act(principal: Principal) -> Principal:
        bind(principal, "req-test")
        return principal

    yield act
    bind(None, None)


@pytest.fixture
def service(db, act_as):
    act_as(ADMIN)
    return worker_factory(NotifyService, db=db, outbox=OutboxWriter(OutboxMessage, "notify"))


def envelope(
    source: str, event_type: str, data: dict[str, Any], event_id: str | None = None
) -> dict[str, Any]:
    return {
        "event_id": event_id or str(uuid.uuid4()),
        "type": event_type,
        "version": "1.0",
        "occurred_at": NOW.isoformat(),
        "source": source,
        "actor_id": None,
        "data": data,
    }


def event_rule(**overrides: Any) -> dict[str, Any]:
    """An enabled rule on sales' ``invoice_overdue``: inbox, email and SMS to the owner."""
    rule = {
        "code": "overdue_event",
        "name": "发票逾期",
        "alert_type": "receivable_overdue",
        "enabled": True,
        "trigger": {"type": "event", "source": "sales", "event_type": "invoice_overdue"},
        "conditions": {"field": "days_overdue", "op": ">=", "value": 30},
        "recipients": [{"type": "owner"}],
        "channels": {
            "inbox": {
                "subject": "发票 {code} 已逾期 {days_overdue} 天",
                "body": "{customer_name} 欠 {outstanding}",
            },
            "email": {"subject": "发票 {code} 逾期", "body": "未收 {outstanding} {currency}"},
            "sms": {
                "template": "SMS_1",
                "params": {"code": "{code}", "days": "{days_overdue}"},
                "text": "发票{code}逾期",
            },
        },
        "severity": "warning",
    }
    rule.update(overrides)
    return rule


def invoice_overdue(
    invoice_no: str = "INV-1", days: int = 31, owner: str = "u-sales-01"
) -> dict[str, Any]:
    return {
        "invoice": {
            "invoice_no": invoice_no,
            "customer_id": "5c1f5d1e-8a39-4d7f-9b61-6a0a4d1e2f01",
            "customer_name": "华东机电设备有限公司",
            "outstanding": "1234.50",
            "currency": "CNY",
            "owner_id": owner,
            "department_id": "d-east-sh",
        },
        "days_overdue": days,
        "threshold": 30,
        "customer_id": "5c1f5d1e-8a39-4d7f-9b61-6a0a4d1e2f01",
        "owner_id": owner,
        "department_id": "d-east-sh",
    }
