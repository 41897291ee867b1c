"""What the activity use cases accept and return: planning, logging and completing activities
(行动), their lists, the calendar and the overdue list.

Times arrive as ISO 8601 with an offset and are kept in UTC; a bare date in a range query is
midnight in China (``BUSINESS_TZ``), the time zone the sales teams work in.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from marshmallow import Schema, ValidationError, fields, validates_schema
from marshmallow.validate import Length, OneOf, Range

from crm_common.ids import BUSINESS_TZ
from crm_common.schemas import CommaList, StrictSchema, Text, UtcDateTime, describe
from sales.domain.activities import MAX_DURATION_MINUTES, ActivityStatus, ActivityType
from sales.schemas.common import RecordSchema, decimal_string

TYPES = tuple(t.value for t in ActivityType)
STATUSES = tuple(s.value for s in ActivityStatus)
ACTIVITY_SORTS = ("start_at", "-start_at", "created_at", "-created_at")
MAX_PARTICIPANTS = 50
TYPE_HELP = "call 电话, visit 拜访, meeting 会议, email 邮件, demo 演示, other 其他"


class UtcMoment(fields.AwareDateTime):
    """An ISO 8601 date-time with its offset (``2026-03-02T09:30:00+08:00``), read as UTC."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(default_timezone=None, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> dt.datetime:
        moment: dt.datetime = super()._deserialize(value, attr, data, **kwargs)
        return moment.astimezone(dt.UTC)


class RangeBound(fields.Field[dt.datetime]):
    """One end of a time range: a date-time with its offset, or a date (midnight in China)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> dt.datetime:
        if not isinstance(value, str):
            raise ValidationError(RANGE_FORMAT)
        text = value.strip()
        try:
            if len(text) == len("2026-03-01"):
                day = dt.date.fromisoformat(text)
                return dt.datetime.combine(day, dt.time(), BUSINESS_TZ).astimezone(dt.UTC)
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValidationError(RANGE_FORMAT) from None
        if moment.tzinfo is None:
            raise ValidationError(RANGE_FORMAT)
        return moment.astimezone(dt.UTC)


RANGE_FORMAT = "must be a date (2026-03-01) or a date-time with its offset (2026-03-01T09:00+08:00)"


def range_bound(description: str, example: str, **kwargs: Any) -> RangeBound:
    return RangeBound(metadata={**describe(description, example), "type": "string"}, **kwargs)


def check_range(data: dict[str, Any]) -> None:
    start, end = data.get("start"), data.get("end")
    if start is not None and end is not None and end <= start:
        raise ValidationError("must be after from", "to")


class Coordinate(fields.Raw):
    """A degree value as a JSON number or a decimal string (checked by the domain)."""

    def __init__(self, description: str, example: str) -> None:
        super().__init__(
            allow_none=True,
            metadata={**describe(description, example), "type": ["string", "number"]},
        )


def participants_field() -> fields.List[Any]:
    return fields.List(
        Text(validate=Length(max=64)),
        validate=Length(max=MAX_PARTICIPANTS),
        metadata=describe("User ids of the colleagues taking part besides the owner"),
    )


# -- input -----------------------------------------------------------------------------------
class CheckInInputSchema(StrictSchema):
    """A visit's check-in position; both coordinates or neither."""

    checkin_lat = Coordinate("Latitude in degrees, -90 to 90", "31.230416")
    checkin_lng = Coordinate("Longitude in degrees, -180 to 180", "121.473701")
    checkin_at = UtcMoment(allow_none=True, metadata=describe("When checked in; now if left out"))


class ActivityInputSchema(CheckInInputSchema):
    """A new activity: planned (``start_at`` and ``duration_minutes``), or logged as done
    (``status`` ``done`` with ``result``, ``next_step`` and ``done_at``)."""

    type = fields.String(required=True, validate=OneOf(TYPES), metadata=describe(TYPE_HELP))
    subject = Text(required=True, validate=Length(min=1, max=200), metadata=describe("主题"))
    status = fields.String(
        load_default=ActivityStatus.PLANNED.value,
        validate=OneOf((ActivityStatus.PLANNED.value, ActivityStatus.DONE.value)),
        metadata=describe("planned (default) or done: log what already happened"),
    )
    customer_id = fields.UUID(required=True, metadata=describe("A customer you can see"))
    contact_id = fields.UUID(allow_none=True, metadata=describe("A contact of that customer"))
    opportunity_id = fields.UUID(
        allow_none=True, metadata=describe("An opportunity of that customer you can see")
    )
    owner_id = Text(
        allow_none=True,
        validate=Length(max=64),
        metadata=describe("User id of the owner; the caller if left out"),
    )
    start_at = UtcMoment(
        allow_none=True,
        metadata=describe("Planned start; for a logged activity the done time if left out"),
    )
    duration_minutes = fields.Integer(
        allow_none=True, strict=True, validate=Range(min=1, max=MAX_DURATION_MINUTES)
    )
    participants = participants_field()
    result = Text(allow_none=True, validate=Length(max=4000), metadata=describe("结果"))
    next_step = Text(allow_none=True, validate=Length(max=4000), metadata=describe("下一步"))
    done_at = UtcMoment(allow_none=True, metadata=describe("When it was done; now if left out"))


class ActivityUpdateSchema(StrictSchema):
    """What a PATCH may change; times go through ``replan``, outcomes through ``complete``."""

    subject = Text(validate=Length(min=1, max=200))
    type = fields.String(validate=OneOf(TYPES), metadata=describe(TYPE_HELP))
    contact_id = fields.UUID(allow_none=True)
    opportunity_id = fields.UUID(allow_none=True)
    participants = participants_field()


class ActivityCompletionSchema(CheckInInputSchema):
    result = Text(required=True, validate=Length(min=1, max=4000), metadata=describe("结果"))
    next_step = Text(allow_none=True, validate=Length(max=4000), metadata=describe("下一步"))
    done_at = UtcMoment(allow_none=True, metadata=describe("When it was done; now if left out"))


class ActivityReplanSchema(StrictSchema):
    start_at = UtcMoment(required=True)
    duration_minutes = fields.Integer(
        strict=True,
        validate=Range(min=1, max=MAX_DURATION_MINUTES),
        metadata=describe("The planned duration; unchanged if left out"),
    )


# -- output ----------------------------------------------------------------------------------
class ActivitySchema(RecordSchema):
    type = fields.String(validate=OneOf(TYPES), metadata=describe(TYPE_HELP))
    subject = fields.String()
    status = fields.String(validate=OneOf(STATUSES))
    customer_id = fields.UUID()
    contact_id = fields.UUID(allow_none=True)
    opportunity_id = fields.UUID(allow_none=True)
    owner_id = fields.String()
    department_id = fields.String(allow_none=True)
    region = fields.String(allow_none=True, metadata=describe("The customer's, for scoping"))
    category = fields.String(allow_none=True, metadata=describe("The customer's, for scoping"))
    start_at = UtcDateTime(allow_none=True)
    duration_minutes = fields.Integer(allow_none=True)
    ends_at = UtcDateTime(allow_none=True, metadata=describe("start_at + duration_minutes"))
    overdue = fields.Boolean(metadata=describe("Still planned after its planned end"))
    done_at = UtcDateTime(allow_none=True)
    result = fields.String(allow_none=True)
    next_step = fields.String(allow_none=True)
    checkin_lat = decimal_string("Latitude in degrees", "31.230416", allow_none=True)
    checkin_lng = decimal_string("Longitude in degrees", "121.473701", allow_none=True)
    checkin_at = UtcDateTime(allow_none=True)
    participants = fields.List(fields.String())


class ActivityPageSchema(Schema):
    items = fields.List(fields.Nested(ActivitySchema))
    next_cursor = fields.String(allow_none=True)


class ActivityListSchema(Schema):
    items = fields.List(fields.Nested(ActivitySchema))


# -- queries ---------------------------------------------------------------------------------
class PageQuerySchema(StrictSchema):
    cursor = Text(allow_none=True, metadata=describe("next_cursor of the previous page"))
    limit = fields.Integer(
        allow_none=True,
        validate=Range(min=1),
        metadata=describe("Page size: 50 unless given, 200 at most"),
    )


class ActivityQuerySchema(PageQuerySchema):
    """A page of activities: the filters, the order, and where the page starts."""

    q = Text(allow_none=True, validate=Length(max=100), metadata=describe("Part of the subject"))
    type = CommaList(Text(validate=OneOf(TYPES)), metadata=describe("One or more types"))
    status = CommaList(Text(validate=OneOf(STATUSES)), metadata=describe("One or more"))
    customer_id = fields.UUID(allow_none=True)
    contact_id = fields.UUID(allow_none=True)
    opportunity_id = fields.UUID(allow_none=True)
    owner_id = Text(allow_none=True, metadata=describe("The owner's user id"))
    participant_id = Text(
        allow_none=True, metadata=describe("Activities this user owns or takes part in")
    )
    department_id = Text(allow_none=True)
    start = range_bound("Starting at or after (date or date-time)", "2026-03-01", data_key="from")
    end = range_bound("Starting before (date or date-time)", "2026-04-01", data_key="to")
    overdue = fields.Boolean(
        allow_none=True, metadata=describe("true: only planned activities past their planned end")
    )
    sort = fields.String(load_default="-start_at", validate=OneOf(ACTIVITY_SORTS))

    @validates_schema
    def range_is_positive(self, data: dict[str, Any], **kwargs: Any) -> None:
        check_range(data)


class CalendarQuerySchema(StrictSchema):
    """A calendar: the activities of one owner or one department starting in a range of at
    most 92 days. Without owner or department, the caller's own."""

    start = range_bound("From (date or date-time)", "2026-03-02", required=True, data_key="from")
    end = range_bound(
        "To, excluded (date or date-time)", "2026-03-09", required=True, data_key="to"
    )
    owner_id = Text(allow_none=True, metadata=describe("Activities this user owns or joins"))
    department_id = Text(allow_none=True)
    include_sub_departments = fields.Boolean(
        load_default=False, metadata=describe("With department_id: its sub-departments too")
    )
    status = CommaList(
        Text(validate=OneOf(STATUSES)), metadata=describe("Planned and done unless given")
    )

    @validates_schema
    def one_subject(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("owner_id") and data.get("department_id"):
            raise ValidationError("give owner_id or department_id, not both", "department_id")
        check_range(data)


class OverdueQuerySchema(PageQuerySchema):
    """Planned activities past their planned end, oldest first."""

    owner_id = Text(allow_none=True)
    department_id = Text(allow_none=True)
    customer_id = fields.UUID(allow_none=True)
    opportunity_id = fields.UUID(allow_none=True)


PUBLIC_SCHEMAS: dict[str, type[Schema]] = {
    # a nested schema comes before the schemas holding it
    "Activity": ActivitySchema,
    "ActivityInput": ActivityInputSchema,
    "ActivityEditInput": ActivityUpdateSchema,
    "ActivityCompletionInput": ActivityCompletionSchema,
    "ActivityReplanInput": ActivityReplanSchema,
    "CheckInInput": CheckInInputSchema,
    "ActivityPage": ActivityPageSchema,
    "ActivityList": ActivityListSchema,
    "ActivityQuery": ActivityQuerySchema,
    "ActivityCalendarQuery": CalendarQuerySchema,
    "OverdueActivityQuery": OverdueQuerySchema,
}
