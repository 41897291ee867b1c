"""Marshmallow schemas of the shapes the gateway itself owns (the services own the rest)."""

from __future__ import annotations

from marshmallow import EXCLUDE, INCLUDE, Schema, fields, validate

MAX_PASSWORD_LENGTH = 1024


class ProblemSchema(Schema):
    """An error, as RFC 9457 application/problem+json.

    Extension members carry the details of the error, e.g. ``candidates`` of a duplicate,
    ``current_version`` of a stale update, ``service`` of an unavailable backend.
    """

    class Meta:
        unknown = INCLUDE

    type = fields.String(required=True, metadata={"description": "URI naming the problem"})
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    code = fields.String(
        required=True, metadata={"description": "stable snake_case code to branch on"}
    )
    request_id = fields.String(
        required=True, metadata={"description": "the X-Request-ID of the failed request"}
    )
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={
            "description": "reasons per field, when the input is not valid; a member of a "
            "nested object or an item of a list is named by its dotted path (tags.0, "
            "address.city)",
            "example": {"name": ["Missing data for required field."], "status.0": ["..."]},
        },
    )


class HealthSchema(Schema):
    status = fields.String(required=True)


class ReadinessSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["ready", "unavailable"]))
    checks = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        metadata={
            "description": "'ok' or what failed, for the broker, each service and the "
            "revocation state ('revocations': 'loading' until it is loaded from org)"
        },
    )


def _password(description: str) -> fields.String:
    """A password: required, write-only, and never echoed in an error message."""
    return fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(min=1, max=MAX_PASSWORD_LENGTH),
        metadata={"format": "password", "description": description},
    )


class TokenRequestSchema(Schema):
    """Sign-in with a username and password."""

    class Meta:
        unknown = EXCLUDE

    username = fields.String(required=True, validate=validate.Length(min=1, max=150))
    password = _password("the user's password")


class RefreshRequestSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    refresh_token = fields.String(
        required=True,
        validate=validate.Length(min=1, max=1024),
        metadata={"description": "the refresh_token of the latest token response"},
    )


class TokenResponseSchema(Schema):
    """A signed-in session: a short-lived access token and the refresh token to renew it."""

    access_token = fields.String(
        required=True, metadata={"description": "send as 'Authorization: Bearer <token>'"}
    )
    token_type = fields.String(required=True, validate=validate.OneOf(["Bearer"]))
    expires_in = fields.Integer(
        required=True, metadata={"description": "seconds until the access token expires"}
    )
    refresh_token = fields.String(
        required=True,
        metadata={"description": "single use: each refresh answers with a new one"},
    )
    refresh_expires_at = fields.String(
        required=True,
        metadata={"format": "date-time", "description": "when the refresh token expires"},
    )


class PasswordChangeSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    current_password = _password("the password in use now")
    new_password = _password("the password to use from now on")


class PasswordResetSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    new_password = _password("the user's new password")


class DeadLetterSchema(Schema):
    """An event a service's handler gave up on, kept in the service's dead-letter queue."""

    id = fields.String(required=True)
    service = fields.String(required=True, metadata={"description": "the service keeping it"})
    handler = fields.String(allow_none=True, metadata={"description": "the handler that failed"})
    event_type = fields.String(allow_none=True)
    event_id = fields.String(allow_none=True)
    source = fields.String(allow_none=True, metadata={"description": "the publishing service"})
    reason = fields.String(allow_none=True, metadata={"description": "why it was given up on"})
    error = fields.String(allow_none=True, metadata={"description": "the last error"})
    attempts = fields.Integer(metadata={"description": "how often the handler tried"})
    dead_lettered_at = fields.String(allow_none=True, metadata={"format": "date-time"})


class DeadLetterDetailSchema(DeadLetterSchema):
    """A dead letter with the message it holds."""

    envelope = fields.Dict(allow_none=True, metadata={"description": "the event, when JSON"})
    payload = fields.String(metadata={"description": "the message body as text"})
    content_type = fields.String(allow_none=True)
    headers = fields.Dict(metadata={"description": "the message's headers"})


class DeadLetterReplaySchema(DeadLetterSchema):
    replayed_to = fields.String(metadata={"description": "the handler's queue it went back to"})
