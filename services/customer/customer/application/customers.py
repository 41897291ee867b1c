"""Customers: create (with duplicate detection), read, update, list, count and summarize."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from crm_common.errors import ValidationFailed
from crm_common.history import FieldChange, diff, filled, snapshot
from crm_common.models import check_version, split_version
from crm_common.schemas import load
from crm_common.scope import (
    OUTSIDE,
    SCOPE_FIELDS,
    blamed_fields,
    check_in_scope,
    in_scope,
    scope_values,
)
from customer import events, repository
from customer.application.base import (
    READ,
    WRITE,
    CustomerUseCases,
    customer_rows,
    dump_customer,
)
from customer.domain.customers import (
    candidate_views,
    check_credit_code_allowed,
    check_editable,
    credit_code_taken,
    credit_code_taken_outside,
    duplicate_found,
    erp_code_taken,
    erp_code_taken_outside,
    moves_owner,
    with_owner_defaults,
)
from customer.domain.duplicates import Probe, find_duplicates
from customer.domain.history import UNORDERED_FIELDS
from customer.domain.names import normalize_company_name
from customer.domain.org_units import (
    OUTSIDE_DEPARTMENTS,
    TRANSFER,
    TRANSFERRED,
    assignable_departments,
    check_known,
    department_errors,
    is_transfer,
    leaves_departments,
    region_errors,
    transfer_refused,
)
from customer.domain.phones import phone_key
from customer.domain.status import check_transition
from customer.models import CUSTOMER_FIELDS, Customer
from customer.schemas import CustomerFilterSchema, CustomerInputSchema, CustomerQuerySchema

QUERY_SCHEMA = CustomerQuerySchema()
FILTER_SCHEMA = CustomerFilterSchema()


class Customers(CustomerUseCases):
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
                raise duplicate_found(candidates)
        self.check_credit_code_free(values.get("credit_code"), None)
        self.check_erp_code_free(values.get("erp_code"), None)
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
        self.record_history(
            customer.id, "customer", customer.id, "created", new=filled(dumped, CUSTOMER_FIELDS)
        )
        self.context.publish(events.CUSTOMER_CREATED, events.customer_created(dumped))
        return customer

    def new_customer_values(self, values: dict[str, Any]) -> dict[str, Any]:
        """``values`` with the owner (the caller) and department (the caller's) defaulted,
        refused unless the department and region given are known to org, the department is
        one the caller may assign and the new customer lies inside the caller's data scope
        (creating is never a transfer)."""
        given = [name for name in SCOPE_FIELDS if values.get(name) is not None]
        values = with_owner_defaults(values, self.principal.user_id, self.principal.department_id)
        self.check_known_units(values, given)
        check_in_scope(self.principal, scope_values(values), SCOPE_FIELDS, noun="customer")
        if leaves_departments(values["department_id"], given, self.assignable_departments()):
            raise ValidationFailed.on("department_id", OUTSIDE_DEPARTMENTS)
        return values

    def check_known_units(self, values: dict[str, Any], written: Iterable[str]) -> None:
        """``ValidationFailed`` unless the department and region among ``written`` are
        departments and regions org knows and has not disabled."""
        written = set(written)
        errors: dict[str, list[str]] = {}
        department_id = values.get("department_id")
        if "department_id" in written and department_id is not None:
            unit = repository.department(self.session, department_id)
            errors["department_id"] = department_errors(department_id, unit)
        region = values.get("region")
        if "region" in written and region is not None:
            parent = region.rpartition("/")[0]
            known = repository.regions_at(self.session, [region, parent])
            errors["region"] = region_errors(region, known)
        check_known(errors)

    def assignable_departments(self) -> set[str] | None:
        return assignable_departments(self.principal, repository.departments(self.session))

    def check_placement(self, after: dict[str, Any], changed: list[str]) -> bool:
        """Whether a change to an existing customer is a transfer (see
        ``domain.org_units``); refused unless the caller holds ``customer:transfer``."""
        if not changed:
            return False
        self.check_known_units(after, changed)
        record = scope_values(after)
        assignable = self.assignable_departments() if "department_id" in changed else set[str]()
        transfer = is_transfer(self.principal, record, changed, assignable)
        if not transfer or self.principal.can(TRANSFER):
            return transfer
        errors: dict[str, list[str]] = {}
        if not in_scope(self.principal, record):
            errors = {name: [OUTSIDE] for name in blamed_fields(self.principal, record, changed)}
        if "department_id" not in errors and leaves_departments(
            record.department_id, changed, assignable
        ):
            errors["department_id"] = [OUTSIDE_DEPARTMENTS]
        raise transfer_refused(errors or {name: [OUTSIDE] for name in changed})

    def duplicates_of(
        self, name: str, credit_code: str | None, phone: str | None
    ) -> list[dict[str, Any]]:
        """Likely duplicates wherever they are; those outside the caller's scope only as one
        entry telling that such a customer exists."""
        suspects = repository.duplicate_suspects(
            self.session, name, credit_code, phone, self.visible
        )
        visible = {str(row.id) for row in suspects if row.in_scope}
        found = find_duplicates(Probe(name, credit_code, phone), suspects)
        return candidate_views((c.as_dict() for c in found), visible)

    def check_credit_code_free(self, credit_code: str | None, own_id: Any) -> None:
        if not credit_code:
            return
        holder = repository.find_by_credit_code(self.session, credit_code, self.visible)
        if holder is not None and holder.id != own_id:
            raise credit_code_taken(holder)
        if holder is None and repository.credit_code_taken(self.session, credit_code):
            raise credit_code_taken_outside()

    def check_erp_code_free(self, erp_code: str | None, own_id: Any) -> None:
        """``Conflict`` on ``erp_code`` when another customer has it: named when the caller
        may see it, else without a word about which."""
        if not erp_code:
            return
        holder = repository.find_by_erp_code(self.session, erp_code, self.visible)
        if holder is not None and holder.id != own_id:
            raise erp_code_taken(holder)
        if holder is None and repository.erp_code_taken(self.session, erp_code):
            raise erp_code_taken_outside()

    def get(self, customer_id: Any) -> dict[str, Any]:
        self.principal.require(READ)
        row = repository.customer_row(self.session, customer_id, self.principal)
        result = customer_rows.dump(row)
        result["contacts_count"] = row.contacts_count
        return result

    def update(self, customer_id: Any, changes: Any, expected_version: Any) -> dict[str, Any]:
        self.principal.require(WRITE)
        customer = self.customer(customer_id)
        changes, expected_version = split_version(changes, expected_version)
        check_editable(customer)
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
        customer out of the caller's scope are a transfer: refused without
        ``customer:transfer``, else recorded in the history as ``transferred``."""
        check_editable(customer)
        current = snapshot(customer, SCOPE_FIELDS)
        after = {**current, **{k: v for k, v in values.items() if k in SCOPE_FIELDS}}
        changed = [name for name in SCOPE_FIELDS if after[name] != current[name]]
        if self.check_placement(after, changed) and change == "updated":
            change = TRANSFERRED
        if "status" in values and check_status:
            check_transition(customer.status, values["status"])
        check_credit_code_allowed(
            values.get("kind", customer.kind), values.get("credit_code", customer.credit_code)
        )
        if values.get("credit_code") and values["credit_code"] != customer.credit_code:
            self.check_credit_code_free(values["credit_code"], customer.id)
        if values.get("erp_code") and values["erp_code"] != customer.erp_code:
            self.check_erp_code_free(values["erp_code"], customer.id)
        before = snapshot(customer, CUSTOMER_FIELDS)
        for name, value in values.items():
            setattr(customer, name, value)
        customer.name_key = normalize_company_name(customer.name)
        customer.phone_key = phone_key(customer.phone)
        field_changes = diff(
            before, snapshot(customer, CUSTOMER_FIELDS), CUSTOMER_FIELDS, unordered=UNORDERED_FIELDS
        )
        if not field_changes:
            return []
        customer.updated_at = self.context.now
        self.session.flush()
        self.record_history(customer.id, "customer", customer.id, change, field_changes)
        dumped = dump_customer(customer)
        self.context.publish(
            events.CUSTOMER_UPDATED,
            events.customer_updated(dumped, [c.as_dict() for c in field_changes]),
        )
        if moves_owner(field_changes):
            self.context.publish(
                events.CUSTOMER_OWNER_CHANGED,
                events.customer_owner_changed(dumped, before["owner_id"], before["department_id"]),
            )
        return field_changes

    def list(self, query: Any) -> dict[str, Any]:
        self.principal.require(READ)
        params = load(QUERY_SCHEMA, query)
        page = repository.customers_page(self.session, params, self.principal)
        return {"items": customer_rows.dump_all(page.items), "next_cursor": page.next_cursor}

    def count(self, query: Any, estimate_above: int = 0) -> dict[str, Any]:
        """How many visible customers match ``query``: exact, unless counting exactly would
        read every customer and an estimate says at least ``estimate_above`` (0: never) match;
        then that estimate, flagged ``estimated``."""
        self.principal.require(READ)
        params = load(FILTER_SCHEMA, query)
        estimate = repository.estimated_count(self.session, params, self.principal, estimate_above)
        if estimate is not None:
            return {"count": estimate, "estimated": True}
        return {"count": repository.count_customers(self.session, params, self.principal)}

    def summarize(self, query: Any, estimate_above: int = 0) -> dict[str, Any]:
        """Counts of the visible customers matching ``query`` by status, category and
        department (``"none"`` for customers without one), grouped in SQL: exact, unless the
        query searches text and a sample estimates at least ``estimate_above`` (0: never)
        customers match; then those estimates, flagged ``estimated``."""
        self.principal.require(READ)
        params = load(FILTER_SCHEMA, query)
        by_status: Counter[str] = Counter()
        by_category: Counter[str] = Counter()
        by_department: Counter[str] = Counter()
        rows = repository.estimated_breakdown(self.session, params, self.principal, estimate_above)
        estimated = rows is not None
        if rows is None:
            rows = repository.customer_breakdown(self.session, params, self.principal)
        for status, category, department_id, n in rows:
            by_status[status] += n
            by_category[category or "none"] += n
            by_department[department_id or "none"] += n
        return {
            "total": sum(by_status.values()),
            "by_status": dict(sorted(by_status.items())),
            "by_category": dict(sorted(by_category.items())),
            "by_department": dict(sorted(by_department.items())),
            **({"estimated": True} if estimated else {}),
        }
