"""Input and output pieces every service's marshmallow schemas are made of.

``load`` is the one way input is validated: a failure becomes a ``ValidationFailed`` that keeps
marshmallow's field structure, so the gateway can answer with field-level reasons.
``json_schemas`` publishes a service's schemas as OpenAPI components for the gateway.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields

from crm_common.errors import ValidationFailed


class StrictSchema(Schema):
    """Input schema: a field it does not know is an error, not silently dropped."""

    class Meta:
        unknown = RAISE


class Text(fields.String):
    """Trimmed text; an empty or blank optional value becomes null (and skips the validators,
    which would otherwise measure a null). NUL characters and lone UTF-16 surrogates are
    refused: no database stores them and PostgreSQL fails on a NUL."""

    def deserialize(
        self,
        value: Any,
        attr: str | None = None,
        data: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        if self.allow_none and isinstance(value, str) and not value.strip():
            return None
        return super().deserialize(value, attr, data, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not text:
            raise ValidationError("This field may not be blank.")
        reason = unstorable_text(text)
        if reason:
            raise ValidationError(reason)
        return text


def unstorable_text(text: str) -> str | None:
    """Why ``text`` cannot be stored as UTF-8 text, or None when it can."""
    if "\x00" in text:
        return "must not contain NUL characters."
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text (it holds a lone UTF-16 surrogate)."
    return None


class CommaList(fields.List[Any]):
    """A list, or one string of comma-separated values (as query parameters arrive);
    repeated values are dropped, the first occurrence keeps its place."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> list[Any]:
        if isinstance(value, str):
            value = [part for part in value.split(",") if part.strip()]
        return list(dict.fromkeys(super()._deserialize(value, attr, data, **kwargs)))


class UtcDateTime(fields.DateTime):
    """ISO 8601 with offset; values read back naive (SQLite) are UTC."""

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:
        if isinstance(value, dt.datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return super()._serialize(value, attr, obj, **kwargs)


def describe(description: str, example: Any = None) -> dict[str, Any]:
    """Field metadata for the OpenAPI document."""
    data: dict[str, Any] = {"description": description}
    if example is not None:
        data["example"] = example
    return data


def load(schema: Schema, data: Any, **kwargs: Any) -> dict[str, Any]:
    """Validate input with ``schema``; a failure is a ``ValidationFailed`` with field reasons."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValidationFailed(
            "the input must be an object", {"errors": {"_schema": ["not an object"]}}
        )
    try:
        result: dict[str, Any] = schema.load(data, **kwargs)
    except ValidationError as exc:
        raise ValidationFailed.from_marshmallow(exc) from None
    return result


def parse_flag(value: Any, field: str) -> bool:
    """A boolean RPC argument that may arrive as 0/1 or a query-string word (true/false/1/0)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise ValidationFailed.on(field, "must be true or false")


def json_schemas(service: str, schemas: Mapping[str, type[Schema]]) -> dict[str, Any]:
    """JSON schemas by name (OpenAPI 3.1 components), with references between them."""
    from apispec import APISpec
    from apispec.ext.marshmallow import MarshmallowPlugin

    spec = APISpec(
        title=service, version="1", openapi_version="3.1.0", plugins=[MarshmallowPlugin()]
    )
    for name, schema in schemas.items():
        spec.components.schema(name, schema=schema)
    components: dict[str, Any] = spec.to_dict().get("components", {}).get("schemas", {})
    return components
