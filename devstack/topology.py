"""The broker topology of the ERP integration, declared by deployment before any process runs.

The ERP publishes to the topic exchange ``erp.events``; every service that handles ERP events
has one quorum queue per event type there, named as ``crm_common.consumer`` names a handler's
queue (``<service>.on_erp_<event type>``), with the service's retry exchanges and queues and
its dead-letter queue as that consumer declares them (``crm_common.retries``), argument for
argument, so that a service starting later finds them as it would have made them. Events
the ERP publishes before a service ever ran wait in its queues.
The ERP reads the orders the CRM sends it from ``erp.order-requests``, bound to
``sales.events`` for ``order_confirmed`` and ``order_cancel_requested``; a request it rejects,
or that comes back unacknowledged more than ``ERP_DELIVERY_LIMIT`` times, moves to
``erp.order-requests.dead-letters``.

The same objects reach a broker two ways: the definitions file the broker loads at boot
(``deploy/rabbitmq/definitions.json``, written by ``python -m devstack.registry write`` from
``definitions``), and ``python -m devstack.topology --amqp-uri URI`` (``make topology``), which
declares them on a running broker's vhost. Declaring is idempotent: what exists as declared
is left alone, and an object that exists with other properties is reported, never replaced.

Standard library only at import: the registry renders the definitions before any virtual
environment exists (kombu is imported when applying).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

ERP_EXCHANGE = "erp.events"
ERP_EVENT_TYPES = (
    "item_updated",
    "price_list_updated",
    "order_created",
    "order_rejected",
    "order_shipped",
    "order_cancelled",
    "invoice_issued",
    "payment_received",
    "customer_credit_updated",
)
ERP_CONSUMERS: dict[str, tuple[str, ...]] = {"sales": ERP_EVENT_TYPES}
"""The services that handle ERP events, with the event types each handles."""

ORDER_REQUEST_SOURCE = "sales"
ORDER_REQUEST_TYPES = ("order_confirmed", "order_cancel_requested")
ERP_QUEUE = "erp.order-requests"
ERP_DEAD_LETTERS = f"{ERP_QUEUE}.dead-letters"
ERP_DELIVERY_LIMIT = 5
"""Times an order request may come back unacknowledged before the broker dead-letters it."""

RETRY_DELAYS = (1.0, 10.0, 60.0)
"""``crm_common.consumer``'s default ``EVENT_RETRY_DELAYS``, in seconds."""

QUORUM = {"x-queue-type": "quorum"}
CONNECT_TIMEOUT = 10.0
"""Seconds to wait for the broker before giving up."""


@dataclass(frozen=True)
class Exchange:
    name: str
    type: str = "topic"


@dataclass(frozen=True)
class Queue:
    name: str
    arguments: dict[str, Any] = field(default_factory=lambda: dict(QUORUM))


@dataclass(frozen=True)
class Binding:
    exchange: str
    queue: str
    routing_key: str


def handler_queue(service: str, event_type: str) -> str:
    """The queue of ``service``'s handler of an ERP event: its handler method is named
    ``on_erp_<event_type>``."""
    return f"{service}.on_erp_{event_type}"


def retried_exchange(service: str) -> Exchange:
    """Where ``service``'s waited messages come back from, to the handler queue named by their
    routing key."""
    return Exchange(f"{service}.retried", "direct")


def retry_queue(service: str, delay: float) -> Queue:
    """As ``crm_common.retries`` declares it: ``service``'s messages wait ``delay`` seconds
    (the queue is fed by the fanout exchange of the same name), then go back through
    ``<service>.retried``."""
    milliseconds = round(delay * 1000)
    return Queue(
        f"{service}.retry.{milliseconds}ms",
        {
            **QUORUM,
            "x-message-ttl": milliseconds,
            "x-dead-letter-exchange": retried_exchange(service).name,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        },
    )


def dead_letter_queue(service: str) -> Queue:
    return Queue(f"{service}.dead-letters")


def erp_queue() -> Queue:
    """The ERP's own queue: a request it rejects without requeueing, or one returned
    unacknowledged more than ``ERP_DELIVERY_LIMIT`` times, goes to its dead letters."""
    return Queue(
        ERP_QUEUE,
        {
            **QUORUM,
            "x-delivery-limit": ERP_DELIVERY_LIMIT,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": ERP_DEAD_LETTERS,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        },
    )


@dataclass(frozen=True)
class Topology:
    exchanges: tuple[Exchange, ...]
    queues: tuple[Queue, ...]
    bindings: tuple[Binding, ...]


def topology(retry_delays: tuple[float, ...] = RETRY_DELAYS) -> Topology:
    exchanges = [Exchange(ERP_EXCHANGE), Exchange(f"{ORDER_REQUEST_SOURCE}.events")]
    queues: list[Queue] = []
    bindings: list[Binding] = []
    for service, event_types in ERP_CONSUMERS.items():
        retried = retried_exchange(service)
        exchanges.append(retried)
        for event_type in event_types:
            handler = handler_queue(service, event_type)
            queues.append(Queue(handler))
            bindings.append(Binding(ERP_EXCHANGE, handler, event_type))
            bindings.append(Binding(retried.name, handler, handler))
        for delay in retry_delays:
            waiting = retry_queue(service, delay)
            exchanges.append(Exchange(waiting.name, "fanout"))
            queues.append(waiting)
            bindings.append(Binding(waiting.name, waiting.name, ""))
        queues.append(dead_letter_queue(service))
    queues += [erp_queue(), Queue(ERP_DEAD_LETTERS)]
    bindings += [
        Binding(f"{ORDER_REQUEST_SOURCE}.events", ERP_QUEUE, event_type)
        for event_type in ORDER_REQUEST_TYPES
    ]
    return Topology(tuple(exchanges), tuple(queues), tuple(bindings))


def definitions(vhost: str) -> dict[str, list[dict[str, Any]]]:
    """The topology as the ``exchanges``, ``queues`` and ``bindings`` of a RabbitMQ
    definitions file, on ``vhost``."""
    wanted = topology()
    return {
        "exchanges": [
            {
                "name": exchange.name,
                "vhost": vhost,
                "type": exchange.type,
                "durable": True,
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            }
            for exchange in wanted.exchanges
        ],
        "queues": [
            {
                "name": queue.name,
                "vhost": vhost,
                "durable": True,
                "auto_delete": False,
                "arguments": queue.arguments,
            }
            for queue in wanted.queues
        ],
        "bindings": [
            {
                "source": binding.exchange,
                "vhost": vhost,
                "destination": binding.queue,
                "destination_type": "queue",
                "routing_key": binding.routing_key,
                "arguments": {},
            }
            for binding in wanted.bindings
        ],
    }


class TopologyConflict(Exception):
    """An exchange or queue exists with other properties than the topology's."""


class BrokerUnavailable(Exception):
    """The broker could not be reached, or refused the user or the vhost."""


def apply(amqp_uri: str, wanted: Topology | None = None) -> Topology:
    """Declare ``wanted`` (the whole topology by default) on the vhost of ``amqp_uri``."""
    from amqp.exceptions import AMQPError
    from kombu.exceptions import OperationalError

    try:
        return _declare(amqp_uri, wanted or topology())
    except (OSError, AMQPError, OperationalError) as exc:
        raise BrokerUnavailable(f"{type(exc).__name__}: {exc}") from None


def _declare(amqp_uri: str, wanted: Topology) -> Topology:
    from amqp.exceptions import PreconditionFailed
    from kombu.connection import Connection

    with Connection(amqp_uri, connect_timeout=CONNECT_TIMEOUT) as connection:
        channel = connection.channel()
        for exchange in wanted.exchanges:
            try:
                channel.exchange_declare(
                    exchange.name, exchange.type, durable=True, auto_delete=False
                )
            except PreconditionFailed as exc:
                raise TopologyConflict(f"exchange {exchange.name}: {exc}") from None
        for queue in wanted.queues:
            try:
                channel.queue_declare(
                    queue.name, durable=True, auto_delete=False, arguments=queue.arguments
                )
            except PreconditionFailed as exc:
                raise TopologyConflict(
                    f"queue {queue.name} exists with other arguments than {queue.arguments}: {exc}"
                ) from None
        for binding in wanted.bindings:
            channel.queue_bind(binding.queue, binding.exchange, binding.routing_key)
    return wanted


def vhost_of(amqp_uri: str) -> str:
    path = urlsplit(amqp_uri).path
    return unquote(path[1:]) if len(path) > 1 else "/"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.topology",
        description="Declare the ERP integration's exchanges, queues and bindings on a running "
        "broker (the vhost of the AMQP URI, which must exist).",
    )
    parser.add_argument("--amqp-uri", required=True, help="amqp://user:password@host:5672/vhost")
    parser.add_argument(
        "--retry-delays",
        default=",".join(f"{delay:g}" for delay in RETRY_DELAYS),
        help="the services' EVENT_RETRY_DELAYS, seconds (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    try:
        delays = tuple(float(part) for part in args.retry_delays.split(",") if part.strip())
    except ValueError:
        parser.error(f"--retry-delays: {args.retry_delays!r} is not a list of seconds")
    try:
        applied = apply(args.amqp_uri, topology(delays))
    except TopologyConflict as exc:
        print(
            f"The topology cannot be applied: {exc}. Delete that object (its messages go with "
            "it) or move them elsewhere first.",
            file=sys.stderr,
        )
        return 1
    except BrokerUnavailable as exc:
        print(f"The broker refused or did not answer ({exc}).", file=sys.stderr)
        return 1
    print(
        f"vhost {vhost_of(args.amqp_uri)!r}: {len(applied.exchanges)} exchanges, "
        f"{len(applied.queues)} quorum queues and {len(applied.bindings)} bindings in place"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
