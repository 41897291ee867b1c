"""Where a service's failed events wait before their next try: one delay queue per retry delay
per service, shared by all of the service's handlers.

A handler's message that failed is published to the fanout exchange ``<service>.retry.<ms>ms``
with the handler's queue name as routing key. That exchange's one quorum queue, of the same
name, holds it ``ms`` milliseconds (its message TTL; every message in it waits as long, so the
oldest always expires first) and then dead-letters it, routing key kept, to the direct exchange
``<service>.retried``, to which each handler's queue is bound by its own name: the message
comes back to the handler that failed it and to no other.

A service thus has as many retry queues as retry delays (three by default), not three per
handler: quorum queues are Raft groups, each with its own process and log, and a broker pays
for every one of them when a virtual host is created, recovered or deleted.
"""

from __future__ import annotations

from kombu.entity import Exchange, Queue, binding

from crm_common.dead_letters import quorum_queue


def milliseconds(delay: float) -> int:
    return round(delay * 1000)


def retry_queue_name(service: str, delay: float) -> str:
    """The name of both the exchange and the queue where ``service``'s events wait ``delay``
    seconds."""
    return f"{service}.retry.{milliseconds(delay)}ms"


def retried_exchange_name(service: str) -> str:
    return f"{service}.retried"


def retried_exchange(service: str) -> Exchange:
    """Where waited messages come back from, routed by their handler's queue name."""
    return Exchange(retried_exchange_name(service), type="direct", durable=True)


def retry_queue_arguments(service: str, delay: float) -> dict[str, object]:
    """The delay queue's arguments beyond its type (quorum)."""
    return {
        "x-message-ttl": milliseconds(delay),
        "x-dead-letter-exchange": retried_exchange_name(service),
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


def retry_queue(service: str, delay: float) -> Queue:
    """The delay queue, bound to its fanout exchange (declaring it declares both)."""
    name = retry_queue_name(service, delay)
    return quorum_queue(
        name,
        exchange=Exchange(name, type="fanout", durable=True),
        arguments=retry_queue_arguments(service, delay),
    )


def handler_queue(
    service: str, handler_queue_name: str, source: Exchange, routing_key: str
) -> Queue:
    """A handler's quorum queue: bound to the events it handles and to its retries' return."""
    return quorum_queue(
        handler_queue_name,
        bindings=[
            binding(source, routing_key=routing_key),
            binding(retried_exchange(service), routing_key=handler_queue_name),
        ],
    )
