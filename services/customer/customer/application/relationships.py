"""Relationships between customers (相关影响), each seen from either end."""

from __future__ import annotations

import uuid
from typing import Any

from crm_common.errors import NotFound
from crm_common.ids import lookup_id
from crm_common.schemas import load
from customer import repository
from customer.application.base import READ, WRITE, CustomerUseCases, dump
from customer.domain.customers import check_editable
from customer.domain.relationships import check_new_link, seen_from
from customer.models import Customer, Relationship
from customer.schemas import RelationshipInputSchema, RelationshipSchema

relationship_schema = RelationshipSchema()


def relationship_view(rel: Relationship, perspective: uuid.UUID, other: Customer) -> dict[str, Any]:
    """``rel`` as customer ``perspective`` reads it, ``other`` being the related customer."""
    kind, direction = seen_from(rel.from_customer_id, rel.kind, perspective)
    return dump(
        relationship_schema,
        {
            "id": rel.id,
            "customer_id": perspective,
            "related_customer_id": other.id,
            "related_customer_code": other.code,
            "related_customer_name": other.name,
            "kind": kind,
            "direction": direction,
            "note": rel.note,
            "created_by": rel.created_by,
            "created_at": rel.created_at,
        },
    )


class Relationships(CustomerUseCases):
    def list(self, customer_id: Any) -> list[dict[str, Any]]:
        """The customer's relationships with customers the caller may see."""
        self.principal.require(READ)
        customer = self.customer(customer_id)
        return [
            relationship_view(rel, customer.id, other)
            for rel, other in repository.visible_relationships(
                self.session, customer.id, self.visible
            )
        ]

    def add(self, customer_id: Any, data: Any) -> dict[str, Any]:
        self.principal.require(WRITE)
        customer = self.customer(customer_id)
        values = load(RelationshipInputSchema(), data)
        related = self.customer(values["related_customer_id"])
        check_editable(customer)
        check_editable(related)
        check_new_link(
            customer.id,
            related.id,
            values["kind"],
            repository.links_between(self.session, customer.id, related.id),
        )
        rel = Relationship(
            from_customer_id=customer.id,
            to_customer_id=related.id,
            kind=values["kind"],
            note=values.get("note"),
            created_by=self.context.actor_id,
            created_at=self.context.now,
        )
        self.session.add(rel)
        self.session.flush()
        summary = {"from": customer.code, "to": related.code, "kind": rel.kind, "note": rel.note}
        for side in (customer.id, related.id):
            self.record_history(side, "relationship", rel.id, "created", new=summary)
        return relationship_view(rel, customer.id, related)

    def remove(self, customer_id: Any, relationship_id: Any) -> dict[str, Any]:
        """Remove a relationship of the customer with one the caller may also see."""
        self.principal.require(WRITE)
        customer = self.customer(customer_id)
        rel_id = lookup_id(relationship_id)
        found = (
            repository.visible_relationships(self.session, customer.id, self.visible, rel_id)
            if rel_id
            else []
        )
        if not found:
            raise NotFound.of("relationship", relationship_id)
        [(rel, other)] = found
        view = relationship_view(rel, customer.id, other)
        outgoing = rel.from_customer_id == customer.id
        from_code, to_code = (
            (customer.code, other.code) if outgoing else (other.code, customer.code)
        )
        summary = {"from": from_code, "to": to_code, "kind": rel.kind, "note": rel.note}
        for side in (customer.id, other.id):
            self.record_history(side, "relationship", rel.id, "removed", old=summary)
        self.session.delete(rel)
        self.session.flush()
        return view
