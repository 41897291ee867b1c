"""Nameko's untyped event decorator, typed once for the gateway."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from nameko.events import BROADCAST, event_handler

F = TypeVar("F", bound=Callable[..., Any])


def broadcast_handler(source: str, event_type: str) -> Callable[[F], F]:
    """Every gateway process hears each such event; none is kept for a process that is down."""
    decorate = event_handler(source, event_type, handler_type=BROADCAST, reliable_delivery=False)
    return cast(Callable[[F], F], decorate)
