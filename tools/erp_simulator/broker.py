"""The simulated ERP on RabbitMQ, through pika, as any ERP integrator would write it from
``deploy/asyncapi.yaml``: events to ``erp.events`` (routing key = type, JSON, persistent,
``message_id`` = event id, mandatory, publisher confirms), order requests from
``erp.order-requests`` with manual acknowledgements. It declares nothing: the topology is the
deployment's (``make topology``)."""

from __future__ import annotations

import json
import logging
import signal
import time
from collections.abc import Iterable
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import ChannelClosedByBroker, NackError, UnroutableError

from tools.erp_simulator.respond import Responder, UnreadableRequest

ERP_EXCHANGE = "erp.events"
ERP_QUEUE = "erp.order-requests"
NOT_FOUND = 404

log = logging.getLogger("erp_simulator")


class NotDelivered(Exception):
    """The broker did not take a message: nothing is bound for it, or it refused it."""


def body_of(envelope: dict[str, Any]) -> bytes:
    return json.dumps(envelope, ensure_ascii=False).encode("utf-8")


def properties_of(envelope: dict[str, Any]) -> pika.BasicProperties:
    return pika.BasicProperties(
        content_type="application/json",
        content_encoding="utf-8",
        delivery_mode=pika.DeliveryMode.Persistent,
        message_id=envelope["event_id"],
        type=envelope["type"],
        timestamp=int(time.time()),
        app_id="erp-simulator",
    )


def connect(amqp_uri: str) -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.URLParameters(amqp_uri))


def confirmed_channel(connection: pika.BlockingConnection) -> BlockingChannel:
    channel = connection.channel()
    channel.confirm_delivery()
    return channel


def publish(channel: BlockingChannel, envelope: dict[str, Any]) -> None:
    """Publish one event and wait for the broker's confirm."""
    try:
        channel.basic_publish(
            exchange=ERP_EXCHANGE,
            routing_key=envelope["type"],
            body=body_of(envelope),
            properties=properties_of(envelope),
            mandatory=True,
        )
    except UnroutableError:
        raise NotDelivered(
            f"no queue is bound to {ERP_EXCHANGE} for {envelope['type']}: "
            "declare the topology first (make topology)"
        ) from None
    except NackError:
        raise NotDelivered(f"the broker refused event {envelope['event_id']}") from None


class StreamPublisher:
    """Publishes many events on one channel with publisher confirms, keeping up to ``window``
    of them unconfirmed at a time (waiting for each confirm in turn would make the broker's
    disk write per message the pace). Messages go out in order; the run fails on the first
    event the broker returns as unroutable or refuses."""

    def __init__(self, amqp_uri: str, envelopes: Iterable[dict[str, Any]], window: int) -> None:
        self.parameters = pika.URLParameters(amqp_uri)
        self.pending = iter(envelopes)
        self.window = window
        self.unconfirmed: dict[int, dict[str, Any]] = {}
        self.sent = 0
        self.exhausted = False
        self.failure: Exception | None = None

    def run(self) -> int:
        self.connection = pika.SelectConnection(
            self.parameters,
            on_open_callback=lambda connection: connection.channel(
                on_open_callback=self.on_channel
            ),
            on_open_error_callback=self.on_connection_error,
            on_close_callback=lambda connection, reason: connection.ioloop.stop(),
        )
        self.connection.ioloop.start()
        if self.failure is not None:
            raise self.failure
        return self.sent

    def on_connection_error(self, connection: Any, error: Exception) -> None:
        self.failure = error
        connection.ioloop.stop()

    def on_channel(self, channel: Any) -> None:
        self.channel = channel
        channel.add_on_close_callback(self.on_channel_closed)
        channel.add_on_return_callback(self.on_return)
        channel.confirm_delivery(self.on_confirm, callback=lambda _: self.fill())

    def on_channel_closed(self, channel: Any, reason: Exception) -> None:
        if self.failure is None and not (self.exhausted and not self.unconfirmed):
            self.failure = reason
            if isinstance(reason, ChannelClosedByBroker) and reason.reply_code == NOT_FOUND:
                self.failure = NotDelivered(f"{reason.reply_text}: declare the topology first")
        if self.connection.is_open:
            self.connection.close()

    def fill(self) -> None:
        while not self.exhausted and len(self.unconfirmed) < self.window:
            envelope = next(self.pending, None)
            if envelope is None:
                self.exhausted = True
                break
            self.channel.basic_publish(
                exchange=ERP_EXCHANGE,
                routing_key=envelope["type"],
                body=body_of(envelope),
                properties=properties_of(envelope),
                mandatory=True,
            )
            self.sent += 1
            self.unconfirmed[self.sent] = envelope
        if self.exhausted and not self.unconfirmed:
            self.channel.close()

    def on_return(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        self.fail(
            NotDelivered(
                f"no queue is bound to {ERP_EXCHANGE} for {method.routing_key}: "
                "declare the topology first (make topology)"
            )
        )

    def on_confirm(self, frame: Any) -> None:
        method = frame.method
        tags = (
            [tag for tag in self.unconfirmed if tag <= method.delivery_tag]
            if method.multiple
            else [method.delivery_tag]
        )
        if isinstance(method, pika.spec.Basic.Nack):
            self.fail(NotDelivered(f"the broker refused message {method.delivery_tag}"))
            return
        for tag in tags:
            self.unconfirmed.pop(tag, None)
        if self.failure is None:
            self.fill()

    def fail(self, failure: Exception) -> None:
        if self.failure is None:
            self.failure = failure
        if self.channel.is_open:
            self.channel.close()


def publish_all(amqp_uri: str, envelopes: Iterable[dict[str, Any]], window: int = 500) -> int:
    """Publish every event, in order, each confirmed by the broker; returns how many."""
    return StreamPublisher(amqp_uri, envelopes, window).run()


def respond(amqp_uri: str, responder: Responder, count: int | None = None) -> int:
    """Answer order requests until ``count`` have been handled, or until SIGTERM or SIGINT;
    returns how many were handled. A request is acknowledged once every answer to it is
    confirmed; an unreadable one is rejected, and the broker moves it to the dead letters."""
    connection = connect(amqp_uri)
    handled = 0
    try:
        channel = confirmed_channel(connection)
        channel.basic_qos(prefetch_count=10)

        def stop(*_: Any) -> None:
            channel.stop_consuming()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

        def on_request(
            channel: BlockingChannel,
            method: Any,
            properties: pika.BasicProperties,
            body: bytes,
        ) -> None:
            nonlocal handled
            try:
                answers = responder.answer(json.loads(body))
            except (ValueError, UnreadableRequest) as exc:
                log.warning("order request %s set aside: %s", properties.message_id, exc)
                channel.basic_reject(method.delivery_tag, requeue=False)
            else:
                for envelope in answers:
                    publish(channel, envelope)
                    log.info("answered with %s %s", envelope["type"], envelope["event_id"])
                channel.basic_ack(method.delivery_tag)
            handled += 1
            if count is not None and handled >= count:
                channel.stop_consuming()

        channel.basic_consume(ERP_QUEUE, on_request)
        channel.start_consuming()
    finally:
        if connection.is_open:
            connection.close()
    return handled
