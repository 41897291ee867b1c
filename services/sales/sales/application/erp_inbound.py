"""Applying the ERP's events (``erp.events``): read, match the customer, hand to the use case.

Each event's ``data`` is loaded with ``sales.schemas.erp.ERP_EVENT_SCHEMAS`` (a
``ValidationError`` means it can never apply: the consumer dead-letters it at once with the
reasons). An event about a customer (``order_created`` of an order entered in the ERP,
``invoice_issued``, ``payment_received``, ``customer_credit_updated``) is matched to a CRM
customer by ``crm_customer_id``, else the unified social credit code, else the ERP code on
the customer (``sales.repository.erp.match_customer``). One that matches nothing is not
dropped: it waits in ``erp_unmatched_events`` and is applied when a customer event brings a
matching code (``customer_known``) or an administrator maps its ERP customer
(``ErpAdmin.map_customer``, which applies every waiting event of that ERP customer).

The use cases that apply the events are the quote-to-cash modules' (``APPLIERS``); they are
idempotent by document number and let the ERP's ``occurred_at`` decide between two updates
of one document, so a waiting event applied late, or twice, settles where the stream says.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from crm_common.application import EventSink, UseCases
from crm_common.consumer import ReceivedEvent
from crm_common.errors import NotFound, ValidationFailed
from crm_common.ids import lookup_id
from crm_common.loading import SchemaLoader
from crm_common.models import utcnow
from crm_common.schemas import load
from sales.application.catalog import keep_item, keep_price_list
from sales.application.erp_orders import apply_order_event, load_order_documents
from sales.application.erp_receivables import apply_receivable_event, load_receivable_documents
from sales.models.erp import WAITING, ErpUnmatchedEvent
from sales.repository import erp as repository
from sales.schemas.erp import ERP_EVENT_SCHEMAS
from sales.schemas.erp_admin import (
    AppliedMappingSchema,
    ApplyUnmatchedSchema,
    UnmatchedEventQuerySchema,
    UnmatchedEventSchema,
)

Applier = Callable[
    [Session, EventSink, str, dict[str, Any], datetime, str, "uuid.UUID | None"], None
]
"""``(session, events, event_type, data, occurred_at, event_id, customer_id)``."""

ADMIN_PERMISSION = "sales:admin"
CUSTOMER_EVENTS = frozenset(
    ("order_created", "invoice_issued", "payment_received", "customer_credit_updated")
)
"""The events about a customer, applied only once it is matched."""
UNMATCHED_KEY = "unmatched"
"""Where a batch keeps the rows of its events that wait for their customer."""


def _item(
    session: Session,
    events: EventSink,
    event_type: str,
    data: dict[str, Any],
    occurred_at: datetime,
    event_id: str,
    customer_id: uuid.UUID | None,
) -> None:
    keep_item(session, data, occurred_at)


def _price_list(
    session: Session,
    events: EventSink,
    event_type: str,
    data: dict[str, Any],
    occurred_at: datetime,
    event_id: str,
    customer_id: uuid.UUID | None,
) -> None:
    keep_price_list(session, data, occurred_at)


def _receivable(
    session: Session,
    events: EventSink,
    event_type: str,
    data: dict[str, Any],
    occurred_at: datetime,
    event_id: str,
    customer_id: uuid.UUID | None,
) -> None:
    if customer_id is None:
        raise ValidationFailed.on("customer", "a receivable event needs its customer matched")
    apply_receivable_event(session, events, event_type, data, occurred_at, event_id, customer_id)


APPLIERS: dict[str, Applier] = {
    "item_updated": _item,
    "price_list_updated": _price_list,
    "order_created": apply_order_event,
    "order_rejected": apply_order_event,
    "order_shipped": apply_order_event,
    "order_cancelled": apply_order_event,
    "invoice_issued": _receivable,
    "payment_received": _receivable,
    "customer_credit_updated": _receivable,
}
"""The use case applying each ERP event type."""

DOCUMENT_FAMILIES = {
    "item_updated": "catalog",
    "price_list_updated": "catalog",
    "order_created": "orders",
    "order_rejected": "orders",
    "order_shipped": "orders",
    "order_cancelled": "orders",
    "invoice_issued": "receivables",
    "payment_received": "receivables",
    "customer_credit_updated": "receivables",
}
"""The documents each ERP event type writes besides its own inbox and outbox rows (and, for an
event waiting for its customer, its own row of ``erp_unmatched_events``): items and price
lists; orders with their lines, shipments, history and waiting events; invoices, payments
and credit limits. No two families write the same row, so their batches may run at once."""


_LOADERS = {event_type: SchemaLoader(schema()) for event_type, schema in ERP_EVENT_SCHEMAS.items()}
"""One loader per event type: making a schema costs more than loading with it."""


def load_data(event_type: str, raw: Any) -> dict[str, Any]:
    """``raw`` read by the event type's schema (``ValidationError`` if it cannot be)."""
    loader = _LOADERS.get(event_type)
    if loader is None:
        raise ValidationFailed.on("type", f"{event_type} is no ERP event type")
    return loader.load(raw if isinstance(raw, dict) else {})


def _customer_key(data: Any) -> tuple[Any, ...] | None:
    """The match key of an event's raw customer, as ``ErpInbound.match`` makes it from the
    loaded one (None when it has none)."""
    customer = data.get("customer") if isinstance(data, dict) else None
    if not isinstance(customer, dict) or not isinstance(customer.get("erp_code"), str):
        return None
    crm_customer_id = customer.get("crm_customer_id")
    try:
        customer_id = None if crm_customer_id is None else uuid.UUID(str(crm_customer_id))
    except ValueError:
        return None
    return (customer_id, customer.get("credit_code"), customer["erp_code"])


def occurred_at_of(envelope: Mapping[str, Any]) -> datetime:
    """The envelope's ``occurred_at`` in UTC (SQLite keeps an instant without its offset, so
    every instant stored is stored in UTC)."""
    occurred = datetime.fromisoformat(str(envelope["occurred_at"]))
    if occurred.tzinfo is None:
        raise ValidationFailed.on("occurred_at", "must carry its offset")
    return occurred.astimezone(UTC)


class ErpInbound:
    """Applies ERP events in ``session``'s transaction (the caller commits), recording the
    events they cause in ``events``. Matches are remembered for the life of the object (one
    batch)."""

    def __init__(
        self,
        session: Session,
        events: EventSink,
        now: datetime | None = None,
        appliers: Mapping[str, Applier] | None = None,
    ) -> None:
        self.session = session
        self.events = events
        self.now = now or utcnow()
        self.appliers = APPLIERS if appliers is None else appliers
        self._matches: dict[tuple[Any, ...], uuid.UUID | None] = {}

    def prepare(self, events: Sequence[ReceivedEvent]) -> None:
        """Load what a batch of events reads in one query per kind of document (orders with
        their lines, shipments, waiting events, invoices, payments, customers), locked where
        each event would lock it, so that applying them asks the database again only for
        what an event changed in an unusual way."""
        raw = [(event.event_id, event.type, event.data) for event in events]
        keys = {
            key
            for _, event_type, data in raw
            if event_type in CUSTOMER_EVENTS and (key := _customer_key(data)) is not None
        }
        self._matches.update(repository.match_customers(self.session, keys))
        matched = {customer_id for customer_id in self._matches.values() if customer_id}
        load_order_documents(self.session, raw, matched)
        load_receivable_documents(self.session, raw, matched)
        about_customers = [event_id for event_id, kind, _ in raw if kind in CUSTOMER_EVENTS]
        if about_customers:
            unmatched = repository.unmatched_of_events(self.session, about_customers)
            repository.keep_batch_documents(self.session, UNMATCHED_KEY, unmatched)

    def apply(self, event: ReceivedEvent) -> bool:
        """Apply one received event; False if it waits for its customer."""
        data = load_data(event.type, event.data)
        occurred_at = occurred_at_of(event.envelope)
        if event.type in CUSTOMER_EVENTS and not (
            event.type == "order_created" and data.get("crm_order_id")
        ):
            customer_id = self.match(data["customer"])
            if customer_id is None:
                self._wait(event, data, occurred_at)
                return False
        else:
            customer_id = None
        self._dispatch(event.type, data, occurred_at, event.event_id, customer_id)
        return True

    def match(self, customer: Mapping[str, Any]) -> uuid.UUID | None:
        key = (customer.get("crm_customer_id"), customer.get("credit_code"), customer["erp_code"])
        if key not in self._matches:
            self._matches[key] = repository.match_customer(self.session, *key)
        return self._matches[key]

    def _dispatch(
        self,
        event_type: str,
        data: dict[str, Any],
        occurred_at: datetime,
        event_id: str,
        customer_id: uuid.UUID | None,
    ) -> None:
        applier = self.appliers.get(event_type)
        if applier is None:
            raise LookupError(f"nothing applies {event_type} events yet")
        applier(self.session, self.events, event_type, data, occurred_at, event_id, customer_id)

    def _wait(self, event: ReceivedEvent, data: dict[str, Any], occurred_at: datetime) -> None:
        customer = data["customer"]
        repository.keep_unmatched(
            self.session,
            {
                "event_id": event.event_id,
                "event_type": event.type,
                "occurred_at": occurred_at,
                "data": event.data,
                "erp_code": customer["erp_code"],
                "credit_code": customer.get("credit_code"),
                "crm_customer_id": customer.get("crm_customer_id"),
                "customer_name": customer.get("name"),
                "status": WAITING,
            },
            self.now,
            repository.batch_documents(self.session, UNMATCHED_KEY),
        )

    # -- waiting events -------------------------------------------------------------------
    def customer_known(self, record: Any) -> int:
        """A customer event was kept: apply the events waiting for a customer with its id or
        its codes. Returns how many applied."""
        return self.customers_known([record])

    def customers_known(self, records: Iterable[Any]) -> int:
        """Customers were kept (an event's, or a page of the customer snapshot): apply the
        events waiting for a customer with one of their ids or codes, in the order the ERP
        made them. Returns how many applied."""
        ids: list[uuid.UUID] = []
        erp_codes: list[str] = []
        credit_codes: list[str] = []
        for record in records:
            if not isinstance(record, dict) or not record.get("id"):
                continue
            try:
                ids.append(uuid.UUID(str(record["id"])))
            except ValueError:
                continue
            if record.get("erp_code"):
                erp_codes.append(record["erp_code"])
            if record.get("credit_code"):
                credit_codes.append(record["credit_code"])
        if not ids:
            return 0
        waiting = repository.waiting_for(
            self.session, erp_codes=erp_codes, credit_codes=credit_codes, crm_customer_ids=ids
        )
        applied = 0
        for row in waiting:
            matched = self.match(load_data(row.event_type, row.data)["customer"])
            if matched is not None and self.apply_waiting(row, matched):
                applied += 1
        return applied

    def apply_waiting(self, row: ErpUnmatchedEvent, customer_id: uuid.UUID) -> bool:
        """Apply a waiting event to ``customer_id`` in a savepoint; on failure it keeps
        waiting with the error and one more attempt."""
        row_id = row.id
        try:
            with self.session.begin_nested():
                data = load_data(row.event_type, row.data)
                occurred_at = row.occurred_at
                if occurred_at.tzinfo is None:  # SQLite hands instants back naive, in UTC
                    occurred_at = occurred_at.replace(tzinfo=UTC)
                self._dispatch(row.event_type, data, occurred_at, row.event_id, customer_id)
                repository.mark_applied(self.session, row, customer_id, self.now)
        except Exception as exc:
            repository.mark_failed(self.session, row_id, f"{type(exc).__name__}: {exc}", self.now)
            return False
        return True


class ErpAdmin(UseCases):
    """What an administrator does about ERP events: list those waiting for their customer and
    map an ERP customer to a CRM customer (``sales:admin``)."""

    def list_unmatched(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        self.principal.require(ADMIN_PERMISSION)
        criteria = load(UnmatchedEventQuerySchema(), query)
        page = repository.unmatched_page(self.session, criteria)
        return {
            "items": UnmatchedEventSchema(many=True).dump(page.items),
            "next_cursor": page.next_cursor,
        }

    def map_customer(self, unmatched_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """Record that the unmatched event's ERP customer is ``customer_id`` and apply every
        event waiting for that ERP customer (those that fail keep waiting, with the error)."""
        self.principal.require(ADMIN_PERMISSION)
        values = load(ApplyUnmatchedSchema(), data)
        identifier = lookup_id(unmatched_id)
        row = None if identifier is None else repository.get_unmatched(self.session, identifier)
        if row is None:
            raise NotFound.of("unmatched ERP event", unmatched_id)
        customer_id: uuid.UUID = values["customer_id"]
        if not repository.customer_exists(self.session, customer_id):
            raise ValidationFailed.on("customer_id", "no customer has this id")
        erp_code = row.erp_code
        if not erp_code:
            raise ValidationFailed.on("id", "this event names no ERP customer code")
        repository.keep_mapping(
            self.session, erp_code, customer_id, self.context.actor_id, self.context.now
        )
        inbound = ErpInbound(self.session, self.context.outbox, self.context.now)
        waiting = repository.waiting_for(self.session, erp_codes=[erp_code])
        outcomes = [inbound.apply_waiting(waiting_row, customer_id) for waiting_row in waiting]
        answer: dict[str, Any] = AppliedMappingSchema().dump(
            {
                "erp_code": erp_code,
                "customer_id": customer_id,
                "applied": sum(outcomes),
                "failed": len(outcomes) - sum(outcomes),
                "items": waiting,
            }
        )
        return answer
