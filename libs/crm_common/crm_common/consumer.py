"""The one way a service handles events: envelope check, inbox, retries, dead letters.

::

    class SalesService(kit.ServiceKit):
        name = "sales"
        db = Database(Base)
        inbox_model = InboxEvent

        @event_handler("customer", "customer_created")
        def on_customer_created(self, event: ReceivedEvent) -> None:
            with self.db.session() as session:
                if not event.first_delivery(session):
                    return  # applied before: a redelivery has no second effect
                ...

The handler ``sales.on_customer_created`` consumes the quorum queue of the same name, bound to
``customer.events`` with the event type as routing key. Its inbox mark commits with its own
changes; a handler that returns without asking ``event.first_delivery`` is a bug, and its
message goes straight to the dead letters so that the omission shows.

A handler that raises is retried after each of ``EVENT_RETRY_DELAYS`` (seconds, default
``1,10,60``): the message waits in the service's ``<service>.retry.<ms>ms``, a quorum queue
whose message TTL sends it back to the handler's queue (``crm_common.retries``), so nothing
sleeps in the worker and the queue moves on. After the last retry, or at once for a malformed
envelope, a major version the handler does not know, or data the handler refuses as invalid
(it raised marshmallow's ``ValidationError`` or ``crm_common.errors.ValidationFailed``:
retrying cannot make such data apply), it goes to ``<service>.dead-letters`` (see
``crm_common.dead_letters``) with the field-level reasons in its ``x-error`` header.
The handler's queue is declared with ``x-queue-type: quorum`` and nothing else, so it agrees
with the same queue declared beforehand by deployment topology; it is bound to the source's
events and, by its own name, to ``<service>.retried``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar, cast

from kombu.connection import Connection
from kombu.message import Message
from marshmallow import ValidationError
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.exceptions import ConfigurationError, ContainerBeingKilled
from nameko.messaging import Consumer, QueueConsumer
from nameko.standalone.events import get_event_exchange
from sqlalchemy.orm import Session

from crm_common import metrics
from crm_common.dead_letters import (
    ATTEMPTS_HEADER,
    ERROR_HEADER,
    confirmed_publisher,
    dead_letter_headers,
    dead_letter_queue,
    forward,
    kept_headers,
)
from crm_common.errors import ValidationFailed, flat_field_errors
from crm_common.events import EnvelopeSchema, major_version
from crm_common.inbox import first_delivery
from crm_common.loading import SchemaLoader
from crm_common.models import InboxMixin
from crm_common.retries import handler_queue, retry_queue

log = logging.getLogger(__name__)

DEFAULT_RETRY_DELAYS = "1,10,60"
CONTEXT_PREFIX = "nameko."

F = TypeVar("F", bound=Callable[..., Any])


def retry_delays(config: dict[str, Any]) -> tuple[float, ...]:
    """``EVENT_RETRY_DELAYS`` as seconds: ``"1,10,60"`` or a list; empty means no retries."""
    value = config.get("EVENT_RETRY_DELAYS", DEFAULT_RETRY_DELAYS)
    parts = value.split(",") if isinstance(value, str) else list(value)
    delays = tuple(float(part) for part in parts if str(part).strip())
    if any(delay < 0 for delay in delays):
        raise ConfigurationError(f"EVENT_RETRY_DELAYS must not be negative: {value!r}")
    return delays


class MalformedEvent(Exception):
    """The message is no envelope this handler can read; retrying cannot help."""


def never_applies(exc: BaseException) -> str | None:
    """The field-level reasons when ``exc`` says the event's data can never apply (the
    handler's schema or rules refused it); None for a failure a retry may cure."""
    if isinstance(exc, ValidationError):
        reasons = flat_field_errors(exc.messages)
    elif isinstance(exc, ValidationFailed):
        reasons = exc.field_errors or {"": [exc.message]}
    else:
        return None
    detail = "; ".join(
        f"{name}: {', '.join(map(str, why))}" if name else ", ".join(map(str, why))
        for name, why in reasons.items()
    )
    return f"{type(exc).__name__}: {detail}"


@dataclass
class ReceivedEvent:
    """What a handler gets: the envelope as received, and the inbox check of its transaction."""

    envelope: dict[str, Any]
    handler: str
    inbox_model: type[InboxMixin]
    inbox_checked: bool = field(default=False, init=False)
    duplicate: bool = field(default=False, init=False)

    @property
    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = self.envelope["data"]
        return data

    @property
    def event_id(self) -> str:
        return str(self.envelope["event_id"])

    @property
    def type(self) -> str:
        return str(self.envelope["type"])

    @property
    def source(self) -> str:
        return str(self.envelope["source"])

    @property
    def actor_id(self) -> str | None:
        actor = self.envelope.get("actor_id")
        return None if actor is None else str(actor)

    def first_delivery(self, session: Session) -> bool:
        """Mark the event handled in ``session``'s transaction; False if it was already."""
        self.inbox_checked = True
        self.duplicate = not first_delivery(session, self.inbox_model, self.envelope, self.handler)
        return not self.duplicate


ENVELOPE = SchemaLoader(EnvelopeSchema())
"""One loader for every message: making a schema costs twice what loading with it does."""


def read_envelope(body: Any, major: int) -> dict[str, Any]:
    """The envelope in ``body`` if it is one of ``major`` (any minor); else ``MalformedEvent``."""
    if not isinstance(body, dict):
        raise MalformedEvent(f"the message is not a JSON object but {type(body).__name__}")
    try:
        ENVELOPE.load(body)
    except ValidationError as exc:
        raise MalformedEvent(f"not an event envelope: {exc.messages}") from None
    if major_version(body["version"]) != major:
        raise MalformedEvent(
            f"version {body['version']} is not understood; this handler reads {major}.x"
        )
    return body


class EventQueueConsumer(QueueConsumer):
    """Nameko's queue consumer, but a message that cannot even be decoded is dead-lettered
    instead of stopping the consumer."""

    def get_consumers(self, consumer_cls: Any, channel: Any) -> Any:
        for provider in self._providers:
            consumer = consumer_cls(
                queues=[provider.queue],
                callbacks=[partial(self.handle_message, provider)],
                accept=self.accept,
                on_decode_error=partial(self._undecodable, provider),
            )
            prefetch = getattr(provider, "prefetch_count", None) or self.prefetch_count
            consumer.qos(prefetch_count=prefetch)
            self._consumers[provider] = consumer
        return self._consumers.values()

    def _undecodable(self, provider: EventConsumer, message: Message, exc: Exception) -> None:
        error = f"the message cannot be decoded: {type(exc).__name__}: {exc}"
        self.container.spawn_managed_thread(
            partial(provider.dead_letter, message, "malformed", error, None, 0)
        )


class EventConsumer(Consumer):
    queue_consumer = EventQueueConsumer()

    def __init__(self, source_service: str, event_type: str, version: int = 1) -> None:
        self.source_service = source_service
        self.event_type = event_type
        self.major = version
        super().__init__(queue=None)

    def setup(self) -> None:
        config = self.container.config
        service = self.container.service_name
        self.handler = f"{service}.{self.method_name}"
        inbox_model = getattr(self.container.service_cls, "inbox_model", None)
        if inbox_model is None:
            raise ConfigurationError(f"{service} handles events but declares no inbox_model")
        self.inbox_model: type[InboxMixin] = inbox_model
        self.delays = retry_delays(config)
        self.queue = handler_queue(
            service,
            self.handler,
            get_event_exchange(self.source_service, config),
            self.event_type,
        )
        self.retry_queues = [retry_queue(service, delay) for delay in self.delays]
        self.dead_letters = dead_letter_queue(service)
        with Connection(config[AMQP_URI_CONFIG_KEY]) as connection:
            channel = connection.channel()
            for queue in (*self.retry_queues, self.dead_letters):
                queue(channel).declare()
        self.publisher = confirmed_publisher(config[AMQP_URI_CONFIG_KEY])
        super().setup()

    def handle_message(self, body: Any, message: Message) -> None:
        try:
            envelope = read_envelope(body, self.major)
        except MalformedEvent as exc:
            self.dead_letter(message, "malformed", str(exc), body, 0)
            return
        event = ReceivedEvent(envelope, self.handler, self.inbox_model)
        context_data = {
            key[len(CONTEXT_PREFIX) :]: value
            for key, value in (message.headers or {}).items()
            if key.startswith(CONTEXT_PREFIX)
        }
        try:
            self.container.spawn_worker(
                self,
                (event,),
                {},
                context_data=context_data,
                handle_result=partial(self.handle_result, message, event),
            )
        except ContainerBeingKilled:
            self.queue_consumer.requeue_message(message)

    def handle_result(
        self,
        message: Message,
        event: ReceivedEvent,
        worker_ctx: Any,
        result: Any = None,
        exc_info: Any = None,
    ) -> tuple[Any, Any]:
        try:
            self._settle_result(message, event, exc_info)
        except Exception as exc:  # the connection is gone: the broker delivers it again
            log.warning("a message of %s is left to the broker: %r", self.handler, exc)
        return result, exc_info

    def _settle_result(self, message: Message, event: ReceivedEvent, exc_info: Any) -> None:
        labels = (self.container.service_name, self.handler, event.type)
        attempts = int((message.headers or {}).get(ATTEMPTS_HEADER, 0)) + 1
        if exc_info is not None:
            self.retry_or_dead_letter(message, event, exc_info[1], attempts)
        elif not event.inbox_checked:
            error = "the handler returned without calling event.first_delivery(session)"
            self.dead_letter(message, "inbox_unchecked", error, event.envelope, attempts)
        else:
            outcome = "duplicate" if event.duplicate else "applied"
            metrics.EVENTS_CONSUMED.labels(*labels, outcome).inc()
            self.queue_consumer.ack_message(message)

    def retry_or_dead_letter(
        self, message: Message, event: ReceivedEvent, exc: BaseException, attempts: int
    ) -> None:
        invalid = never_applies(exc)
        if invalid is not None:
            self.dead_letter(message, "invalid", invalid, event.envelope, attempts)
            return
        error = f"{type(exc).__name__}: {exc}"
        if attempts > len(self.retry_queues):
            self.dead_letter(message, "failed", error, event.envelope, attempts)
            return
        headers = {**kept_headers(message), ATTEMPTS_HEADER: attempts, ERROR_HEADER: error[:2000]}
        self._settle(message, headers, exchange=self.retry_queues[attempts - 1].name)
        metrics.EVENTS_RETRIED.labels(self.container.service_name, self.handler, event.type).inc()

    def dead_letter(
        self, message: Message, reason: str, error: str, body: Any, attempts: int
    ) -> None:
        envelope = body if isinstance(body, dict) else None
        headers = dead_letter_headers(
            message,
            reason=reason,
            error=error,
            handler=self.handler,
            queue=self.handler,
            attempts=attempts,
            envelope=envelope,
        )
        log.error("dead-lettering a message of %s (%s): %s", self.handler, reason, error)
        self._settle(message, headers, queue=self.dead_letters.name)
        event_type = str((envelope or {}).get("type") or self.event_type)
        metrics.EVENTS_DEAD_LETTERED.labels(
            self.container.service_name, self.handler, event_type
        ).inc()

    def _settle(
        self, message: Message, headers: dict[str, Any], *, queue: str = "", exchange: str = ""
    ) -> None:
        """Move ``message`` to ``queue``, or to the retry ``exchange`` with this handler's
        queue as routing key: acknowledged only once the copy is confirmed."""
        try:
            if exchange:
                forward(self.publisher, message, self.handler, headers, exchange=exchange)
            else:
                forward(self.publisher, message, queue, headers)
        except Exception as exc:  # the broker is away: let it deliver the message again
            where = exchange or queue
            log.warning("could not move a message of %s to %s: %s", self.handler, where, exc)
            self.queue_consumer.requeue_message(message)
            return
        self.queue_consumer.ack_message(message)


def event_handler(source_service: str, event_type: str, *, version: int = 1) -> Callable[[F], F]:
    """Handle ``event_type`` events of ``source_service`` whose major version is ``version``."""
    decorator = EventConsumer.decorator(source_service, event_type, version=version)
    return cast(Callable[[F], F], decorator)
