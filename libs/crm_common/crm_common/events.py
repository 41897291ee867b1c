"""The event envelope shared by every publisher and consumer (DESIGN §3).

``version`` is the version of the event's ``data`` contract: an integer major version (``1``)
or ``"major.minor"`` (``"1.2"``). A minor step only adds fields, so a consumer written for
major 1 takes any ``1.x``; a new major changes meaning, and a consumer refuses it.
"""

from __future__ import annotations

import uuid
from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields

from crm_common.models import utcnow


def make_envelope(
    event_type: str,
    data: dict[str, Any],
    *,
    source: str,
    actor_id: str | None,
    version: int | str = 1,
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


def major_version(version: object) -> int:
    """The major part of ``1``, ``"1"`` or ``"1.2"``; ``ValueError`` for anything else."""
    if isinstance(version, bool):
        raise ValueError(f"{version!r} is not a version")
    if isinstance(version, int):
        major = version
    else:
        parts = str(version).split(".")
        if len(parts) > 2 or not all(part.isdigit() for part in parts):
            raise ValueError(f"{version!r} is not a version (expected 1 or '1.2')")
        major = int(parts[0])
    if major < 1:
        raise ValueError(f"{version!r} is not a version (the major starts at 1)")
    return major


class VersionField(fields.Field[int | str]):
    """Keeps the version as sent after checking it reads as ``major`` or ``major.minor``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int | str:
        try:
            major_version(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        return value  # type: ignore[no-any-return]


class EnvelopeSchema(Schema):
    """Validates an incoming envelope; unknown top-level fields are tolerated."""

    class Meta:
        unknown = INCLUDE

    event_id = fields.UUID(required=True)
    type = fields.String(required=True)
    version = VersionField(required=True)
    occurred_at = fields.AwareDateTime(required=True)
    source = fields.String(required=True)
    actor_id = fields.String(allow_none=True, load_default=None)
    data = fields.Dict(required=True)
