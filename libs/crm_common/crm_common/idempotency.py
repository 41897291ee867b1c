"""Writes a client can safely retry: answers stored per user and ``Idempotency-Key``."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_common.models import utcnow

IDEMPOTENCY_TABLE = "idempotency_records"


class IdempotencyRecordMixin:
    """The answer of a write sent with an ``Idempotency-Key``, stored in its own transaction."""

    if TYPE_CHECKING:  # the declarative base of the concrete model supplies the constructor

        def __init__(self, **values: Any) -> None: ...

    __tablename__ = IDEMPOTENCY_TABLE

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    operation: Mapped[str] = mapped_column(String(150), nullable=False)
    result: Mapped[Any] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )
