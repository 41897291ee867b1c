"""Nameko's entrypoint decorators, typed once for every service and with the suite's defaults.

``@rpc`` is Nameko's RPC entrypoint that treats the typed errors of ``crm_common.errors`` as
expected outcomes (answered to the caller, not logged as crashes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from nameko import rpc as nameko_rpc

from crm_common.errors import EXPECTED_ERRORS

F = TypeVar("F", bound=Callable[..., Any])


def rpc(fn: F) -> F:
    return cast(F, nameko_rpc.rpc(expected_exceptions=EXPECTED_ERRORS)(fn))
