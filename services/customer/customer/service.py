"""The customer service: thin Nameko RPC entrypoints over ``customer.application``."""

from __future__ import annotations

from typing import Any

from nameko.rpc import rpc

from crm_common import kit
from crm_common.context import current_principal
from crm_common.db import Database
from crm_common.errors import EXPECTED_ERRORS
from crm_common.outbox import Outbox
from crm_common.schemas import parse_flag
from customer.application import CustomerBook, CustomerTransfer
from customer.events import EVENT_SCHEMAS
from customer.models import Base, OutboxMessage
from customer.schemas import PUBLIC_SCHEMAS

SERVICE_NAME = "customer"


class CustomerService(kit.ServiceKit):
    name = SERVICE_NAME
    public_schemas = PUBLIC_SCHEMAS
    event_schemas = EVENT_SCHEMAS

    db = Database(Base)
    outbox = Outbox(OutboxMessage)

    def _book(self, session: Any) -> CustomerBook:
        return CustomerBook(session, self.outbox, current_principal())

    # -- customers --------------------------------------------------------------------------
    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def create_customer(
        self, data: dict[str, Any], allow_duplicate: bool = False
    ) -> dict[str, Any]:
        with self.db.session() as session:
            return self._book(session).create(
                data, allow_duplicate=parse_flag(allow_duplicate, "allow_duplicate")
            )

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def get_customer(self, customer_id: str) -> dict[str, Any]:
        with self.db.session() as session:
            return self._book(session).get(customer_id)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def update_customer(
        self, customer_id: str, changes: dict[str, Any], expected_version: int | None = None
    ) -> dict[str, Any]:
        with self.db.session() as session:
            return self._book(session).update(customer_id, changes, expected_version)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_customers(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        with self.db.session() as session:
            return self._book(session).list(query)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def count_customers(self, query: dict[str, Any] | None = None) -> dict[str, int]:
        with self.db.session() as session:
            return self._book(session).count(query)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def summarize_customers(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        with self.db.session() as session:
            return self._book(session).summarize(query)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def merge_customers(self, survivor_id: str, merged_id: str) -> dict[str, Any]:
        with self.db.session() as session:
            return self._book(session).merge(survivor_id, merged_id)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def customer_history(
        self, customer_id: str, cursor: str | None = None, limit: int | None = None
    ) -> dict[str, Any]:
        with self.db.session() as session:
            return self._book(session).history(customer_id, cursor, limit)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def import_customers(self, csv_text: str) -> dict[str, Any]:
        with self.db.session() as session:
            return CustomerTransfer(self._book(session)).import_csv(csv_text)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def export_customers(self, query: dict[str, Any] | None = None) -> str:
        with self.db.session() as session:
            return CustomerTransfer(self._book(session)).export_csv(query)

    # -- contacts ---------------------------------------------------------------------------
    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_contacts(self, customer_id: str) -> list[dict[str, Any]]:
        with self.db.session() as session:
            return self._book(session).list_contacts(customer_id)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def create_contact(self, customer_id: str, data: dict[str, Any]) -> dict[str, Any]:
        with self.db.session() as session:
            return self._book(session).create_contact(customer_id, data)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def get_contact(self, contact_id: str) -> dict[str, Any]:
        with self.db.session() as session:
            return self._book(session).get_contact(contact_id)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def update_contact(
        self, contact_id: str, changes: dict[str, Any], expected_version: int | None = None
    ) -> dict[str, Any]:
        with self.db.session() as session:
            return self._book(session).update_contact(contact_id, changes, expected_version)

    # -- relationships and care ---------------------------------------------------------------
    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_relationships(self, customer_id: str) -> list[dict[str, Any]]:
        with self.db.session() as session:
            return self._book(session).list_relationships(customer_id)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def add_relationship(self, customer_id: str, data: dict[str, Any]) -> dict[str, Any]:
        with self.db.session() as session:
            return self._book(session).add_relationship(customer_id, data)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def remove_relationship(self, customer_id: str, relationship_id: str) -> dict[str, Any]:
        with self.db.session() as session:
            return self._book(session).remove_relationship(customer_id, relationship_id)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_care_records(self, customer_id: str) -> list[dict[str, Any]]:
        with self.db.session() as session:
            return self._book(session).list_care_records(customer_id)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def add_care_record(self, customer_id: str, data: dict[str, Any]) -> dict[str, Any]:
        with self.db.session() as session:
            return self._book(session).add_care_record(customer_id, data)
