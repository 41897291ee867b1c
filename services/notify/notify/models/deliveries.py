"""Deliveries by email and SMS: one row per message, its attempts and the provider receipts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from crm_common.models import EntityMixin, utcnow
from notify.models import Base


class Delivery(EntityMixin, Base):
    """One message to one recipient on one channel: queued → sending → sent → delivered, or
    failed; ``bundled`` when folded into a summary or a digest (``bundle_id``), which goes
    out in its place."""

    __tablename__ = "deliveries"

    channel: Mapped[str] = mapped_column(String(10))
    kind: Mapped[str] = mapped_column(String(20), default="alert")
    status: Mapped[str] = mapped_column(String(20), default="queued")
    recipient_id: Mapped[str] = mapped_column(String(64))
    recipient_name: Mapped[str] = mapped_column(String(100), default="")
    address: Mapped[str | None] = mapped_column(String(200))
    time_zone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    alert_type: Mapped[str] = mapped_column(String(64))
    rule_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    severity: Mapped[str] = mapped_column(String(20), default="info")
    critical: Mapped[bool] = mapped_column(Boolean, default=False)
    dedup_key: Mapped[str] = mapped_column(String(300))
    subject: Mapped[str] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    sms_template: Mapped[str | None] = mapped_column(String(64))
    sms_params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    link: Mapped[str | None] = mapped_column(String(500))
    bundle_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("deliveries.id"), index=True
    )
    not_before: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    provider: Mapped[str | None] = mapped_column(String(20))
    provider_id: Mapped[str | None] = mapped_column(String(100))
    last_error: Mapped[str | None] = mapped_column(String(500))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    failed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("channel", "dedup_key", name="uq_deliveries_dedup"),
        # the worker's claim: due rows by status and time
        Index("ix_deliveries_due", "status", "not_before"),
        # rate limits and the admin's search by recipient
        Index("ix_deliveries_recipient", "recipient_id", "channel", "created_at"),
        Index("ix_deliveries_created", "created_at", "id"),
        Index("ix_deliveries_provider_id", "provider", "provider_id"),
    )


class DeliveryAttempt(Base):
    """One try at sending a delivery, with what came of it."""

    __tablename__ = "delivery_attempts"

    delivery_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("deliveries.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str] = mapped_column(String(20))
    provider_id: Mapped[str | None] = mapped_column(String(100))
    error: Mapped[str | None] = mapped_column(String(500))


class DeliveryReceipt(Base):
    """A provider's delivery report, kept by the provider's message id so a report sent twice
    changes the delivery once."""

    __tablename__ = "delivery_receipts"

    provider: Mapped[str] = mapped_column(String(20), primary_key=True)
    provider_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    delivery_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    status: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str | None] = mapped_column(String(500))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
