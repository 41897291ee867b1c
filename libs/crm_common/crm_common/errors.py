"""Typed errors that cross Nameko RPC intact.

Each error is constructed as ``Error(message, details)``. ``details`` travels as JSON text, so
numbers and nested structures keep their types on the far side of the wire.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from nameko.exceptions import deserialize_to_instance


class CrmError(Exception):
    code: ClassVar[str] = "error"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Error"

    def __init__(self, message: str, details: dict[str, Any] | str | None = None) -> None:
        self.message = message
        self.details: dict[str, Any] = (
            json.loads(details) if isinstance(details, str) else dict(details or {})
        )
        super().__init__(message, json.dumps(self.details, ensure_ascii=False, default=str))

    def __str__(self) -> str:
        return self.message


@deserialize_to_instance
class NotFound(CrmError):
    code = "not_found"
    status = 404
    title = "Not found"

    @classmethod
    def of(cls, resource: str, identifier: object) -> NotFound:
        return cls(
            f"{resource} {identifier} not found", {"resource": resource, "id": str(identifier)}
        )


@deserialize_to_instance
class ValidationFailed(CrmError):
    code = "validation_failed"
    status = 422
    title = "Validation failed"

    @property
    def field_errors(self) -> dict[str, Any]:
        errors: dict[str, Any] = self.details.get("errors", {})
        return errors

    @classmethod
    def on(cls, field: str, reason: str) -> ValidationFailed:
        return cls(f"{field}: {reason}", {"errors": {field: [reason]}})

    @classmethod
    def from_marshmallow(cls, exc: Any) -> ValidationFailed:
        """Wrap a marshmallow ``ValidationError``, its reasons flattened per field path."""
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        return cls("the input is not valid", {"errors": flat_field_errors(messages)})


def flat_field_errors(errors: Any, prefix: str = "") -> dict[str, list[str]]:
    """Field reasons as one flat ``{"path": ["reason", ...]}`` mapping.

    Marshmallow nests the reasons of a list item or a nested object (``{"status": {"0":
    [...]}}``); a nested reason is named by its dotted path (``"status.0"``), so every field
    error has the same documented shape.
    """
    if not isinstance(errors, dict):
        return {prefix or "_schema": _reason_list(errors)}
    flat: dict[str, list[str]] = {}
    for key, value in errors.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            flat.update(flat_field_errors(value, path))
        else:
            flat.setdefault(path, []).extend(_reason_list(value))
    return flat


def _reason_list(value: Any) -> list[str]:
    if isinstance(value, list | tuple):
        reasons: list[str] = []
        for item in value:
            if isinstance(item, dict):
                reasons.extend(
                    f"{path}: {reason}"
                    for path, found in flat_field_errors(item).items()
                    for reason in found
                )
            else:
                reasons.append(str(item))
        return reasons
    return [str(value)]


@deserialize_to_instance
class Conflict(CrmError):
    code = "conflict"
    status = 409
    title = "Conflict"


@deserialize_to_instance
class Forbidden(CrmError):
    code = "forbidden"
    status = 403
    title = "Forbidden"


@deserialize_to_instance
class Unauthenticated(CrmError):
    code = "unauthenticated"
    status = 401
    title = "Unauthenticated"


@deserialize_to_instance
class TooManyRequests(CrmError):
    """Refused for now; ``details["retry_after"]`` says in how many seconds to try again."""

    code = "too_many_requests"
    status = 429
    title = "Too many requests"

    @classmethod
    def retry_in(cls, message: str, seconds: int) -> TooManyRequests:
        return cls(message, {"retry_after": max(1, seconds)})


@deserialize_to_instance
class Unavailable(CrmError):
    code = "unavailable"
    status = 503
    title = "Service unavailable"


EXPECTED_ERRORS = (
    NotFound,
    ValidationFailed,
    Conflict,
    Forbidden,
    Unauthenticated,
    TooManyRequests,
    Unavailable,
)
"""Pass as ``@rpc(expected_exceptions=EXPECTED_ERRORS)`` so they are not logged as crashes."""
