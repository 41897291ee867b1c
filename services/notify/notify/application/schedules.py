"""Scheduled rules: notify asks the owning service, over RPC, for its due records.

Notify's timer runs every enabled schedule rule that is due (``daily_at`` in the business time
zone, or ``every_minutes``) by calling ``due_records(kind, params)`` on the rule's source
service **as notify's own service identity** (``crm_common.identity.ServiceIdentity``; sales
checks ``sales:due-records:read``, customer any service), the way sales' catch-up reads org's
snapshots. The source answers ``{"items": [{record_type, record_id, code, owner_id,
department_id, customer_id, due_on, fields}]}``; each record whose condition holds alerts its
recipients once per day (the dedup key's period is the business day), so a run repeated the
same day, by a restart or a second replica, alerts nobody twice.

Notify pulls rather than each service publishing "due" events from a timer of its own: the
thresholds stay in the rules an administrator edits (days, credit percentage) and a new
scheduled rule needs no change in the source service. A source that does not answer is asked
again at the next tick (the rule is not marked run).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from crm_common.db import SessionScope
from notify.application.alerts import Alerts, CompiledRule, Fired, Handoff, count
from notify.domain.rules import schedule_due
from notify.repository import rules as repository

SCHEDULE_CHECK_SECONDS = 10
"""How often the timer looks for due schedule rules (one small query when none is due)."""

log = logging.getLogger(__name__)

DueRecords = Callable[[str, str, dict[str, Any]], dict[str, Any]]
"""(source service, kind, params) → the source's ``due_records`` answer."""


def due_rules(db: SessionScope, now: datetime) -> list[tuple[CompiledRule, datetime | None]]:
    """The enabled schedule rules to run at ``now``."""
    with db.session() as session:
        rules = repository.enabled_rules(session, "schedule")
        return [
            (CompiledRule.of(rule), rule.last_run_at)
            for rule in rules
            if schedule_due(
                (rule.definition or {}).get("trigger") or {}, _aware(rule.last_run_at), now
            )
        ]


def run_due(
    db: SessionScope,
    ask: DueRecords,
    now: datetime,
    handoff: Handoff | None = None,
    failures: tuple[type[Exception], ...] = (),
    refusals: tuple[type[Exception], ...] = (),
) -> dict[str, Fired]:
    """Run every due schedule rule: ask its source, fire on the answer and mark it run, one
    transaction per rule. A source raising one of ``failures`` (it does not answer) leaves
    the rule for the next tick; one of ``refusals`` (it answered with an error: an unknown
    kind, bad params) marks the rule run, logged, so that a rule it refuses is not asked
    again every tick. Returns what each rule run fired, by rule code."""
    fired: dict[str, Fired] = {}
    for rule, _ in due_rules(db, now):
        trigger = rule.trigger
        items: list[Any] = []
        try:
            answer = ask(
                str(trigger["source"]), str(trigger["kind"]), dict(trigger.get("params") or {})
            )
            found = answer.get("items") if isinstance(answer, dict) else None
            items = list(found or [])
        except failures as exc:
            log.warning("rule %s: %s's due records not read: %r", rule.code, trigger["source"], exc)
            continue
        except refusals as exc:
            log.warning(
                "rule %s: %s refused its due records: %r", rule.code, trigger["source"], exc
            )
        with db.session() as session:
            alerts = Alerts(session, now, handoff=handoff)
            fired[rule.code] = alerts.on_due_records(rule, items)
            repository.mark_run(session, rule.id, now)
        count(fired[rule.code], "schedule")
        log.info("rule %s ran: %s", rule.code, fired[rule.code])
    return fired


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)
