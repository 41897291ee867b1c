"""Model pieces every service composes into its own declarative ``Base``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, DateTime, Integer, String, Uuid
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from crm_common.errors import Conflict, ValidationFailed


def utcnow() -> datetime:
    return datetime.now(UTC)


class EntityMixin:
    """UUID id, timestamps and a version counter that SQLAlchemy checks on every update."""

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:  # noqa: N805
        return {"version_id_col": cls.version}


def check_version(entity: EntityMixin, expected_version: int | None) -> None:
    """A client editing version N of a record that is now at M != N gets a conflict."""
    if expected_version is None or int(expected_version) != entity.version:
        raise Conflict(
            "the record was changed since you read it; reload it and retry",
            {"reason": "stale_version", "current_version": entity.version},
        )


def split_version(changes: Any, expected_version: Any) -> tuple[Any, int]:
    """The changes without ``version``, and the version the client read: the argument (from
    If-Match) or else the body's ``version``; a ``ValidationFailed`` on ``version`` if neither."""
    if isinstance(changes, dict) and "version" in changes:
        changes = dict(changes)
        body_version = changes.pop("version")
        if expected_version is None:
            expected_version = body_version
    if expected_version is None:
        raise ValidationFailed.on("version", "send the version you read (If-Match or body)")
    try:
        return changes, int(expected_version)
    except (TypeError, ValueError):
        raise ValidationFailed.on("version", "must be a whole number") from None


class OutboxMixin:
    """Events written in the business transaction, relayed to the broker after commit."""

    if TYPE_CHECKING:  # the declarative base of the concrete model supplies the constructor

        def __init__(self, **values: Any) -> None: ...

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True, nullable=False)
    exchange: Mapped[str] = mapped_column(String(100), nullable=False)
    routing_key: Mapped[str] = mapped_column(String(100), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    headers: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True, index=True
    )
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)


class InboxMixin:
    """Events a handler has already applied, so a redelivery has no second effect."""

    if TYPE_CHECKING:  # the declarative base of the concrete model supplies the constructor

        def __init__(self, **values: Any) -> None: ...

    __tablename__ = "inbox"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    handler: Mapped[str] = mapped_column(String(150), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(100), nullable=False)
    handled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CatchUpMixin:
    """One snapshot (``org.people``, ``customer.customers``…) a service read to its end
    (``crm_common.catch_up``): a fresh database catches up once, then events keep it."""

    if TYPE_CHECKING:  # the declarative base of the concrete model supplies the constructor

        def __init__(self, **values: Any) -> None: ...

    __tablename__ = "catch_ups"

    source: Mapped[str] = mapped_column(String(40), primary_key=True)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
