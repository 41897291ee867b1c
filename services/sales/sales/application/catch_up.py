"""A fresh sales database catches up from the other contexts' snapshots, then events keep it
current.

Sales reads, as itself, org's ``structure_snapshot`` (departments, regions, people) and
customer's ``customer_snapshot`` (customers, contacts) page by page into its read models
(``ReadModels``: a row is replaced only by a newer version, so pages and events may interleave
in any order). Each snapshot read to its end is remembered in ``catch_ups`` and never read
again; one that fails half-way (its service does not answer) is read again from its start
next time. ERP events waiting for a customer (``sales.application.erp_inbound``) are applied
as each page of customers is kept, in its transaction, as a customer event would have them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crm_common.application import EventSink
from crm_common.db import SessionScope
from crm_common.models import utcnow
from crm_common.outbox import OutboxWriter
from sales.application.erp_inbound import ErpInbound
from sales.application.read_models import ReadModels, UnusableRecord
from sales.models import OutboxMessage
from sales.repository import read_models as repository

OUTBOX_SOURCE = "sales"
PAGE_SIZE = 200
MAX_PAGES = 100_000
"""A guard against a snapshot that never ends (20 million rows at ``PAGE_SIZE``)."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """One snapshot: the service and RPC that page through it, the kind asked for, and the
    read model its items go to."""

    service: str
    method: str
    kind: str
    keep: Callable[[ReadModels, Any], bool]
    customers: bool = False
    """Its items are customers: ERP events waiting for them are applied."""

    @property
    def source(self) -> str:
        return f"{self.service}.{self.kind}"


SNAPSHOTS = (
    Snapshot("org", "structure_snapshot", "departments", ReadModels.keep_department),
    Snapshot("org", "structure_snapshot", "regions", ReadModels.keep_region),
    Snapshot("org", "structure_snapshot", "people", ReadModels.keep_person),
    Snapshot("customer", "customer_snapshot", "customers", ReadModels.keep_customer, True),
    Snapshot("customer", "customer_snapshot", "contacts", ReadModels.keep_contact),
)


class CatchUp:
    def __init__(self, db: SessionScope, outbox: EventSink | None = None) -> None:
        """``outbox`` records what the ERP events it applies announce (by default sales'
        outbox table, which its relay publishes from)."""
        self.db = db
        self.outbox = outbox or OutboxWriter(OutboxMessage, OUTBOX_SOURCE)

    def pending(self) -> list[Snapshot]:
        """The snapshots not yet read to their end."""
        with self.db.session() as session:
            finished = repository.finished_catch_ups(session)
        return [snapshot for snapshot in SNAPSHOTS if snapshot.source not in finished]

    def pending_services(self) -> list[str]:
        return list(dict.fromkeys(snapshot.service for snapshot in self.pending()))

    def read(self, service: str, proxy: Any) -> dict[str, int]:
        """Read the pending snapshots of ``service`` through its RPC ``proxy``, one
        transaction per page; returns how many rows of each were new or newer."""
        kept = {}
        for snapshot in self.pending():
            if snapshot.service == service:
                kept[snapshot.source] = self._read(snapshot, getattr(proxy, snapshot.method))
        return kept

    def _read(self, snapshot: Snapshot, fetch: Callable[..., dict[str, Any]]) -> int:
        kept, rows, cursor = 0, 0, None
        for _ in range(MAX_PAGES):
            page = fetch(snapshot.kind, cursor, PAGE_SIZE)
            with self.db.session() as session:
                models = ReadModels(session)
                kept += sum(self._keep(snapshot, models, item) for item in page["items"])
                if snapshot.customers:
                    ErpInbound(session, self.outbox).customers_known(page["items"])
            rows += len(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                break
        else:
            raise RuntimeError(f"the {snapshot.source} snapshot has more than {MAX_PAGES} pages")
        with self.db.session() as session:
            repository.record_catch_up(session, snapshot.source, rows, utcnow())
        return kept

    def _keep(self, snapshot: Snapshot, models: ReadModels, item: Any) -> bool:
        """Keep one item; one sales cannot read is left out (its events would be refused
        the same way) rather than stopping the catch-up."""
        try:
            return snapshot.keep(models, item)
        except UnusableRecord as exc:
            log.warning("left out of the %s snapshot: %s", snapshot.source, exc)
            return False
