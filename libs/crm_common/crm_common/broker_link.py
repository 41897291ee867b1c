"""One kept AMQP connection for a process's RPC messages, published without confirms.

Nameko publishes every RPC request and reply through kombu's pools: a connection object built
per message, a pooled producer acquired and released, the broker's confirm awaited. For RPC
the confirm protects nothing a caller would notice: a request or a reply lost with its
connection is a timeout for the caller either way, and the caller's deadline bounds it. What
must not be lost (the outbox's events, dead letters) keeps its confirms elsewhere.

``BrokerLink`` keeps one connection and one channel for the process:

* :meth:`BrokerLink.publish` writes a message at once, one writer at a time, opening the
  connection first when there is none. It keeps to the caller's deadline: a broker that
  cannot be reached, or takes the connection but answers nothing, is ``LinkDown`` by then.
  A connection that failed or timed out is dropped without the AMQP closing handshake, which
  a silent broker would never answer, and the next publish opens another one;
* a green thread of its own reads the connection: deliveries to the consumers ``on_connect``
  set up, messages the broker hands back (published ``mandatory`` with no queue bound to take
  them) to ``on_return``, and the broker's heartbeats. When the connection ends it is dropped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from functools import partial
from typing import Any

import eventlet
from amqp import Message, spec
from amqp.exceptions import AMQPError
from eventlet.greenthread import GreenThread
from eventlet.semaphore import Semaphore
from kombu.connection import Connection
from kombu.exceptions import KombuError

_log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 2.0
RETRY_INTERVALS = (0.1, 0.3)
"""Pauses before the second and third tries of a publish whose connection failed: a caller
learns of an outage within about a second."""
TRANSIENT = 1
"""AMQP delivery mode of RPC messages: kept in memory, not written to disk by the broker."""

BROKER_ERRORS = (OSError, AMQPError, KombuError)
PUBLISH_ARGUMENTS = "Bssbb"
"""basic.publish's argument signature: ticket, exchange, routing key, mandatory, immediate."""


class LinkDown(Exception):
    """The broker could not be reached, or did not take the message before the deadline."""


class BrokerLink:
    """The connection, its channel, and the green thread reading it (see the module)."""

    def __init__(
        self,
        amqp_uri: str,
        *,
        ssl: Any = None,
        login_method: str | None = None,
        heartbeat: float = 60,
        on_connect: Callable[[Any], None] | None = None,
        on_return: Callable[[Message], None] | None = None,
        spawn: Callable[..., GreenThread] = eventlet.spawn,
        retry_intervals: Sequence[float] = RETRY_INTERVALS,
    ) -> None:
        self.amqp_uri = amqp_uri
        self.ssl = ssl
        self.login_method = login_method
        self.heartbeat = heartbeat
        self.on_connect = on_connect
        self.on_return = on_return
        self.spawn = spawn
        self.retry_intervals = tuple(retry_intervals)
        self._writer = Semaphore(1)
        self._connection: Connection | None = None
        self._channel: Any = None
        self._reader: GreenThread | None = None

    @property
    def connected(self) -> bool:
        return self._channel is not None

    def publish(
        self,
        message: Message,
        exchange: str,
        routing_key: str,
        *,
        deadline: float,
        mandatory: bool = False,
    ) -> None:
        """Write ``message`` by ``deadline`` (``time.monotonic()``); ``LinkDown`` otherwise."""
        pauses = iter(self.retry_intervals)
        while True:
            try:
                self._publish_once(message, exchange, routing_key, deadline, mandatory)
                return
            except BROKER_ERRORS as exc:
                pause = next(pauses, None)
                if pause is None or time.monotonic() + pause >= deadline:
                    _log.warning("cannot publish to the message broker: %r", exc)
                    raise LinkDown("the message broker cannot be reached") from None
                eventlet.sleep(pause)

    def _publish_once(
        self, message: Message, exchange: str, routing_key: str, deadline: float, mandatory: bool
    ) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not self._writer.acquire(timeout=remaining):
            raise LinkDown("the message broker did not take the message in time")
        timer = eventlet.Timeout(max(deadline - time.monotonic(), 0.001))
        try:
            channel = self._channel if self._channel is not None else self._connect()
            # py-amqp's basic_publish first reads the socket for a blocked-connection notice:
            # that is the reader's socket, so the method is sent as is (the reader hears it).
            channel.send_method(
                spec.Basic.Publish,
                PUBLISH_ARGUMENTS,
                (0, exchange, routing_key, mandatory, False),
                message,
            )
        except eventlet.Timeout as exc:
            if exc is not timer:
                raise
            self.drop()
            raise LinkDown("the message broker did not take the message in time") from None
        except BROKER_ERRORS:
            self.drop()
            raise
        finally:
            timer.cancel()
            self._writer.release()

    def _connect(self) -> Any:
        """Open the connection and channel, set up the consumers, start reading (the writer
        holds the lock; nothing reads the connection until it is set up)."""
        connection = Connection(
            self.amqp_uri,
            ssl=self.ssl,
            login_method=self.login_method,
            heartbeat=self.heartbeat,
            connect_timeout=CONNECT_TIMEOUT,
        )
        try:
            connection.ensure_connection(max_retries=0, reraise_as_library_errors=False)
            channel = connection.channel()
            if self.on_return is not None:
                channel.events["basic_return"].add(self._returned)
            if self.on_connect is not None:
                self.on_connect(channel)
        except BaseException:
            connection.collect()
            raise
        self._connection, self._channel = connection, channel
        self._reader = self.spawn(partial(self._read, connection))
        return channel

    def _returned(self, exc: Exception, exchange: str, routing_key: str, message: Message) -> None:
        if self.on_return is not None:
            self.on_return(message)

    def _read(self, connection: Connection) -> None:
        """Read the connection until it ends; never raises (a Nameko managed thread that
        raised would kill its container)."""
        amqp_connection = connection.connection
        interval = max(self.heartbeat / 4, 1.0) if self.heartbeat else None
        ticked = time.monotonic()
        try:
            while True:
                with suppress(TimeoutError):
                    amqp_connection.drain_events(timeout=interval)
                if interval is not None and time.monotonic() - ticked >= interval:
                    with self._writer:
                        amqp_connection.heartbeat_tick()
                    ticked = time.monotonic()
        except Exception as exc:
            if self._connection is connection:
                _log.warning("the connection to the message broker ended: %r", exc)
        finally:
            if self._connection is connection:
                self._reader = None
                self.drop()

    def drop(self) -> None:
        """Forget the connection and close its socket, without the closing handshake."""
        connection, reader = self._connection, self._reader
        self._connection = self._channel = self._reader = None
        if reader is not None and reader is not eventlet.getcurrent():
            reader.kill()
        if connection is not None:
            try:
                connection.collect()
            except Exception as exc:
                _log.debug("closing a dropped broker connection: %r", exc)

    def close(self, timeout: float = 1.0) -> None:
        """Close the connection politely if the broker answers within ``timeout``."""
        connection, reader = self._connection, self._reader
        self._connection = self._channel = self._reader = None
        if reader is not None and reader is not eventlet.getcurrent():
            reader.kill()
        if connection is None:
            return
        with eventlet.Timeout(timeout, False):
            try:
                connection.release()
                return
            except (TimeoutError, *BROKER_ERRORS):
                pass
        connection.collect()
