"""Marshmallow schemas of the shapes the gateway itself owns (the services own the rest)."""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields, validate


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
        metadata={"description": "reasons per field, when the input is not valid"},
    )


class MergeRequestSchema(Schema):
    survivor_id = fields.String(required=True, validate=validate.Length(min=1))
    merged_id = fields.String(required=True, validate=validate.Length(min=1))


class HealthSchema(Schema):
    status = fields.String(required=True)


class ReadinessSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["ready", "unavailable"]))
    checks = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        metadata={"description": "'ok' or what failed, for the broker and each service"},
    )
