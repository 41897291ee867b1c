"""Idempotent consumption: a handler applies an event at most once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_common.models import InboxMixin


def first_delivery(
    session: Session, model: type[InboxMixin], envelope: dict[str, Any], handler: str
) -> bool:
    """Record ``envelope`` as handled by ``handler`` in the caller's transaction.

    Returns False when it was handled before, in which case the caller does nothing. Because the
    mark commits (or rolls back) with the handler's own changes, a crash mid-way leaves the event
    unhandled, and a redelivery is applied exactly once.
    """
    event_id = str(envelope["event_id"])
    seen = session.scalar(
        select(model.event_id).where(model.event_id == event_id, model.handler == handler)
    )
    if seen is not None:
        return False
    session.add(model(event_id=event_id, handler=handler, event_type=str(envelope["type"])))
    session.flush()
    return True
