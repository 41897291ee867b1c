"""RPC to the services within the request's deadline, through each service's bulkhead.

Nameko's in-service ``RpcProxy`` waits for a reply forever. ``ServiceRpc`` is the same
dependency with a deadline (``RPC_TIMEOUT`` seconds by default), counted from the arrival of
the HTTP request being handled (``gateway.limits.deadline_after``), so that the time the request
waited for a worker and its earlier calls count:

* the call takes a slot of the service's bulkhead (``gateway.limits.Bulkheads``) for as long as
  it is in flight; with none free it is refused at once: 503 with ``Retry-After``;
* the request is published with publisher confirms and ``mandatory``: no queue bound for the
  service -> ``Unavailable`` (503); a broker that cannot be reached, refuses the message, or
  takes a connection but never answers (a pooled connection awaited, a connection opened, a
  confirm awaited) -> ``Unavailable`` (503) by the deadline at the latest. The publish runs in
  a green thread of its own that the caller stops waiting for at the deadline: kombu closes a
  failed pooled connection politely (it awaits the broker's ``close-ok``) after the deadline
  has fired, which on a silent broker would hold the request for good. The abandoned publish
  finishes in the background and is killed when the gateway stops;
* the reply is awaited for what is left of the deadline; none by then -> ``UpstreamTimeout``
  (504), and the pending reply slot is dropped so a late answer is discarded;
* the request message expires in the queue at the deadline, so a call the caller has given up
  on is not carried out later by a service that was down or backed up when it was sent.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import eventlet
from amqp.exceptions import AMQPError
from eventlet.greenthread import GreenThread
from kombu.exceptions import EncodeError, KombuError
from nameko.amqp.publish import UndeliverableMessage
from nameko.exceptions import deserialize
from nameko.rpc import MethodProxy, RpcProxy, get_rpc_exchange

from crm_common.errors import Unavailable
from gateway import settings
from gateway.limits import Bulkhead, Bulkheads, deadline_after
from gateway.problems import UpstreamTimeout

_log = logging.getLogger(__name__)


FAIL_FAST_RETRY = {
    "max_retries": 2,
    "interval_start": 0.1,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
"""A lost broker connection is retried briefly: a request should learn of an outage in ~1 s."""


class ServiceRpc(RpcProxy):
    """``ServiceRpc("customer")`` injects a proxy whose calls fail fast instead of hanging;
    ``ServiceRpc()`` one that reaches any service through ``for_service(name)``."""

    bulkheads = Bulkheads()

    def __init__(
        self, target_service: str = "", timeout: float | None = None, **options: Any
    ) -> None:
        options.setdefault("retry_policy", dict(FAIL_FAST_RETRY))
        options.setdefault("transport_options", {**FAIL_FAST_RETRY, "connect_timeout": 2})
        super().__init__(target_service, **options)
        self.timeout = timeout
        self.stragglers: set[GreenThread] = set()

    def stop(self) -> None:
        self._kill_stragglers()
        super().stop()

    def kill(self) -> None:
        self._kill_stragglers()
        super().kill()

    def _kill_stragglers(self) -> None:
        """Stop the publishes whose callers gave up on them (a broker that went silent)."""
        while self.stragglers:
            self.stragglers.pop().kill()

    def get_dependency(self, worker_ctx: Any) -> TimedServiceProxy:
        timeout = self.timeout or settings.rpc_timeout(self.container.config)
        return TimedServiceProxy(
            worker_ctx,
            self.target_service,
            self.rpc_reply_listener,
            timeout,
            self.bulkheads,
            self.options,
            self.stragglers,
        )


class TimedServiceProxy:
    def __init__(
        self,
        worker_ctx: Any,
        service_name: str,
        reply_listener: Any,
        timeout: float,
        bulkheads: Bulkheads,
        options: dict[str, Any] | None = None,
        stragglers: set[GreenThread] | None = None,
    ) -> None:
        self.worker_ctx = worker_ctx
        self.service_name = service_name
        self.reply_listener = reply_listener
        self.timeout = timeout
        self.bulkheads = bulkheads
        self.stragglers = set() if stragglers is None else stragglers
        self.options = dict(options or {})

    def with_timeout(self, timeout: float) -> TimedServiceProxy:
        """The same proxy whose calls may take ``timeout`` seconds from the request's arrival."""
        return TimedServiceProxy(
            self.worker_ctx,
            self.service_name,
            self.reply_listener,
            timeout,
            self.bulkheads,
            self.options,
            self.stragglers,
        )

    def for_service(self, service_name: str) -> TimedServiceProxy:
        return TimedServiceProxy(
            self.worker_ctx,
            service_name,
            self.reply_listener,
            self.timeout,
            self.bulkheads,
            self.options,
            self.stragglers,
        )

    def __getattr__(self, method_name: str) -> TimedMethodProxy:
        if method_name.startswith("__"):
            raise AttributeError(method_name)
        return TimedMethodProxy(
            self.worker_ctx,
            self.service_name,
            method_name,
            self.reply_listener,
            timeout=self.timeout,
            bulkhead=self.bulkheads.of(self.service_name),
            stragglers=self.stragglers,
            **self.options,
        )


class TimedMethodProxy(MethodProxy):
    def __init__(
        self,
        *args: Any,
        timeout: float,
        bulkhead: Bulkhead,
        stragglers: set[GreenThread],
        **options: Any,
    ) -> None:
        super().__init__(*args, **options)
        self.timeout = timeout
        self.bulkhead = bulkhead
        self.stragglers = stragglers

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        deadline = deadline_after(self.timeout)
        if deadline <= time.monotonic():
            raise UpstreamTimeout(self.service_name, self.method_name, self.timeout)
        correlation_id = str(uuid.uuid4())
        with self.bulkhead.slot():
            reply_event = self.reply_listener.get_reply_event(correlation_id)
            try:
                self._publish_before(deadline, correlation_id, args, kwargs)
                body = self._reply_before(deadline, reply_event)
            finally:
                self.reply_listener._reply_events.pop(correlation_id, None)
        error = body.get("error")
        if error:
            raise deserialize(error)
        return body.get("result")

    def _publish_before(
        self, deadline: float, correlation_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        publishing = eventlet.spawn(
            self.publisher.publish,
            {"args": args, "kwargs": kwargs},
            expiration=max(deadline - time.monotonic(), 0.001),
            exchange=get_rpc_exchange(self.container.config),
            routing_key=f"{self.service_name}.{self.method_name}",
            mandatory=True,
            reply_to=self.reply_listener.routing_key,
            correlation_id=correlation_id,
            extra_headers=self.get_message_headers(self.worker_ctx),
        )
        timer = eventlet.Timeout(max(deadline - time.monotonic(), 0.001))
        try:
            publishing.wait()
        except eventlet.Timeout as exc:
            if exc is not timer:
                raise
            self._abandon(publishing)
            raise self._unavailable("the message broker did not take the call in time") from None
        except UndeliverableMessage:
            raise self._unavailable(f"the {self.service_name} service is not running") from None
        except EncodeError:
            raise
        except (KombuError, AMQPError, OSError) as exc:
            _log.warning("cannot publish %s: %s", self, exc)
            raise self._unavailable("the message broker cannot be reached") from None
        finally:
            timer.cancel()

    def _abandon(self, publishing: GreenThread) -> None:
        """Let a publish the caller gave up on end in the background (its connection's cleanup
        may wait on the broker); the service's proxy kills it at the latest when it stops."""
        self.stragglers.add(publishing)
        publishing.link(lambda thread: self.stragglers.discard(thread))

    def _reply_before(self, deadline: float, reply_event: Any) -> dict[str, Any]:
        remaining = deadline - time.monotonic()
        timer = eventlet.Timeout(max(remaining, 0.001))
        try:
            body: dict[str, Any] = reply_event.wait()
            return body
        except eventlet.Timeout as exc:
            if exc is not timer:
                raise
            _log.warning("no reply from %s within %ss", self, self.timeout)
            raise UpstreamTimeout(self.service_name, self.method_name, self.timeout) from None
        finally:
            timer.cancel()

    def _unavailable(self, detail: str) -> Unavailable:
        return Unavailable(detail, {"service": self.service_name})
