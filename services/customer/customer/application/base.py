"""What every customer use case shares: the permissions it checks, the customers its caller
may see, and the history rows it writes.

Every use case first checks the caller's function permission (403) and reaches customers only
through the caller's data scope, applied in SQL: a customer outside it is answered like a
missing one (404), and no write may put one outside it (422).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from functools import cached_property
from typing import Any

from marshmallow import Schema
from sqlalchemy import ColumnElement

from crm_common.application import UseCases
from crm_common.history import FieldChange, jsonable
from crm_common.reads import RowDumper
from customer import repository
from customer.models import Customer, HistoryEntry
from customer.schemas import CustomerSchema

READ = "customer:read"
WRITE = "customer:write"
IMPORT = "customer:import"
EXPORT = "customer:export"
MERGE = "customer:merge"

customer_schema = CustomerSchema()
customer_rows = RowDumper(CustomerSchema(exclude=("contacts_count",)))
"""Customers as ``customer_schema`` dumps them, from rows of ``repository.RECORD_COLUMNS``
and their tags."""


def dump(schema: Schema, record: Any) -> dict[str, Any]:
    """``record`` serialized by ``schema`` (typed: marshmallow's ``dump`` returns Any)."""
    dumped: dict[str, Any] = schema.dump(record)
    return dumped


def dump_all(schema: Schema, records: Iterable[Any]) -> list[dict[str, Any]]:
    return [dump(schema, record) for record in records]


def dump_customer(customer: Customer) -> dict[str, Any]:
    return dump(customer_schema, customer)


class CustomerUseCases(UseCases):
    @cached_property
    def visible(self) -> ColumnElement[bool]:
        """The SQL condition on customers the caller may see."""
        return repository.visible_to(self.principal)

    def customer(self, customer_id: Any) -> Customer:
        """The customer, if the caller may see it; else ``NotFound``."""
        return repository.get_customer(self.session, customer_id, self.visible)

    def record_history(
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
        """One history row per field change, or one row with whole ``old``/``new`` values."""
        common = {
            "customer_id": customer_id,
            "entity_type": entity_type,
            "entity_id": str(entity_id),
            "change": change,
            "actor_id": self.context.actor_id,
            "at": self.context.now,
        }
        rows = [HistoryEntry(**common, field=c.field, old=c.old, new=c.new) for c in changes] or [
            HistoryEntry(**common, old=jsonable(old), new=jsonable(new))
        ]
        self.session.add_all(rows)
