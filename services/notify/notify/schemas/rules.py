"""Schemas of alert rules, the inbox and notification preferences."""

from __future__ import annotations

import re
from datetime import UTC
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validates, validates_schema
from marshmallow.validate import Length, OneOf, Range

from crm_common.schemas import StrictSchema, Text, UtcDateTime, describe
from notify.domain import templates
from notify.domain.rules import (
    CHANNELS,
    DIGESTS,
    RECIPIENT_TYPES,
    SEVERITIES,
    TRIGGER_TYPES,
    parse_daily_at,
)
from notify.schemas.common import RecordSchema

CODE = r"^[a-z][a-z0-9_]{1,39}$"


def _template(required: bool = False, allow_none: bool = True) -> fields.String:
    if required:
        return fields.String(required=True, allow_none=allow_none, validate=_check_template)
    return fields.String(allow_none=allow_none, validate=_check_template, load_default=None)


def _check_template(value: str | None) -> None:
    if value is None:
        return
    reason = templates.check(value)
    if reason:
        raise ValidationError(reason)


def _check_time(value: str) -> None:
    try:
        parse_daily_at(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


def _check_zone(value: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError("is an IANA time zone (Asia/Shanghai)") from None


# -- input -------------------------------------------------------------------------------------
class TriggerSchema(StrictSchema):
    type = fields.String(
        required=True,
        validate=OneOf(TRIGGER_TYPES),
        metadata=describe("event: an event of `source`; schedule: the source's due records"),
    )
    source = fields.String(
        required=True,
        validate=Length(1, 40),
        metadata=describe("The service publishing the event or answering due_records", "sales"),
    )
    event_type = fields.String(
        load_default=None,
        allow_none=True,
        validate=Length(1, 60),
        metadata=describe("For an event trigger", "invoice_overdue"),
    )
    daily_at = fields.String(
        load_default=None,
        allow_none=True,
        validate=_check_time,
        metadata=describe("For a schedule: the time of day (Asia/Shanghai)", "08:30"),
    )
    every_minutes = fields.Integer(
        load_default=None, allow_none=True, validate=Range(1, 1440), metadata=describe("Or this")
    )
    kind = fields.String(
        load_default=None,
        allow_none=True,
        validate=Length(1, 60),
        metadata=describe("For a schedule: what due_records is asked", "overdue_invoices"),
    )
    params = fields.Dict(
        keys=fields.String(),
        load_default=dict,
        metadata=describe("For a schedule: due_records' query", {"days": 30}),
    )

    @validates_schema
    def _shape(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["type"] == "event":
            if not data.get("event_type"):
                raise ValidationError("is required for an event trigger", "event_type")
            for name in ("daily_at", "every_minutes", "kind"):
                if data.get(name) is not None:
                    raise ValidationError("is only for a schedule", name)
            return
        if data.get("event_type"):
            raise ValidationError("is only for an event trigger", "event_type")
        if (data.get("daily_at") is None) == (data.get("every_minutes") is None):
            raise ValidationError("a schedule has daily_at or every_minutes (one)", "daily_at")
        if not data.get("kind"):
            raise ValidationError("is required for a schedule", "kind")


class RecipientSchema(StrictSchema):
    type = fields.String(
        required=True,
        validate=OneOf(RECIPIENT_TYPES),
        metadata=describe(
            "owner: the record's owner; manager: the owner's department manager (or the "
            "nearest one above); role: users with the role (code); department: its people "
            "(include_children for the sub-departments); users: named user ids; field: the "
            "user id at a dotted path of the record (waiting_for.approver_user_id)"
        ),
    )
    role = fields.String(load_default=None, allow_none=True, validate=Length(1, 40))
    department_id = fields.String(load_default=None, allow_none=True, validate=Length(1, 64))
    include_children = fields.Boolean(load_default=False)
    user_ids = fields.List(fields.String(validate=Length(1, 64)), load_default=None)
    path = fields.String(load_default=None, allow_none=True, validate=Length(1, 200))

    @validates_schema
    def _needs(self, data: dict[str, Any], **kwargs: Any) -> None:
        needed = {"role": "role", "department": "department_id", "users": "user_ids"}
        needed["field"] = "path"
        name = needed.get(data["type"])
        if name and not data.get(name):
            raise ValidationError(f"is required for {data['type']} recipients", name)


class InboxTemplateSchema(StrictSchema):
    subject = _template(required=True, allow_none=False)
    body = _template(required=True, allow_none=False)


class EmailTemplateSchema(StrictSchema):
    subject = _template(required=True, allow_none=False)
    body = _template(required=True, allow_none=False)
    html = _template()


class SmsTemplateSchema(StrictSchema):
    template = fields.String(
        load_default=None,
        allow_none=True,
        validate=Length(1, 60),
        metadata=describe("The provider's template (Aliyun TemplateCode, Tencent TemplateId)"),
    )
    params = fields.Dict(
        keys=fields.String(validate=Length(1, 40)),
        values=fields.String(validate=_check_template),
        load_default=dict,
        metadata=describe(
            "Template parameter → its template, in the provider's order",
            {"code": "{code}", "days": "{days_overdue}"},
        ),
    )
    text = _template(required=True, allow_none=False)


class ChannelsSchema(StrictSchema):
    inbox = fields.Nested(InboxTemplateSchema, load_default=None, allow_none=True)
    email = fields.Nested(EmailTemplateSchema, load_default=None, allow_none=True)
    sms = fields.Nested(SmsTemplateSchema, load_default=None, allow_none=True)

    @validates_schema
    def _some(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not any(data.get(channel) for channel in CHANNELS):
            raise ValidationError("a rule sends on at least one channel", "inbox")


class RuleInputSchema(StrictSchema):
    code = fields.String(
        required=True,
        validate=Length(2, 40),
        metadata=describe("Lower-case letters, digits and _", "overdue_receivable_30"),
    )
    name = Text(required=True, validate=Length(1, 100))
    alert_type = fields.String(
        required=True,
        validate=Length(1, 40),
        metadata=describe("What preferences name (several rules may share one)", "receivable"),
    )
    description = Text(load_default=None, allow_none=True, validate=Length(max=2000))
    enabled = fields.Boolean(load_default=False)
    trigger = fields.Nested(TriggerSchema, required=True)
    conditions = fields.Raw(
        load_default=None,
        allow_none=True,
        metadata=describe(
            "field/op/value comparisons combined with all/any/not",
            {"all": [{"field": "days_overdue", "op": ">=", "value": 30}]},
        ),
    )
    recipients = fields.List(fields.Nested(RecipientSchema), required=True, validate=Length(1, 20))
    channels = fields.Nested(ChannelsSchema, required=True)
    severity = fields.String(load_default="info", validate=OneOf(SEVERITIES))
    bypass_quiet_hours = fields.Boolean(
        load_default=False, metadata=describe("Critical: email and SMS go out in quiet hours")
    )
    link = _template()

    @validates("code")
    def _code(self, value: str, **kwargs: Any) -> None:
        if not re.fullmatch(CODE, value):
            raise ValidationError("lower-case letters, digits and _, starting with a letter")


class RuleUpdateSchema(RuleInputSchema):
    """A change: the fields given replace the rule's (the code stays)."""

    class Meta:
        unknown = RAISE
        exclude = ("code",)


class RuleQuerySchema(StrictSchema):
    enabled = fields.Boolean(load_default=None, allow_none=True)
    trigger_type = fields.String(load_default=None, allow_none=True, validate=OneOf(TRIGGER_TYPES))
    alert_type = fields.String(load_default=None, allow_none=True)
    cursor = fields.String(load_default=None, allow_none=True)
    limit = fields.Integer(load_default=None, allow_none=True)


# -- output ------------------------------------------------------------------------------------
class TriggerOutSchema(Schema):
    type = fields.String()
    source = fields.String()
    event_type = fields.String(allow_none=True)
    daily_at = fields.String(allow_none=True)
    every_minutes = fields.Integer(allow_none=True)
    kind = fields.String(allow_none=True)
    params = fields.Dict()


class RuleDefinitionFields(Schema):
    trigger = fields.Nested(TriggerOutSchema)
    conditions = fields.Raw(allow_none=True)
    recipients = fields.List(fields.Dict())
    channels = fields.Dict()
    severity = fields.String()
    bypass_quiet_hours = fields.Boolean()
    link = fields.String(allow_none=True)


class RuleSchema(RecordSchema, RuleDefinitionFields):
    code = fields.String()
    name = fields.String()
    alert_type = fields.String()
    description = fields.String(allow_none=True)
    enabled = fields.Boolean()
    built_in = fields.Boolean(metadata=describe("One of the rules the suite ships"))
    revision = fields.Integer(metadata=describe("The number of the definition now in force"))
    updated_by = fields.String(allow_none=True)
    last_run_at = UtcDateTime(allow_none=True, metadata=describe("A schedule's last run"))


class RuleVersionSchema(RuleDefinitionFields):
    rule_id = fields.UUID()
    revision = fields.Integer()
    name = fields.String()
    alert_type = fields.String()
    description = fields.String(allow_none=True)
    enabled = fields.Boolean()
    saved_by = fields.String(allow_none=True)
    saved_at = UtcDateTime()


class RulePageSchema(Schema):
    items = fields.List(fields.Nested(RuleSchema))
    next_cursor = fields.String(allow_none=True)


class RuleVersionListSchema(Schema):
    items = fields.List(fields.Nested(RuleVersionSchema))


# -- inbox -------------------------------------------------------------------------------------
class InboxItemSchema(Schema):
    id = fields.UUID()
    rule_id = fields.UUID(allow_none=True)
    alert_type = fields.String()
    severity = fields.String()
    title = fields.String()
    body = fields.String()
    link = fields.String(allow_none=True)
    record_type = fields.String(allow_none=True)
    record_id = fields.String(allow_none=True)
    created_at = UtcDateTime()
    read_at = UtcDateTime(allow_none=True)
    read = fields.Boolean()


class InboxQuerySchema(StrictSchema):
    unread = fields.Boolean(load_default=False, metadata=describe("Only the unread ones"))
    cursor = fields.String(load_default=None, allow_none=True)
    limit = fields.Integer(load_default=None, allow_none=True)


class InboxPageSchema(Schema):
    items = fields.List(fields.Nested(InboxItemSchema))
    next_cursor = fields.String(allow_none=True)


class UnreadCountSchema(Schema):
    unread = fields.Integer()


class MarkedReadSchema(Schema):
    marked = fields.Integer(metadata=describe("How many items were unread and are now read"))


# -- preferences -------------------------------------------------------------------------------
class ChannelSettingSchema(StrictSchema):
    alert_type = fields.String(
        required=True, validate=Length(1, 40), metadata=describe("An alert type, or * for all")
    )
    channel = fields.String(required=True, validate=OneOf(CHANNELS))
    enabled = fields.Boolean(load_default=True)
    digest = fields.String(
        load_default="immediate",
        validate=OneOf(DIGESTS),
        metadata=describe("daily: held for the daily summary (critical alerts never are)"),
    )


class PreferencesInputSchema(StrictSchema):
    time_zone = fields.String(load_default="Asia/Shanghai", validate=_check_zone)
    quiet_start = fields.String(load_default="21:00", validate=_check_time)
    quiet_end = fields.String(load_default="08:00", validate=_check_time)
    settings = fields.List(
        fields.Nested(ChannelSettingSchema), load_default=list, validate=Length(max=200)
    )
    version = fields.Integer(load_default=None, allow_none=True)


class PreferencesSchema(Schema):
    user_id = fields.String()
    time_zone = fields.String()
    quiet_start = fields.String(metadata=describe("HH:MM", "21:00"))
    quiet_end = fields.String(metadata=describe("HH:MM", "08:00"))
    settings = fields.List(fields.Nested(ChannelSettingSchema))
    version = fields.Integer()
    updated_at = UtcDateTime(allow_none=True)


PUBLIC_SCHEMAS: dict[str, type[Schema]] = {
    "AlertRuleInput": RuleInputSchema,
    "AlertRuleUpdate": RuleUpdateSchema,
    "AlertRuleQuery": RuleQuerySchema,
    "AlertRule": RuleSchema,
    "AlertRuleVersion": RuleVersionSchema,
    "AlertRuleVersionList": RuleVersionListSchema,
    "InboxItem": InboxItemSchema,
    "InboxQuery": InboxQuerySchema,
    "UnreadCount": UnreadCountSchema,
    "MarkedRead": MarkedReadSchema,
    "NotificationPreferences": PreferencesSchema,
    "NotificationPreferencesInput": PreferencesInputSchema,
}


# -- what org sends (not published) ------------------------------------------------------------
class PersonCopySchema(Schema):
    """A person as org's ``person_changed`` and people snapshot carry them; fields notify
    does not keep are ignored."""

    class Meta:
        unknown = EXCLUDE

    id = fields.String(required=True)
    version = fields.Integer(required=True)
    user_id = fields.String(allow_none=True, load_default=None)
    code = fields.String(required=True)
    name = fields.String(required=True)
    department_id = fields.String(allow_none=True, load_default=None)
    mobile = fields.String(allow_none=True, load_default=None)
    email = fields.String(allow_none=True, load_default=None)
    status = fields.String(load_default="active")
    disabled = fields.Boolean(load_default=False)
    updated_at = fields.AwareDateTime(default_timezone=UTC, allow_none=True, load_default=None)
    role_codes = fields.List(fields.String(validate=Length(1, 50)), load_default=list)


class DepartmentCopySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    id = fields.String(required=True)
    version = fields.Integer(required=True)
    code = fields.String(required=True)
    name = fields.String(required=True)
    parent_id = fields.String(allow_none=True, load_default=None)
    manager_id = fields.String(allow_none=True, load_default=None)
    path = fields.String(required=True)
    disabled = fields.Boolean(load_default=False)
