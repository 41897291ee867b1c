"""Schemas of deliveries: what an admin reads of a delivery and its attempts, the query of the
delivery search, and the answer to a provider's receipts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from marshmallow import Schema, ValidationError, fields
from marshmallow.validate import Length, OneOf, Range

from crm_common.ids import BUSINESS_TZ
from crm_common.schemas import StrictSchema, Text, UtcDateTime, describe
from notify.domain.delivery import CHANNELS, KINDS, STATUSES
from notify.schemas.common import RecordSchema

RANGE_FORMAT = "must be a date (2026-03-01) or a date-time with its offset (2026-03-01T09:00+08:00)"


class RangeBound(fields.Field[dt.datetime]):
    """One end of a period: a date-time with its offset, or a date (midnight in China)."""

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


class DeliverySchema(RecordSchema):
    channel = fields.String(metadata=describe("email or sms", "sms"))
    kind = fields.String(
        metadata=describe("alert, marketing, summary (a storm folded) or digest (daily)")
    )
    status = fields.String(
        metadata=describe(
            "queued → sending → sent → delivered, or failed; bundled: folded into the "
            "summary or digest named by bundle_id",
            "sent",
        )
    )
    recipient_id = fields.String(metadata=describe("the recipient's user id"))
    recipient_name = fields.String()
    address = fields.String(
        allow_none=True, metadata=describe("the email address or 11-digit mobile sent to")
    )
    alert_type = fields.String(metadata=describe("the alert's type", "invoice_overdue"))
    rule_id = fields.UUID(allow_none=True)
    severity = fields.String()
    critical = fields.Boolean(metadata=describe("critical alerts ignore quiet hours"))
    dedup_key = fields.String()
    subject = fields.String()
    text = fields.String()
    link = fields.String(allow_none=True)
    bundle_id = fields.UUID(allow_none=True)
    not_before = UtcDateTime(metadata=describe("not sent before (quiet hours, backoff)"))
    attempts = fields.Integer()
    provider = fields.String(allow_none=True, metadata=describe("smtp, aliyun, tencent, webhook"))
    provider_id = fields.String(
        allow_none=True, metadata=describe("the provider's message id (BizId, SerialNo…)")
    )
    last_error = fields.String(allow_none=True)
    sent_at = UtcDateTime(allow_none=True)
    delivered_at = UtcDateTime(allow_none=True)
    failed_at = UtcDateTime(allow_none=True)


class DeliveryAttemptSchema(Schema):
    number = fields.Integer()
    started_at = UtcDateTime()
    finished_at = UtcDateTime(allow_none=True)
    outcome = fields.String(
        metadata=describe("sent, transient, permanent, uncertain, found (a look-up)")
    )
    provider_id = fields.String(allow_none=True)
    error = fields.String(allow_none=True)


class DeliveryDetailSchema(DeliverySchema):
    attempt_log = fields.List(fields.Nested(DeliveryAttemptSchema), dump_only=True)


class DeliveryQuerySchema(StrictSchema):
    recipient_id = Text(validate=Length(max=64), metadata=describe("the recipient's user id"))
    rule_id = fields.UUID()
    channel = fields.String(validate=OneOf(CHANNELS))
    status = fields.String(validate=OneOf(STATUSES))
    kind = fields.String(validate=OneOf(KINDS))
    alert_type = Text(validate=Length(max=64))
    created_from = RangeBound(metadata=describe("created at or after", "2026-03-01"))
    created_to = RangeBound(metadata=describe("created before", "2026-04-01"))
    cursor = fields.String()
    limit = fields.Integer(validate=Range(min=1))


class ReceiptQuerySchema(Schema):
    token = fields.String(
        metadata=describe("the shared SMS_RECEIPT_TOKEN (or send the X-Receipt-Token header)")
    )


class ReceiptAnswerSchema(Schema):
    code = fields.Integer(metadata=describe("0: what Aliyun expects of a report callback"))
    msg = fields.String()
    result = fields.Integer(metadata=describe("0: what Tencent expects of a status callback"))
    errmsg = fields.String()
    applied = fields.Integer(metadata=describe("reports that changed or matched a delivery"))
    duplicates = fields.Integer(metadata=describe("reports of a message id already reported"))
    unmatched = fields.Integer(metadata=describe("reports of no delivery known here"))


PUBLIC_SCHEMAS: dict[str, type[Schema]] = {
    "Delivery": DeliverySchema,
    "DeliveryAttempt": DeliveryAttemptSchema,
    "DeliveryDetail": DeliveryDetailSchema,
    "DeliveryQuery": DeliveryQuerySchema,
    "SmsReceiptAnswer": ReceiptAnswerSchema,
    "SmsReceiptQuery": ReceiptQuerySchema,
}
