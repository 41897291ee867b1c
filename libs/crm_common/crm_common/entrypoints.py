"""Nameko's entrypoint decorators, typed once for every service and with the suite's defaults.

``@rpc`` is Nameko's RPC entrypoint that treats the typed errors of ``crm_common.errors`` as
expected outcomes (answered to the caller, not logged as crashes). A call sent with an
``Idempotency-Key`` runs in one transaction that also stores its answer, and a repeat gets
that answer back (see ``crm_common.idempotency``).

Every RPC is protected: a call without a verifiable caller is refused
(``crm_common.context.CallContext``). ``@public`` opens one to anonymous callers; keep it for
what must work before sign-in (``@rpc`` then ``@public``, in either order).
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any, TypeVar, cast

from amqp.exceptions import AMQPError
from kombu.exceptions import KombuError
from nameko import rpc as nameko_rpc
from nameko.exceptions import IncorrectSignature

from crm_common.context import PUBLIC_ATTRIBUTE
from crm_common.errors import EXPECTED_ERRORS
from crm_common.idempotency import call_idempotently

F = TypeVar("F", bound=Callable[..., Any])

_log = logging.getLogger(__name__)


class Rpc(nameko_rpc.Rpc):
    """Nameko's RPC entrypoint, surviving a broker that goes away while it answers.

    Nameko sends the reply, then acknowledges the request; when the connection is gone either
    step raises, and the error would kill the whole service. Here it is logged instead: the
    unacknowledged request is redelivered once the consumer reconnects (it still expires at
    the caller's deadline), and a caller who gave up retries with its Idempotency-Key.
    """

    def handle_result(self, message: Any, worker_ctx: Any, result: Any, exc_info: Any) -> Any:
        try:
            return super().handle_result(message, worker_ctx, result, exc_info)
        except (KombuError, AMQPError, OSError) as exc:
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
