"""Events the org service publishes on the ``org.events`` exchange.

Each is the ``data`` of a crm_common envelope; consumers must tolerate fields they do not know.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields

from org.schemas import DepartmentSchema, RegionSchema, SharedPersonSchema

USER_CHANGED = "user_changed"
GRANTS_CHANGED = "grants_changed"
DEPARTMENT_CHANGED = "department_changed"
REGION_CHANGED = "region_changed"
PERSON_CHANGED = "person_changed"
SESSION_REVOKED = "session_revoked"


class UserChangedSchema(Schema):
    user_id = fields.String(required=True)
    username = fields.String(required=True)
    disabled = fields.Boolean(required=True)
    authz_version = fields.Integer(required=True)


class AuthzVersionSchema(Schema):
    user_id = fields.String(required=True)
    authz_version = fields.Integer(required=True)


class GrantsChangedSchema(Schema):
    """The users whose roles, permissions, department or data grants changed, with the
    ``authz_version`` their tokens must carry from now on."""

    users = fields.List(fields.Nested(AuthzVersionSchema), required=True)


class DepartmentChangedSchema(Schema):
    """A department as it is now (created, edited, moved, repathed, disabled or enabled).
    ``version`` orders the events of one department: a consumer keeps the highest."""

    department = fields.Nested(DepartmentSchema, required=True)


class RegionChangedSchema(Schema):
    """A region as it is now; ``path`` is what customers carry. ``version`` as above."""

    region = fields.Nested(RegionSchema, required=True)


class PersonChangedSchema(Schema):
    """A person as they are now (created, edited, disabled or enabled, or given another user
    account), with the user linked to them. ``version`` as above: a change of the linked user
    moves the person's version on too."""

    person = fields.Nested(SharedPersonSchema, required=True)


class SessionRevokedSchema(Schema):
    session_id = fields.String(required=True)
    user_id = fields.String(required=True)
    reason = fields.String(
        metadata={
            "description": "signed_out, token_reused, password_changed, password_reset, "
            "user_disabled, person_disabled, person_left, user_inactive"
        }
    )


EVENT_SCHEMAS: dict[str, type[Schema]] = {
    USER_CHANGED: UserChangedSchema,
    GRANTS_CHANGED: GrantsChangedSchema,
    DEPARTMENT_CHANGED: DepartmentChangedSchema,
    REGION_CHANGED: RegionChangedSchema,
    PERSON_CHANGED: PersonChangedSchema,
    SESSION_REVOKED: SessionRevokedSchema,
}


def user_changed(user_id: str, username: str, disabled: bool, authz_version: int) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "username": username,
        "disabled": disabled,
        "authz_version": authz_version,
    }


def grants_changed(versions: dict[str, int]) -> dict[str, Any]:
    return {
        "users": [
            {"user_id": user_id, "authz_version": version}
            for user_id, version in sorted(versions.items())
        ]
    }


def department_changed(department: dict[str, Any]) -> dict[str, Any]:
    return {"department": department}


def region_changed(region: dict[str, Any]) -> dict[str, Any]:
    return {"region": region}


def person_changed(person: dict[str, Any]) -> dict[str, Any]:
    return {"person": person}


def session_revoked(session_id: str, user_id: str, reason: str) -> dict[str, Any]:
    return {"session_id": session_id, "user_id": user_id, "reason": reason}
