"""ERP events kept for later: those whose customer matches no CRM customer yet, and the
mappings an administrator made from an ERP customer code to a CRM customer."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from crm_common.models import utcnow
from sales.models import Base

WAITING = "waiting"
APPLIED = "applied"


class ErpUnmatchedEvent(Base):
    """An ERP event whose customer (``crm_customer_id``, ``credit_code``, ``erp_code``) matched
    no CRM customer when it arrived. It waits here, as received, until a customer event
    brings a matching code or an administrator maps the ERP customer; it is then applied and
    kept as ``applied`` with the customer it was applied to. ``attempts`` counts the times
    it was tried: its arrival and each later try that failed (``last_error``)."""

    __tablename__ = "erp_unmatched_events"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    event_type: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    erp_code: Mapped[str | None] = mapped_column(String(40))
    credit_code: Mapped[str | None] = mapped_column(String(40))
    crm_customer_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    customer_name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10), default=WAITING)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    last_error: Mapped[str | None] = mapped_column(Text)
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    applied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    customer_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)

    __table_args__ = (
        Index("ix_erp_unmatched_events_status_seen", "status", "first_seen_at", "id"),
        Index("ix_erp_unmatched_events_erp_code", "erp_code", "status"),
        Index("ix_erp_unmatched_events_credit_code", "credit_code", "status"),
    )


class ErpCustomerMapping(Base):
    """An ERP customer code an administrator mapped to a CRM customer (for ERP customers the
    CRM customer does not carry the code of)."""

    __tablename__ = "erp_customer_mappings"

    erp_code: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    mapped_by: Mapped[str | None] = mapped_column(String(64))
    mapped_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
