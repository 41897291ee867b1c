"""Sales' copy of what it needs from other contexts, kept from their events and snapshots.

From ``customer.events``: customers (code, name, short name, status, category, region, owner,
department) and their contacts (names and phones). From ``org.events``: people (with their user
account), departments (with their manager) and regions. Sales reads these copies to list and
filter and never calls the other services for them.

Every record carries its source's ``version``: a copy is replaced only by a newer one, so an
event and a snapshot page may arrive in any order, and twice. When a newer copy of a customer
changes its region or category, the customer's opportunities, activities, expenses, quotes,
orders and contracts (and its invoices and payments) take the new values, which they copied
from it for scoping, in the same transaction, each changed field with a history entry without
an actor (``customer_updated``); their owner and department stay their own. A
``customer_merged`` marks the merged customer merged and moves its contacts, opportunities,
activities, expenses, quotes, orders and contracts (and its invoices and payments) to the
survivor, with the survivor's region and category, each moved record with a history entry and
a new version. Contract milestones, order lines and shipments go with their document; credit
limits stay, as the ERP sets the survivor's; an ERP code mapping keeps naming the merged
customer and resolves to the survivor, and an applied ERP event the customer it went to. A
record sales cannot read (a required field missing) raises ``UnusableRecord``: its event is
retried, then dead-lettered with the reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from marshmallow import Schema, ValidationError
from sqlalchemy.orm import Session

from crm_common.history import FieldChange, diff, snapshot
from crm_common.models import utcnow
from sales.models import Activity, Expense, HistoryEntry, Opportunity
from sales.models.orders import Contract, SalesOrder
from sales.models.quotes import Quote
from sales.repository import read_models as repository
from sales.repository import receivables as receivable_rows
from sales.schemas.read_models import (
    ContactCopySchema,
    CustomerCopySchema,
    DepartmentCopySchema,
    MergeSchema,
    OwnerChangeSchema,
    PersonCopySchema,
    RegionCopySchema,
)

CUSTOMER_MERGED = "customer_merged"
MOVED_FIELDS = ("customer_id", "region", "category")
"""What moving a record to the surviving customer changes: the customer and the scope values
copied from it."""

CUSTOMER_UPDATED = "customer_updated"
SCOPE_FIELDS = ("region", "category")
"""The values a record copies from its customer for scoping, which follow the customer."""
SCOPED_RECORDS: tuple[tuple[repository.ScopedModel, str], ...] = (
    (Opportunity, "opportunity"),
    (Activity, "activity"),
    (Expense, "expense"),
    (Quote, "quote"),
    (SalesOrder, "order"),
    (Contract, "contract"),
)
"""Each model scoped by its customer's region and category, with its history entity type."""
MOVED_RECORDS = SCOPED_RECORDS
"""Each model a merge moves to the surviving customer record by record, with history (the
receivables move in ``receivables.move_to_survivor``)."""


class UnusableRecord(ValueError):
    """A record from another context that sales cannot apply; retrying will not help."""


def read(schema: Schema, record: Any, what: str) -> dict[str, Any]:
    """``record`` loaded by ``schema``, or ``UnusableRecord`` naming what is wrong."""
    if not isinstance(record, dict):
        raise UnusableRecord(f"{what} is not an object: {record!r}")
    try:
        loaded: dict[str, Any] = schema.load(record)
    except ValidationError as exc:
        raise UnusableRecord(f"{what} cannot be applied: {exc.messages}") from None
    return loaded


class ReadModels:
    """Applies other contexts' records to the copies in ``session``'s transaction; each
    ``keep_*`` returns whether the record was new or newer than the copy."""

    def __init__(self, session: Session, now: datetime | None = None) -> None:
        self.session = session
        self.now = now or utcnow()

    # -- customer ----------------------------------------------------------------------------
    def keep_customer(self, record: Any) -> bool:
        return self._keep_customer(read(CustomerCopySchema(), record, "the customer"))

    def _keep_customer(self, customer: dict[str, Any]) -> bool:
        before = repository.customer_scope(self.session, customer["id"])
        kept = repository.keep_customer(
            self.session,
            {
                "id": customer["id"],
                "code": customer["code"],
                "name": customer["name"],
                "short_name": customer["short_name"],
                "status": customer["status"],
                "category": customer["category"],
                "region": customer["region"],
                "owner_id": customer["owner_id"],
                "department_id": customer["department_id"],
                "erp_code": customer["erp_code"],
                "credit_code": customer["credit_code"],
                "merged_into_id": customer["merged_into_id"],
                "source_version": customer["version"],
                "source_updated_at": customer["updated_at"],
                "updated_at": self.now,
            },
        )
        if kept:
            receivable_rows.follow_customer(self.session, customer["id"], customer)
            if before is not None and before != (customer["region"], customer["category"]):
                self._follow_scope(customer["id"], customer["region"], customer["category"])
        return kept

    def _follow_scope(
        self, customer_id: uuid.UUID, region: str | None, category: str | None
    ) -> int:
        """The customer's records take its new region and category, each changed field with a
        history entry (no actor: sales did it, following the customer). Returns how many
        records changed."""
        followed = 0
        for model, entity_type in SCOPED_RECORDS:
            records = repository.records_out_of_scope(
                self.session, model, customer_id, region, category
            )
            for record in records:
                before = snapshot(record, SCOPE_FIELDS)
                record.region = region
                record.category = category
                changes = diff(before, snapshot(record, SCOPE_FIELDS), SCOPE_FIELDS)
                self._remember(entity_type, record.id, CUSTOMER_UPDATED, None, changes)
                followed += 1
        self.session.flush()
        return followed

    def move_owner(self, change: Any, occurred_at: datetime) -> bool:
        """``customer_owner_changed``. It carries no version: it applies only if the copy was
        last changed before the event occurred (the ``customer_updated`` of the same change
        carries the version and applies as any other)."""
        owner = read(OwnerChangeSchema(), change, "the owner change")
        moved = repository.move_customer_owner(
            self.session,
            owner["customer_id"],
            owner["new_owner_id"],
            owner["new_department_id"],
            occurred_at,
        )
        if moved:
            scope = {"owner_id": owner["new_owner_id"], "department_id": owner["new_department_id"]}
            receivable_rows.follow_customer(self.session, owner["customer_id"], scope)
        return moved

    def keep_contact(self, record: Any) -> bool:
        contact = read(ContactCopySchema(), record, "the contact")
        return repository.keep_contact(
            self.session,
            {
                "id": contact["id"],
                "customer_id": repository.survivor_of(self.session, contact["customer_id"]),
                "name": contact["name"],
                "title": contact["title"],
                "mobile": contact["mobile"],
                "phone": contact["phone"],
                "source_version": contact["version"],
                "source_updated_at": contact["updated_at"],
                "updated_at": self.now,
            },
        )

    def merge(self, event: Any, actor_id: str | None) -> int:
        """``customer_merged``: the survivor kept as sent, the merged customer marked merged,
        its contacts and its records moved to the survivor (or to where the survivor was
        merged since). Returns how many opportunities, activities, expenses, quotes, orders
        and contracts moved."""
        merge = read(MergeSchema(), event, CUSTOMER_MERGED)
        merged_id, survivor_id = merge["merged_id"], merge["survivor_id"]
        if merged_id == survivor_id:
            raise UnusableRecord(f"{CUSTOMER_MERGED} merges customer {merged_id} into itself")
        self._keep_customer(merge["survivor"])
        code = str(event.get("merged_code") or merged_id)
        repository.mark_customer_merged(self.session, merged_id, survivor_id, code, self.now)
        target = repository.survivor_of(self.session, survivor_id)
        repository.move_contacts(self.session, merged_id, target, self.now)
        moved = self._move_records(merged_id, target, actor_id)
        survivor = repository.get_customer(self.session, target)
        receivable_rows.move_to_survivor(self.session, merged_id, target, survivor)
        return moved

    def _move_records(
        self, merged_id: uuid.UUID, target_id: uuid.UUID, actor_id: str | None
    ) -> int:
        target = repository.get_customer(self.session, target_id)
        moved = 0
        for model, entity_type in MOVED_RECORDS:
            for record in repository.records_of_customer(self.session, model, merged_id):
                before = snapshot(record, MOVED_FIELDS)
                record.customer_id = target_id
                if target is not None:
                    record.region = target.region
                    record.category = target.category
                changes = diff(before, snapshot(record, MOVED_FIELDS), MOVED_FIELDS)
                self._remember(entity_type, record.id, CUSTOMER_MERGED, actor_id, changes)
                moved += 1
        self.session.flush()
        return moved

    def _remember(
        self,
        entity_type: str,
        entity_id: uuid.UUID,
        change: str,
        actor_id: str | None,
        changes: Iterable[FieldChange],
    ) -> None:
        """A history entry per field a customer event changed on one of sales' records."""
        self.session.add_all(
            HistoryEntry(
                entity_type=entity_type,
                entity_id=str(entity_id),
                change=change,
                actor_id=actor_id,
                field=field_change.field,
                old=field_change.old,
                new=field_change.new,
                at=self.now,
            )
            for field_change in changes
        )

    # -- org ---------------------------------------------------------------------------------
    def keep_person(self, record: Any) -> bool:
        person = read(PersonCopySchema(), record, "the person")
        return repository.keep_person(
            self.session,
            {
                "id": person["id"],
                "user_id": person["user_id"],
                "code": person["code"],
                "name": person["name"],
                "department_id": person["department_id"],
                "mobile": person["mobile"],
                "email": person["email"],
                "status": person["status"],
                "disabled": person["disabled"],
                "source_version": person["version"],
                "source_updated_at": person["updated_at"],
                "updated_at": self.now,
            },
        )

    def keep_department(self, record: Any) -> bool:
        department = read(DepartmentCopySchema(), record, "the department")
        return repository.keep_department(
            self.session,
            {
                "id": department["id"],
                "code": department["code"],
                "name": department["name"],
                "parent_id": department["parent_id"],
                "manager_id": department["manager_id"],
                "path": department["path"],
                "disabled": department["disabled"],
                "source_version": department["version"],
                "updated_at": self.now,
            },
        )

    def keep_region(self, record: Any) -> bool:
        region = read(RegionCopySchema(), record, "the region")
        return repository.keep_region(
            self.session,
            {
                "id": region["id"],
                "code": region["code"],
                "name": region["name"],
                "parent_id": region["parent_id"],
                "path": region["path"],
                "disabled": region["disabled"],
                "source_version": region["version"],
                "updated_at": self.now,
            },
        )
