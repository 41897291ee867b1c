"""What the ERP's order events do to sales orders: ``order_created`` (the ERP booked a CRM
order, or one entered in the ERP), ``order_rejected``, ``order_shipped`` and
``order_cancelled``.

They run in the caller's transaction (the ERP consumer's; it commits, and may wrap each event
in a savepoint) and follow ``sales.domain.orders``: the ERP's ``occurred_at`` decides between
two status changes, a shipment counts once by its number, and a shipment or cancellation
naming an ERP order number no order has yet is kept (``erp_order_events_waiting``) and applied,
in the order the events occurred, as soon as ``order_created`` brings the number. Each status
change publishes ``order_status_changed`` through the outbox. Data that can never apply (an
unknown CRM order, an ERP number already another order's, a rejection after shipping) is a
``ValidationFailed``, which the caller dead-letters.

A batch's consumer may load what its events read first (``load_order_documents``: one query
per kind, the orders and numbers locked): the events then read it from memory, and what
they write goes to the database with the batch's flush, an order's version moving by one
per change as if each were flushed alone. A savepoint rolled back forgets what was loaded
(``sales.repository.erp.batch_documents``), and the events read the database again.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, bindparam, event, inspect, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from crm_common.application import EventSink
from crm_common.deferred import add_row
from crm_common.errors import Conflict, ValidationFailed
from crm_common.ids import BUSINESS_TZ
from crm_common.loading import SchemaLoader
from crm_common.models import utcnow
from sales import events as sales_events
from sales.application.orders import CODE_PREFIX, HISTORY_TYPE, dump_order, status_changed
from sales.domain.codes import MAX_SEQUENCE, codes_exhausted, format_code
from sales.domain.money import quantize_fen
from sales.domain.orders import (
    ErpOrderEvent,
    OrderCancelled,
    OrderCreated,
    OrderLine,
    OrderRejected,
    OrderShipped,
    OrderState,
    OrderStatus,
    ShipmentLine,
    apply_erp_event,
)
from sales.models import CodeCounter, Customer, HistoryEntry, Person
from sales.models.orders import ErpOrderEventWaiting, SalesOrder, SalesOrderLine
from sales.repository import orders as rows
from sales.repository.erp import batch_documents, keep_batch_documents
from sales.repository.opportunities import allocate_sequence
from sales.schemas.erp import ERP_EVENT_SCHEMAS

ORDER_EVENTS = frozenset({"order_created", "order_rejected", "order_shipped", "order_cancelled"})
WAITING_EVENTS = frozenset({"order_shipped", "order_cancelled"})
HISTORY_CHANGES: dict[type, str] = {
    OrderCreated: "erp_created",
    OrderRejected: "erp_rejected",
    OrderShipped: "erp_shipped",
    OrderCancelled: "erp_cancelled",
}
"""How an order's history names what each ERP event did."""
WAITING_LOADERS = {
    event_type: SchemaLoader(ERP_EVENT_SCHEMAS[event_type]()) for event_type in WAITING_EVENTS
}
"""One loader per waiting event type: making a schema costs more than loading with it."""
ERP_OWNER = "erp"
"""The owner of an ERP order whose customer has no owner and whose salesperson is unknown."""


def apply_order_event(
    session: Session,
    events: EventSink,
    event_type: str,
    data: dict[str, Any],
    occurred_at: datetime,
    event_id: str,
    customer_id: uuid.UUID | None,
) -> None:
    """Apply one ERP order event (interface of the ERP consumer; see the module)."""
    ErpOrders(session, events).apply(event_type, data, occurred_at, event_id, customer_id)


DOCUMENTS_KEY = "orders"
QUANTITY_STEP = Decimal("0.0001")
"""The scale quantities, unit prices and tax rates are stored with."""


@dataclass
class OrderDocuments:
    """What a batch of ERP order events reads, loaded in one query per kind
    (``load_order_documents``) and kept current as the batch applies. A number or id
    missing from a mapping was not loaded: it is looked up in the database."""

    orders_by_no: dict[str, SalesOrder | None]
    orders_by_id: dict[uuid.UUID, SalesOrder | None]
    lines: dict[uuid.UUID, list[SalesOrderLine]]
    shipments: dict[str, bool]
    waiting: dict[str, list[ErpOrderEventWaiting]]
    waiting_keys: set[tuple[str, str]]
    waiting_ids: set[str]
    waiting_loaded: set[tuple[str, str]]
    ids_loaded: set[str]
    persons: dict[str, Person | None]
    customers: dict[uuid.UUID, Customer]
    """The customers of the orders and of the batch's matched events (held here: the
    session's identity map keeps no object alive by itself)."""
    counters: dict[int, CodeCounter] = field(default_factory=dict)
    """The order code counter of each year the batch allocated from (its row locked by the
    first allocation), counted on in memory and written with the batch's flush."""


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def load_order_documents(
    session: Session,
    events: Sequence[tuple[str, str, Mapping[str, Any]]],
    customer_ids: Iterable[uuid.UUID],
) -> None:
    """Load, lock and keep for the batch (``sales.repository.erp.keep_batch_documents``) what
    the batch's order events (``(event id, type, raw data)``) read: their orders with their
    lines, the shipments and waiting events they name, the salespeople, the customers of the
    orders and ``customer_ids`` (those the batch's events matched)."""
    numbers: set[str] = set()
    ids: set[uuid.UUID] = set()
    shipment_nos: set[str] = set()
    event_ids: set[str] = set()
    waiting_keys: set[tuple[str, str]] = set()
    codes: set[str] = set()
    for event_id, event_type, data in events:
        if event_type not in ORDER_EVENTS or not isinstance(data, Mapping):
            continue
        event_ids.add(event_id)
        number, order_id = data.get("erp_order_no"), _uuid(data.get("crm_order_id"))
        if isinstance(number, str):
            numbers.add(number)
        if order_id is not None:
            ids.add(order_id)
        if event_type == "order_created" and isinstance(data.get("salesperson_code"), str):
            codes.add(data["salesperson_code"])
        document = data.get("shipment_no") if event_type == "order_shipped" else number
        if event_type == "order_shipped" and isinstance(document, str):
            shipment_nos.add(document)
        if event_type in WAITING_EVENTS and isinstance(document, str):
            waiting_keys.add((event_type, document))
    if not (numbers or ids):
        return
    rows.lock_erp_order_nos(session, numbers)
    found = rows.orders_for_erp(session, numbers, ids)
    update_orders_together(session)
    by_no: dict[str, SalesOrder | None] = dict.fromkeys(numbers)
    by_id: dict[uuid.UUID, SalesOrder | None] = dict.fromkeys(ids)
    for order in found:
        if order.erp_order_no is not None:
            by_no[order.erp_order_no] = order
        by_id[order.id] = order
    waiting: dict[str, list[ErpOrderEventWaiting]] = {number: [] for number in numbers}
    known_keys: set[tuple[str, str]] = set()
    known_ids: set[str] = set()
    for row in rows.waiting_events(
        session, numbers, event_ids, [document for _, document in waiting_keys]
    ):
        if row.erp_order_no in waiting:
            waiting[row.erp_order_no].append(row)
        if row.document_no is not None:
            known_keys.add((row.event_type, row.document_no))
            if row.event_type == "order_shipped":
                shipment_nos.add(row.document_no)  # applied when its order comes
        known_ids.add(row.event_id)
    known_shipments = rows.known_shipments(session, shipment_nos)
    persons = rows.persons_of_codes(session, codes)
    keep_batch_documents(
        session,
        DOCUMENTS_KEY,
        OrderDocuments(
            orders_by_no=by_no,
            orders_by_id=by_id,
            lines=rows.lines_of_orders(session, [order.id for order in found]),
            shipments={number: number in known_shipments for number in shipment_nos},
            waiting=waiting,
            waiting_keys=known_keys,
            waiting_ids=known_ids,
            waiting_loaded=waiting_keys,
            ids_loaded=event_ids,
            persons={code: persons.get(code) for code in codes},
            customers=rows.customers_by_id(
                session, {*customer_ids, *(order.customer_id for order in found)}
            ),
        ),
    )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _json(value: Any) -> Any:
    """Loaded event data back as JSON the event's schema loads again."""
    if isinstance(value, Mapping):
        return {str(key): _json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json(item) for item in value]
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def domain_event(event_type: str, data: Mapping[str, Any], occurred_at: datetime) -> ErpOrderEvent:
    if event_type == "order_created":
        return OrderCreated(
            erp_order_no=data["erp_order_no"],
            occurred_at=occurred_at,
            lines=tuple(
                OrderLine(line["line_no"], line["item_code"], line["quantity"])
                for line in data["lines"]
            ),
        )
    if event_type == "order_rejected":
        return OrderRejected(reason=data["reason"], occurred_at=occurred_at)
    if event_type == "order_shipped":
        return OrderShipped(
            shipment_no=data["shipment_no"],
            shipped_at=data["shipped_at"],
            lines=tuple(
                ShipmentLine(
                    line["line_no"],
                    line["item_code"],
                    line["quantity"],
                    tuple(line.get("serial_numbers") or ()),
                )
                for line in data["lines"]
            ),
            occurred_at=occurred_at,
        )
    return OrderCancelled(reason=data.get("reason") or "", occurred_at=occurred_at)


class ErpOrders:
    """Applies ERP order events; with the batch's ``OrderDocuments`` (when its consumer
    loaded them) it reads what the batch touches from them instead of one query each."""

    def __init__(self, session: Session, events: EventSink, now: datetime | None = None) -> None:
        self.session = session
        self.events = events
        self.now = now or utcnow()
        self.documents: OrderDocuments | None = batch_documents(session, DOCUMENTS_KEY)

    def apply(
        self,
        event_type: str,
        data: dict[str, Any],
        occurred_at: datetime,
        event_id: str,
        customer_id: uuid.UUID | None,
    ) -> None:
        if event_type not in ORDER_EVENTS:
            raise ValidationFailed.on("type", f"{event_type} is not an ERP order event")
        if event_type == "order_created":
            self.created(data, occurred_at, event_id, customer_id)
        elif event_type == "order_rejected":
            order = self.order_of_id(data["crm_order_id"])
            if order is None:
                raise ValidationFailed.on("crm_order_id", "names no order of the CRM")
            self.apply_to(order, domain_event(event_type, data, occurred_at), event_id)
        else:
            order = self.order_of_erp_no(data["erp_order_no"])
            if order is None:
                self.keep_waiting(event_type, data, occurred_at, event_id)
                return
            self.apply_to(order, domain_event(event_type, data, occurred_at), event_id)

    # -- what the batch loaded, else the database ----------------------------------------------
    def order_of_erp_no(self, erp_order_no: str) -> SalesOrder | None:
        """The order of that ERP number, locked, and the number locked (see
        ``rows.lock_erp_order_no``)."""
        documents = self.documents
        if documents is not None and erp_order_no in documents.orders_by_no:
            return documents.orders_by_no[erp_order_no]
        rows.lock_erp_order_no(self.session, erp_order_no)
        return rows.order_of_erp_no(self.session, erp_order_no, lock=True)

    def order_of_id(self, order_id: uuid.UUID) -> SalesOrder | None:
        documents = self.documents
        if documents is not None and order_id in documents.orders_by_id:
            return documents.orders_by_id[order_id]
        return rows.find_order(self.session, order_id, lock=True)

    def lines_of(self, order: SalesOrder) -> list[SalesOrderLine]:
        documents = self.documents
        if documents is not None and order.id in documents.lines:
            return documents.lines[order.id]
        return rows.lines_of(self.session, order.id)

    def next_sequence(self, year: int) -> int:
        """The next order code sequence of ``year``: the first of a batch allocated in the
        database (which locks the counter until the transaction ends), the others counted
        on from it."""
        documents = self.documents
        counter = None if documents is None else documents.counters.get(year)
        if counter is not None:
            if counter.last_value >= MAX_SEQUENCE:
                raise codes_exhausted(CODE_PREFIX, year)
            counter.last_value += 1
            return counter.last_value
        with self.session.no_autoflush:  # the counter needs nothing pending: flush once a batch
            sequence = allocate_sequence(self.session, CODE_PREFIX, year)
            if documents is not None:
                documents.counters[year] = rows.code_counter(self.session, CODE_PREFIX, year)
        return sequence

    def customer(self, customer_id: uuid.UUID) -> Customer | None:
        documents = self.documents
        if documents is not None and customer_id in documents.customers:
            return documents.customers[customer_id]
        return self.session.get(Customer, customer_id)

    def kept_lines(self, order: SalesOrder, lines: list[SalesOrderLine]) -> None:
        if self.documents is not None:
            self.documents.lines[order.id] = lines

    def shipment_known(self, shipment_no: str) -> bool:
        documents = self.documents
        if documents is not None and shipment_no in documents.shipments:
            return documents.shipments[shipment_no]
        return rows.shipment_known(self.session, shipment_no)

    def person_of_code(self, code: str | None) -> Person | None:
        if not code:
            return None
        documents = self.documents
        if documents is not None and code in documents.persons:
            return documents.persons[code]
        return rows.person_of_code(self.session, code)

    # -- order_created -------------------------------------------------------------------------
    def created(
        self,
        data: dict[str, Any],
        occurred_at: datetime,
        event_id: str,
        customer_id: uuid.UUID | None,
    ) -> None:
        numbered = self.order_of_erp_no(data["erp_order_no"])
        crm_order_id = data.get("crm_order_id")
        if crm_order_id is not None:
            order = self.order_of_id(crm_order_id)
            if order is None:
                raise ValidationFailed.on("crm_order_id", "names no order of the CRM")
            if numbered is not None and numbered.id != order.id:
                raise ValidationFailed.on(
                    "erp_order_no", f"is already the ERP number of order {numbered.code}"
                )
            self.apply_to(order, domain_event("order_created", data, occurred_at), event_id)
        elif numbered is not None:
            self.revise_erp_order(numbered, data, occurred_at)
            order = numbered
        else:
            if customer_id is None:
                raise ValidationFailed.on("customer", "matches no customer of the CRM")
            order = self.new_erp_order(data, occurred_at, customer_id)
        self.reconcile(order)
        if self.documents is not None and order.erp_order_no is not None:
            self.documents.orders_by_no[order.erp_order_no] = order

    def new_erp_order(
        self, data: dict[str, Any], occurred_at: datetime, customer_id: uuid.UUID
    ) -> SalesOrder:
        """An order entered in the ERP, owned as its customer is (else by the salesperson the
        ERP names)."""
        customer = self.customer(customer_id)
        salesperson = self.person_of_code(data.get("salesperson_code"))
        owner_id = (customer.owner_id if customer else None) or (
            salesperson.user_id if salesperson else None
        )
        department_id = customer.department_id if customer else None
        if department_id is None and salesperson is not None:
            department_id = salesperson.department_id
        year = _aware(occurred_at).astimezone(BUSINESS_TZ).year
        sequence = self.next_sequence(year)
        order = SalesOrder(
            id=uuid.uuid4(),
            code=format_code(CODE_PREFIX, year, sequence),
            origin="erp",
            status=OrderStatus.ERP_CREATED.value,
            customer_id=customer_id,
            owner_id=owner_id or ERP_OWNER,
            department_id=department_id,
            region=customer.region if customer else None,
            category=customer.category if customer else None,
            order_date=data["order_date"],
            currency=data["currency"],
            prices_include_tax=True,
            erp_order_no=data["erp_order_no"],
            erp_status_at=occurred_at,
            erp_document_at=occurred_at,
            salesperson_code=data.get("salesperson_code"),
            department_code=data.get("department_code"),
            created_by=ERP_OWNER,
            created_at=self.now,
            updated_at=self.now,
            version=1,  # as the flush writes it: the event announces the order as stored
            **self.erp_figures(data),
        )
        self.session.add(order)
        lines = rows.replace_lines(self.session, order.id, self.erp_lines(data, {}), fresh=True)
        if self.documents is not None:
            self.documents.orders_by_id[order.id] = order
        self.kept_lines(order, lines)
        self.remember(order, None, OrderCreated(order.erp_order_no or "", occurred_at))
        self.publish(order, None, lines)
        return order

    def revise_erp_order(
        self, order: SalesOrder, data: dict[str, Any], occurred_at: datetime
    ) -> None:
        """A later ``order_created`` of an order entered in the ERP replaces its lines and
        figures (shipped quantities stay); an older or repeated one changes nothing."""
        if order.origin != "erp":
            return
        last = order.erp_document_at
        if last is not None and occurred_at <= _aware(last):
            return
        shipped = {line.line_no: line.shipped for line in self.lines_of(order)}
        for name, value in self.erp_figures(data).items():
            setattr(order, name, value)
        order.order_date = data["order_date"]
        order.currency = data["currency"]
        order.erp_document_at = occurred_at
        order.updated_at = self.now
        self.next_version(order)
        lines = rows.replace_lines(self.session, order.id, self.erp_lines(data, shipped))
        self.kept_lines(order, lines)

    @staticmethod
    def erp_lines(data: Mapping[str, Any], shipped: Mapping[int, Decimal]) -> list[dict[str, Any]]:
        """The ERP's lines: ``amount`` includes tax, the tax is worked out from it."""
        found = []
        for line in data["lines"]:
            gross = quantize_fen(line["amount"])
            net = quantize_fen(gross / (1 + line["tax_rate"]))
            found.append(
                {
                    "line_no": line["line_no"],
                    "item_code": line["item_code"],
                    "item_name": line["item_name"],
                    "spec": None,
                    "unit": line.get("unit"),
                    "quantity": line["quantity"].quantize(QUANTITY_STEP),
                    "unit_price": line["unit_price"].quantize(QUANTITY_STEP),
                    "discount_kind": None,
                    "discount_value": None,
                    "tax_rate": line["tax_rate"].quantize(QUANTITY_STEP),
                    "amount": gross,
                    "discount": Decimal(0),
                    "net": net,
                    "tax": gross - net,
                    "gross": gross,
                    "shipped": shipped.get(line["line_no"], Decimal(0)).quantize(QUANTITY_STEP),
                }
            )
        return found

    def erp_figures(self, data: Mapping[str, Any]) -> dict[str, Decimal]:
        lines = self.erp_lines(data, {})
        gross = sum((line["gross"] for line in lines), Decimal(0))
        net = sum((line["net"] for line in lines), Decimal(0))
        return {
            "amount": gross,
            "discount": Decimal(0),
            "net": net,
            "tax": gross - net,
            "gross": gross,
        }

    # -- every event ---------------------------------------------------------------------------
    def state_of(
        self, order: SalesOrder, lines: Sequence[SalesOrderLine], shipment_nos: frozenset[str]
    ) -> OrderState:
        return OrderState(
            status=OrderStatus(order.status),
            lines=tuple(
                OrderLine(line.line_no, line.item_code, line.quantity, line.shipped)
                for line in lines
            ),
            erp_order_no=order.erp_order_no,
            shipment_nos=shipment_nos,
            erp_status_at=_aware(order.erp_status_at) if order.erp_status_at else None,
            erp_reason=order.erp_reason,
        )

    def apply_to(self, order: SalesOrder, event: ErpOrderEvent, event_id: str) -> None:
        if isinstance(event, OrderShipped) and self.shipment_known(event.shipment_no):
            return  # shipment numbers are unique across orders: this one counted already
        lines = self.lines_of(order)
        before = self.state_of(order, lines, frozenset())
        try:
            after = apply_erp_event(before, event)
        except Conflict as exc:
            details = {"errors": {"order": [exc.message]}, "reason": exc.details.get("reason")}
            raise ValidationFailed(exc.message, details) from exc
        if after == before:
            return
        order.erp_order_no = after.erp_order_no
        order.erp_status_at = after.erp_status_at
        order.erp_reason = after.erp_reason
        shipped = {line.line_no: line.shipped for line in after.lines}
        for line in lines:
            if shipped.get(line.line_no, line.shipped) != line.shipped:
                line.shipped = shipped[line.line_no]
        if isinstance(event, OrderShipped):
            self.record_shipment(order, event, after.issues[len(before.issues) :], event_id)
        old_status = order.status
        order.status = after.status.value
        order.updated_at = self.now
        self.next_version(order)
        if old_status != order.status:
            self.remember(order, old_status, event)
            self.publish(order, old_status, lines)

    def next_version(self, order: SalesOrder) -> None:
        """The version the order's change is stored with: one more per change, as if each
        were flushed alone, though the batch flushes once. An order added in this
        transaction and not written yet is inserted at version 1 whatever it holds (the
        ORM's version counter starts there), so it owes the versions of its changes until
        then (``owe_version``)."""
        order.version += 1
        if inspect(order).pending:
            owe_version(self.session, order)

    def record_shipment(
        self, order: SalesOrder, event: OrderShipped, issues: Sequence[Any], event_id: str
    ) -> None:
        unused = list(issues)
        lines = []
        for shipped in event.lines:
            issue = next(
                (
                    i
                    for i in unused
                    if i.line_no == shipped.line_no and i.item_code == shipped.item_code
                ),
                None,
            )
            if issue is not None:
                unused.remove(issue)
            lines.append(
                {
                    "line_no": shipped.line_no,
                    "item_code": shipped.item_code,
                    "quantity": shipped.quantity,
                    "serial_numbers": list(shipped.serial_numbers),
                    "issue": issue.kind.value if issue else None,
                    "issue_quantity": issue.quantity if issue else None,
                }
            )
        if self.documents is not None:
            self.documents.shipments[event.shipment_no] = True
        rows.add_shipment(
            self.session,
            order_id=order.id,
            shipment_no=event.shipment_no,
            shipped_at=event.shipped_at,
            occurred_at=event.occurred_at,
            event_id=event_id,
            recorded_at=self.now,
            lines=lines,
        )

    def remember(self, order: SalesOrder, old_status: str | None, event: Any) -> None:
        """The status change in the order's history, as the ERP's doing (no actor)."""
        add_row(
            self.session,
            HistoryEntry,
            {
                "entity_type": HISTORY_TYPE,
                "entity_id": str(order.id),
                "change": HISTORY_CHANGES.get(type(event), "erp_event"),
                "actor_id": None,
                "field": "status",
                "old": old_status,
                "new": order.status,
                "at": self.now,
            },
        )

    def publish(
        self, order: SalesOrder, old_status: str | None, lines: Sequence[SalesOrderLine]
    ) -> None:
        """``order_status_changed`` with the order as it is now (its lines as applied)."""
        customer = self.customer(order.customer_id)
        dumped = dump_order(order, customer, lines)
        self.events.add(
            self.session,
            sales_events.ORDER_STATUS_CHANGED,
            status_changed(dumped, old_status, "erp"),
        )

    # -- events waiting for their order --------------------------------------------------------
    def keep_waiting(
        self, event_type: str, data: dict[str, Any], occurred_at: datetime, event_id: str
    ) -> None:
        document = data["shipment_no"] if event_type == "order_shipped" else data["erp_order_no"]
        if self.waiting_event_known(event_id, event_type, document):
            return
        row = rows.keep_waiting(
            self.session,
            event_id=event_id,
            event_type=event_type,
            erp_order_no=data["erp_order_no"],
            document_no=document,
            occurred_at=occurred_at,
            data=_json(data),
            received_at=self.now,
        )
        documents = self.documents
        if documents is not None:
            documents.waiting_keys.add((event_type, document))
            documents.waiting_ids.add(event_id)
            if row.erp_order_no in documents.waiting:
                documents.waiting[row.erp_order_no].append(row)

    def waiting_event_known(self, event_id: str, event_type: str, document: str) -> bool:
        documents = self.documents
        if (
            documents is not None
            and event_id in documents.ids_loaded
            and (event_type, document) in documents.waiting_loaded
        ):
            return event_id in documents.waiting_ids or (
                (event_type, document) in documents.waiting_keys
            )
        return rows.waiting_event_known(self.session, event_id, event_type, document)

    def reconcile(self, order: SalesOrder) -> None:
        """Apply what waited for the order's ERP number, in the order it occurred."""
        if order.erp_order_no is None:
            return
        documents = self.documents
        if documents is not None and order.erp_order_no in documents.waiting:
            waiting = sorted(documents.waiting.pop(order.erp_order_no), key=_occurred)
            documents.waiting[order.erp_order_no] = []
        else:
            waiting = rows.waiting_for(self.session, order.erp_order_no)
        for row in waiting:
            data = WAITING_LOADERS[row.event_type].load(row.data)
            event = domain_event(row.event_type, data, _aware(row.occurred_at))
            self.apply_to(order, event, row.event_id)
        rows.drop_waiting(self.session, waiting)


OWED_VERSIONS = "sales.erp.owed_versions"


def owe_version(session: Session, order: SalesOrder) -> None:
    """Write the version ``order`` holds now right after the flush that inserts it, instead of
    flushing it early (an early flush per order would split the batch's one flush into one
    per order)."""
    owed = session.info.get(OWED_VERSIONS)
    if owed is None:
        owed = session.info[OWED_VERSIONS] = {}
        event.listen(session, "after_flush_postexec", _write_owed_versions)
    owed[order] = order.version


def _write_owed_versions(session: Session, flush_context: Any) -> None:
    """The owed versions of the orders this flush inserted, in one statement; an order a
    rolled-back savepoint took away owes nothing any more."""
    owed: dict[SalesOrder, int] = session.info[OWED_VERSIONS]
    inserted = []
    for order, version in list(owed.items()):
        state = inspect(order)
        if state.persistent:
            inserted.append((order, version))
        if not state.pending:
            del owed[order]
    if not inserted:
        return
    session.connection().execute(
        update(SalesOrder)
        .where(SalesOrder.id == bindparam("order_id"))
        .values(version=bindparam("owed")),
        [{"order_id": order.id, "owed": version} for order, version in inserted],
    )
    for order, version in inserted:
        set_committed_value(order, "version", version)


ORDERS_TOGETHER = "sales.erp.orders_together"


def update_orders_together(session: Session) -> None:
    """Have each flush of ``session`` write its changed orders with one UPDATE statement per
    set of changed columns, instead of one statement per order (the ORM's way for a
    versioned row: it checks each row's version as it writes it). Only for sessions whose
    orders are locked as they are read (an ERP batch's), so no other writer can have moved
    a version meanwhile; the versions written are the ones the orders hold."""
    if ORDERS_TOGETHER not in session.info:
        session.info[ORDERS_TOGETHER] = True
        event.listen(session, "before_flush", _write_changed_orders)


def _write_changed_orders(session: Session, flush_context: Any, instances: Any) -> None:
    """Write the changed columns of every changed order, then mark them unchanged so that the
    flush leaves them alone."""
    changed: dict[tuple[str, ...], list[tuple[SalesOrder, dict[str, Any]]]] = {}
    for order in session.dirty:
        if type(order) is not SalesOrder:
            continue
        state = inspect(order)
        if not state.persistent or not state.committed_state:
            continue
        values = {key: state.dict[key] for key in state.committed_state}
        changed.setdefault(tuple(sorted(values)), []).append((order, values))
    if not changed:
        return
    table = cast(Table, SalesOrder.__table__)
    columns = {key: SalesOrder.__mapper__.get_property(key).columns[0] for key in _keys(changed)}
    connection = session.connection()
    for keys, orders in changed.items():
        statement = (
            update(table)
            .where(table.c.id == bindparam("order_id"))
            .values({columns[key]: bindparam(f"new_{key}") for key in keys})
        )
        connection.execute(
            statement,
            [
                {"order_id": order.id, **{f"new_{key}": value for key, value in values.items()}}
                for order, values in orders
            ],
        )
        for order, values in orders:
            for key, value in values.items():
                set_committed_value(order, key, value)


def _keys(changed: Mapping[tuple[str, ...], Any]) -> set[str]:
    return {key for keys in changed for key in keys}


def _occurred(row: ErpOrderEventWaiting) -> datetime:
    return _aware(row.occurred_at)


def waiting_summary(session: Session) -> int:
    """How many ERP order events wait for their order (for operators)."""
    return rows.waiting_count(session)
