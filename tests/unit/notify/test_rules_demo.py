"""The notify demo: the built-in rules stored once, the first ones a distributor wants enabled,
each enable a revision of its own."""

from sqlalchemy import select

from crm_common.db import SessionScope, engine_for
from demo import notify as demo
from notify.application.rules import BUILT_IN
from notify.models.rules import AlertRule, AlertRuleVersion


def test_the_demo_stores_the_rules_once_with_some_enabled(sqlite_uri):
    counts = demo.ensure_demo(sqlite_uri)
    assert counts == {"alert rules": len(BUILT_IN), "enabled": len(demo.ENABLED)}
    assert demo.ensure_demo(sqlite_uri) == {}
    with SessionScope(engine_for(sqlite_uri)).session() as session:
        rules = {rule.code: rule for rule in session.scalars(select(AlertRule))}
        enabled = {code for code, rule in rules.items() if rule.enabled}
        assert enabled == set(demo.ENABLED)
        assert all(rules[code].revision == 2 for code in enabled)
        revisions = session.scalars(
            select(AlertRuleVersion.revision).where(
                AlertRuleVersion.rule_id == rules["overdue_receivable"].id
            )
        ).all()
        assert sorted(revisions) == [1, 2]
