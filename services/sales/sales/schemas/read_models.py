"""The ``*CopySchema`` classes read what other contexts send (their events' records and their
snapshots' items) into sales' read models: the fields sales keeps are checked, fields it does
not know are ignored (a publisher may add fields in a minor version).
"""

from __future__ import annotations

from datetime import UTC

from marshmallow import EXCLUDE, Schema, fields


class CopySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    version = fields.Integer(required=True)


def source_time() -> fields.AwareDateTime:
    return fields.AwareDateTime(default_timezone=UTC, allow_none=True, load_default=None)


def optional_text() -> fields.String:
    return fields.String(allow_none=True, load_default=None)


class CustomerCopySchema(CopySchema):
    """A customer as ``customer.events`` and the customer snapshot carry it."""

    id = fields.UUID(required=True)
    code = fields.String(required=True)
    name = fields.String(required=True)
    short_name = optional_text()
    status = fields.String(required=True)
    category = optional_text()
    region = optional_text()
    owner_id = optional_text()
    department_id = optional_text()
    erp_code = optional_text()
    credit_code = optional_text()
    merged_into_id = fields.UUID(allow_none=True, load_default=None)
    updated_at = source_time()


class ContactCopySchema(CopySchema):
    id = fields.UUID(required=True)
    customer_id = fields.UUID(required=True)
    name = fields.String(required=True)
    title = optional_text()
    mobile = optional_text()
    phone = optional_text()
    updated_at = source_time()


class OwnerChangeSchema(Schema):
    """``customer_owner_changed``: the owner and department before and after."""

    class Meta:
        unknown = EXCLUDE

    customer_id = fields.UUID(required=True)
    old_owner_id = optional_text()
    new_owner_id = optional_text()
    old_department_id = optional_text()
    new_department_id = optional_text()


class MergeSchema(Schema):
    """``customer_merged``: the survivor as it is now, and the customer merged into it."""

    class Meta:
        unknown = EXCLUDE

    survivor_id = fields.UUID(required=True)
    merged_id = fields.UUID(required=True)
    survivor = fields.Nested(CustomerCopySchema, required=True)


class PersonCopySchema(CopySchema):
    """A person as org's ``person_changed`` and people snapshot carry them."""

    id = fields.String(required=True)
    user_id = optional_text()
    code = fields.String(required=True)
    name = fields.String(required=True)
    department_id = optional_text()
    mobile = optional_text()
    email = optional_text()
    status = fields.String(load_default="active")
    disabled = fields.Boolean(load_default=False)
    updated_at = source_time()


class DepartmentCopySchema(CopySchema):
    id = fields.String(required=True)
    code = fields.String(required=True)
    name = fields.String(required=True)
    parent_id = optional_text()
    manager_id = optional_text()
    path = fields.String(required=True)
    disabled = fields.Boolean(load_default=False)


class RegionCopySchema(CopySchema):
    id = fields.String(required=True)
    code = fields.String(required=True)
    name = fields.String(required=True)
    parent_id = optional_text()
    path = fields.String(required=True)
    disabled = fields.Boolean(load_default=False)
