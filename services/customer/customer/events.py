"""Events the customer service publishes on the ``customer.events`` exchange.

Each is the ``data`` of a crm_common envelope; consumers must tolerate fields they do not know.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields

from customer.schemas import ContactSchema, CustomerSchema

CUSTOMER_CREATED = "customer_created"
CUSTOMER_UPDATED = "customer_updated"
CUSTOMER_OWNER_CHANGED = "customer_owner_changed"
CUSTOMER_MERGED = "customer_merged"
CONTACT_CREATED = "contact_created"
CONTACT_UPDATED = "contact_updated"


class FieldChangeSchema(Schema):
    field = fields.String(required=True)
    old = fields.Raw(allow_none=True)
    new = fields.Raw(allow_none=True)


class CustomerCreatedSchema(Schema):
    customer = fields.Nested(CustomerSchema, required=True)


class CustomerUpdatedSchema(Schema):
    customer = fields.Nested(CustomerSchema, required=True)
    changes = fields.List(fields.Nested(FieldChangeSchema), required=True)


class CustomerOwnerChangedSchema(Schema):
    customer_id = fields.UUID(required=True)
    code = fields.String(required=True)
    name = fields.String(required=True)
    old_owner_id = fields.String(allow_none=True)
    new_owner_id = fields.String(allow_none=True)
    old_department_id = fields.String(allow_none=True)
    new_department_id = fields.String(allow_none=True)


class CustomerMergedSchema(Schema):
    """Other contexts re-point references from ``merged_id`` to ``survivor_id``."""

    survivor_id = fields.UUID(required=True)
    survivor_code = fields.String(required=True)
    merged_id = fields.UUID(required=True)
    merged_code = fields.String(required=True)
    survivor = fields.Nested(CustomerSchema, required=True)


class ContactCreatedSchema(Schema):
    contact = fields.Nested(ContactSchema, required=True)


class ContactUpdatedSchema(Schema):
    contact = fields.Nested(ContactSchema, required=True)
    changes = fields.List(fields.Nested(FieldChangeSchema), required=True)


EVENT_SCHEMAS: dict[str, type[Schema]] = {
    CUSTOMER_CREATED: CustomerCreatedSchema,
    CUSTOMER_UPDATED: CustomerUpdatedSchema,
    CUSTOMER_OWNER_CHANGED: CustomerOwnerChangedSchema,
    CUSTOMER_MERGED: CustomerMergedSchema,
    CONTACT_CREATED: ContactCreatedSchema,
    CONTACT_UPDATED: ContactUpdatedSchema,
}


def customer_created(customer: dict[str, Any]) -> dict[str, Any]:
    return {"customer": customer}


def customer_updated(customer: dict[str, Any], changes: list[dict[str, Any]]) -> dict[str, Any]:
    return {"customer": customer, "changes": changes}


def customer_owner_changed(
    customer: dict[str, Any], old_owner_id: str | None, old_department_id: str | None
) -> dict[str, Any]:
    return {
        "customer_id": customer["id"],
        "code": customer["code"],
        "name": customer["name"],
        "old_owner_id": old_owner_id,
        "new_owner_id": customer["owner_id"],
        "old_department_id": old_department_id,
        "new_department_id": customer["department_id"],
    }


def customer_merged(survivor: dict[str, Any], merged: dict[str, Any]) -> dict[str, Any]:
    return {
        "survivor_id": survivor["id"],
        "survivor_code": survivor["code"],
        "merged_id": merged["id"],
        "merged_code": merged["code"],
        "survivor": survivor,
    }


def contact_created(contact: dict[str, Any]) -> dict[str, Any]:
    return {"contact": contact}


def contact_updated(contact: dict[str, Any], changes: list[dict[str, Any]]) -> dict[str, Any]:
    return {"contact": contact, "changes": changes}
