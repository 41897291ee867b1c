"""Record ids as callers send them: UUIDs, checked once at the edge of every query."""

from __future__ import annotations

import uuid
from datetime import timedelta, timezone
from typing import Any

from crm_common.errors import ValidationFailed

BUSINESS_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")
"""The business's own clock: codes carry the year, and days begin and end, as they do in China."""


def parse_id(value: Any, field: str = "id") -> uuid.UUID:
    """``value`` as a UUID, or ``ValidationFailed`` naming ``field``."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError):
        raise ValidationFailed.on(field, "is not a valid id") from None


def lookup_id(value: Any) -> uuid.UUID | None:
    """``value`` as a UUID, or None for one that is not even well formed (then no record has
    it: a lookup answers NotFound alike)."""
    try:
        return parse_id(value)
    except ValidationFailed:
        return None
