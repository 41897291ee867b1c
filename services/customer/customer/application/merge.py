"""Merging a duplicate customer into the one that survives (rules in ``domain.merge``)."""

from __future__ import annotations

import uuid
from collections.abc import Hashable
from typing import Any

from crm_common.errors import ValidationFailed
from crm_common.history import snapshot
from crm_common.ids import parse_id
from customer import events, repository
from customer.application.base import MERGE, CustomerUseCases, dump_customer
from customer.application.customers import Customers
from customer.domain.merge import UNIQUE_FIELDS, plan_merge
from customer.domain.relationships import Drop, Link, repoint_for_merge
from customer.domain.status import Status
from customer.models import CUSTOMER_FIELDS, Customer, Relationship


class Merges(CustomerUseCases):
    def merge(self, survivor_id: Any, merged_id: Any) -> dict[str, Any]:
        """Merge two customers the caller may both see; the survivor stays in scope."""
        self.principal.require(MERGE)
        survivor_uuid = parse_id(survivor_id, "survivor_id")
        merged_uuid = parse_id(merged_id, "merged_id")
        if survivor_uuid == merged_uuid:
            raise ValidationFailed.on("merged_id", "a customer cannot be merged into itself")
        survivor = self.customer(survivor_uuid)
        merged = self.customer(merged_uuid)
        plan = plan_merge(
            {"id": survivor.id, "code": survivor.code, **snapshot(survivor, CUSTOMER_FIELDS)},
            {"id": merged.id, "code": merged.code, **snapshot(merged, CUSTOMER_FIELDS)},
            survivor_has_primary=repository.has_primary_contact(self.session, survivor.id),
        )
        merged_before = snapshot(merged, ("status", *UNIQUE_FIELDS))
        if plan.moved_unique_fields:
            for name in plan.moved_unique_fields:
                setattr(merged, name, None)
            self.session.flush()
        self._move_dependents(survivor, merged, demote_primaries=plan.demote_moved_primaries)

        merged.status = Status.MERGED.value
        merged.merged_into_id = survivor.id
        merged.updated_at = self.context.now
        self.session.flush()
        self.record_history(
            merged.id,
            "customer",
            merged.id,
            "merged_into",
            plan.merged_away(merged_before, survivor.id),
        )
        self.record_history(
            survivor.id,
            "customer",
            survivor.id,
            "merged",
            new={"merged_id": str(merged.id), "merged_code": merged.code, "name": merged.name},
        )
        Customers(self.context).apply_changes(
            survivor, plan.survivor_values(survivor.tags), change="merged", check_status=False
        )
        survivor.updated_at = self.context.now
        self.session.flush()
        result = dump_customer(survivor)
        self.context.publish(
            events.CUSTOMER_MERGED, events.customer_merged(result, dump_customer(merged))
        )
        return result

    def _move_dependents(
        self, survivor: Customer, merged: Customer, *, demote_primaries: bool
    ) -> None:
        """Contacts, care records, relationships and earlier merges move to the survivor."""
        for contact in repository.contacts_of(self.session, merged.id):
            if demote_primaries and contact.is_primary:
                contact.is_primary = False
            contact.customer_id = survivor.id
        for record in repository.care_records_of(self.session, merged.id):
            record.customer_id = survivor.id
        rels: dict[Hashable, Relationship] = {
            r.id: r for r in repository.relationships_of(self.session, merged.id)
        }
        rels.update({r.id: r for r in repository.relationships_of(self.session, survivor.id)})
        links = [Link(r.id, r.from_customer_id, r.to_customer_id, r.kind) for r in rels.values()]
        actions = repoint_for_merge(links, survivor.id, merged.id)
        for action in actions:
            if isinstance(action, Drop):
                self.session.delete(rels[action.id])
        self.session.flush()
        for action in actions:
            if not isinstance(action, Drop):
                rels[action.id].from_customer_id = uuid.UUID(str(action.from_id))
                rels[action.id].to_customer_id = uuid.UUID(str(action.to_id))
        for earlier in repository.customers_merged_into(self.session, merged.id):
            earlier.merged_into_id = survivor.id
