"""Marshmallow schemas of the sales service: what it accepts (``crm_common.schemas.
StrictSchema``) and returns. ``PUBLIC_SCHEMAS`` become the gateway's OpenAPI components."""

from __future__ import annotations

from marshmallow import Schema, fields

from crm_common.schemas import UtcDateTime


class RecordSchema(Schema):
    """What every record of the service carries (``crm_common.models.EntityMixin``)."""

    id = fields.UUID(dump_only=True)
    created_at = UtcDateTime(dump_only=True)
    updated_at = UtcDateTime(dump_only=True)
    version = fields.Integer(dump_only=True)


PUBLIC_SCHEMAS: dict[str, type[Schema]] = {
    "Record": RecordSchema,
}
