"""RPC to the services within the request's deadline, through each service's bulkhead.

Nameko's in-service ``RpcProxy`` waits for a reply forever. ``ServiceRpc`` calls the same
services the same way (Nameko's RPC exchange, queues, headers and serialisation, so the
services' entrypoints answer it as any Nameko caller) with a deadline (``RPC_TIMEOUT``
seconds by default), counted from the arrival of the HTTP request being handled
(``gateway.limits.deadline_after``), so that the time the request waited for a worker and
its earlier calls count:

* the call takes a slot of the service's bulkhead (``gateway.limits.Bulkheads``) for as long as
  it is in flight; with none free it is refused at once: 503 with ``Retry-After``;
* the request is published on the gateway's one kept broker connection
  (``crm_common.broker_link``), ``mandatory`` and without publisher confirms: no queue bound
  for the service -> the broker hands the request back -> ``Unavailable`` (503), as soon as it
  does; a broker that cannot be reached, or takes a connection but answers nothing ->
  ``Unavailable`` (503) by the deadline at the latest;
* the reply comes on the same connection, to the gateway's reply queue (consumed without
  acknowledgements, handled as it is read); none by the deadline -> ``UpstreamTimeout`` (504),
  and the pending call is forgotten so a late answer is discarded. A request lost with a
  connection that broke after it was written ends the same way;
* the request message expires in the queue at the deadline, so a call the caller has given up
  on is not carried out later by a service that was down or backed up when it was sent.
"""

from __future__ import annotations

import logging
import time
import uuid
from functools import partial
from typing import Any

import eventlet
from amqp import Message
from eventlet.event import Event
from kombu import serialization
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY,
    AMQP_URI_CONFIG_KEY,
    DEFAULT_HEARTBEAT,
    DEFAULT_SERIALIZER,
    HEARTBEAT_CONFIG_KEY,
    LOGIN_METHOD_CONFIG_KEY,
    RPC_EXCHANGE_CONFIG_KEY,
    SERIALIZER_CONFIG_KEY,
)
from nameko.exceptions import deserialize
from nameko.extensions import DependencyProvider, SharedExtension
from nameko.messaging import HeaderEncoder
from nameko.rpc import RPC_REPLY_QUEUE_TEMPLATE, RPC_REPLY_QUEUE_TTL

from crm_common.broker_link import TRANSIENT, BrokerLink, LinkDown
from crm_common.errors import Unavailable
from gateway import settings
from gateway.limits import Bulkhead, Bulkheads, deadline_after
from gateway.problems import UpstreamTimeout

_log = logging.getLogger(__name__)

RETURNED = object()
"""What a pending call receives instead of a reply when the broker hands its request back."""


class RpcCalls:
    """The calls in flight from one gateway process, and the broker link they travel on."""

    def __init__(
        self,
        amqp_uri: str,
        *,
        caller: str = "gateway",
        exchange: str = "nameko-rpc",
        serializer: str = DEFAULT_SERIALIZER,
        **link_options: Any,
    ) -> None:
        self.exchange = exchange
        self.serializer = serializer
        self.accept = serialization.prepare_accept_content([serializer])
        self.reply_key = str(uuid.uuid4())
        self.reply_queue = RPC_REPLY_QUEUE_TEMPLATE.format(caller, self.reply_key)
        self.pending: dict[str, Event] = {}
        self.link = BrokerLink(
            amqp_uri, on_connect=self._declare, on_return=self._returned, **link_options
        )

    def _declare(self, channel: Any) -> None:
        """The RPC exchange and this process's reply queue, consumed without acks."""
        channel.exchange_declare(self.exchange, "topic", durable=True, auto_delete=False)
        channel.queue_declare(
            self.reply_queue,
            durable=True,
            auto_delete=False,
            arguments={"x-expires": RPC_REPLY_QUEUE_TTL},
        )
        channel.queue_bind(self.reply_queue, self.exchange, self.reply_key)
        channel.basic_consume(self.reply_queue, callback=self._replied, no_ack=True)

    def _replied(self, message: Message) -> None:
        waiting = self.pending.pop(message.properties.get("correlation_id"), None)
        if waiting is None:
            _log.debug("a reply came after its caller gave up")
            return
        try:
            body = serialization.loads(
                message.body,
                message.properties.get("content_type"),
                message.properties.get("content_encoding"),
                accept=self.accept,
            )
        except Exception as exc:
            waiting.send_exception(exc)
            return
        waiting.send(body)

    def _returned(self, message: Message) -> None:
        waiting = self.pending.pop(message.properties.get("correlation_id"), None)
        if waiting is not None:
            waiting.send(RETURNED)

    def call(
        self,
        service: str,
        method: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        headers: dict[str, Any],
        deadline: float,
        timeout: float,
    ) -> Any:
        """The result of ``service.method(*args, **kwargs)``, answered by ``deadline``."""
        content_type, encoding, body = serialization.dumps(
            {"args": args, "kwargs": kwargs}, self.serializer
        )
        correlation_id = str(uuid.uuid4())
        message = Message(
            body.encode(encoding) if isinstance(body, str) else body,
            content_type=content_type,
            content_encoding=encoding,
            application_headers=headers,
            delivery_mode=TRANSIENT,
            correlation_id=correlation_id,
            reply_to=self.reply_key,
            expiration=str(max(int((deadline - time.monotonic()) * 1000), 1)),
        )
        waiting = self.pending[correlation_id] = Event()
        try:
            self.link.publish(
                message, self.exchange, f"{service}.{method}", mandatory=True, deadline=deadline
            )
            reply = self._reply_before(waiting, deadline, service, method, timeout)
        except LinkDown as exc:
            raise Unavailable(str(exc), {"service": service}) from None
        finally:
            self.pending.pop(correlation_id, None)
        if reply is RETURNED:
            raise Unavailable(f"the {service} service is not running", {"service": service})
        error = reply.get("error")
        if error:
            raise deserialize(error)
        return reply.get("result")

    @staticmethod
    def _reply_before(
        waiting: Event, deadline: float, service: str, method: str, timeout: float
    ) -> Any:
        timer = eventlet.Timeout(max(deadline - time.monotonic(), 0.001))
        try:
            return waiting.wait()
        except eventlet.Timeout as exc:
            if exc is not timer:
                raise
            _log.warning("no reply from %s.%s within %ss", service, method, timeout)
            raise UpstreamTimeout(service, method, timeout) from None
        finally:
            timer.cancel()


class RpcConnection(SharedExtension):
    """The gateway process's :class:`RpcCalls`, shared by every ``ServiceRpc``."""

    calls: RpcCalls

    def setup(self) -> None:
        config = self.container.config
        self.calls = RpcCalls(
            config[AMQP_URI_CONFIG_KEY],
            caller=self.container.service_name,
            exchange=config.get(RPC_EXCHANGE_CONFIG_KEY, "nameko-rpc"),
            serializer=config.get(SERIALIZER_CONFIG_KEY, DEFAULT_SERIALIZER),
            ssl=config.get(AMQP_SSL_CONFIG_KEY),
            login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
            heartbeat=config.get(HEARTBEAT_CONFIG_KEY, DEFAULT_HEARTBEAT),
            spawn=partial(self.container.spawn_managed_thread, identifier="broker link reader"),
        )

    def stop(self) -> None:
        self.calls.link.close()

    def kill(self) -> None:
        self.calls.link.drop()


class ServiceRpc(DependencyProvider):
    """``ServiceRpc("customer")`` injects a proxy whose calls fail fast instead of hanging;
    ``ServiceRpc()`` one that reaches any service through ``for_service(name)``."""

    connection = RpcConnection()
    bulkheads = Bulkheads()

    def __init__(self, target_service: str = "", timeout: float | None = None) -> None:
        self.target_service = target_service
        self.timeout = timeout

    def get_dependency(self, worker_ctx: Any) -> TimedServiceProxy:
        timeout = self.timeout or settings.rpc_timeout(self.container.config)
        return TimedServiceProxy(
            worker_ctx, self.target_service, self.connection.calls, timeout, self.bulkheads
        )


class TimedServiceProxy:
    def __init__(
        self,
        worker_ctx: Any,
        service_name: str,
        calls: RpcCalls,
        timeout: float,
        bulkheads: Bulkheads,
    ) -> None:
        self.worker_ctx = worker_ctx
        self.service_name = service_name
        self.calls = calls
        self.timeout = timeout
        self.bulkheads = bulkheads

    def with_timeout(self, timeout: float) -> TimedServiceProxy:
        """The same proxy whose calls may take ``timeout`` seconds from the request's arrival."""
        return TimedServiceProxy(
            self.worker_ctx, self.service_name, self.calls, timeout, self.bulkheads
        )

    def for_service(self, service_name: str) -> TimedServiceProxy:
        return TimedServiceProxy(
            self.worker_ctx, service_name, self.calls, self.timeout, self.bulkheads
        )

    def __getattr__(self, method_name: str) -> TimedMethodProxy:
        if method_name.startswith("__"):
            raise AttributeError(method_name)
        return TimedMethodProxy(self, method_name, self.bulkheads.of(self.service_name))


class TimedMethodProxy(HeaderEncoder):
    def __init__(self, service: TimedServiceProxy, method_name: str, bulkhead: Bulkhead) -> None:
        self.service = service
        self.method_name = method_name
        self.bulkhead = bulkhead

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        service = self.service
        deadline = deadline_after(service.timeout)
        if deadline <= time.monotonic():
            raise UpstreamTimeout(service.service_name, self.method_name, service.timeout)
        with self.bulkhead.slot():
            return service.calls.call(
                service.service_name,
                self.method_name,
                args,
                kwargs,
                headers=self.get_message_headers(service.worker_ctx),
                deadline=deadline,
                timeout=service.timeout,
            )
