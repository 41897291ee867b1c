"""Contacts (联系人) of a customer, at most one of them primary."""

from __future__ import annotations

import uuid
from typing import Any

from crm_common.history import diff, filled, snapshot
from crm_common.models import check_version, split_version
from crm_common.schemas import load
from customer import events, repository
from customer.application.base import READ, WRITE, CustomerUseCases, dump, dump_all
from customer.domain.contacts import new_contact_is_primary, primaries_to_demote
from customer.domain.customers import check_editable
from customer.models import CONTACT_FIELDS, Contact
from customer.schemas import ContactInputSchema, ContactSchema

contact_schema = ContactSchema()


class Contacts(CustomerUseCases):
    def list(self, customer_id: Any) -> list[dict[str, Any]]:
        self.principal.require(READ)
        customer = self.customer(customer_id)
        return dump_all(contact_schema, repository.contacts_of(self.session, customer.id))

    def get(self, contact_id: Any) -> dict[str, Any]:
        self.principal.require(READ)
        return dump(contact_schema, repository.get_contact(self.session, contact_id, self.visible))

    def create(self, customer_id: Any, data: Any) -> dict[str, Any]:
        self.principal.require(WRITE)
        customer = self.customer(customer_id)
        check_editable(customer)
        values = load(ContactInputSchema(), data)
        has_primary = repository.has_primary_contact(self.session, customer.id)
        requested = values["is_primary"] if "is_primary" in data else None
        values["is_primary"] = new_contact_is_primary(requested, has_primary)
        if values["is_primary"] and has_primary:
            self.demote_primaries(customer.id)
        contact = Contact(customer_id=customer.id, **values)
        self.session.add(contact)
        self.session.flush()
        dumped = dump(contact_schema, contact)
        self.record_history(
            customer.id, "contact", contact.id, "created", new=filled(dumped, CONTACT_FIELDS)
        )
        self.context.publish(events.CONTACT_CREATED, events.contact_created(dumped))
        return dumped

    def update(self, contact_id: Any, changes: Any, expected_version: Any) -> dict[str, Any]:
        self.principal.require(WRITE)
        contact = repository.get_contact(self.session, contact_id, self.visible)
        changes, expected_version = split_version(changes, expected_version)
        check_version(contact, expected_version)
        values = load(ContactInputSchema(), changes, partial=True)
        if values.get("is_primary") and not contact.is_primary:
            self.demote_primaries(contact.customer_id, keep=contact.id)
        before = snapshot(contact, CONTACT_FIELDS)
        for name, value in values.items():
            setattr(contact, name, value)
        field_changes = diff(before, snapshot(contact, CONTACT_FIELDS), CONTACT_FIELDS)
        if field_changes:
            self.session.flush()
            self.record_history(
                contact.customer_id, "contact", contact.id, "updated", field_changes
            )
            self.context.publish(
                events.CONTACT_UPDATED,
                events.contact_updated(
                    dump(contact_schema, contact), [c.as_dict() for c in field_changes]
                ),
            )
        return dump(contact_schema, contact)

    def demote_primaries(self, customer_id: uuid.UUID, keep: uuid.UUID | None = None) -> None:
        primaries = repository.primary_contacts(self.session, customer_id)
        for other in primaries_to_demote(primaries, keep):
            before = snapshot(other, CONTACT_FIELDS)
            other.is_primary = False
            self.record_history(
                customer_id,
                "contact",
                other.id,
                "updated",
                diff(before, snapshot(other, CONTACT_FIELDS), CONTACT_FIELDS),
            )
        self.session.flush()
