"""Activities (行动): calls, visits, meetings, emails, demos.

An activity is planned (a start and a duration), then done (a result and a next step) or
cancelled; it may also be logged as done straight away. A visit may carry a check-in position.
A planned activity is overdue once its planned end has passed; an open opportunity is idle when
nothing was done on it for N days (counted from its creation when nothing was ever done).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from crm_common.errors import Conflict, ValidationFailed
from sales.domain.money import parse_decimal

MAX_DURATION_MINUTES = 7 * 24 * 60
MAX_CALENDAR_DAYS = 92
MAX_IDLE_DAYS = 365
COORDINATE = Decimal("0.000001")
CLOCK_SKEW = timedelta(minutes=5)
"""How far ahead of the server's clock a device may report a time it did something."""


class ActivityType(StrEnum):
    CALL = "call"
    VISIT = "visit"
    MEETING = "meeting"
    EMAIL = "email"
    DEMO = "demo"
    OTHER = "other"


TYPE_LABELS = {
    ActivityType.CALL: "电话",
    ActivityType.VISIT: "拜访",
    ActivityType.MEETING: "会议",
    ActivityType.EMAIL: "邮件",
    ActivityType.DEMO: "演示",
    ActivityType.OTHER: "其他",
}


class ActivityStatus(StrEnum):
    PLANNED = "planned"
    DONE = "done"
    CANCELLED = "cancelled"


def check_type(value: object, field: str = "type") -> ActivityType:
    if value not in tuple(ActivityType):
        raise ValidationFailed.on(field, "must be one of " + ", ".join(ActivityType))
    return ActivityType(str(value))


def _whole_minutes(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 1 <= value <= MAX_DURATION_MINUTES else None


def check_plan(start_at: datetime | None, duration_minutes: object) -> int:
    """A planned activity has a start and a duration of 1 minute to 7 days; the duration."""
    errors: dict[str, list[str]] = {}
    if start_at is None:
        errors["start_at"] = ["is required for a planned activity"]
    duration = _whole_minutes(duration_minutes)
    if duration is None:
        errors["duration_minutes"] = [
            f"must be a whole number of minutes from 1 to {MAX_DURATION_MINUTES}"
        ]
    if errors or duration is None:
        raise ValidationFailed("the plan is not complete", {"errors": errors})
    return duration


@dataclass(frozen=True)
class Completion:
    result: str
    next_step: str
    done_at: datetime


def complete(
    status: str, result: str | None, next_step: str | None, done_at: datetime, now: datetime
) -> Completion:
    """Mark a planned activity done (or log a new one as done: ``status`` None counts as
    planned); it needs a result, and cannot be done in the future."""
    if status == ActivityStatus.DONE:
        raise Conflict("the activity is already done", {"reason": "activity_done"})
    if status == ActivityStatus.CANCELLED:
        raise Conflict("a cancelled activity cannot be done", {"reason": "activity_cancelled"})
    errors: dict[str, list[str]] = {}
    if not (result or "").strip():
        errors["result"] = ["is required to complete an activity"]
    if done_at > now + CLOCK_SKEW:
        errors["done_at"] = ["cannot be in the future"]
    if errors:
        raise ValidationFailed("the activity cannot be completed", {"errors": errors})
    return Completion((result or "").strip(), (next_step or "").strip(), done_at)


def check_cancel(status: str) -> None:
    """Only a planned activity can be cancelled."""
    if status != ActivityStatus.PLANNED:
        raise Conflict(f"a {status} activity cannot be cancelled", {"reason": f"activity_{status}"})


def check_replan(status: str) -> None:
    """Only a planned activity can be moved to another time."""
    if status != ActivityStatus.PLANNED:
        raise Conflict(
            f"a {status} activity cannot be rescheduled", {"reason": f"activity_{status}"}
        )


@dataclass(frozen=True)
class CheckIn:
    lat: Decimal
    lng: Decimal
    at: datetime


def _coordinate(value: object, field: str, limit: int) -> Decimal:
    """A degree value; GPS positions arrive as JSON numbers, so floats are taken here."""
    number = parse_decimal(str(value) if isinstance(value, float) else value, field)
    if not -limit <= number <= limit:
        raise ValidationFailed.on(field, f"must be between -{limit} and {limit}")
    return number.quantize(COORDINATE, rounding=ROUND_HALF_UP)


def check_in(
    activity_type: str, lat: object, lng: object, at: datetime | None, now: datetime
) -> CheckIn | None:
    """A visit's check-in position (both coordinates or neither), taken at ``at`` or now."""
    if lat is None and lng is None:
        return None
    if activity_type != ActivityType.VISIT:
        raise ValidationFailed.on("checkin_lat", "only a visit carries a check-in position")
    errors: dict[str, list[str]] = {}
    found: dict[str, Decimal] = {}
    for field, value, limit in (("checkin_lat", lat, 90), ("checkin_lng", lng, 180)):
        if value is None:
            errors[field] = ["is required with the other coordinate"]
            continue
        try:
            found[field] = _coordinate(value, field, limit)
        except ValidationFailed as exc:
            errors.update(exc.field_errors)
    moment = at or now
    if moment > now + CLOCK_SKEW:
        errors["checkin_at"] = ["cannot be in the future"]
    if errors:
        raise ValidationFailed("the check-in position is not valid", {"errors": errors})
    return CheckIn(found["checkin_lat"], found["checkin_lng"], moment)


def normalize_participants(user_ids: Iterable[str], owner_id: str) -> list[str]:
    """Distinct participant user ids in first-seen order, without the owner."""
    found: dict[str, None] = {}
    for user_id in user_ids:
        value = str(user_id).strip()
        if value and value != owner_id:
            found.setdefault(value, None)
    return list(found)


def ends_at(start_at: datetime, duration_minutes: int) -> datetime:
    return start_at + timedelta(minutes=duration_minutes)


def is_overdue(
    status: str, start_at: datetime | None, duration_minutes: int, now: datetime
) -> bool:
    """Still planned after its planned end."""
    return (
        status == ActivityStatus.PLANNED
        and start_at is not None
        and ends_at(start_at, duration_minutes) < now
    )


def check_idle_days(days: object, field: str = "days") -> int:
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_IDLE_DAYS:
        raise ValidationFailed.on(
            field, f"must be a whole number of days from 1 to {MAX_IDLE_DAYS}"
        )
    return days


def idle_cutoff(now: datetime, days: int) -> datetime:
    """An open opportunity with no activity since before this moment is idle."""
    return now - timedelta(days=days)


def is_idle(
    last_activity_at: datetime | None, created_at: datetime, now: datetime, days: int
) -> bool:
    """Nothing done for ``days`` days: since the last activity, or since creation."""
    return (last_activity_at or created_at) < idle_cutoff(now, days)


def last_activity_after(current: datetime | None, done_at: datetime) -> datetime:
    """An opportunity's "last activity at" once an activity done at ``done_at`` counts."""
    return done_at if current is None or done_at > current else current


def check_calendar_range(start: datetime, end: datetime) -> None:
    """A calendar query covers a positive span of at most a quarter."""
    if end <= start:
        raise ValidationFailed.on("to", "must be after from")
    if end - start > timedelta(days=MAX_CALENDAR_DAYS):
        raise ValidationFailed.on("to", f"a calendar covers at most {MAX_CALENDAR_DAYS} days")
