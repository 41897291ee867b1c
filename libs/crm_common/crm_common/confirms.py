"""Publishing a group of messages with publisher confirms, waiting once for all of them.

Waiting for the broker's confirm of each message before sending the next (what a publisher
with ``confirm_publish`` does) costs a round trip per message. ``ConfirmingPublisher`` keeps
one connection and channel in confirm mode, writes every message of a group, then reads the
broker's acknowledgements (``multiple`` ones included, in any order) until each message is
confirmed, refused, or the wait runs out. It says how many of the group, from the first, the
broker took: a caller marks exactly those as sent and keeps the rest for the next try.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from kombu.connection import Connection
from kombu.entity import Exchange
from nameko.constants import PERSISTENT

from crm_common.broker_link import BROKER_ERRORS

CONNECT_TIMEOUT_SECONDS = 5.0
CONFIRM_TIMEOUT_SECONDS = 10.0


class NotConfirmed(Exception):
    """The broker refused a message, or did not confirm it in time."""


@dataclass(frozen=True)
class Outgoing:
    """One message to publish: a JSON body, its routing key, headers and AMQP message id."""

    body: dict[str, Any]
    routing_key: str
    message_id: str | None = None
    headers: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Published:
    """How a group went: the first ``confirmed`` messages are the broker's; ``failure`` is why
    the next one is not (``None`` when all were confirmed)."""

    confirmed: int
    failure: BaseException | None = None


class ConfirmingPublisher:
    """Persistent JSON messages to one exchange over a kept connection in confirm mode. Not
    for concurrent use: one green thread publishes."""

    def __init__(
        self,
        amqp_uri: str,
        exchange: Exchange,
        *,
        confirm_timeout: float = CONFIRM_TIMEOUT_SECONDS,
    ) -> None:
        self.amqp_uri = amqp_uri
        self.exchange = exchange
        self.confirm_timeout = confirm_timeout
        self._connection: Connection | None = None
        self._channel: Any = None
        self._last_tag = 0
        self._unconfirmed: set[int] = set()
        self._refused: set[int] = set()

    def publish_all(self, messages: Sequence[Outgoing]) -> Published:
        """Publish ``messages`` in order and wait for their confirms; never raises for the
        broker's sake (a failure is in the result, and the connection is dropped)."""
        if not messages:
            return Published(0)
        try:
            channel = self._channel if self._channel is not None else self._open()
        except BROKER_ERRORS as exc:
            return Published(0, exc)
        first = self._last_tag + 1
        try:
            for message in messages:
                self._write(channel, message)
            self._await_confirms()
        except (NotConfirmed, *BROKER_ERRORS) as exc:
            self.drop()
            return Published(self._leading_confirmed(first, len(messages)), exc)
        return Published(len(messages))

    def _open(self) -> Any:
        connection = Connection(self.amqp_uri, connect_timeout=CONNECT_TIMEOUT_SECONDS)
        try:
            connection.ensure_connection(max_retries=0)
            channel = connection.channel()
            self.exchange(channel).declare()
            channel.confirm_select()
            channel.events["basic_ack"].add(self._acknowledged)
            channel.events["basic_nack"].add(self._refused_by_broker)
        except BaseException:
            connection.collect()
            raise
        self._connection, self._channel = connection, channel
        self._last_tag = 0
        self._unconfirmed.clear()
        self._refused.clear()
        return channel

    def _write(self, channel: Any, message: Outgoing) -> None:
        properties: dict[str, Any] = {"delivery_mode": PERSISTENT}
        if message.message_id is not None:
            properties["message_id"] = message.message_id
        prepared = channel.prepare_message(
            json.dumps(message.body, ensure_ascii=False).encode(),
            content_type="application/json",
            content_encoding="utf-8",
            headers=message.headers,
            properties=properties,
        )
        channel.basic_publish(
            prepared, exchange=self.exchange.name, routing_key=message.routing_key
        )
        self._last_tag += 1
        self._unconfirmed.add(self._last_tag)

    def _await_confirms(self) -> None:
        deadline = time.monotonic() + self.confirm_timeout
        assert self._connection is not None
        while self._unconfirmed:  # a refusal may come before earlier messages' confirms
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NotConfirmed(f"{len(self._unconfirmed)} messages not confirmed in time")
            with suppress(TimeoutError):
                self._connection.drain_events(timeout=remaining)
        if self._refused:
            raise NotConfirmed("the broker refused a message (basic.nack)")

    def _acknowledged(self, delivery_tag: int, multiple: bool) -> None:
        if multiple:
            self._unconfirmed = {tag for tag in self._unconfirmed if tag > delivery_tag}
        else:
            self._unconfirmed.discard(delivery_tag)

    def _refused_by_broker(self, delivery_tag: int, multiple: bool) -> None:
        if multiple:
            refused = {tag for tag in self._unconfirmed if tag <= delivery_tag}
        else:
            refused = {delivery_tag}
        self._refused |= refused
        self._unconfirmed -= refused

    def _leading_confirmed(self, first: int, count: int) -> int:
        """How many of the group's tags, from ``first``, were confirmed before a failure."""
        for index in range(count):
            tag = first + index
            if tag > self._last_tag or tag in self._unconfirmed or tag in self._refused:
                return index
        return count

    def drop(self) -> None:
        """Forget the connection, closing its socket without the AMQP closing handshake (a
        broker that went silent would never answer it)."""
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            with suppress(Exception):
                connection.collect()

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            with suppress(Exception):
                connection.release()
