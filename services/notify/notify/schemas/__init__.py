"""Marshmallow schemas of the notify service, one module per aggregate: what it accepts
(``crm_common.schemas.StrictSchema``) and returns. ``PUBLIC_SCHEMAS``, every module's, become
the gateway's OpenAPI components."""

from __future__ import annotations

from marshmallow import Schema

from notify.schemas import deliveries, rules
from notify.schemas.common import RecordSchema

PUBLIC_SCHEMAS: dict[str, type[Schema]] = {
    "Record": RecordSchema,
    **rules.PUBLIC_SCHEMAS,
    **deliveries.PUBLIC_SCHEMAS,
}
