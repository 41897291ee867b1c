"""A small service that consumes customer events through crm_common's consumer, for the
consumer, dead-letter and metrics tests."""

from __future__ import annotations

import socket

from kombu import Connection, Exchange
from sqlalchemy import select

from crm_common.consumer import ReceivedEvent, event_handler
from crm_common.context import Principal
from crm_common.db import Database, SessionScope, engine_for
from crm_common.events import make_envelope
from crm_common.kit import ServiceKit
from tests.support.tokens import context_of
from tests.unit.common.models import Base, InboxEvent, Note

FAILURES: dict[str, int] = {}
"""How many more times the handler fails on a customer name; a test "fixes" it by clearing."""

HANDLER_QUEUE = "ledger.on_customer_created"
ADMIN = context_of(Principal("u-admin", permissions=("system:admin",)))


class LedgerService(ServiceKit):
    name = "ledger"
    db = Database(Base)
    inbox_model = InboxEvent

    @event_handler("customer", "customer_created")
    def on_customer_created(self, event: ReceivedEvent) -> None:
        with self.db.session() as session:
            if not event.first_delivery(session):
                return
            name = event.data["name"]
            if FAILURES.get(name, 0) > 0:
                FAILURES[name] -= 1
                raise RuntimeError(f"cannot apply {name}")
            session.add(Note(title=name))


def poison(name):
    FAILURES[name] = 1_000_000


def ledger_config(rabbit_config, tmp_path, **extra):
    uri = f"sqlite:///{tmp_path / 'ledger.db'}"
    Base.metadata.create_all(engine_for(uri))
    FAILURES.clear()
    return {
        **rabbit_config,
        "DB_URIS": {"ledger": uri},
        "EVENT_RETRY_DELAYS": "0.2,0.4",
        **extra,
    }


def customer_created(name, **changes):
    return {
        **make_envelope("customer_created", {"name": name}, source="customer", actor_id="u1"),
        **changes,
    }


def publish(config, body, routing_key="customer_created", **options):
    """Publish as the customer outbox does: JSON to the ``customer.events`` topic exchange."""
    with Connection(config["AMQP_URI"]) as connection:
        connection.Producer().publish(
            body,
            exchange=Exchange("customer.events", type="topic", durable=True),
            routing_key=routing_key,
            serializer="json",
            declare=[Exchange("customer.events", type="topic", durable=True)],
            **options,
        )


def titles(config):
    with SessionScope(engine_for(config["DB_URIS"]["ledger"])).session() as session:
        return sorted(session.scalars(select(Note.title)))


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
