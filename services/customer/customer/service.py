"""The customer service: thin Nameko RPC entrypoints over ``customer.application``, and the
handlers and timer that keep its copy of org's departments and regions."""

from __future__ import annotations

import logging
import time
from typing import Any

from nameko.exceptions import RpcTimeout, UnknownService
from nameko.extensions import DependencyProvider
from nameko.timer import timer

from crm_common import kit
from crm_common.application import read_only, unit_of_work
from crm_common.consumer import ReceivedEvent, event_handler
from crm_common.db import Database
from crm_common.entrypoints import rpc
from crm_common.identity import ServiceCredentials, ServiceIdentity
from crm_common.outbox import Outbox
from crm_common.schemas import parse_flag
from customer import repository
from customer.application.care import CareRecords
from customer.application.contacts import Contacts
from customer.application.customers import Customers
from customer.application.due import DueRecords
from customer.application.history import History
from customer.application.merge import Merges
from customer.application.org_units import OrgUnits
from customer.application.relationships import Relationships
from customer.application.snapshot import Snapshot
from customer.application.transfer import Transfer
from customer.domain.org_units import DEPARTMENT, REGION
from customer.events import EVENT_SCHEMAS
from customer.models import Base, InboxEvent, OutboxMessage
from customer.schemas import PUBLIC_SCHEMAS

SERVICE_NAME = "customer"
ORG_SYNC_CHECK_SECONDS = 15
"""How often the service looks whether its copy of the org structure is due for a catch-up."""
DEFAULT_ORG_RESYNC_SECONDS = 3600
COUNTS_FOLD_SECONDS = 60
"""How often the rows each customer write adds to ``customer_counts`` are folded together."""

DEFAULT_COUNT_ESTIMATE_ABOVE = 10_000
"""Counts from this many on are estimated when counting exactly would read every customer."""

log = logging.getLogger(__name__)


class CountEstimates(DependencyProvider):
    """``COUNT_ESTIMATE_ABOVE`` of the config (``DEFAULT_COUNT_ESTIMATE_ABOVE`` unless set;
    0: every count exact): from how many customers on a count that would read every customer
    on PostgreSQL (a text search, tags) answers an estimate flagged ``estimated``."""

    def setup(self) -> None:
        value = self.container.config.get("COUNT_ESTIMATE_ABOVE")
        self.above = DEFAULT_COUNT_ESTIMATE_ABOVE if value in (None, "") else int(value)

    def get_dependency(self, worker_ctx: Any) -> int:
        return self.above


class OrgStructureSync(DependencyProvider):
    """When this container last read org's structure snapshot in full: at start (as soon as
    org answers) and every ``ORG_RESYNC_SECONDS`` after."""

    def setup(self) -> None:
        self.every = float(
            self.container.config.get("ORG_RESYNC_SECONDS") or DEFAULT_ORG_RESYNC_SECONDS
        )
        self.last: float | None = None

    def get_dependency(self, worker_ctx: Any) -> OrgStructureSync:
        return self

    def due(self) -> bool:
        return self.last is None or time.monotonic() - self.last >= self.every

    def done(self) -> None:
        self.last = time.monotonic()


class CustomerService(kit.ServiceKit):
    name = SERVICE_NAME
    public_schemas = PUBLIC_SCHEMAS
    event_schemas = EVENT_SCHEMAS

    db = Database(Base)
    outbox = Outbox(OutboxMessage)
    inbox_model = InboxEvent
    identity: ServiceCredentials = ServiceIdentity()
    org_sync: OrgStructureSync = OrgStructureSync()
    count_estimate_above: int = CountEstimates()

    # -- the copy of org's departments and regions ----------------------------------------
    @event_handler("org", "department_changed")
    def on_department_changed(self, event: ReceivedEvent) -> None:
        with self.db.session() as session:
            if event.first_delivery(session):
                OrgUnits(session).keep(DEPARTMENT, event.data["department"])

    @event_handler("org", "region_changed")
    def on_region_changed(self, event: ReceivedEvent) -> None:
        with self.db.session() as session:
            if event.first_delivery(session):
                OrgUnits(session).keep(REGION, event.data["region"])

    @timer(interval=ORG_SYNC_CHECK_SECONDS, eager=True)  # type: ignore[untyped-decorator]
    def catch_up_org_structure(self) -> None:
        """Read org's structure snapshot, as this service, when due (see ``OrgStructureSync``)."""
        if not self.org_sync.due():
            return
        try:
            with self.identity.rpc("org") as org, self.db.session() as session:
                kept = OrgUnits(session).catch_up(org.structure_snapshot)
        except (RpcTimeout, UnknownService) as exc:
            log.warning("org structure not read yet, org does not answer: %r", exc)
            return
        self.org_sync.done()
        log.info("org structure read: %d departments and regions new or changed", kept)

    @timer(interval=COUNTS_FOLD_SECONDS)  # type: ignore[untyped-decorator]
    def fold_customer_counts(self) -> None:
        """Keep ``customer_counts`` short: one row per combination (``models.CustomerCount``)."""
        with self.db.session() as session:
            repository.compact_counts(session)

    # -- customers --------------------------------------------------------------------------
    @rpc
    def create_customer(
        self, data: dict[str, Any], allow_duplicate: bool = False
    ) -> dict[str, Any]:
        allow = parse_flag(allow_duplicate, "allow_duplicate")
        with unit_of_work(self.db, self.outbox) as context:
            return Customers(context).create(data, allow_duplicate=allow)

    @rpc
    def get_customer(self, customer_id: str) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Customers(context).get(customer_id)

    @rpc
    def update_customer(
        self, customer_id: str, changes: dict[str, Any], expected_version: int | None = None
    ) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Customers(context).update(customer_id, changes, expected_version)

    @rpc
    def list_customers(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Customers(context).list(query)

    @rpc
    def count_customers(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Customers(context).count(query, estimate_above=self._estimate_above())

    @rpc
    def summarize_customers(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Customers(context).summarize(query, estimate_above=self._estimate_above())

    def _estimate_above(self) -> int:
        above = self.count_estimate_above
        return above if isinstance(above, int) else DEFAULT_COUNT_ESTIMATE_ABOVE  # a stand-in

    @rpc
    def merge_customers(self, survivor_id: str, merged_id: str) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Merges(context).merge(survivor_id, merged_id)

    @rpc
    def customer_history(
        self, customer_id: str, cursor: str | None = None, limit: int | None = None
    ) -> dict[str, Any]:
        with read_only(self.db) as context:
            return History(context).page(customer_id, cursor, limit)

    @rpc
    def import_customers(self, csv_text: str) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Transfer(context).import_csv(csv_text)

    @rpc
    def export_customers(self, query: dict[str, Any] | None = None) -> str:
        with unit_of_work(self.db, self.outbox) as context:
            return Transfer(context).export_csv(query)

    # -- contacts ---------------------------------------------------------------------------
    @rpc
    def list_contacts(self, customer_id: str) -> list[dict[str, Any]]:
        with read_only(self.db) as context:
            return Contacts(context).list(customer_id)

    @rpc
    def create_contact(self, customer_id: str, data: dict[str, Any]) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Contacts(context).create(customer_id, data)

    @rpc
    def get_contact(self, contact_id: str) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Contacts(context).get(contact_id)

    @rpc
    def update_contact(
        self, contact_id: str, changes: dict[str, Any], expected_version: int | None = None
    ) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Contacts(context).update(contact_id, changes, expected_version)

    # -- relationships and care ---------------------------------------------------------------
    @rpc
    def list_relationships(self, customer_id: str) -> list[dict[str, Any]]:
        with read_only(self.db) as context:
            return Relationships(context).list(customer_id)

    @rpc
    def add_relationship(self, customer_id: str, data: dict[str, Any]) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Relationships(context).add(customer_id, data)

    @rpc
    def remove_relationship(self, customer_id: str, relationship_id: str) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Relationships(context).remove(customer_id, relationship_id)

    @rpc
    def list_care_records(self, customer_id: str) -> list[dict[str, Any]]:
        with read_only(self.db) as context:
            return CareRecords(context).list(customer_id)

    @rpc
    def add_care_record(self, customer_id: str, data: dict[str, Any]) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return CareRecords(context).add(customer_id, data)

    # -- for other services ------------------------------------------------------------------
    @rpc
    def customer_snapshot(
        self, kind: str, cursor: str | None = None, limit: int | None = None
    ) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Snapshot(context).page(kind, cursor, limit)

    @rpc
    def due_records(self, kind: str, query: dict[str, Any] | None = None) -> dict[str, Any]:
        """Contacts' birthdays, founding anniversaries and care coming due within
        ``query["days"]`` days, for notify's scheduled rules (``application.due``)."""
        with read_only(self.db) as context:
            return DueRecords(context).find(kind, query)
