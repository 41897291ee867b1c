"""The notify context's tables (SQLAlchemy 2, typed)."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from crm_common.idempotency import IdempotencyRecordMixin
from crm_common.models import InboxMixin, OutboxMixin


class Base(DeclarativeBase):
    pass


class OutboxMessage(OutboxMixin, Base):
    pass


class InboxEvent(InboxMixin, Base):
    pass


class IdempotencyRecord(IdempotencyRecordMixin, Base):
    pass


# Rules, people, preferences and the inbox; deliveries and their attempts: modules of their
# own, imported here so that their tables are in ``Base.metadata``.
from notify.models import deliveries, rules  # noqa: E402, F401
