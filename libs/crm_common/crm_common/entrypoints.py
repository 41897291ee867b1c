"""Nameko's entrypoint decorators, typed once for every service and with the suite's defaults.

``@rpc`` is Nameko's RPC entrypoint that treats the typed errors of ``crm_common.errors`` as
expected outcomes (answered to the caller, not logged as crashes). A call sent with an
``Idempotency-Key`` runs in one transaction that also stores its answer, and a repeat gets
that answer back (see ``crm_common.idempotency``).

Every RPC is protected: a call without a verifiable caller is refused
(``crm_common.context.CallContext``). ``@public`` opens one to anonymous callers; keep it for
what must work before sign-in (``@rpc`` then ``@public``, in either order).

Replies travel on the process's one kept broker connection, without publisher confirms
(:class:`Replies`, ``crm_common.broker_link``): a reply lost with its connection is a timeout
for its caller, confirmed or not.
"""

from __future__ import annotations

import functools
import inspect
import logging
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

from amqp import Message
from amqp.exceptions import AMQPError
from kombu import serialization
from kombu.exceptions import KombuError
from nameko import rpc as nameko_rpc
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY,
    AMQP_URI_CONFIG_KEY,
    DEFAULT_HEARTBEAT,
    HEARTBEAT_CONFIG_KEY,
    LOGIN_METHOD_CONFIG_KEY,
    RPC_EXCHANGE_CONFIG_KEY,
)
from nameko.exceptions import IncorrectSignature, UnserializableValueError, serialize
from nameko.extensions import SharedExtension

from crm_common.broker_link import TRANSIENT, BrokerLink, LinkDown
from crm_common.context import PUBLIC_ATTRIBUTE
from crm_common.errors import EXPECTED_ERRORS
from crm_common.idempotency import call_idempotently

F = TypeVar("F", bound=Callable[..., Any])

_log = logging.getLogger(__name__)

REPLY_TIMEOUT = 5.0
"""Seconds a reply may take to reach the broker before it is given up (and logged)."""


class Replies(SharedExtension):
    """Answers a service process's RPC calls as Nameko's ``Responder`` does (same exchange,
    serialiser and correlation), on one kept connection and without confirms."""

    link: BrokerLink

    def setup(self) -> None:
        config = self.container.config
        self.exchange = config.get(RPC_EXCHANGE_CONFIG_KEY, "nameko-rpc")
        self.link = BrokerLink(
            config[AMQP_URI_CONFIG_KEY],
            ssl=config.get(AMQP_SSL_CONFIG_KEY),
            login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
            heartbeat=config.get(HEARTBEAT_CONFIG_KEY, DEFAULT_HEARTBEAT),
            spawn=functools.partial(
                self.container.spawn_managed_thread, identifier="broker link reader"
            ),
        )

    def stop(self) -> None:
        self.link.close()

    def kill(self) -> None:
        self.link.drop()

    def send(self, request: Any, result: Any, exc_info: Any) -> tuple[Any, Any]:
        """Answer ``request`` (the call's message) with ``result`` or the error of ``exc_info``;
        a result that cannot be serialised is answered as ``UnserializableValueError``.
        ``LinkDown`` when the broker does not take the reply within ``REPLY_TIMEOUT``."""
        serializer = serialization.registry.type_to_name[request.properties["content_type"]]
        error = serialize(exc_info[1]) if exc_info is not None else None
        try:
            encoded = serialization.dumps({"result": result, "error": error}, serializer)
        except Exception:
            exc_info = sys.exc_info()
            error = serialize(UnserializableValueError(result))
            result = None
            encoded = serialization.dumps({"result": None, "error": error}, serializer)
        content_type, encoding, body = encoded
        reply = Message(
            body.encode(encoding) if isinstance(body, str) else body,
            content_type=content_type,
            content_encoding=encoding,
            delivery_mode=TRANSIENT,
            correlation_id=request.properties.get("correlation_id"),
        )
        self.link.publish(
            reply,
            self.exchange,
            request.properties["reply_to"],
            deadline=time.monotonic() + REPLY_TIMEOUT,
        )
        return result, exc_info


class Rpc(nameko_rpc.Rpc):
    """Nameko's RPC entrypoint, answering through :class:`Replies` and surviving a broker that
    goes away while it answers.

    The reply is sent, then the request acknowledged; when the broker is gone either step
    fails, and in Nameko the error would kill the whole service. Here it is logged instead:
    the unacknowledged request is redelivered once the consumer reconnects (it still expires at
    the caller's deadline), and a caller who gave up retries with its Idempotency-Key.
    """

    replies = Replies()

    def check_signature(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Nothing to check here: Nameko would check the call against :func:`rpc`'s wrapper,
        which takes any arguments; the wrapper checks them against the method itself."""

    def handle_result(self, message: Any, worker_ctx: Any, result: Any, exc_info: Any) -> Any:
        try:
            result, exc_info = self.replies.send(message, result, exc_info)
            self.rpc_consumer.queue_consumer.ack_message(message)
        except (LinkDown, KombuError, AMQPError, OSError) as exc:
            _log.warning("could not answer %s: %s", worker_ctx.call_id, exc)
        return result, exc_info


def rpc(fn: F) -> F:
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def entrypoint(self: Any, *args: Any, **kwargs: Any) -> Any:
        # Nameko checks a call's arguments against this wrapper, which takes any: check them
        # against the method itself, as Nameko would.
        try:
            signature.bind(self, *args, **kwargs)
        except TypeError as exc:
            raise IncorrectSignature(str(exc)) from None
        if not getattr(entrypoint, "idempotent", True):
            return fn(self, *args, **kwargs)
        return call_idempotently(self, fn, args, kwargs)

    return cast(F, Rpc.decorator(expected_exceptions=EXPECTED_ERRORS)(entrypoint))


def public(fn: F) -> F:
    """Let anonymous callers reach this entrypoint (it runs without a principal)."""
    setattr(fn, PUBLIC_ATTRIBUTE, True)
    return fn
