"""What every sales schema shares."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from marshmallow import Schema, ValidationError, fields

from crm_common.schemas import UtcDateTime, describe

DECIMAL_STRING = {"type": "string", "format": "decimal"}
"""How a decimal dumped as a string is documented (marshmallow's own mapping says number)."""


def positive(value: Decimal) -> None:
    """Above zero (a validator the OpenAPI documents by its description, not as a bound, since
    the query string carries the decimal as text)."""
    if value <= 0:
        raise ValidationError("must be greater than 0")


def decimal_string(description: str, example: str | None = None, **kwargs: Any) -> fields.Decimal:
    """A decimal answered as a string such as ``"1280.00"``, never a float."""
    return fields.Decimal(
        as_string=True, metadata={**DECIMAL_STRING, **describe(description, example)}, **kwargs
    )


class RecordSchema(Schema):
    """What every record of the service carries (``crm_common.models.EntityMixin``)."""

    id = fields.UUID(dump_only=True)
    created_at = UtcDateTime(dump_only=True)
    updated_at = UtcDateTime(dump_only=True)
    version = fields.Integer(dump_only=True)
