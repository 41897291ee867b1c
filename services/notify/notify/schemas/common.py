"""What every schema module of the notify service shares."""

from __future__ import annotations

from marshmallow import Schema, fields

from crm_common.schemas import UtcDateTime


class RecordSchema(Schema):
    """What every record of the service carries (``crm_common.models.EntityMixin``)."""

    id = fields.UUID(dump_only=True)
    created_at = UtcDateTime(dump_only=True)
    updated_at = UtcDateTime(dump_only=True)
    version = fields.Integer(dump_only=True)
