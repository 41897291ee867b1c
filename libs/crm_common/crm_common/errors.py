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
        """Wrap a marshmallow ``ValidationError``; its messages keep their field structure."""
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        return cls("the input is not valid", {"errors": messages})


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
class Unavailable(CrmError):
    code = "unavailable"
    status = 503
    title = "Service unavailable"


EXPECTED_ERRORS = (NotFound, ValidationFailed, Conflict, Forbidden, Unauthenticated, Unavailable)
"""Pass as ``@rpc(expected_exceptions=EXPECTED_ERRORS)`` so they are not logged as crashes."""
