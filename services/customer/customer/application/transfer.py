"""CSV import (upsert by code or credit code, row by row) and export of a filtered list."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from crm_common.application import UseCaseContext
from crm_common.errors import Conflict, ValidationFailed
from crm_common.schemas import load
from customer import csvio, repository
from customer.application.base import EXPORT, IMPORT, CustomerUseCases, dump_customer
from customer.application.customers import Customers
from customer.domain.codes import is_customer_code
from customer.domain.credit_code import validate_credit_code
from customer.domain.customers import CREDIT_CODE_TAKEN_OUTSIDE
from customer.domain.status import Status
from customer.domain.tags import split_tags
from customer.models import Customer
from customer.schemas import CustomerExportQuerySchema, CustomerInputSchema

MAX_IMPORT_ROWS = 10_000
MAX_EXPORT_ROWS = 100_000


class Transfer(CustomerUseCases):
    def __init__(self, context: UseCaseContext) -> None:
        super().__init__(context)
        self.customers = Customers(context)

    def import_csv(self, text: Any) -> dict[str, Any]:
        """Each row creates or updates one customer in a savepoint of its own: a refused row
        is reported with its errors and leaves nothing behind, the others are kept."""
        self.principal.require(IMPORT)
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
        data: dict[str, Any] = {k: v for k, v in csvio.apply_value_aliases(row).items() if v != ""}
        code = data.pop("code", None)
        if code:
            code = code.strip().upper()
        if "tags" in data:
            data["tags"] = split_tags(data["tags"])
        existing = self._existing(code, data.get("credit_code"))
        if existing is not None:
            if existing.status == Status.MERGED.value:
                target = repository.find_customer(
                    self.session, existing.merged_into_id, self.visible
                )
                raise ValidationFailed.on(
                    "code",
                    f"{existing.code} was merged into {target.code if target else 'another'}",
                )
            values = load(CustomerInputSchema(), data, partial=True)
            return "updated" if self.customers.apply_changes(existing, values) else "unchanged"
        values = self.customers.new_customer_values(load(CustomerInputSchema(), data))
        same = [
            c["code"]
            for c in self.customers.duplicates_of(values["name"], None, None)
            if "same_name" in c.get("reasons", ())
        ]
        if same:
            raise ValidationFailed.on(
                "name",
                f"a customer with this name exists ({', '.join(same)}); "
                "put its code in the code column to update it",
            )
        if repository.name_taken(self.session, values["name"]):
            raise ValidationFailed.on(
                "name", "a customer with this name exists outside your data scope"
            )
        self.customers.create_from(values, allow_duplicate=True, code=code)
        return "created"

    def _existing(self, code: str | None, credit_code: str | None) -> Customer | None:
        """The customer the caller may see that a row's code, else credit code, names; None
        for a new one. A code or credit code held only outside the caller's scope is refused
        the way one no visible customer has is, without a word about its holder."""
        if code:
            existing = repository.find_by_code(self.session, code, self.visible)
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
        existing = repository.find_by_credit_code(self.session, credit_code, self.visible)
        if existing is not None and code:
            raise ValidationFailed.on(
                "code", f"no customer has this code, but the credit code is {existing.code}'s"
            )
        if existing is None and repository.credit_code_taken(self.session, credit_code):
            raise ValidationFailed.on("credit_code", CREDIT_CODE_TAKEN_OUTSIDE)
        return existing

    def export_csv(self, query: Any) -> str:
        self.principal.require(EXPORT)
        params = load(CustomerExportQuerySchema(), query)
        total = repository.count_customers(self.session, params, self.principal)
        if total > MAX_EXPORT_ROWS:
            raise ValidationFailed.on(
                "query", f"{total} customers match; narrow the filter to at most {MAX_EXPORT_ROWS}"
            )
        customers = repository.all_customers(self.session, params, self.principal)
        return csvio.write(dump_customer(c) for c in customers)
