"""Queries of deliveries: the dedup and rate-limit look-ups of ``enqueue``, the worker's claim
of due rows, bundles and their members, receipts, and the admin's search."""

from __future__ import annotations

import uuid
from datetime import datetime
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Row, Select, Table, bindparam, func, select, update
from sqlalchemy.orm import Session

from crm_common.errors import NotFound
from crm_common.pagination import Page, SortKey, keyset_select, page_parameters, rows_page
from notify.domain.delivery import ALERT, BUNDLED, MARKETING, QUEUED, SENDING
from notify.models.deliveries import Delivery, DeliveryAttempt, DeliveryReceipt

_deliveries = cast(Table, Delivery.__table__)
_attempts = cast(Table, DeliveryAttempt.__table__)
DELIVERY_SORT = SortKey(_deliveries.c.created_at, _deliveries.c.id, descending=True)
FILTERS = ("recipient_id", "rule_id", "channel", "status", "alert_type", "kind")


def dedup_taken(session: Session, channel: str, dedup_key: str) -> bool:
    found = session.execute(
        select(_deliveries.c.id).where(
            _deliveries.c.channel == channel, _deliveries.c.dedup_key == dedup_key
        )
    ).first()
    return found is not None


def individually_sent_since(
    session: Session, recipient_id: str, channel: str, since: datetime
) -> int:
    """How many messages of their own (not folded into a bundle) the recipient was given on
    ``channel`` since ``since``: what a rate limit counts."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(_deliveries)
            .where(
                _deliveries.c.recipient_id == recipient_id,
                _deliveries.c.channel == channel,
                _deliveries.c.created_at >= since,
                _deliveries.c.kind.in_((ALERT, MARKETING)),
                _deliveries.c.status != BUNDLED,
            )
        )
        or 0
    )


def open_bundle(session: Session, recipient_id: str, channel: str, kind: str) -> Delivery | None:
    """The recipient's summary or digest on ``channel`` that has not left yet, if any."""
    return session.scalars(
        select(Delivery)
        .where(
            Delivery.recipient_id == recipient_id,
            Delivery.channel == channel,
            Delivery.kind == kind,
            Delivery.status == QUEUED,
        )
        .order_by(Delivery.not_before)
        .limit(1)
    ).first()


def claim_due(session: Session, now: datetime, limit: int) -> list[Delivery]:
    """Due deliveries, locked for this transaction: queued ones whose time has come and ones
    left ``sending`` by a worker that stopped (lease over). Rows another worker holds locked
    are skipped (PostgreSQL; SQLite has one writer at a time)."""
    due = (
        select(Delivery)
        .where(
            ((Delivery.status == QUEUED) & (Delivery.not_before <= now))
            | ((Delivery.status == SENDING) & (Delivery.lease_until < now))
        )
        .order_by(Delivery.not_before, Delivery.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    return list(session.scalars(due))


def bundle_members(session: Session, bundle_id: uuid.UUID) -> list[Row[Any]]:
    return list(
        session.execute(
            select(
                _deliveries.c.subject,
                _deliveries.c.text,
                _deliveries.c.link,
                _deliveries.c.created_at,
                _deliveries.c.critical,
            )
            .where(_deliveries.c.bundle_id == bundle_id)
            .order_by(_deliveries.c.created_at)
        )
    )


def mark_members(session: Session, bundle_id: uuid.UUID, status: str, now: datetime) -> None:
    """The members of a bundle take its final status (sent or failed), so the admin sees
    what came of each alert."""
    values: dict[str, Any] = {"updated_at": now}
    if status == "failed":
        values["failed_at"] = now
    else:
        values["sent_at"] = now
    session.execute(
        update(_deliveries)
        .where(_deliveries.c.bundle_id == bundle_id, _deliveries.c.status == BUNDLED)
        .values(**values)
    )


def get_for_update(session: Session, delivery_id: uuid.UUID) -> Delivery:
    found = session.get(Delivery, delivery_id)
    if found is None:
        raise NotFound.of("delivery", delivery_id)
    return found


def by_provider_id(session: Session, provider: str, provider_id: str) -> Delivery | None:
    return session.scalars(
        select(Delivery).where(Delivery.provider == provider, Delivery.provider_id == provider_id)
    ).first()


def receipt_known(session: Session, provider: str, provider_id: str) -> bool:
    return session.get(DeliveryReceipt, (provider, provider_id)) is not None


def delivery_row(session: Session, delivery_id: uuid.UUID) -> Row[Any]:
    row = session.execute(
        select(*_deliveries.c).where(_deliveries.c.id == bindparam("delivery_id")),
        {"delivery_id": delivery_id},
    ).first()
    if row is None:
        raise NotFound.of("delivery", delivery_id)
    return row


def attempt_rows(session: Session, delivery_id: uuid.UUID) -> list[Row[Any]]:
    return list(
        session.execute(
            select(*_attempts.c)
            .where(_attempts.c.delivery_id == delivery_id)
            .order_by(_attempts.c.number)
        )
    )


@lru_cache(maxsize=128)
def _page_statement(
    filters: tuple[str, ...], period: tuple[bool, bool], after: bool
) -> Select[Any]:
    stmt = select(*_deliveries.c)
    for name in filters:
        stmt = stmt.where(_deliveries.c[name] == bindparam(name))
    if period[0]:
        stmt = stmt.where(_deliveries.c.created_at >= bindparam("created_from"))
    if period[1]:
        stmt = stmt.where(_deliveries.c.created_at < bindparam("created_to"))
    return keyset_select(stmt, DELIVERY_SORT, after_cursor=after)


def delivery_page(
    session: Session,
    filters: dict[str, Any],
    created_from: datetime | None,
    created_to: datetime | None,
    cursor: str | None,
    limit: int | None,
) -> Page:
    names = tuple(name for name in FILTERS if filters.get(name) is not None)
    statement = _page_statement(
        names, (created_from is not None, created_to is not None), bool(cursor)
    )
    parameters = {name: filters[name] for name in names}
    if created_from is not None:
        parameters["created_from"] = created_from
    if created_to is not None:
        parameters["created_to"] = created_to
    parameters.update(page_parameters(DELIVERY_SORT, cursor, limit))
    rows = list(session.execute(statement, parameters))
    return rows_page(rows, DELIVERY_SORT, limit)


def queue_lag(session: Session, now: datetime) -> dict[str, float]:
    """Seconds the oldest due queued delivery of each channel has been waiting."""
    rows = session.execute(
        select(_deliveries.c.channel, func.min(_deliveries.c.not_before))
        .where(_deliveries.c.status == QUEUED, _deliveries.c.not_before <= now)
        .group_by(_deliveries.c.channel)
    )
    lag: dict[str, float] = {}
    for channel, oldest in rows:
        if oldest is not None:
            if oldest.tzinfo is None:
                oldest = oldest.replace(tzinfo=now.tzinfo)
            lag[channel] = max(0.0, (now - oldest).total_seconds())
    return lag
