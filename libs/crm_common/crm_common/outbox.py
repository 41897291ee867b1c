"""Transactional outbox: events are rows written with the business change, relayed after commit.

A worker adds rows through ``OutboxWriter.add`` inside its session; nothing reaches the broker
unless that transaction commits. After each worker the relay wakes and publishes every unsent
row with publisher confirms, marking a row sent only once the broker has confirmed it. A relay
that cannot reach the broker keeps the rows and retries with backoff, so a crash or an outage
between commit and publish delays events but loses none. Delivery is at least once; consumers
deduplicate through the inbox.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any

from nameko.amqp.publish import Publisher
from nameko.constants import AMQP_URI_CONFIG_KEY, PERSISTENT
from nameko.extensions import DependencyProvider
from nameko.standalone.events import get_event_exchange
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from crm_common import metrics
from crm_common.context import REQUEST_ID_KEY, current_request_id, optional_principal
from crm_common.db import database_uri, engine_for
from crm_common.events import make_envelope
from crm_common.models import OutboxMixin, utcnow

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 30.0


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
        session.add(
            self.model(
                event_id=envelope["event_id"],
                exchange=self.exchange,
                routing_key=event_type,
                payload=envelope,
                headers=headers,
            )
        )
        self.added += 1
        return envelope


class OutboxRelay:
    """Publishes unsent outbox rows in order and marks each sent once the broker confirms it."""

    def __init__(
        self, engine: Engine, model: type[OutboxMixin], amqp_uri: str, service_name: str
    ) -> None:
        self.model = model
        self.service_name = service_name
        self.sessions = sessionmaker(bind=engine, expire_on_commit=False)
        self.exchange = get_event_exchange(service_name, {})
        self.publisher = Publisher(
            amqp_uri,
            use_confirms=True,
            serializer="json",
            delivery_mode=PERSISTENT,
            retry=False,
            declare=[self.exchange],
        )
        self.skip_locked = engine.dialect.name == "postgresql"

    def relay_pending(self) -> int:
        """Publish what is pending; returns how many rows were sent. Raises if the broker fails.

        Each row is marked sent in a transaction of its own as soon as the broker confirms it,
        so a process killed mid-backlog republishes at most the one row it was confirming, not
        every row of a batch (consumers deduplicate that one through their inbox)."""
        sent = 0
        while self._relay_next():
            sent += 1
        return sent

    def _relay_next(self) -> bool:
        with self.sessions() as session:
            query = (
                select(self.model)
                .where(self.model.sent_at.is_(None))
                .order_by(self.model.id)
                .limit(1)
            )
            if self.skip_locked:
                query = query.with_for_update(skip_locked=True)
            row = session.scalars(query).first()
            if row is None:
                return False
            if not self.skip_locked:
                # SQLite: one process relays, and its one connection goes back to the pool
                # while the broker confirms, instead of holding up the workers behind it.
                session.commit()
            try:
                self.publisher.publish(
                    row.payload,
                    exchange=self.exchange,
                    routing_key=row.routing_key,
                    headers=row.headers or {},
                )
            except Exception as exc:
                row.attempts += 1
                row.last_error = f"{type(exc).__name__}: {exc}"[:500]
                session.commit()
                raise
            row.sent_at = utcnow()
            row.attempts += 1
            session.commit()
            metrics.EVENTS_PUBLISHED.labels(self.service_name, row.routing_key).inc()
            return True

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
