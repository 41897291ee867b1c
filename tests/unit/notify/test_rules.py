"""Alert rules through the service: created, changed, enabled and disabled by an alerts
administrator, each save a readable revision, stale saves refused, bad input a 422 naming the
field; the U8 set stored disabled."""

import pytest

from crm_common.errors import Conflict, Forbidden, NotFound, ValidationFailed
from notify.application.rules import BUILT_IN, seed_defaults

from . import rules_support
from .rules_support import ALERTS_ADMIN, NOW, SALES, event_rule

db = rules_support.db
service = rules_support.service
act_as = rules_support.act_as


def test_an_admin_creates_reads_and_lists_a_rule(service):
    created = service.create_alert_rule(event_rule())
    assert created["code"] == "overdue_event"
    assert created["revision"] == 1 and created["version"] == 1
    assert created["enabled"] is True and created["built_in"] is False
    assert created["trigger"] == {
        "type": "event",
        "source": "sales",
        "event_type": "invoice_overdue",
    }
    assert created["conditions"] == {"field": "days_overdue", "op": ">=", "value": 30}
    assert created["recipients"] == [{"type": "owner"}]
    assert created["updated_by"] == "u-admin"
    assert service.get_alert_rule(created["id"]) == created
    page = service.list_alert_rules({"enabled": "true"})
    assert [rule["code"] for rule in page["items"]] == ["overdue_event"]
    assert service.list_alert_rules({"trigger_type": "schedule"})["items"] == []


def test_the_alerts_admin_permission_is_enough(service, act_as):
    act_as(ALERTS_ADMIN)
    assert service.create_alert_rule(event_rule())["updated_by"] == "u-ops"


def test_others_may_not_see_or_change_rules(service, act_as):
    created = service.create_alert_rule(event_rule())
    act_as(SALES)
    with pytest.raises(Forbidden):
        service.list_alert_rules({})
    with pytest.raises(Forbidden):
        service.get_alert_rule(created["id"])
    with pytest.raises(Forbidden):
        service.create_alert_rule(event_rule(code="other"))
    with pytest.raises(Forbidden):
        service.disable_alert_rule(created["id"])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            {
                "conditions": {
                    "all": [
                        {"field": "a", "op": "=", "value": 1},
                        {"field": "b", "op": "~", "value": 1},
                    ]
                }
            },
            "conditions.all.1.op",
        ),
        ({"conditions": {"field": "days", "op": "in", "value": 3}}, "conditions.value"),
        ({"trigger": {"type": "event", "source": "sales"}}, "trigger.event_type"),
        (
            {"trigger": {"type": "schedule", "source": "sales", "kind": "overdue_invoices"}},
            "trigger.daily_at",
        ),
        (
            {"trigger": {"type": "schedule", "source": "sales", "daily_at": "25:00", "kind": "x"}},
            "trigger.daily_at",
        ),
        (
            {"trigger": {"type": "schedule", "source": "sales", "every_minutes": 0, "kind": "x"}},
            "trigger.every_minutes",
        ),
        ({"trigger": {"type": "schedule", "source": "sales", "daily_at": "08:00"}}, "trigger.kind"),
        ({"recipients": []}, "recipients"),
        ({"recipients": [{"type": "boss"}]}, "recipients.0.type"),
        ({"recipients": [{"type": "owner"}, {"type": "department"}]}, "recipients.1.department_id"),
        ({"recipients": [{"type": "users", "user_ids": []}]}, "recipients.0.user_ids"),
        ({"channels": {}}, "channels.inbox"),
        ({"channels": {"inbox": {"subject": "{0}", "body": "x"}}}, "channels.inbox.subject"),
        ({"channels": {"email": {"subject": "s", "body": "{a!r}"}}}, "channels.email.body"),
        (
            {"channels": {"sms": {"text": "t", "params": {"code": "{code"}}}},
            "channels.sms.params.code.value",
        ),
        ({"severity": "urgent"}, "severity"),
        ({"code": "Bad Code"}, "code"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_a_rule_that_cannot_be_saved_is_a_422_naming_the_field(service, change, field):
    with pytest.raises(ValidationFailed) as refused:
        service.create_alert_rule(event_rule(**change))
    assert field in refused.value.field_errors, refused.value.field_errors
    assert service.list_alert_rules({})["items"] == []


def test_each_save_is_a_revision_and_old_ones_stay_readable(service):
    created = service.create_alert_rule(event_rule())
    changed = service.update_alert_rule(
        created["id"],
        {
            **{k: v for k, v in event_rule().items() if k != "code"},
            "conditions": {"field": "days_overdue", "op": ">=", "value": 60},
            "severity": "critical",
            "bypass_quiet_hours": True,
        },
        1,
    )
    assert changed["revision"] == 2 and changed["version"] == 2
    assert changed["conditions"]["value"] == 60
    disabled = service.disable_alert_rule(created["id"], 2)
    assert disabled["enabled"] is False and disabled["revision"] == 3
    versions = service.alert_rule_versions(created["id"])["items"]
    assert [v["revision"] for v in versions] == [3, 2, 1]
    assert [v["enabled"] for v in versions] == [False, True, True]
    first = service.alert_rule_version(created["id"], 1)
    assert first["conditions"]["value"] == 30 and first["severity"] == "warning"
    assert first["saved_by"] == "u-admin"
    assert service.alert_rule_version(created["id"], 2)["bypass_quiet_hours"] is True
    with pytest.raises(NotFound):
        service.alert_rule_version(created["id"], 9)


def test_a_stale_save_is_a_conflict_and_changes_nothing(service):
    created = service.create_alert_rule(event_rule())
    service.disable_alert_rule(created["id"], 1)
    with pytest.raises(Conflict):
        service.update_alert_rule(
            created["id"], {k: v for k, v in event_rule().items() if k != "code"}, 1
        )
    with pytest.raises(Conflict):
        service.enable_alert_rule(created["id"], 1)
    assert service.get_alert_rule(created["id"])["revision"] == 2
    with pytest.raises(ValidationFailed) as refused:
        service.update_alert_rule(created["id"], {"name": "x"})
    assert "version" in refused.value.field_errors


def test_codes_are_unique(service):
    service.create_alert_rule(event_rule())
    with pytest.raises(Conflict):
        service.create_alert_rule(event_rule(name="again"))


def test_an_unknown_rule_is_not_found(service):
    with pytest.raises(NotFound):
        service.get_alert_rule("00000000-0000-0000-0000-000000000000")
    with pytest.raises(NotFound):
        service.enable_alert_rule("not-an-id")


def test_the_u8_set_is_stored_disabled_once(db, service):
    with db.session() as session:
        assert seed_defaults(session, NOW) == len(BUILT_IN)
    with db.session() as session:
        assert seed_defaults(session, NOW) == 0
    rules = {rule["code"]: rule for rule in service.list_alert_rules({"limit": 50})["items"]}
    assert set(rules) >= {
        "idle_opportunity",
        "overdue_receivable",
        "overdue_receivable_credit",
        "contract_expiry",
        "customer_birthday",
        "care_reminder",
        "expense_awaiting_approval",
        "sla_at_risk",
        "sla_breached",
    }
    assert all(rule["built_in"] and not rule["enabled"] for rule in rules.values())
    overdue = rules["overdue_receivable"]
    assert overdue["trigger"]["kind"] == "overdue_invoices" and overdue["trigger"]["params"] == {
        "days": 30
    }
    assert set(overdue["channels"]) == {"inbox", "email", "sms"}
    assert rules["sla_breached"]["bypass_quiet_hours"] is True
    assert rules["sla_breached"]["severity"] == "critical"
    credit = rules["overdue_receivable_credit"]["trigger"]["params"]
    assert credit["min_credit_percent"] == 90
    enabled = service.enable_alert_rule(overdue["id"], overdue["version"])
    assert enabled["enabled"] is True and enabled["revision"] == 2


def test_a_rule_of_ones_own_is_deleted_a_built_in_one_is_not(db, service):
    own = service.create_alert_rule(event_rule())
    with pytest.raises(Conflict):
        service.delete_alert_rule(own["id"], 7)
    service.delete_alert_rule(own["id"], own["version"])
    with pytest.raises(NotFound):
        service.get_alert_rule(own["id"])
    with pytest.raises(NotFound):
        service.alert_rule_versions(own["id"])
    with db.session() as session:
        seed_defaults(session, NOW)
    [built_in] = service.list_alert_rules({"limit": 1})["items"]
    with pytest.raises(Conflict) as refused:
        service.delete_alert_rule(built_in["id"], built_in["version"])
    assert refused.value.details["reason"] == "built_in"
