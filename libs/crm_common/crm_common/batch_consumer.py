"""Events handled in batches: one worker, one transaction and one commit for up to ``max_batch``
events of one queue, for streams too fast to pay a worker and a commit per event (the ERP's)::

    class SalesService(kit.ServiceKit):
        db = Database(Base)
        inbox_model = InboxEvent

        @event_batch_handler("erp", "invoice_issued", max_batch=200, max_wait=0.05)
        def on_erp_invoice_issued(self, batch: EventBatch) -> None:
            with self.db.session() as session:
                batch.apply(session, lambda event: apply_invoice(session, event))

The consumer keeps up to ``2 × max_batch`` messages of the handler's queue unacknowledged (its
prefetch), and hands the handler what has arrived once ``max_batch`` messages are there or
``max_wait`` seconds after the first of them; one batch of a queue runs at a time, the next
gathering meanwhile. ``EventBatch.apply`` checks the inbox of the whole batch in one query (an
event applied before, or twice in the batch, is a duplicate), then applies the new events and
marks them in the inbox (one statement), the outbox events and other append-only rows they
add written table by table in one statement each (``crm_common.deferred``): all of them in
one savepoint first; if one fails, the
savepoint is rolled back and each event is applied again in a savepoint of its own, so that the
failing event is set aside alone and the others still commit. Each message is settled after the
handler's commit: acknowledged when applied or a duplicate, moved to its retry queue or the
dead letters (``invalid`` at once for data the handler refused, see
``crm_common.consumer.never_applies``) when its event failed. A handler that fails as a whole
(its commit, the database gone) sends every event of the batch to its retry. A kill leaves the
batch unacknowledged, and the broker delivers it again.

The queues, retry queues and dead letters are ``crm_common.consumer``'s, argument for
argument, so deployment topology may declare them beforehand.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar, cast

import eventlet
from eventlet.semaphore import Semaphore
from kombu.message import Message
from nameko.exceptions import ContainerBeingKilled
from nameko.extensions import DependencyProvider
from sqlalchemy import insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from crm_common import metrics
from crm_common.consumer import (
    EventConsumer,
    EventQueueConsumer,
    MalformedEvent,
    ReceivedEvent,
    read_envelope,
)
from crm_common.db import database_uri
from crm_common.dead_letters import ATTEMPTS_HEADER
from crm_common.deferred import deferring, drop_deferred, write_deferred
from crm_common.models import InboxMixin

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_MAX_BATCH = 200
DEFAULT_MAX_WAIT = 0.05


@dataclass
class Delivery:
    """One message of a batch: its event and, once applied, how that went."""

    event: ReceivedEvent
    message: Message
    failure: BaseException | None = None


@dataclass
class EventBatch:
    """What a batch handler gets: the events of up to ``max_batch`` messages, in the order the
    queue gave them."""

    deliveries: list[Delivery]
    handler: str
    inbox_model: type[InboxMixin]
    event_type: str
    """The type the handler's queue is bound to (each envelope says its own, unchecked)."""
    applied: int = field(default=0, init=False)

    @property
    def events(self) -> list[ReceivedEvent]:
        return [delivery.event for delivery in self.deliveries]

    def __len__(self) -> int:
        return len(self.deliveries)

    def apply(self, session: Session, apply_one: Callable[[ReceivedEvent], Any]) -> int:
        """Apply each event not handled before with ``apply_one`` in ``session``'s transaction
        (the caller commits), marking it in the inbox; returns how many were applied. An event
        whose ``apply_one`` raises is left out and settled alone (retried or dead-lettered)."""
        fresh = self._first_deliveries(session)
        if not fresh:
            return 0
        with deferring(session):
            try:
                with session.begin_nested():
                    for delivery in fresh:
                        apply_one(delivery.event)
                        eventlet.sleep(0)  # SQLite does not yield: let the hub breathe
                    write_deferred(session)
                    rows = [self._inbox_row(d) for d in fresh]
                    session.execute(insert(self.inbox_model), rows)
                    session.flush()
            except DBAPIError as exc:
                if exc.connection_invalidated:
                    raise
                drop_deferred(session)
                self._one_by_one(session, fresh, apply_one)
            except Exception:
                drop_deferred(session)
                self._one_by_one(session, fresh, apply_one)
        self.applied = sum(1 for delivery in fresh if delivery.failure is None)
        return self.applied

    def _one_by_one(
        self, session: Session, fresh: list[Delivery], apply_one: Callable[[ReceivedEvent], Any]
    ) -> None:
        for delivery in fresh:
            eventlet.sleep(0)
            try:
                with session.begin_nested():
                    self._apply(session, delivery, apply_one)
                    write_deferred(session)
                    session.flush()
            except DBAPIError as exc:
                drop_deferred(session)
                if exc.connection_invalidated:
                    raise
                delivery.failure = exc
            except Exception as exc:
                drop_deferred(session)
                delivery.failure = exc

    def _apply(
        self, session: Session, delivery: Delivery, apply_one: Callable[[ReceivedEvent], Any]
    ) -> None:
        apply_one(delivery.event)
        session.add(self.inbox_model(**self._inbox_row(delivery)))

    def _inbox_row(self, delivery: Delivery) -> dict[str, Any]:
        event = delivery.event
        return {"event_id": event.event_id, "handler": self.handler, "event_type": event.type}

    def _first_deliveries(self, session: Session) -> list[Delivery]:
        """The deliveries whose event the inbox has not seen (the first of two copies in the
        batch); every event's inbox check is done."""
        model = self.inbox_model
        ids = list({delivery.event.event_id for delivery in self.deliveries})
        seen = set(
            session.scalars(
                select(model.event_id).where(model.handler == self.handler, model.event_id.in_(ids))
            )
        )
        fresh = []
        for delivery in self.deliveries:
            event = delivery.event
            event.inbox_checked = True
            event.duplicate = event.event_id in seen
            if not event.duplicate:
                seen.add(event.event_id)
                fresh.append(delivery)
        return fresh


class BatchQueueConsumer(EventQueueConsumer):
    """The queue consumer of batch handlers (a connection of its own): each handler's queue
    with the prefetch its batches need, and messages handed over without a thread each (the
    handler only buffers them)."""

    def handle_message(self, provider: Any, body: Any, message: Message) -> None:
        provider.handle_message(body, message)

    def get_consumers(self, consumer_cls: Any, channel: Any) -> Any:
        """On every (re)connection: what was buffered came on the lost channel, and the broker
        delivers it again."""
        for provider in self._providers:
            provider.forget_pending()
        return super().get_consumers(consumer_cls, channel)


class BatchEventConsumer(EventConsumer):
    queue_consumer = BatchQueueConsumer()

    def __init__(
        self,
        source_service: str,
        event_type: str,
        version: int = 1,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_wait: float = DEFAULT_MAX_WAIT,
    ) -> None:
        if max_batch < 1 or max_wait < 0:
            raise ValueError("max_batch must be at least 1 and max_wait not negative")
        self.max_batch = max_batch
        self.max_wait = max_wait
        super().__init__(source_service, event_type, version)

    @property
    def prefetch_count(self) -> int:
        """A batch in the worker and the next one arriving."""
        return 2 * self.max_batch

    def setup(self) -> None:
        super().setup()
        self.pending: list[Delivery] = []
        self.in_flight = False
        self.timer: Any = None

    def stop(self) -> None:
        pending, self.pending = self.pending, []
        for delivery in pending:
            self.queue_consumer.requeue_message(delivery.message)
        super().stop()

    def forget_pending(self) -> None:
        self.pending = []

    def handle_message(self, body: Any, message: Message) -> None:
        try:
            envelope = read_envelope(body, self.major)
        except MalformedEvent as exc:
            self.container.spawn_managed_thread(
                partial(self.dead_letter, message, "malformed", str(exc), body, 0)
            )
            return
        self.pending.append(
            Delivery(ReceivedEvent(envelope, self.handler, self.inbox_model), message)
        )
        if self.in_flight:
            return
        if len(self.pending) >= self.max_batch:
            self._flush()
        elif self.timer is None:
            self.timer = self.container.spawn_managed_thread(self._flush_later)

    def _flush_later(self) -> None:
        eventlet.sleep(self.max_wait)
        self.timer = None
        if not self.in_flight and self.pending:
            self._flush()

    def _flush(self) -> None:
        """Hand the next batch to a worker. The worker is spawned from a thread of its own:
        spawning waits for a free worker slot, which neither the queue consumer's thread
        (it would stop reading the connection) nor a finishing batch worker (every slot might
        be held by one waiting so) may do."""
        deliveries = self.pending[: self.max_batch]
        del self.pending[: self.max_batch]
        self.in_flight = True
        self.container.spawn_managed_thread(partial(self._run, deliveries))

    def _run(self, deliveries: list[Delivery]) -> None:
        batch = EventBatch(deliveries, self.handler, self.inbox_model, self.event_type)
        try:
            self.container.spawn_worker(
                self, (batch,), {}, context_data={}, handle_result=partial(self.settle, batch)
            )
        except ContainerBeingKilled:
            self.in_flight = False
            for delivery in deliveries:
                self.queue_consumer.requeue_message(delivery.message)

    def settle(
        self, batch: EventBatch, worker_ctx: Any, result: Any = None, exc_info: Any = None
    ) -> tuple[Any, Any]:
        try:
            for delivery in batch.deliveries:
                try:
                    self._settle_one(delivery, None if exc_info is None else exc_info[1])
                except Exception as exc:  # the connection is gone: the broker delivers it again
                    log.warning("a message of %s is left to the broker: %r", self.handler, exc)
        finally:
            self.in_flight = False
            if self.pending:
                self._flush()
        return result, exc_info

    def _settle_one(self, delivery: Delivery, batch_failure: BaseException | None) -> None:
        message, event = delivery.message, delivery.event
        attempts = int((message.headers or {}).get(ATTEMPTS_HEADER, 0)) + 1
        failure = batch_failure or delivery.failure
        if failure is not None:
            self.retry_or_dead_letter(message, event, failure, attempts)
        elif not event.inbox_checked:
            error = "the handler returned without calling batch.apply(session, ...)"
            self.dead_letter(message, "inbox_unchecked", error, event.envelope, attempts)
        else:
            outcome = "duplicate" if event.duplicate else "applied"
            labels = (self.container.service_name, self.handler, event.type, outcome)
            metrics.EVENTS_CONSUMED.labels(*labels).inc()
            self.queue_consumer.ack_message(message)


class BatchLock(DependencyProvider):
    """Keeps batch handlers that touch the same documents from applying at once::

        with self.batches.of("orders"), self.db.session() as session: ...

    Batches of one family run one at a time, so they never wait on each other's row locks;
    batches of different families (disjoint documents) run side by side, each waiting on the
    database while the other works. That is on PostgreSQL; on SQLite (one connection, one
    writer), and any database whose row locks were not thought through for it, every family
    shares one lock: batches then queue on it, which has no timeout, instead of in the
    connection pool, which has."""

    def setup(self) -> None:
        uri = database_uri(self.container.config, self.container.service_name)
        self.locks = FamilyLocks(shared=make_url(uri).get_backend_name() != "postgresql")

    def get_dependency(self, worker_ctx: Any) -> FamilyLocks:
        return self.locks


class FamilyLocks:
    """A lock per family of documents, or one for all when ``shared``."""

    def __init__(self, shared: bool) -> None:
        self.shared = shared
        self._locks: dict[str, Semaphore] = {}

    def of(self, family: str) -> Semaphore:
        return self._locks.setdefault("" if self.shared else family, Semaphore(1))


def event_batch_handler(
    source_service: str,
    event_type: str,
    *,
    version: int = 1,
    max_batch: int = DEFAULT_MAX_BATCH,
    max_wait: float = DEFAULT_MAX_WAIT,
) -> Callable[[F], F]:
    """Handle ``event_type`` events of ``source_service`` (major ``version``) in batches of up
    to ``max_batch``, gathered for at most ``max_wait`` seconds."""
    decorator = BatchEventConsumer.decorator(
        source_service, event_type, version=version, max_batch=max_batch, max_wait=max_wait
    )
    return cast(Callable[[F], F], decorator)
