"""Demo data: the built-in alert rules (the U8 set), with the ones a distributor would switch on
first enabled, so that ``make run`` shows alerts in the inbox (and the local mail and SMS
catchers) as the other demos' salespeople work.

``python -m demo.notify [--uri URI]`` brings the database to the newest schema and, when it
holds no alert rule yet, stores the built-in rules and enables: expenses awaiting approval
(an expense submitted by sales01 reaches branch.east at once), overdue receivables, idle
opportunities and contract expiry (each morning at 09:00, Shanghai time), SLA breaches. The
others stay disabled for an administrator (admin) to review at ``/api/alerts/rules``.
"""

from __future__ import annotations

from sqlalchemy import select

from crm_common.db import SessionScope, engine_for
from crm_common.migrations import upgrade
from crm_common.models import utcnow
from demo import load_once
from notify.application.rules import save_revision, seed_defaults
from notify.models.rules import AlertRule

ENABLED = (
    "expense_awaiting_approval",
    "overdue_receivable",
    "idle_opportunity",
    "contract_expiry",
    "sla_breached",
)


def ensure_demo(uri: str, *, migrate: bool = True, with_events: bool = True) -> dict[str, int]:
    """Migrate the database at ``uri`` and store the rules if it has none (``with_events``
    is accepted for the common command line: notify publishes no event for a rule)."""
    if migrate:
        upgrade("notify", uri)
    now = utcnow()
    with SessionScope(engine_for(uri)).session() as session:
        if session.scalar(select(AlertRule.id).limit(1)) is not None:
            return {}
        stored = seed_defaults(session, now)
        enabled = 0
        for rule in session.scalars(select(AlertRule).where(AlertRule.code.in_(ENABLED))):
            rule.enabled = True
            rule.revision += 1
            rule.updated_at = now
            session.flush()
            save_revision(session, rule, None, now)
            enabled += 1
        return {"alert rules": stored, "enabled": enabled}


def main(argv: list[str] | None = None) -> None:
    load_once(
        "notify",
        ensure_demo,
        argv,
        loaded="rules at /api/alerts/rules (admin), alerts at /api/inbox",
        already="already has alert rules",
    )


if __name__ == "__main__":
    main()
