"""The event envelope shared by every publisher and consumer (DESIGN §3)."""

from __future__ import annotations

import uuid
from typing import Any

from marshmallow import INCLUDE, Schema, fields

from crm_common.models import utcnow


def make_envelope(
    event_type: str,
    data: dict[str, Any],
    *,
    source: str,
    actor_id: str | None,
    version: int = 1,
) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": event_type,
        "version": version,
        "occurred_at": utcnow().isoformat(),
        "source": source,
        "actor_id": actor_id,
        "data": data,
    }


class EnvelopeSchema(Schema):
    """Validates an incoming envelope; unknown top-level fields are tolerated."""

    class Meta:
        unknown = INCLUDE

    event_id = fields.UUID(required=True)
    type = fields.String(required=True)
    version = fields.Integer(required=True)
    occurred_at = fields.AwareDateTime(required=True)
    source = fields.String(required=True)
    actor_id = fields.String(allow_none=True, load_default=None)
    data = fields.Dict(required=True)
