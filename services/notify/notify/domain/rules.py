"""What an alert rule is made of, and the plain rules of firing one.

A rule has a trigger (an event of a source service, or a schedule asking a service for its due
records), a condition (``notify.domain.conditions``) on the record, recipients, channels each
with a template, a severity and whether it may bypass quiet hours. Firing a rule for a record
gives one alert per recipient and period: the dedup key of rule, record, recipient and period
(the event's id for an event, the day in the business time zone for a schedule) is stored once,
so a second delivery of the event, or a second run of the schedule that day, alerts nobody.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, tzinfo
from typing import Any

from crm_common.ids import BUSINESS_TZ

SEVERITIES = ("info", "warning", "critical")
CHANNELS = ("inbox", "email", "sms")
RECIPIENT_TYPES = ("owner", "manager", "role", "department", "users", "field")
TRIGGER_TYPES = ("event", "schedule")
DIGESTS = ("immediate", "daily")
CRITICAL = "critical"
EVERY_ALERT_TYPE = "*"


@dataclass(frozen=True)
class Subject:
    """The record an alert is about, as the event or the due-records answer tells it."""

    record_type: str
    record_id: str
    code: str | None = None
    owner_id: str | None = None
    department_id: str | None = None
    customer_id: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)
    """What conditions read and templates render: the record's fields."""


def subject_of_event(event_type: str, data: Mapping[str, Any], event_id: str) -> Subject:
    """The record an event is about: the record object its ``data`` carries under the name
    the event type starts with (``invoice_overdue`` → ``data["invoice"]``), else the first
    object with an ``id`` (``{"opportunity": {...}}``), with the top-level fields over it (the
    newer events carry ``customer_id``, ``owner_id`` and ``department_id`` at the top), or
    ``data`` itself. Its id is the record's ``id``, ``<type>_no`` or ``code``, or the event's
    ``<type>_id`` or ``crm_<type>_id`` (``order_confirmed`` carries ``crm_order_id``)."""
    record_type, record = event_type.split("_", 1)[0], None
    if isinstance(data.get(record_type), Mapping):
        record = data[record_type]
    else:
        for key, value in data.items():
            if isinstance(value, Mapping) and "id" in value:
                record_type, record = key, value
                break
    fields: dict[str, Any] = dict(record or {})
    fields.update({key: value for key, value in data.items() if key != record_type})
    fields[record_type] = record
    source = record or data
    record_id = (
        source.get("id")
        or source.get(f"{record_type}_no")
        or source.get("code")
        or data.get(f"{record_type}_id")
        or data.get(f"crm_{record_type}_id")
        or event_id
    )
    owner = fields.get("owner_id") or fields.get("submitter_id")
    code = fields.get("code") or fields.get(f"{record_type}_no")
    return Subject(
        record_type=record_type,
        record_id=str(record_id),
        code=_text(code or fields.get(f"crm_{record_type}_code")),
        owner_id=_text(owner),
        department_id=_text(fields.get("department_id")),
        customer_id=_text(fields.get("customer_id")),
        fields=fields,
    )


def subject_of_due_record(item: Mapping[str, Any]) -> Subject:
    """A record of a ``due_records`` answer: its ``fields`` with the item's own keys."""
    fields: dict[str, Any] = dict(item.get("fields") or {})
    for key in ("record_type", "record_id", "code", "owner_id", "department_id", "customer_id"):
        fields.setdefault(key, item.get(key))
    fields.setdefault("due_on", item.get("due_on"))
    return Subject(
        record_type=str(item.get("record_type") or "record"),
        record_id=str(item["record_id"]),
        code=_text(item.get("code")),
        owner_id=_text(item.get("owner_id")),
        department_id=_text(item.get("department_id")),
        customer_id=_text(item.get("customer_id")),
        fields=fields,
    )


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


# -- periods and dedup keys --------------------------------------------------------------------
def business_day(now: datetime, zone: tzinfo = BUSINESS_TZ) -> str:
    """The day ``now`` falls on in the business time zone, ISO (``2026-12-02``)."""
    return now.astimezone(zone).date().isoformat()


def dedup_key(rule_id: Any, subject: Subject, recipient_id: str, period: str) -> str:
    """One alert's key: rule, record, recipient, period (hashed to a fixed length)."""
    raw = "\x1f".join((str(rule_id), subject.record_type, subject.record_id, recipient_id, period))
    return hashlib.sha256(raw.encode()).hexdigest()


# -- schedules ---------------------------------------------------------------------------------
def parse_daily_at(value: str) -> time:
    """``"HH:MM"`` as a time (``ValueError`` otherwise)."""
    hours, _, minutes = value.partition(":")
    if len(hours) != 2 or len(minutes) != 2 or not (hours + minutes).isdigit():
        raise ValueError("is a time of day as HH:MM (08:30)")
    return time(int(hours), int(minutes))


def schedule_due(
    trigger: Mapping[str, Any],
    last_run_at: datetime | None,
    now: datetime,
    zone: tzinfo = BUSINESS_TZ,
) -> bool:
    """Whether a schedule trigger should run at ``now``, given when it last ran: a daily one
    once its time of day has come (business time zone) and it has not run since; one every N
    minutes when N minutes have passed."""
    if trigger.get("every_minutes"):
        if last_run_at is None:
            return True
        return now - last_run_at >= timedelta(minutes=int(trigger["every_minutes"]))
    at = parse_daily_at(str(trigger["daily_at"]))
    local = now.astimezone(zone)
    today_at = datetime.combine(local.date(), at, tzinfo=local.tzinfo)
    if local < today_at:
        return False
    return last_run_at is None or last_run_at < today_at


# -- preferences -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChannelChoice:
    enabled: bool = True
    digest: str = "immediate"


def channel_choice(
    settings: Sequence[Mapping[str, Any]], alert_type: str, channel: str, severity: str
) -> ChannelChoice:
    """What a person chose for ``channel`` of ``alert_type``: their setting for that alert
    type, else their setting for every type (``*``), else on and immediate. A critical alert
    is never held for the daily digest."""
    chosen = ChannelChoice()
    for wanted in (EVERY_ALERT_TYPE, alert_type):
        for setting in settings:
            if setting.get("alert_type") == wanted and setting.get("channel") == channel:
                chosen = ChannelChoice(
                    enabled=bool(setting.get("enabled", True)),
                    digest=str(setting.get("digest") or "immediate"),
                )
    if severity == CRITICAL and chosen.digest != "immediate":
        chosen = ChannelChoice(enabled=chosen.enabled, digest="immediate")
    return chosen
