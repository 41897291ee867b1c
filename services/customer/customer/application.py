"""The customer context's use cases: validate, apply domain rules, write history and events.

Service entrypoints construct a ``CustomerBook`` per call; tests can do the same with a plain
session and an outbox writer. Every use case first checks the caller's function permission
(403) and reaches customers only through the caller's data scope, applied in SQL: a customer
outside it is answered like a missing one (404), and no write may put one outside it (422).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from crm_common.context import Principal
from crm_common.errors import Conflict, NotFound, ValidationFailed
from crm_common.models import check_version, split_version, utcnow
from crm_common.pagination import SortKey, keyset_page
from crm_common.schemas import load
from customer import csvio, events, repository
from customer.domain.codes import is_customer_code
from customer.domain.credit_code import validate_credit_code
from customer.domain.duplicates import Probe, find_duplicates
from customer.domain.history import (
    FieldChange,
    codes_named,
    diff,
    hide_customers,
    jsonable,
    snapshot,
)
from customer.domain.merge import plan_merge
from customer.domain.names import normalize_company_name
from customer.domain.phones import phone_key
from customer.domain.relationships import INVERSE, Drop, Link, check_new_link, repoint_for_merge
from customer.domain.scoping import SCOPE_FIELDS, check_in_scope, scope_values
from customer.domain.status import Status, check_transition
from customer.domain.tags import split_tags
from customer.models import (
    CONTACT_FIELDS,
    CUSTOMER_FIELDS,
    CareRecord,
    Contact,
    Customer,
    HistoryEntry,
    Relationship,
)
from customer.schemas import (
    CareRecordInputSchema,
    CareRecordSchema,
    ContactInputSchema,
    ContactSchema,
    CustomerFilterSchema,
    CustomerInputSchema,
    CustomerQuerySchema,
    CustomerSchema,
    HistoryEntrySchema,
    RelationshipInputSchema,
    RelationshipSchema,
)

OWNERSHIP_FIELDS = frozenset({"owner_id", "department_id"})

READ = "customer:read"
WRITE = "customer:write"
IMPORT = "customer:import"
EXPORT = "customer:export"
MERGE = "customer:merge"

customer_schema = CustomerSchema()
contact_schema = ContactSchema()
care_schema = CareRecordSchema()
relationship_schema = RelationshipSchema()
history_schema = HistoryEntrySchema()


class EventSink:
    """What the book needs of an outbox: ``add(session, event_type, data)``."""

    add: Callable[..., Any]


def dump_customer(customer: Customer) -> dict[str, Any]:
    return customer_schema.dump(customer)


CREDIT_CODE_TAKEN_OUTSIDE = "already used by a customer outside your data scope"


def _candidate(candidate: dict[str, Any], in_scope: bool) -> dict[str, Any]:
    """A duplicate candidate as the caller may see it: outside their scope, no identity."""
    if in_scope:
        return {**candidate, "in_scope": True}
    return {"in_scope": False, "score": candidate["score"], "reasons": candidate["reasons"]}


class CustomerBook:
    def __init__(self, session: Any, outbox: EventSink, principal: Principal) -> None:
        self.session = session
        self.outbox = outbox
        self.principal = principal
        self.actor_id = principal.user_id
        self.visible = repository.visible_to(principal)
        self.now: datetime = utcnow()

    def _customer(self, customer_id: Any) -> Customer:
        return repository.get_customer(self.session, customer_id, self.visible)

    # -- history --------------------------------------------------------------------------
    def _history(
        self,
        customer_id: uuid.UUID,
        entity_type: str,
        entity_id: Any,
        change: str,
        changes: Iterable[FieldChange] = (),
        *,
        old: Any = None,
        new: Any = None,
    ) -> None:
        common = {
            "customer_id": customer_id,
            "entity_type": entity_type,
            "entity_id": str(entity_id),
            "change": change,
            "actor_id": self.actor_id,
            "at": self.now,
        }
        rows = [HistoryEntry(**common, field=c.field, old=c.old, new=c.new) for c in changes] or [
            HistoryEntry(**common, old=jsonable(old), new=jsonable(new))
        ]
        self.session.add_all(rows)

    # -- customers ------------------------------------------------------------------------
    def _editable(self, customer: Customer) -> None:
        if customer.status == Status.MERGED.value:
            raise Conflict(
                f"customer {customer.code} was merged into another customer",
                {"reason": "customer_merged", "merged_into_id": str(customer.merged_into_id)},
            )

    def duplicates_of(
        self, name: str, credit_code: str | None, phone: str | None
    ) -> list[dict[str, Any]]:
        """Likely duplicates wherever they are; those outside the caller's scope are told only
        by score and reasons."""
        suspects = repository.duplicate_suspects(
            self.session, name, credit_code, phone, self.visible
        )
        visible = {str(row.id) for row in suspects if row.in_scope}
        return [
            _candidate(c.as_dict(), c.id in visible)
            for c in find_duplicates(Probe(name, credit_code, phone), suspects)
        ]

    def _check_credit_code_free(self, credit_code: str | None, own_id: uuid.UUID | None) -> None:
        if not credit_code:
            return
        holder = repository.find_by_credit_code(self.session, credit_code, self.visible)
        if holder is not None and holder.id != own_id:
            raise Conflict(
                f"customer {holder.code} already has this unified social credit code",
                {
                    "reason": "credit_code_taken",
                    "errors": {"credit_code": [f"already used by {holder.code}"]},
                    "candidates": [
                        {
                            "id": str(holder.id),
                            "code": holder.code,
                            "name": holder.name,
                            "score": 1.0,
                            "reasons": ["same_credit_code"],
                            "in_scope": True,
                        }
                    ],
                    "merged_into_id": str(holder.merged_into_id) if holder.merged_into_id else None,
                },
            )
        if holder is None and repository.credit_code_taken(self.session, credit_code):
            raise Conflict(
                "a customer outside your data scope already has this unified social credit code",
                {
                    "reason": "credit_code_taken",
                    "errors": {"credit_code": [CREDIT_CODE_TAKEN_OUTSIDE]},
                    "candidates": [
                        {"in_scope": False, "score": 1.0, "reasons": ["same_credit_code"]}
                    ],
                    "merged_into_id": None,
                },
            )

    def new_customer_values(self, values: dict[str, Any]) -> dict[str, Any]:
        """``values`` with the owner (the caller) and department (the caller's) defaulted,
        refused unless the new customer lies inside the caller's data scope."""
        values = dict(values)
        values.setdefault("owner_id", self.principal.user_id)
        values.setdefault("department_id", self.principal.department_id)
        check_in_scope(self.principal, scope_values(values), SCOPE_FIELDS)
        return values

    def create(self, data: Any, allow_duplicate: bool = False) -> dict[str, Any]:
        self.principal.require(WRITE)
        values = load(CustomerInputSchema(), data)
        return dump_customer(self.create_from(values, allow_duplicate=allow_duplicate))

    def create_from(
        self, values: dict[str, Any], *, allow_duplicate: bool = False, code: str | None = None
    ) -> Customer:
        """Create from validated values inside the caller's scope; a likely duplicate is a
        ``Conflict`` listing candidates unless ``allow_duplicate`` (a taken credit code is
        refused regardless)."""
        values = self.new_customer_values(values)
        if not allow_duplicate:
            candidates = self.duplicates_of(
                values["name"], values.get("credit_code"), values.get("phone")
            )
            if candidates:
                raise Conflict(
                    "this customer looks like one that already exists; "
                    "create it anyway with allow_duplicate",
                    {"reason": "duplicate_customer", "candidates": candidates},
                )
        self._check_credit_code_free(values.get("credit_code"), None)
        tags = values.pop("tags", [])
        customer = Customer(
            code=repository.reserve_code(self.session, code)
            if code
            else repository.allocate_code(self.session),
            name_key=normalize_company_name(values["name"]),
            phone_key=phone_key(values.get("phone")),
            **values,
        )
        customer.tags = tags
        self.session.add(customer)
        self.session.flush()
        dumped = dump_customer(customer)
        created = {k: v for k, v in dumped.items() if k in CUSTOMER_FIELDS and v not in (None, [])}
        self._history(customer.id, "customer", customer.id, "created", new=created)
        self.outbox.add(self.session, events.CUSTOMER_CREATED, events.customer_created(dumped))
        return customer

    def get(self, customer_id: Any) -> dict[str, Any]:
        self.principal.require(READ)
        customer = self._customer(customer_id)
        result = dump_customer(customer)
        result["contacts_count"] = repository.count_contacts(self.session, customer.id)
        return result

    def update(self, customer_id: Any, changes: Any, expected_version: Any) -> dict[str, Any]:
        self.principal.require(WRITE)
        customer = self._customer(customer_id)
        changes, expected_version = split_version(changes, expected_version)
        self._editable(customer)
        check_version(customer, expected_version)
        values = load(CustomerInputSchema(), changes, partial=True)
        self.apply_changes(customer, values)
        return dump_customer(customer)

    def apply_changes(
        self,
        customer: Customer,
        values: dict[str, Any],
        change: str = "updated",
        *,
        check_status: bool = True,
    ) -> list[FieldChange]:
        """Apply validated values under the domain rules, with history and events. A merge
        sets the status its own rule chose (``check_status=False``). Values that would take the
        customer out of the caller's data scope are refused."""
        self._editable(customer)
        current = snapshot(customer, SCOPE_FIELDS)
        after = {**current, **{k: v for k, v in values.items() if k in SCOPE_FIELDS}}
        changed = [name for name in SCOPE_FIELDS if after[name] != current[name]]
        check_in_scope(self.principal, scope_values(after), changed)
        if "status" in values and check_status:
            check_transition(customer.status, values["status"])
        kind = values.get("kind", customer.kind)
        credit_code = values.get("credit_code", customer.credit_code)
        if kind == "individual" and credit_code:
            raise ValidationFailed.on(
                "credit_code", "an individual customer has no unified social credit code"
            )
        if values.get("credit_code") and values["credit_code"] != customer.credit_code:
            self._check_credit_code_free(values["credit_code"], customer.id)
        before = snapshot(customer, CUSTOMER_FIELDS)
        for name, value in values.items():
            setattr(customer, name, value)
        customer.name_key = normalize_company_name(customer.name)
        customer.phone_key = phone_key(customer.phone)
        field_changes = diff(before, snapshot(customer, CUSTOMER_FIELDS), CUSTOMER_FIELDS)
        if not field_changes:
            return []
        customer.updated_at = self.now
        self.session.flush()
        self._history(customer.id, "customer", customer.id, change, field_changes)
        dumped = dump_customer(customer)
        self.outbox.add(
            self.session,
            events.CUSTOMER_UPDATED,
            events.customer_updated(dumped, [c.as_dict() for c in field_changes]),
        )
        if OWNERSHIP_FIELDS & {c.field for c in field_changes}:
            self.outbox.add(
                self.session,
                events.CUSTOMER_OWNER_CHANGED,
                events.customer_owner_changed(dumped, before["owner_id"], before["department_id"]),
            )
        return field_changes

    def list(self, query: Any) -> dict[str, Any]:
        self.principal.require(READ)
        params = load(CustomerQuerySchema(), query)
        page = keyset_page(
            self.session,
            repository.customer_select(params, self.visible),
            repository.sort_key(params["sort"]),
            params.get("cursor"),
            params.get("limit"),
        )
        return {"items": [dump_customer(c) for c in page.items], "next_cursor": page.next_cursor}

    def count(self, query: Any) -> dict[str, int]:
        self.principal.require(READ)
        params = load(CustomerFilterSchema(), query)
        return {"count": repository.count_customers(self.session, params, self.visible)}

    def summarize(self, query: Any) -> dict[str, Any]:
        """Counts of the visible customers matching ``query`` by status, category and
        department (``"none"`` for customers without one), grouped in SQL."""
        self.principal.require(READ)
        params = load(CustomerFilterSchema(), query)
        by_status: Counter[str] = Counter()
        by_category: Counter[str] = Counter()
        by_department: Counter[str] = Counter()
        for status, category, department_id, n in repository.customer_breakdown(
            self.session, params, self.visible
        ):
            by_status[status] += n
            by_category[category or "none"] += n
            by_department[department_id or "none"] += n
        return {
            "total": sum(by_status.values()),
            "by_status": dict(sorted(by_status.items())),
            "by_category": dict(sorted(by_category.items())),
            "by_department": dict(sorted(by_department.items())),
        }

    # -- contacts -------------------------------------------------------------------------
    def _demote_primaries(self, customer_id: uuid.UUID, keep: uuid.UUID | None = None) -> None:
        others = self.session.scalars(
            select(Contact).where(Contact.customer_id == customer_id, Contact.is_primary.is_(True))
        ).all()
        for other in others:
            if other.id != keep:
                before = snapshot(other, CONTACT_FIELDS)
                other.is_primary = False
                self._history(
                    customer_id,
                    "contact",
                    other.id,
                    "updated",
                    diff(before, snapshot(other, CONTACT_FIELDS), CONTACT_FIELDS),
                )
        self.session.flush()

    def list_contacts(self, customer_id: Any) -> list[dict[str, Any]]:
        self.principal.require(READ)
        customer = self._customer(customer_id)
        contacts = self.session.scalars(
            select(Contact)
            .where(Contact.customer_id == customer.id)
            .order_by(Contact.is_primary.desc(), Contact.name, Contact.id)
        ).all()
        return contact_schema.dump(contacts, many=True)

    def get_contact(self, contact_id: Any) -> dict[str, Any]:
        self.principal.require(READ)
        return contact_schema.dump(repository.get_contact(self.session, contact_id, self.visible))

    def create_contact(self, customer_id: Any, data: Any) -> dict[str, Any]:
        self.principal.require(WRITE)
        customer = self._customer(customer_id)
        self._editable(customer)
        values = load(ContactInputSchema(), data)
        has_primary = repository.has_primary_contact(self.session, customer.id)
        if values["is_primary"] and has_primary:
            self._demote_primaries(customer.id)
        elif not has_primary and "is_primary" not in data:
            values["is_primary"] = True
        contact = Contact(customer_id=customer.id, **values)
        self.session.add(contact)
        self.session.flush()
        dumped = contact_schema.dump(contact)
        self._history(
            customer.id,
            "contact",
            contact.id,
            "created",
            new={k: v for k, v in dumped.items() if k in CONTACT_FIELDS and v is not None},
        )
        self.outbox.add(self.session, events.CONTACT_CREATED, events.contact_created(dumped))
        return dumped

    def update_contact(
        self, contact_id: Any, changes: Any, expected_version: Any
    ) -> dict[str, Any]:
        self.principal.require(WRITE)
        contact = repository.get_contact(self.session, contact_id, self.visible)
        changes, expected_version = split_version(changes, expected_version)
        check_version(contact, expected_version)
        values = load(ContactInputSchema(), changes, partial=True)
        if values.get("is_primary") and not contact.is_primary:
            self._demote_primaries(contact.customer_id, keep=contact.id)
        before = snapshot(contact, CONTACT_FIELDS)
        for name, value in values.items():
            setattr(contact, name, value)
        field_changes = diff(before, snapshot(contact, CONTACT_FIELDS), CONTACT_FIELDS)
        if field_changes:
            self.session.flush()
            self._history(contact.customer_id, "contact", contact.id, "updated", field_changes)
            self.outbox.add(
                self.session,
                events.CONTACT_UPDATED,
                events.contact_updated(
                    contact_schema.dump(contact), [c.as_dict() for c in field_changes]
                ),
            )
        return contact_schema.dump(contact)

    # -- relationships --------------------------------------------------------------------
    def _relationship_view(
        self, rel: Relationship, perspective: uuid.UUID, other: Customer
    ) -> dict[str, Any]:
        outgoing = rel.from_customer_id == perspective
        return relationship_schema.dump(
            {
                "id": rel.id,
                "customer_id": perspective,
                "related_customer_id": other.id,
                "related_customer_code": other.code,
                "related_customer_name": other.name,
                "kind": rel.kind if outgoing else INVERSE[rel.kind],
                "direction": "outgoing" if outgoing else "incoming",
                "note": rel.note,
                "created_by": rel.created_by,
                "created_at": rel.created_at,
            }
        )

    def list_relationships(self, customer_id: Any) -> list[dict[str, Any]]:
        """The customer's relationships with customers the caller may see."""
        self.principal.require(READ)
        customer = self._customer(customer_id)
        return [
            self._relationship_view(rel, customer.id, other)
            for rel, other in repository.visible_relationships(
                self.session, customer.id, self.visible
            )
        ]

    def add_relationship(self, customer_id: Any, data: Any) -> dict[str, Any]:
        self.principal.require(WRITE)
        customer = self._customer(customer_id)
        values = load(RelationshipInputSchema(), data)
        related = self._customer(values["related_customer_id"])
        self._editable(customer)
        self._editable(related)
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
            created_by=self.actor_id,
            created_at=self.now,
        )
        self.session.add(rel)
        self.session.flush()
        summary = {"from": customer.code, "to": related.code, "kind": rel.kind, "note": rel.note}
        for side in (customer.id, related.id):
            self._history(side, "relationship", rel.id, "created", new=summary)
        return self._relationship_view(rel, customer.id, related)

    def remove_relationship(self, customer_id: Any, relationship_id: Any) -> dict[str, Any]:
        """Remove a relationship of the customer with one the caller may also see."""
        self.principal.require(WRITE)
        customer = self._customer(customer_id)
        rel_id = repository.lookup_id(relationship_id)
        found = (
            repository.visible_relationships(self.session, customer.id, self.visible, rel_id)
            if rel_id
            else []
        )
        if not found:
            raise NotFound.of("relationship", relationship_id)
        [(rel, other)] = found
        view = self._relationship_view(rel, customer.id, other)
        from_code = customer.code if rel.from_customer_id == customer.id else other.code
        to_code = other.code if rel.from_customer_id == customer.id else customer.code
        summary = {"from": from_code, "to": to_code, "kind": rel.kind, "note": rel.note}
        for side in (customer.id, other.id):
            self._history(side, "relationship", rel.id, "removed", old=summary)
        self.session.delete(rel)
        self.session.flush()
        return view

    # -- care -----------------------------------------------------------------------------
    def list_care_records(self, customer_id: Any) -> list[dict[str, Any]]:
        self.principal.require(READ)
        customer = self._customer(customer_id)
        records = self.session.scalars(
            select(CareRecord)
            .where(CareRecord.customer_id == customer.id)
            .order_by(CareRecord.date.desc(), CareRecord.created_at.desc(), CareRecord.id)
        ).all()
        return care_schema.dump(records, many=True)

    def add_care_record(self, customer_id: Any, data: Any) -> dict[str, Any]:
        self.principal.require(WRITE)
        customer = self._customer(customer_id)
        self._editable(customer)
        values = load(CareRecordInputSchema(), data)
        contact_id = values.get("contact_id")
        if contact_id is not None and not repository.is_contact_of(
            self.session, contact_id, customer.id
        ):
            raise ValidationFailed.on("contact_id", "is not a contact of this customer")
        if not values.get("by_user_id"):
            values["by_user_id"] = self.actor_id
        record = CareRecord(customer_id=customer.id, **values)
        self.session.add(record)
        self.session.flush()
        dumped = care_schema.dump(record)
        self._history(
            customer.id,
            "care_record",
            record.id,
            "created",
            new={k: dumped[k] for k in ("kind", "date", "note", "by_user_id", "contact_id")},
        )
        return dumped

    # -- history --------------------------------------------------------------------------
    def history(self, customer_id: Any, cursor: str | None, limit: Any) -> dict[str, Any]:
        self.principal.require(READ)
        customer = self._customer(customer_id)
        page = keyset_page(
            self.session,
            select(HistoryEntry).where(HistoryEntry.customer_id == customer.id),
            SortKey(HistoryEntry.at, HistoryEntry.id, descending=True),
            cursor,
            limit,
        )
        entries = history_schema.dump(page.items, many=True)
        named = codes_named(entries)
        hidden = named - repository.visible_codes(self.session, named, self.principal)
        return {
            "items": [hide_customers(entry, hidden) for entry in entries],
            "next_cursor": page.next_cursor,
        }

    # -- merge ----------------------------------------------------------------------------
    def merge(self, survivor_id: Any, merged_id: Any) -> dict[str, Any]:
        """Merge two customers the caller may both see; the survivor stays in scope."""
        self.principal.require(MERGE)
        survivor_uuid = repository.parse_id(survivor_id, "survivor_id")
        merged_uuid = repository.parse_id(merged_id, "merged_id")
        if survivor_uuid == merged_uuid:
            raise ValidationFailed.on("merged_id", "a customer cannot be merged into itself")
        survivor = self._customer(survivor_uuid)
        merged = self._customer(merged_uuid)
        plan = plan_merge(
            {"id": survivor.id, "code": survivor.code, **snapshot(survivor, CUSTOMER_FIELDS)},
            {"id": merged.id, "code": merged.code, **snapshot(merged, CUSTOMER_FIELDS)},
            survivor_has_primary=repository.has_primary_contact(self.session, survivor.id),
        )
        merged_before = snapshot(merged, ("status", "credit_code"))
        if plan.moves_credit_code:
            merged.credit_code = None
            self.session.flush()

        for contact in self.session.scalars(
            select(Contact).where(Contact.customer_id == merged.id)
        ):
            if plan.demote_moved_primaries and contact.is_primary:
                contact.is_primary = False
            contact.customer_id = survivor.id
        for record in self.session.scalars(
            select(CareRecord).where(CareRecord.customer_id == merged.id)
        ):
            record.customer_id = survivor.id
        rels = {r.id: r for r in repository.relationships_of(self.session, merged.id)}
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
        for earlier in self.session.scalars(
            select(Customer).where(Customer.merged_into_id == merged.id)
        ):
            earlier.merged_into_id = survivor.id

        merged.status = Status.MERGED.value
        merged.merged_into_id = survivor.id
        merged.updated_at = self.now
        self.session.flush()
        self._history(
            merged.id,
            "customer",
            merged.id,
            "merged_into",
            [
                FieldChange("status", merged_before["status"], Status.MERGED.value),
                FieldChange("merged_into_id", None, str(survivor.id)),
            ]
            + (
                [FieldChange("credit_code", merged_before["credit_code"], None)]
                if plan.moves_credit_code
                else []
            ),
        )
        values: dict[str, Any] = dict(plan.fills)
        if plan.tags != survivor.tags:
            values["tags"] = plan.tags
        if plan.status:
            values["status"] = plan.status
        self._history(
            survivor.id,
            "customer",
            survivor.id,
            "merged",
            new={"merged_id": str(merged.id), "merged_code": merged.code, "name": merged.name},
        )
        self.apply_changes(survivor, values, change="merged", check_status=False)
        survivor.updated_at = self.now
        self.session.flush()
        result = dump_customer(survivor)
        self.outbox.add(
            self.session,
            events.CUSTOMER_MERGED,
            events.customer_merged(result, dump_customer(merged)),
        )
        return result


MAX_IMPORT_ROWS = 10_000
MAX_EXPORT_ROWS = 100_000


class CustomerTransfer:
    """CSV import (upsert by code or credit code, row by row) and export of a filtered list."""

    def __init__(self, book: CustomerBook) -> None:
        self.book = book
        self.session = book.session

    def import_csv(self, text: Any) -> dict[str, Any]:
        self.book.principal.require(IMPORT)
        rows = csvio.parse(text)
        if len(rows) > MAX_IMPORT_ROWS:
            raise ValidationFailed.on("csv", f"at most {MAX_IMPORT_ROWS} rows per import")
        counts = {"created": 0, "updated": 0, "unchanged": 0}
        errors: list[dict[str, Any]] = []
        repository.open_transaction(self.session)
        for number, row in rows:
            try:
                with self.session.begin_nested():
                    counts[self._import_row(row)] += 1
            except ValidationFailed as exc:
                errors.append(
                    {"row": number, "errors": exc.field_errors or {"_row": [exc.message]}}
                )
            except Conflict as exc:
                errors.append(
                    {"row": number, "errors": exc.details.get("errors") or {"_row": [exc.message]}}
                )
            except (IntegrityError, StaleDataError):
                errors.append(
                    {"row": number, "errors": {"_row": ["clashes with a change saved meanwhile"]}}
                )
        return {**counts, "errors": errors}

    def _import_row(self, row: dict[str, str]) -> str:
        if row.pop("__extra__", None):
            raise ValidationFailed.on("_row", "has more cells than the header has columns")
        data = {k: v for k, v in csvio.apply_value_aliases(row).items() if v != ""}
        code = data.pop("code", None)
        if code:
            code = code.strip().upper()
        if "tags" in data:
            data["tags"] = split_tags(data["tags"])
        existing = self._existing(code, data.get("credit_code"))
        if existing is not None:
            if existing.status == Status.MERGED.value:
                target = repository.find_customer(
                    self.session, existing.merged_into_id, self.book.visible
                )
                raise ValidationFailed.on(
                    "code",
                    f"{existing.code} was merged into {target.code if target else 'another'}",
                )
            values = load(CustomerInputSchema(), data, partial=True)
            return "updated" if self.book.apply_changes(existing, values) else "unchanged"
        values = self.book.new_customer_values(load(CustomerInputSchema(), data))
        same = [
            c
            for c in self.book.duplicates_of(values["name"], None, None)
            if "same_name" in c["reasons"]
        ]
        if same:
            codes = [c["code"] for c in same if c["in_scope"]]
            raise ValidationFailed.on(
                "name",
                f"a customer with this name exists ({', '.join(codes)}); "
                "put its code in the code column to update it"
                if codes
                else "a customer with this name exists outside your data scope",
            )
        self.book.create_from(values, allow_duplicate=True, code=code)
        return "created"

    def _existing(self, code: str | None, credit_code: str | None) -> Customer | None:
        """The customer the caller may see that a row's code, else credit code, names; None
        for a new one. A code or credit code held only outside the caller's scope is refused
        the way one no visible customer has is, without a word about its holder."""
        visible = self.book.visible
        if code:
            existing = repository.find_by_code(self.session, code, visible)
            if existing is not None:
                return existing
            if not is_customer_code(code):
                raise ValidationFailed.on(
                    "code",
                    "no customer you can see has this code, and it is not of the form C2026000123",
                )
            if repository.code_taken(self.session, code):
                raise ValidationFailed.on(
                    "code", "no customer you can see has this code, and it is not free to take"
                )
        if not credit_code:
            return None
        try:
            credit_code = validate_credit_code(credit_code)
        except ValueError as exc:
            raise ValidationFailed.on("credit_code", str(exc)) from None
        existing = repository.find_by_credit_code(self.session, credit_code, visible)
        if existing is not None and code:
            raise ValidationFailed.on(
                "code", f"no customer has this code, but the credit code is {existing.code}'s"
            )
        if existing is None and repository.credit_code_taken(self.session, credit_code):
            raise ValidationFailed.on("credit_code", CREDIT_CODE_TAKEN_OUTSIDE)
        return existing

    def export_csv(self, query: Any) -> str:
        self.book.principal.require(EXPORT)
        params = load(CustomerQuerySchema(), query)
        key = repository.sort_key(params["sort"])
        stmt = repository.customer_select(params, self.book.visible)
        total = self.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        if total > MAX_EXPORT_ROWS:
            raise ValidationFailed.on(
                "query", f"{total} customers match; narrow the filter to at most {MAX_EXPORT_ROWS}"
            )
        order = (
            (key.column.desc(), key.id_column.desc())
            if key.descending
            else (
                key.column,
                key.id_column,
            )
        )
        customers = self.session.scalars(stmt.order_by(*order).execution_options(yield_per=500))
        return csvio.write(dump_customer(c) for c in customers)
