"""Firing alert rules: an incoming event, or a schedule's due records, becomes one alert per
recipient, on each channel the rule has and the recipient wants.

**Rules of an event.** ``RuleIndex`` keeps the enabled event rules of this process in memory,
by (source, event type), and rebuilds itself when the rules change (one aggregate query per
event compares the rules' count, versions and newest change with what it was built from). An
event therefore costs a dictionary look-up and the conditions of the rules on its type, never
a read of every rule's definition.

**One alert per key.** For each rule whose condition holds on the record, each recipient gets
an alert only if the dedup key of rule, record, recipient and period is new (stored in
``alert_keys`` in the same transaction: the event's id for an event, the business day for a
schedule). An event delivered twice, or a schedule run twice that day, alerts nobody twice.

**Recipients** (``notify.domain.rules.RECIPIENT_TYPES``): the record's owner; the owner's
department manager (or the nearest active one above); the users holding a role (by its code,
as org's people carry them); a department's people (with its sub-departments if asked); named
users; the user id at a path of the record. People who left (disabled, not active) are
skipped.

**Channels.** Preferences (``channel_choice``) decide per alert type and channel: off sends
nothing there; a daily digest holds email and SMS for the summary (never for a critical
alert). The inbox row is written here; email and SMS are handed to ``deliveries.enqueue`` in
the same transaction (it applies quiet hours, rate limits and the digest and sends after
commit), with ``critical`` when the rule may bypass quiet hours.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from prometheus_client import Counter
from sqlalchemy.orm import Session

from notify.application import deliveries
from notify.domain import conditions, templates
from notify.domain.rules import (
    CRITICAL,
    Subject,
    business_day,
    channel_choice,
    dedup_key,
    subject_of_due_record,
    subject_of_event,
)
from notify.models.rules import AlertRule, InboxItem, NotificationPreference
from notify.repository import rules as repository
from notify.repository.rules import PersonRow

log = logging.getLogger(__name__)

ALERTS = Counter(
    "notify_alerts_total",
    "Recipients newly alerted by a rule, and the messages written or handed on per channel",
    ["trigger", "channel"],
)
KEY_DAYS = 35
"""How long an alert's key is kept: past it, only a redelivery of an event that old could
alert twice (the consumer's inbox refuses those too)."""
TITLE_LENGTH = 200
DEFAULT_TIME_ZONE = "Asia/Shanghai"
DEFAULT_QUIET = (time(21, 0), time(8, 0))


@dataclass(frozen=True)
class CompiledRule:
    """A rule as firing needs it, read once from its row."""

    id: uuid.UUID
    code: str
    name: str
    alert_type: str
    severity: str
    bypass_quiet_hours: bool
    trigger: Mapping[str, Any]
    conditions: Any
    recipients: tuple[Mapping[str, Any], ...]
    channels: Mapping[str, Any]
    link: str | None
    holds: conditions.Predicate

    @classmethod
    def of(cls, rule: AlertRule) -> CompiledRule:
        definition = rule.definition or {}
        return cls(
            id=rule.id,
            code=rule.code,
            name=rule.name,
            alert_type=rule.alert_type,
            severity=rule.severity,
            bypass_quiet_hours=bool(definition.get("bypass_quiet_hours")),
            trigger=definition.get("trigger") or {},
            conditions=definition.get("conditions"),
            recipients=tuple(definition.get("recipients") or ()),
            channels=definition.get("channels") or {},
            link=definition.get("link"),
            holds=conditions.compile_condition(definition.get("conditions")),
        )


class RuleIndex:
    """The enabled event rules by (source, event type), rebuilt when the rules change."""

    def __init__(self) -> None:
        self.stamp: tuple[int, int, Any] | None = None
        self.by_event: dict[tuple[str, str], list[CompiledRule]] = {}

    def rules_for(self, session: Session, source: str, event_type: str) -> list[CompiledRule]:
        stamp = repository.rules_stamp(session)
        if stamp != self.stamp:
            by_event: dict[tuple[str, str], list[CompiledRule]] = {}
            for rule in repository.enabled_rules(session, "event"):
                by_event.setdefault((rule.source, str(rule.event_type)), []).append(
                    CompiledRule.of(rule)
                )
            self.by_event, self.stamp = by_event, stamp
        return self.by_event.get((source, event_type), [])


Handoff = Callable[..., Any]


def delivery_handoff() -> Handoff:
    """Where email and SMS go: ``notify.application.deliveries.enqueue``."""
    return deliveries.enqueue


@dataclass(frozen=True)
class Fired:
    """What one firing did: alerts (recipients newly alerted), and per channel how many
    messages were written or handed on."""

    alerts: int = 0
    inbox: int = 0
    email: int = 0
    sms: int = 0

    def __add__(self, other: Fired) -> Fired:
        return Fired(
            self.alerts + other.alerts,
            self.inbox + other.inbox,
            self.email + other.email,
            self.sms + other.sms,
        )


def count(fired: Fired, trigger: str) -> None:
    """Record what a committed firing did (``notify_alerts_total``)."""
    for channel, n in (
        ("alert", fired.alerts),
        ("inbox", fired.inbox),
        ("email", fired.email),
        ("sms", fired.sms),
    ):
        if n:
            ALERTS.labels(trigger, channel).inc(n)


def forget_old_keys(session: Session, now: datetime) -> int:
    """Forget the keys of alerts fired more than ``KEY_DAYS`` days before ``now``."""
    return repository.prune_alert_keys(session, now - timedelta(days=KEY_DAYS))


class Alerts:
    """Fires rules in ``session``'s transaction (the caller commits)."""

    def __init__(
        self,
        session: Session,
        now: datetime,
        index: RuleIndex | None = None,
        handoff: Handoff | None = None,
        links: str | None = None,
    ) -> None:
        self.session = session
        self.now = now
        self.index = index or RuleIndex()
        self.handoff: Handoff = handoff if handoff is not None else delivery_handoff()
        self.links = links

    # -- triggers --------------------------------------------------------------------------
    def on_event(self, source: str, envelope: Mapping[str, Any]) -> Fired:
        """Fire the enabled rules on this event's type whose condition holds."""
        event_type = str(envelope["type"])
        rules = self.index.rules_for(self.session, source, event_type)
        if not rules:
            return Fired()
        data = envelope.get("data") or {}
        event_id = str(envelope["event_id"])
        subject = subject_of_event(event_type, data, event_id)
        fired = Fired()
        for rule in rules:
            if rule.holds(subject.fields):
                fired += self.fire(rule, subject, f"event:{event_id}")
        return fired

    def on_due_records(self, rule: CompiledRule, items: list[Any]) -> Fired:
        """Fire a schedule rule on the due records its source answered, once a day each."""
        period = business_day(self.now)
        fired = Fired()
        for item in items:
            if not isinstance(item, Mapping) or item.get("record_id") is None:
                log.warning("rule %s: a due record without record_id left out", rule.code)
                continue
            subject = subject_of_due_record(item)
            if rule.holds(subject.fields):
                fired += self.fire(rule, subject, period)
        return fired

    # -- one rule, one record --------------------------------------------------------------
    def fire(self, rule: CompiledRule, subject: Subject, period: str) -> Fired:
        recipients = self.recipients(rule, subject)
        if not recipients:
            return Fired()
        choices = repository.preferences_of(self.session, recipients)
        fired = Fired()
        for user_id, person in recipients.items():
            key = dedup_key(rule.id, subject, user_id, period)
            claimed = repository.claim_alert_key(
                self.session,
                {
                    "key": key,
                    "rule_id": rule.id,
                    "record_type": subject.record_type[:40],
                    "record_id": subject.record_id[:64],
                    "recipient_id": user_id[:64],
                    "period": period[:64],
                    "created_at": self.now,
                },
            )
            if not claimed:
                continue
            fired += Fired(alerts=1) + self.send(
                rule, subject, user_id, person, choices.get(user_id), key
            )
        return fired

    def send(
        self,
        rule: CompiledRule,
        subject: Subject,
        user_id: str,
        person: PersonRow | None,
        preference: NotificationPreference | None,
        key: str,
    ) -> Fired:
        settings = list(preference.settings or []) if preference is not None else []
        fields = self.fields(rule, subject, person)
        link = templates.render(rule.link, fields) if rule.link else None
        sent = {"inbox": 0, "email": 0, "sms": 0}
        for channel in ("inbox", "email", "sms"):
            template = rule.channels.get(channel)
            if not template:
                continue
            choice = channel_choice(settings, rule.alert_type, channel, rule.severity)
            if not choice.enabled:
                continue
            if channel == "inbox":
                self.session.add(
                    InboxItem(
                        user_id=user_id,
                        rule_id=rule.id,
                        alert_type=rule.alert_type,
                        severity=rule.severity,
                        title=templates.render(template["subject"], fields)[:TITLE_LENGTH],
                        body=templates.render(template["body"], fields),
                        link=link,
                        record_type=subject.record_type[:40],
                        record_id=subject.record_id[:64],
                        created_at=self.now,
                    )
                )
                sent["inbox"] += 1
                continue
            if person is None or not person.active:
                continue
            if self._hand_off(
                rule, channel, template, fields, link, person, preference, key, choice.digest
            ):
                sent[channel] += 1
        self.session.flush()
        return Fired(inbox=sent["inbox"], email=sent["email"], sms=sent["sms"])

    def _hand_off(
        self,
        rule: CompiledRule,
        channel: str,
        template: Mapping[str, Any],
        fields: Mapping[str, Any],
        link: str | None,
        person: PersonRow,
        preference: NotificationPreference | None,
        key: str,
        digest: str,
    ) -> bool:
        time_zone, (quiet_start, quiet_end) = DEFAULT_TIME_ZONE, DEFAULT_QUIET
        if preference is not None:
            time_zone = preference.time_zone
            quiet_start, quiet_end = preference.quiet_start, preference.quiet_end
        recipient = deliveries.Recipient(
            user_id=person.user_id,
            name=person.name,
            email=person.email,
            mobile=person.mobile,
            time_zone=time_zone,
            quiet_start=quiet_start,
            quiet_end=quiet_end,
        )
        title = self._title(rule, fields)
        if channel == "email":
            message = deliveries.OutgoingMessage(
                subject=templates.render(template["subject"], fields),
                text=templates.render(template["body"], fields),
                html=templates.render(template["html"], fields) if template.get("html") else None,
                sms_template=None,
                sms_params={},
                link=link,
            )
        else:
            message = deliveries.OutgoingMessage(
                subject=title,
                text=templates.render(template["text"], fields),
                html=None,
                sms_template=template.get("template"),
                sms_params={
                    name: templates.render(value, fields)
                    for name, value in (template.get("params") or {}).items()
                },
                link=link,
            )
        stored = self.handoff(
            self.session,
            recipient=recipient,
            channel=channel,
            message=message,
            alert_type=rule.alert_type,
            rule_id=rule.id,
            dedup_key=key,
            severity=rule.severity,
            critical=rule.bypass_quiet_hours,
            digest=digest == "daily" and rule.severity != CRITICAL,
            now=self.now,
        )
        return stored is not None

    def _title(self, rule: CompiledRule, fields: Mapping[str, Any]) -> str:
        for channel in ("inbox", "email"):
            template = rule.channels.get(channel)
            if template:
                return templates.render(template["subject"], fields)[:TITLE_LENGTH]
        return rule.name

    def fields(
        self, rule: CompiledRule, subject: Subject, person: PersonRow | None
    ) -> dict[str, Any]:
        """What templates render: the record's fields, and the rule's and recipient's names."""
        return {
            "record_type": subject.record_type,
            "record_id": subject.record_id,
            "code": subject.code,
            "rule_name": rule.name,
            "severity": rule.severity,
            "recipient_name": None if person is None else person.name,
            **subject.fields,
        }

    # -- recipients ------------------------------------------------------------------------
    def recipients(self, rule: CompiledRule, subject: Subject) -> dict[str, PersonRow | None]:
        """User id → the person (None for a named user notify has no person of): active
        people, and named users notify does not know (they still get the inbox)."""
        found: dict[str, PersonRow | None] = {}
        user_ids: list[str] = []
        owner = repository.person(self.session, subject.owner_id) if subject.owner_id else None
        for recipient in rule.recipients:
            kind = recipient.get("type")
            if kind == "owner" and subject.owner_id:
                user_ids.append(subject.owner_id)
            elif kind == "manager":
                department = owner.department_id if owner else subject.department_id
                manager = repository.manager_of(self.session, department)
                if manager is not None and manager.user_id != subject.owner_id:
                    found.setdefault(manager.user_id, manager)
            elif kind == "department":
                for person in repository.people_in_department(
                    self.session,
                    str(recipient["department_id"]),
                    bool(recipient.get("include_children")),
                ):
                    if person.active:
                        found.setdefault(person.user_id, person)
            elif kind == "users":
                user_ids.extend(str(user_id) for user_id in recipient.get("user_ids") or ())
            elif kind == "field":
                value = conditions.lookup(subject.fields, str(recipient["path"]))
                values = value if isinstance(value, list) else [value]
                user_ids.extend(str(v) for v in values if isinstance(v, str | int) and v != "")
            elif kind == "role":
                for person in repository.people_with_role(self.session, str(recipient["role"])):
                    if person.active:
                        found.setdefault(person.user_id, person)
        people = repository.people_of_users(self.session, user_ids)
        for user_id in user_ids:
            named = people.get(user_id)
            if named is None or named.active:
                found.setdefault(user_id, named)
        return found
