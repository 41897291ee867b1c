"""Dead letters: the events a service's handlers gave up on, kept in ``<service>.dead-letters``.

The consumer moves a message here after its last retry (or at once when its envelope is
malformed) with the reason in ``x-`` headers. Operators list, inspect, replay and discard them
through the kit's RPCs (permission ``system:admin``) or, with broker credentials, the CLI::

    python -m crm_common.dead_letters --amqp-uri URI --service NAME list
    python -m crm_common.dead_letters --amqp-uri URI --service NAME show|replay|discard ID

Replay sends the message back to its handler's queue with fresh retries; the handler's inbox
makes a replay of an already applied event harmless. The queue is read by taking every message
unacknowledged and returning the ones not acted on, so two operators browsing at the same
moment each see only part of it. On RabbitMQ 4, whose quorum queues count such returns
against a delivery limit of 20 by default, give ``*.dead-letters`` a policy with
``delivery-limit: -1``.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from amqp.exceptions import NotFound as QueueNotFound
from kombu.connection import Connection
from kombu.entity import Queue
from kombu.message import Message
from marshmallow import fields
from nameko.amqp.publish import Publisher
from nameko.constants import AMQP_URI_CONFIG_KEY, PERSISTENT
from nameko.extensions import DependencyProvider

from crm_common.errors import NotFound, ValidationFailed
from crm_common.models import utcnow
from crm_common.pagination import page_size
from crm_common.schemas import StrictSchema, load

ID_HEADER = "x-dead-letter-id"
REASON_HEADER = "x-dead-letter-reason"
AT_HEADER = "x-dead-lettered-at"
ERROR_HEADER = "x-error"
HANDLER_HEADER = "x-handler"
ATTEMPTS_HEADER = "x-attempts"
QUEUE_HEADER = "x-queue"
EVENT_TYPE_HEADER = "x-event-type"
EVENT_ID_HEADER = "x-event-id"
SOURCE_HEADER = "x-source"
MAX_BROWSED = 10_000


def quorum_queue(name: str, **options: Any) -> Queue:
    """A durable quorum queue; ``arguments`` adds queue arguments beyond the type."""
    arguments = {"x-queue-type": "quorum", **options.pop("arguments", {})}
    return Queue(name, durable=True, queue_arguments=arguments, **options)


def dead_letter_queue(service: str) -> Queue:
    return quorum_queue(f"{service}.dead-letters")


def confirmed_publisher(amqp_uri: str) -> Publisher:
    """Publishes persistent messages, waits for the broker's confirm, and raises when a message
    reaches no queue, so a forwarded message is only acknowledged once it sits elsewhere."""
    return Publisher(
        amqp_uri, use_confirms=True, mandatory=True, delivery_mode=PERSISTENT, retry=False
    )


def kept_headers(message: Message) -> dict[str, Any]:
    """The headers a forwarded copy keeps: the caller's (``nameko.*``), not the broker's or
    this module's bookkeeping (``x-*``)."""
    return {k: v for k, v in (message.headers or {}).items() if not k.startswith("x-")}


def forward(
    publisher: Publisher,
    message: Message,
    routing_key: str,
    headers: dict[str, Any],
    *,
    exchange: str = "",
) -> None:
    """Publish ``message``'s body unchanged to ``exchange`` with ``routing_key``: by default
    to the queue of that name through the default exchange."""
    publisher.publish(
        message.body,
        exchange=exchange,
        routing_key=routing_key,
        headers=headers,
        content_type=message.content_type or "application/octet-stream",
        content_encoding=message.content_encoding or "binary",
    )


def dead_letter_headers(
    message: Message,
    *,
    reason: str,
    error: str,
    handler: str,
    queue: str,
    attempts: int,
    envelope: dict[str, Any] | None,
) -> dict[str, Any]:
    envelope = envelope or {}
    return {
        **kept_headers(message),
        ID_HEADER: uuid.uuid4().hex,
        REASON_HEADER: reason,
        AT_HEADER: utcnow().isoformat(),
        ERROR_HEADER: error[:2000],
        HANDLER_HEADER: handler,
        QUEUE_HEADER: queue,
        ATTEMPTS_HEADER: attempts,
        EVENT_TYPE_HEADER: str(envelope.get("type") or message.delivery_info.get("routing_key")),
        EVENT_ID_HEADER: str(envelope.get("event_id") or ""),
        SOURCE_HEADER: str(envelope.get("source") or ""),
    }


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


class DeadLetterQuerySchema(StrictSchema):
    handler = fields.String()
    event_type = fields.String()
    limit = fields.Integer()
    cursor = fields.String()


class DeadLetterQueue:
    """The dead letters of one service, read and settled over AMQP."""

    def __init__(self, amqp_uri: str, service: str) -> None:
        self.amqp_uri = amqp_uri
        self.service = service

    def summary(self, message: Message) -> dict[str, Any]:
        headers = message.headers or {}
        return {
            "id": str(headers.get(ID_HEADER, "")),
            "service": self.service,
            "handler": headers.get(HANDLER_HEADER),
            "event_type": headers.get(EVENT_TYPE_HEADER),
            "event_id": headers.get(EVENT_ID_HEADER) or None,
            "source": headers.get(SOURCE_HEADER) or None,
            "reason": headers.get(REASON_HEADER),
            "error": headers.get(ERROR_HEADER),
            "attempts": headers.get(ATTEMPTS_HEADER, 0),
            "dead_lettered_at": headers.get(AT_HEADER),
        }

    def details(self, message: Message) -> dict[str, Any]:
        body = message.body or b""
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
        try:
            envelope = json.loads(text)
        except ValueError:
            envelope = None
        return {
            **self.summary(message),
            "envelope": envelope,
            "payload": text,
            "content_type": message.content_type,
            "headers": _json_safe(message.headers or {}),
        }

    @contextmanager
    def _browse(self) -> Iterator[list[Message]]:
        """Every dead letter, held unacknowledged; those not acknowledged go back on exit."""
        with Connection(self.amqp_uri) as connection:
            channel = connection.channel()
            queue = dead_letter_queue(self.service)(channel)
            try:
                queue.queue_declare(passive=True)
            except QueueNotFound:  # no handler of this service ever ran: nothing dead-lettered
                yield []
                return
            held: list[Message] = []
            try:
                while len(held) < MAX_BROWSED:
                    message = queue.get(no_ack=False)
                    if message is None:
                        break
                    held.append(message)
                held.sort(
                    key=lambda m: (str(m.headers.get(AT_HEADER)), str(m.headers.get(ID_HEADER)))
                )
                yield held
            finally:
                for message in held:
                    if not message.acknowledged:
                        message.requeue()

    def list(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        criteria = load(DeadLetterQuerySchema(), query)
        size = page_size(criteria.get("limit"))
        after = _decode_cursor(criteria["cursor"]) if criteria.get("cursor") else None
        with self._browse() as held:
            items = [self.summary(message) for message in held]
        items = [
            item
            for item in items
            if criteria.get("handler") in (None, item["handler"])
            and criteria.get("event_type") in (None, item["event_type"])
            and (after is None or (str(item["dead_lettered_at"]), item["id"]) > after)
        ]
        page = items[:size]
        next_cursor = _encode_cursor(page[-1]) if len(items) > size else None
        return {"items": page, "next_cursor": next_cursor}

    @contextmanager
    def _one(self, dead_letter_id: str) -> Iterator[Message]:
        with self._browse() as held:
            for message in held:
                if str(message.headers.get(ID_HEADER)) == dead_letter_id:
                    yield message
                    return
        raise NotFound.of("dead letter", dead_letter_id)

    def get(self, dead_letter_id: str) -> dict[str, Any]:
        with self._one(dead_letter_id) as message:
            return self.details(message)

    def replay(self, dead_letter_id: str) -> dict[str, Any]:
        """Back to the handler's queue with fresh retries; acknowledged once the broker has it."""
        with self._one(dead_letter_id) as message:
            item = self.summary(message)
            queue = message.headers.get(QUEUE_HEADER)
            if not queue:
                raise ValidationFailed.on("id", "this dead letter does not name its queue")
            forward(confirmed_publisher(self.amqp_uri), message, str(queue), kept_headers(message))
            message.ack()
        return {**item, "replayed_to": queue}

    def discard(self, dead_letter_id: str) -> dict[str, Any]:
        with self._one(dead_letter_id) as message:
            item = self.summary(message)
            message.ack()
        return {**item, "discarded": True}


def _encode_cursor(item: dict[str, Any]) -> str:
    raw = json.dumps([str(item["dead_lettered_at"]), item["id"]]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        at, identifier = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return str(at), str(identifier)
    except (ValueError, TypeError):
        raise ValidationFailed.on("cursor", "is not a cursor this list gave out") from None


class DeadLetters(DependencyProvider):
    """Gives a worker the ``DeadLetterQueue`` of its own service."""

    def setup(self) -> None:
        self.queue = DeadLetterQueue(
            self.container.config[AMQP_URI_CONFIG_KEY], self.container.service_name
        )

    def get_dependency(self, worker_ctx: Any) -> DeadLetterQueue:
        return self.queue


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m crm_common.dead_letters", description="Dead letters of one service."
    )
    parser.add_argument("--amqp-uri", required=True, help="amqp://user:password@host:5672/vhost")
    parser.add_argument("--service", required=True, help="the service whose queue to read")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="list dead letters, oldest first")
    listing.add_argument("--handler")
    listing.add_argument("--event-type")
    listing.add_argument("--limit", type=int)
    for name, what in (("show", "show one"), ("replay", "replay one"), ("discard", "drop one")):
        commands.add_parser(name, help=what).add_argument("id")
    args = parser.parse_args(argv)

    queue = DeadLetterQueue(args.amqp_uri, args.service)
    try:
        if args.command == "list":
            query = {"handler": args.handler, "event_type": args.event_type, "limit": args.limit}
            result: Any = queue.list({k: v for k, v in query.items() if v is not None})
        else:
            action = {"show": queue.get, "replay": queue.replay, "discard": queue.discard}
            result = action[args.command](args.id)
    except NotFound as exc:
        print(exc, file=sys.stderr)
        return 1
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
