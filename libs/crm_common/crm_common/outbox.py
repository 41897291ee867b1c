"""Transactional outbox: events are rows written with the business change, relayed after commit.

A worker adds rows through ``OutboxWriter.add`` inside its session; nothing reaches the broker
unless that transaction commits. After each worker the relay wakes and publishes every unsent
row with publisher confirms (``crm_common.confirms``), marking a row sent only once the broker
has confirmed it. A relay
that cannot reach the broker keeps the rows and retries with backoff, so a crash or an outage
between commit and publish delays events but loses none. Delivery is at least once; consumers
deduplicate through the inbox.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.extensions import DependencyProvider
from nameko.standalone.events import get_event_exchange
from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from crm_common import metrics
from crm_common.confirms import ConfirmingPublisher, Outgoing
from crm_common.context import REQUEST_ID_KEY, current_request_id, optional_principal
from crm_common.db import database_uri, engine_for
from crm_common.deferred import add_row
from crm_common.events import make_envelope
from crm_common.models import OutboxMixin, utcnow

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 30.0
RELAY_CHUNK = 100
"""Unsent rows the relay reads at a time."""
RELAY_LOCK = 0x6F7574626F78
"""The PostgreSQL advisory lock of the relay draining a service's outbox ("outbox")."""


class OutboxWriter:
    """Adds events to the outbox of the session's transaction."""

    def __init__(self, model: type[OutboxMixin], source: str) -> None:
        self.model = model
        self.source = source
        self.exchange = f"{source}.events"
        self.added = 0

    def add(
        self, session: Session, event_type: str, data: dict[str, Any], version: int | str = 1
    ) -> dict[str, Any]:
        principal = optional_principal()
        envelope = make_envelope(
            event_type,
            data,
            source=self.source,
            actor_id=principal.user_id if principal else None,
            version=version,
        )
        request_id = current_request_id()
        headers = {f"nameko.{REQUEST_ID_KEY}": request_id} if request_id else {}
        add_row(
            session,
            self.model,
            {
                "event_id": envelope["event_id"],
                "exchange": self.exchange,
                "routing_key": event_type,
                "payload": envelope,
                "headers": headers,
            },
        )
        self.added += 1
        return envelope


class OutboxRelay:
    """Publishes unsent outbox rows in order and marks them sent once the broker confirms them."""

    def __init__(
        self, engine: Engine, model: type[OutboxMixin], amqp_uri: str, service_name: str
    ) -> None:
        self.model = model
        self.service_name = service_name
        self.sessions = sessionmaker(bind=engine, expire_on_commit=False)
        self.publisher = ConfirmingPublisher(amqp_uri, get_event_exchange(service_name, {}))
        self.engine = engine

    def relay_pending(self) -> int:
        """Publish what is pending, oldest first; returns how many rows were sent. Raises if
        the broker fails.

        Rows are read ``RELAY_CHUNK`` at a time; a chunk is published as a whole, the broker's
        confirms awaited once for all of it, and the rows it confirmed are marked sent in one
        transaction. A process killed while a chunk is confirmed therefore publishes that
        chunk again when it restarts (consumers deduplicate through their inbox); a broker
        that fails mid-chunk leaves the unconfirmed rows for the next try. No connection is
        held while the broker confirms: on SQLite (one process relays) each step takes the one
        connection from the pool and gives it back, so the workers never wait on a confirm.
        On PostgreSQL the replicas of a service share the table: one relay at a time drains
        it, holding a session advisory lock on a connection of its own (the server frees it if
        that relay dies); the others find it held and leave the rows to it."""
        if self.engine.dialect.name != "postgresql":
            return self._drain(self.engine.connect)
        with self.engine.connect() as connection:
            held = connection.scalar(select(func.pg_try_advisory_lock(RELAY_LOCK)))
            connection.commit()
            if not held:
                return 0
            try:
                return self._drain(lambda: contextlib.nullcontext(connection))
            finally:
                connection.rollback()
                connection.scalar(select(func.pg_advisory_unlock(RELAY_LOCK)))
                connection.commit()

    def _drain(self, connect: Callable[[], AbstractContextManager[Connection]]) -> int:
        columns = (self.model.id, self.model.routing_key, self.model.payload, self.model.headers)
        unsent = (
            select(*columns)
            .where(self.model.sent_at.is_(None))
            .order_by(self.model.id)
            .limit(RELAY_CHUNK)
        )
        sent = 0
        while True:
            with connect() as connection:
                rows = connection.execute(unsent).all()
                connection.commit()
            if not rows:
                return sent
            sent += self._publish(connect, rows)

    def _publish(
        self, connect: Callable[[], AbstractContextManager[Connection]], rows: Sequence[Any]
    ) -> int:
        """Publish a chunk, then record what became of it: the confirmed rows sent, the error
        on the first row that was not (the error is raised again)."""
        published = self.publisher.publish_all(
            [
                Outgoing(payload, routing_key, payload.get("event_id"), headers or {})
                for _row_id, routing_key, payload, headers in rows
            ]
        )
        confirmed = rows[: published.confirmed]
        with connect() as connection:
            if confirmed:
                connection.execute(
                    update(self.model)
                    .where(self.model.id.in_([row[0] for row in confirmed]))
                    .values(attempts=self.model.attempts + 1, sent_at=utcnow())
                )
            if published.failure is not None:
                error = f"{type(published.failure).__name__}: {published.failure}"[:500]
                connection.execute(
                    update(self.model)
                    .where(self.model.id == rows[published.confirmed][0])
                    .values(attempts=self.model.attempts + 1, last_error=error)
                )
            connection.commit()
        for routing_key, count in Counter(row[1] for row in confirmed).items():
            metrics.EVENTS_PUBLISHED.labels(self.service_name, routing_key).inc(count)
        if published.failure is not None:
            raise published.failure
        return len(confirmed)

    def backlog(self) -> tuple[int, datetime | None]:
        """How many rows are unsent, and when the oldest of them was written."""
        with self.sessions() as session:
            unsent, oldest = session.execute(
                select(func.count(), func.min(self.model.created_at)).where(
                    self.model.sent_at.is_(None)
                )
            ).one()
        if oldest is not None and oldest.tzinfo is None:  # SQLite reads back naive UTC
            oldest = oldest.replace(tzinfo=UTC)
        return int(unsent), oldest


class Outbox(DependencyProvider):
    """Nameko dependency: workers get an ``OutboxWriter``; a managed thread runs the relay."""

    def __init__(self, model: type[OutboxMixin]) -> None:
        self.model = model

    def setup(self) -> None:
        config = self.container.config
        self.service_name = self.container.service_name
        engine = engine_for(database_uri(config, self.service_name))
        self.relay = OutboxRelay(engine, self.model, config[AMQP_URI_CONFIG_KEY], self.service_name)
        self.poll_seconds = float(config.get("OUTBOX_POLL_SECONDS", 2.0))
        self._wake = threading.Event()
        self._running = False

    def start(self) -> None:
        self._running = True
        metrics.watch_outbox(self.service_name, self.relay.backlog)
        self._thread = self.container.spawn_managed_thread(self._run, identifier="outbox_relay")

    def stop(self) -> None:
        self._running = False
        self._wake.set()

    def kill(self) -> None:
        self.stop()

    def get_dependency(self, worker_ctx: Any) -> OutboxWriter:
        return OutboxWriter(self.model, self.service_name)

    def worker_result(self, worker_ctx: Any, result: Any = None, exc_info: Any = None) -> None:
        if exc_info is None:
            self._wake.set()

    def _run(self) -> None:
        backoff = self.poll_seconds
        while self._running:
            self._wake.wait(timeout=backoff)
            self._wake.clear()
            if not self._running:
                break
            try:
                self.relay.relay_pending()
                backoff = self.poll_seconds
            except Exception as exc:  # the broker or the database is away: keep rows, retry
                backoff = min(max(backoff, 0.5) * 2, MAX_BACKOFF_SECONDS)
                log.warning("outbox relay failed, retrying in %.1fs: %s", backoff, exc)
        self.relay.publisher.close()
