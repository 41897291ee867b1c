"""A fresh sales database catches up from the other contexts' snapshots, then events keep it
current (``crm_common.catch_up``).

Sales reads, as itself, org's ``structure_snapshot`` (departments, regions, people) and
customer's ``customer_snapshot`` (customers, contacts) into its read models (``ReadModels``).
ERP events waiting for a customer (``sales.application.erp_inbound``) are applied as each page
of customers is kept, in its transaction, as a customer event would have them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from crm_common import catch_up
from crm_common.application import EventSink
from crm_common.catch_up import Snapshot
from crm_common.db import SessionScope
from crm_common.outbox import OutboxWriter
from sales.application.erp_inbound import ErpInbound
from sales.application.read_models import ReadModels, UnusableRecord
from sales.models import CatchUp as CatchUpRecord
from sales.models import OutboxMessage

OUTBOX_SOURCE = "sales"
CUSTOMERS = Snapshot("customer", "customer_snapshot", "customers", ReadModels.keep_customer)
SNAPSHOTS: tuple[Snapshot[ReadModels], ...] = (
    Snapshot("org", "structure_snapshot", "departments", ReadModels.keep_department),
    Snapshot("org", "structure_snapshot", "regions", ReadModels.keep_region),
    Snapshot("org", "structure_snapshot", "people", ReadModels.keep_person),
    CUSTOMERS,
    Snapshot("customer", "customer_snapshot", "contacts", ReadModels.keep_contact),
)


class CatchUp(catch_up.CatchUp[ReadModels]):
    snapshots = SNAPSHOTS
    record_model = CatchUpRecord
    unusable = (UnusableRecord,)

    def __init__(self, db: SessionScope, outbox: EventSink | None = None) -> None:
        """``outbox`` records what the ERP events it applies announce (by default sales'
        outbox table, which its relay publishes from)."""
        super().__init__(db)
        self.outbox = outbox or OutboxWriter(OutboxMessage, OUTBOX_SOURCE)

    def read_models(self, session: Session) -> ReadModels:
        return ReadModels(session)

    def page_kept(self, session: Session, snapshot: Snapshot[ReadModels], items: list[Any]) -> None:
        if snapshot == CUSTOMERS:
            ErpInbound(session, self.outbox).customers_known(items)
