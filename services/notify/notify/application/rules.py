"""Alert rules (消息预警): created, changed, enabled and disabled by an alerts administrator
(``alerts:admin``, or the ``admin`` role), read by them with every earlier revision.

Each save (a change, an enable, a disable) is a new revision, kept as it was saved in
``alert_rule_versions``; ``version`` is the optimistic lock (a stale one is a 409). A rule's
condition and templates are checked when it is saved, with the reasons per field
(``conditions.all.1.op: unknown operator``). The U8 set ships as built-in rules, stored
**disabled** in a database without them (``seed_defaults``): an administrator reviews the
thresholds, recipients and channels and enables the ones the company wants, so a first start
never floods anybody.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from crm_common.application import UseCases
from crm_common.errors import Conflict, Forbidden, ValidationFailed
from crm_common.models import check_version, split_version
from crm_common.schemas import load
from notify.domain import conditions
from notify.models.rules import AlertRule, AlertRuleVersion
from notify.repository import rules as repository
from notify.schemas.rules import (
    RuleInputSchema,
    RuleQuerySchema,
    RuleSchema,
    RuleUpdateSchema,
    RuleVersionSchema,
)

ADMIN = "alerts:admin"
ADMIN_ROLE = "admin"
DEFINITION = ("trigger", "conditions", "recipients", "channels", "severity", "bypass_quiet_hours")
DEFINITION_KEYS = (*DEFINITION, "link")

rule_schema = RuleSchema()
version_schema = RuleVersionSchema()


def is_admin(principal: Any) -> bool:
    return bool(principal.can(ADMIN) or ADMIN_ROLE in principal.roles)


def definition_of(values: dict[str, Any]) -> dict[str, Any]:
    """What a rule's ``definition`` column holds, from loaded input (empty parts left out)."""
    trigger = {key: value for key, value in values["trigger"].items() if value is not None}
    if trigger.get("type") == "event":
        trigger.pop("params", None)
    recipients = [
        {key: value for key, value in recipient.items() if value not in (None, False)}
        for recipient in values["recipients"]
    ]
    channels = {name: value for name, value in values["channels"].items() if value}
    return {
        "trigger": trigger,
        "conditions": values.get("conditions") or None,
        "recipients": recipients,
        "channels": channels,
        "severity": values["severity"],
        "bypass_quiet_hours": values["bypass_quiet_hours"],
        "link": values.get("link"),
    }


def check_conditions(values: dict[str, Any]) -> None:
    errors = conditions.validate(values.get("conditions"))
    if errors:
        raise ValidationFailed("the rule's condition is not valid", {"errors": errors})


def dump_rule(rule: AlertRule) -> dict[str, Any]:
    definition = rule.definition or {}
    record = {
        "id": rule.id,
        "created_at": rule.created_at,
        "updated_at": rule.updated_at,
        "version": rule.version,
        "code": rule.code,
        "name": rule.name,
        "alert_type": rule.alert_type,
        "description": rule.description,
        "enabled": rule.enabled,
        "built_in": rule.built_in,
        "revision": rule.revision,
        "updated_by": rule.updated_by,
        "last_run_at": rule.last_run_at,
        **{key: definition.get(key) for key in DEFINITION_KEYS},
    }
    dumped: dict[str, Any] = rule_schema.dump(record)
    return dumped


def dump_version(saved: AlertRuleVersion) -> dict[str, Any]:
    definition = saved.definition or {}
    record = {
        "rule_id": saved.rule_id,
        "revision": saved.revision,
        "name": saved.name,
        "alert_type": saved.alert_type,
        "description": saved.description,
        "enabled": saved.enabled,
        "saved_by": saved.saved_by,
        "saved_at": saved.saved_at,
        **{key: definition.get(key) for key in DEFINITION_KEYS},
    }
    dumped: dict[str, Any] = version_schema.dump(record)
    return dumped


def apply_definition(rule: AlertRule, values: dict[str, Any]) -> None:
    definition = definition_of(values)
    trigger = definition["trigger"]
    rule.name = values["name"]
    rule.alert_type = values["alert_type"]
    rule.description = values.get("description")
    rule.definition = definition
    rule.severity = definition["severity"]
    rule.trigger_type = trigger["type"]
    rule.source = trigger["source"]
    rule.event_type = trigger.get("event_type")


def save_revision(session: Session, rule: AlertRule, actor: str | None, now: datetime) -> None:
    """Keep the rule as it is now as its revision ``rule.revision``."""
    session.add(
        AlertRuleVersion(
            rule_id=rule.id,
            revision=rule.revision,
            name=rule.name,
            alert_type=rule.alert_type,
            description=rule.description,
            enabled=rule.enabled,
            definition=copy.deepcopy(rule.definition),
            saved_by=actor,
            saved_at=now,
        )
    )
    session.flush()


class Rules(UseCases):
    def require_admin(self) -> None:
        if not is_admin(self.principal):
            raise Forbidden(f"this needs the permission {ADMIN}", {"permission": ADMIN})

    def create(self, data: Any) -> dict[str, Any]:
        self.require_admin()
        values = load(RuleInputSchema(), data)
        check_conditions(values)
        if repository.rule_by_code(self.session, values["code"]) is not None:
            raise Conflict(
                f"an alert rule {values['code']} exists: change that one",
                {"reason": "rule_exists", "code": values["code"]},
            )
        rule = AlertRule(
            code=values["code"],
            enabled=values["enabled"],
            built_in=False,
            revision=1,
            updated_by=self.context.actor_id,
            created_at=self.context.now,
            updated_at=self.context.now,
        )
        apply_definition(rule, values)
        self.session.add(rule)
        self.session.flush()
        save_revision(self.session, rule, self.context.actor_id, self.context.now)
        return dump_rule(rule)

    def get(self, rule_id: Any) -> dict[str, Any]:
        self.require_admin()
        return dump_rule(repository.get_rule(self.session, rule_id))

    def list(self, query: Any) -> dict[str, Any]:
        self.require_admin()
        params = load(RuleQuerySchema(), query or {})
        page = repository.rule_page(
            self.session,
            enabled=params.get("enabled"),
            trigger_type=params.get("trigger_type"),
            alert_type=params.get("alert_type"),
            cursor=params.get("cursor"),
            limit=params.get("limit"),
        )
        return {"items": [dump_rule(rule) for rule in page.items], "next_cursor": page.next_cursor}

    def update(self, rule_id: Any, changes: Any, expected_version: Any = None) -> dict[str, Any]:
        """Replace the rule's definition (everything but its code): a new revision."""
        self.require_admin()
        rule = repository.get_rule(self.session, rule_id)
        changes, version = split_version(changes, expected_version)
        check_version(rule, version)
        values = load(RuleUpdateSchema(), changes)
        check_conditions(values)
        apply_definition(rule, values)
        rule.enabled = values["enabled"]
        return self._saved(rule)

    def enable(self, rule_id: Any, expected_version: Any = None) -> dict[str, Any]:
        return self._switch(rule_id, True, expected_version)

    def disable(self, rule_id: Any, expected_version: Any = None) -> dict[str, Any]:
        return self._switch(rule_id, False, expected_version)

    def _switch(self, rule_id: Any, enabled: bool, expected_version: Any) -> dict[str, Any]:
        self.require_admin()
        rule = repository.get_rule(self.session, rule_id)
        if expected_version is not None:
            check_version(rule, split_version({}, expected_version)[1])
        if rule.enabled == enabled:
            return dump_rule(rule)
        rule.enabled = enabled
        return self._saved(rule)

    def _saved(self, rule: AlertRule) -> dict[str, Any]:
        rule.revision += 1
        rule.updated_by = self.context.actor_id
        rule.updated_at = self.context.now
        self.session.flush()
        save_revision(self.session, rule, self.context.actor_id, self.context.now)
        return dump_rule(rule)

    def delete(self, rule_id: Any, expected_version: Any = None) -> None:
        """Delete a rule of one's own with its revisions (alerts already sent stay in the
        inboxes). A built-in rule is disabled instead: the service would store it again."""
        self.require_admin()
        rule = repository.get_rule(self.session, rule_id)
        check_version(rule, split_version({}, expected_version)[1])
        if rule.built_in:
            raise Conflict(
                f"{rule.code} is a built-in rule: disable it instead",
                {"reason": "built_in", "code": rule.code},
            )
        self.session.delete(rule)
        self.session.flush()

    def versions(self, rule_id: Any) -> dict[str, Any]:
        self.require_admin()
        rule = repository.get_rule(self.session, rule_id)
        return {"items": [dump_version(v) for v in repository.rule_versions(self.session, rule.id)]}

    def version(self, rule_id: Any, revision: Any) -> dict[str, Any]:
        self.require_admin()
        rule = repository.get_rule(self.session, rule_id)
        try:
            number = int(revision)
        except (TypeError, ValueError):
            raise ValidationFailed.on("revision", "must be a whole number") from None
        return dump_version(repository.rule_version(self.session, rule.id, number))


# -- the U8 set --------------------------------------------------------------------------------
OWNER = {"type": "owner"}
MANAGER = {"type": "manager"}


def _mail(subject: str, body: str) -> dict[str, Any]:
    return {"subject": subject, "body": body}


BUILT_IN: tuple[dict[str, Any], ...] = (
    {
        "code": "idle_opportunity",
        "name": "商机停滞提醒",
        "alert_type": "opportunity_idle",
        "description": "Opportunities without an activity for 14 days, each morning at 09:00.",
        "trigger": {
            "type": "schedule",
            "source": "sales",
            "daily_at": "09:00",
            "kind": "idle_opportunities",
            "params": {"days": 14},
        },
        "recipients": [OWNER],
        "channels": {
            "inbox": _mail("商机 {code} 已 {idle_days} 天无跟进", "{customer_name}：{name}"),
            "email": _mail(
                "商机 {code} 已 {idle_days} 天无跟进",
                "商机：{name}\n客户：{customer_name}\n阶段：{stage_code}\n"
                "预计金额：{expected_amount} {currency}\n最近跟进：{last_activity_at}",
            ),
        },
        "severity": "warning",
    },
    {
        "code": "overdue_receivable",
        "name": "应收逾期提醒",
        "alert_type": "receivable_overdue",
        "description": "Invoices 30 days or more past due, each morning at 09:00, to the owner "
        "and their manager by inbox, email and SMS.",
        "trigger": {
            "type": "schedule",
            "source": "sales",
            "daily_at": "09:00",
            "kind": "overdue_invoices",
            "params": {"days": 30},
        },
        "conditions": {"field": "days_overdue", "op": ">=", "value": 30},
        "recipients": [OWNER, MANAGER],
        "channels": {
            "inbox": _mail(
                "发票 {code} 已逾期 {days_overdue} 天",
                "{customer_name} 尚欠 {outstanding} {currency}，到期日 {due_on}",
            ),
            "email": _mail(
                "发票 {code} 已逾期 {days_overdue} 天",
                "客户：{customer_name}\n发票：{code}\n未收金额：{outstanding} {currency}\n"
                "到期日：{due_on}\n逾期天数：{days_overdue}",
            ),
            "sms": {
                "template": "SMS_OVERDUE",
                "params": {
                    "code": "{code}",
                    "customer": "{customer_name}",
                    "days": "{days_overdue}",
                },
                "text": "发票{code}（{customer_name}）已逾期{days_overdue}天，"
                "未收{outstanding}{currency}",
            },
        },
        "severity": "warning",
    },
    {
        "code": "overdue_receivable_credit",
        "name": "应收逾期且信用额度将满",
        "alert_type": "receivable_overdue",
        "description": "Overdue invoices of customers using 90% or more of their credit limit.",
        "trigger": {
            "type": "schedule",
            "source": "sales",
            "daily_at": "09:00",
            "kind": "overdue_invoices",
            "params": {"days": 1, "min_credit_percent": 90},
        },
        "recipients": [OWNER, MANAGER],
        "channels": {
            "inbox": _mail(
                "{customer_name} 信用额度已用 {credit_used_percent}%，发票 {code} 逾期",
                "未收 {outstanding} {currency}，逾期 {days_overdue} 天",
            ),
            "email": _mail(
                "{customer_name} 信用额度已用 {credit_used_percent}%",
                "发票 {code} 逾期 {days_overdue} 天，未收 {outstanding} {currency}。",
            ),
        },
        "severity": "critical",
    },
    {
        "code": "contract_expiry",
        "name": "合同到期提醒",
        "alert_type": "contract_expiry",
        "description": "Contracts ending within 30 days, each morning at 09:00.",
        "trigger": {
            "type": "schedule",
            "source": "sales",
            "daily_at": "09:00",
            "kind": "expiring_contracts",
            "params": {"days": 30},
        },
        "recipients": [OWNER],
        "channels": {
            "inbox": _mail("合同 {code} 将于 {due_on} 到期", "{name}"),
            "email": _mail("合同 {code} 将于 {due_on} 到期", "合同：{name}\n到期日：{due_on}"),
        },
        "severity": "info",
    },
    {
        "code": "customer_birthday",
        "name": "客户生日提醒",
        "alert_type": "customer_birthday",
        "description": "Contacts whose birthday is within 3 days, each morning at 08:30.",
        "trigger": {
            "type": "schedule",
            "source": "customer",
            "daily_at": "08:30",
            "kind": "birthdays",
            "params": {"days": 3},
        },
        "recipients": [OWNER],
        "channels": {
            "inbox": _mail(
                "{customer_name} {contact_name}（{title}）{due_on} 生日",
                "客户关怀：别忘了问候。电话 {mobile}",
            )
        },
        "severity": "info",
    },
    {
        "code": "care_reminder",
        "name": "客户关怀提醒",
        "alert_type": "customer_care",
        "description": "Care due within 7 days, each morning at 08:30.",
        "trigger": {
            "type": "schedule",
            "source": "customer",
            "daily_at": "08:30",
            "kind": "care_due",
            "params": {"days": 7},
        },
        "recipients": [OWNER],
        "channels": {
            "inbox": _mail("{customer_name} 的客户关怀 {due_on} 到期", "安排一次客户关怀。")
        },
        "severity": "info",
    },
    {
        "code": "founding_anniversary",
        "name": "客户成立周年提醒",
        "alert_type": "customer_care",
        "description": "Customers whose founding anniversary is within 7 days, at 08:30.",
        "trigger": {
            "type": "schedule",
            "source": "customer",
            "daily_at": "08:30",
            "kind": "founding_anniversaries",
            "params": {"days": 7},
        },
        "recipients": [OWNER],
        "channels": {
            "inbox": _mail("{customer_name} 成立 {years} 周年（{due_on}）", "安排一次客户关怀。")
        },
        "severity": "info",
    },
    {
        "code": "expense_awaiting_approval",
        "name": "费用待审批",
        "alert_type": "expense_approval",
        "description": "An expense submitted: its approver hears of it at once.",
        "trigger": {"type": "event", "source": "sales", "event_type": "expense_submitted"},
        "recipients": [{"type": "field", "path": "waiting_for.approver_user_id"}],
        "channels": {
            "inbox": _mail("费用 {code} 待您审批", "{amount} {currency}（{expense_category}）"),
            "email": _mail(
                "费用 {code} 待您审批",
                "费用：{code}\n金额：{amount} {currency}\n类别：{expense_category}",
            ),
        },
        "severity": "info",
    },
    {
        "code": "sla_at_risk",
        "name": "服务 SLA 即将超时",
        "alert_type": "sla",
        "description": "A service request about to breach its SLA (fires when service "
        "management publishes sla_at_risk).",
        "trigger": {"type": "event", "source": "service_mgmt", "event_type": "sla_at_risk"},
        "recipients": [OWNER, MANAGER],
        "channels": {
            "inbox": _mail("服务单 {code} 即将超出 SLA", "请尽快处理。"),
            "sms": {
                "template": "SMS_SLA_RISK",
                "params": {"code": "{code}"},
                "text": "服务单{code}即将超出SLA",
            },
        },
        "severity": "warning",
    },
    {
        "code": "sla_breached",
        "name": "服务 SLA 已超时",
        "alert_type": "sla",
        "description": "A service request breached its SLA: critical, also in quiet hours.",
        "trigger": {"type": "event", "source": "service_mgmt", "event_type": "sla_breached"},
        "recipients": [OWNER, MANAGER],
        "channels": {
            "inbox": _mail("服务单 {code} 已超出 SLA", "请立即处理。"),
            "email": _mail("服务单 {code} 已超出 SLA", "服务单 {code} 已超出 SLA，请立即处理。"),
            "sms": {
                "template": "SMS_SLA_BREACH",
                "params": {"code": "{code}"},
                "text": "服务单{code}已超出SLA",
            },
        },
        "severity": "critical",
        "bypass_quiet_hours": True,
    },
)


def seed_defaults(session: Session, now: datetime) -> int:
    """Store the built-in rules missing from the database, disabled; how many were stored.
    A built-in rule an administrator changed is never touched again."""
    stored = 0
    for built_in in BUILT_IN:
        if repository.rule_by_code(session, built_in["code"]) is not None:
            continue
        values = load(RuleInputSchema(), built_in)
        check_conditions(values)
        rule = AlertRule(
            code=values["code"],
            enabled=False,
            built_in=True,
            revision=1,
            created_at=now,
            updated_at=now,
        )
        apply_definition(rule, values)
        session.add(rule)
        session.flush()
        save_revision(session, rule, None, now)
        stored += 1
    return stored
