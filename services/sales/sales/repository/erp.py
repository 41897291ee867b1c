"""Queries of the ERP inbound side: which CRM customer an ERP customer is, and the ERP events
waiting for their customer."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from crm_common.pagination import Page, SortKey, keyset_page
from sales.models import Customer
from sales.models.erp import APPLIED, WAITING, ErpCustomerMapping, ErpUnmatchedEvent
from sales.repository.read_models import survivor_of


def match_customer(
    session: Session,
    crm_customer_id: uuid.UUID | None,
    credit_code: str | None,
    erp_code: str | None,
) -> uuid.UUID | None:
    """The CRM customer these identifiers name: by ``crm_customer_id`` (a customer sales
    knows), else by the unified social credit code, else by the ERP code on the customer,
    else by an administrator's mapping of the ERP code; a merged customer's survivor. None
    when nothing matches."""
    conditions = []
    if crm_customer_id is not None:
        conditions.append(Customer.id == crm_customer_id)
    if credit_code:
        conditions.append(Customer.credit_code == credit_code)
    if erp_code:
        conditions.append(Customer.erp_code == erp_code)
    found: uuid.UUID | None = None
    if conditions:
        rows = session.execute(
            select(Customer.id, Customer.credit_code, Customer.erp_code, Customer.merged_into_id)
            .where(or_(*conditions))
            .order_by(Customer.id)
        ).all()
        tests: tuple[tuple[str, Any], ...] = (
            ("id", crm_customer_id),
            ("credit_code", credit_code),
            ("erp_code", erp_code),
        )
        for column, value in tests:
            if value is None or value == "":
                continue
            chosen = next((row for row in rows if getattr(row, column) == value), None)
            if chosen is not None:
                if chosen.merged_into_id is None:
                    return uuid.UUID(str(chosen.id))
                found = chosen.id
                break
    if found is None and erp_code:
        found = session.scalar(
            select(ErpCustomerMapping.customer_id).where(ErpCustomerMapping.erp_code == erp_code)
        )
    return None if found is None else survivor_of(session, found)


def customer_exists(session: Session, customer_id: uuid.UUID) -> bool:
    return session.get(Customer, customer_id) is not None


def keep_mapping(
    session: Session, erp_code: str, customer_id: uuid.UUID, actor_id: str, now: datetime
) -> None:
    mapping = session.get(ErpCustomerMapping, erp_code)
    if mapping is None:
        session.add(
            ErpCustomerMapping(
                erp_code=erp_code, customer_id=customer_id, mapped_by=actor_id, mapped_at=now
            )
        )
    else:
        mapping.customer_id = customer_id
        mapping.mapped_by = actor_id
        mapping.mapped_at = now
    session.flush()


def keep_unmatched(session: Session, values: dict[str, Any], now: datetime) -> ErpUnmatchedEvent:
    """Store an event waiting for its customer (seen again: one more attempt)."""
    row = session.scalar(
        select(ErpUnmatchedEvent).where(ErpUnmatchedEvent.event_id == values["event_id"])
    )
    if row is None:
        row = ErpUnmatchedEvent(**values, first_seen_at=now, last_seen_at=now, attempts=1)
        session.add(row)
    else:
        row.attempts += 1
        row.last_seen_at = now
    session.flush()
    return row


def get_unmatched(session: Session, unmatched_id: uuid.UUID) -> ErpUnmatchedEvent | None:
    return session.get(ErpUnmatchedEvent, unmatched_id)


def waiting_for(
    session: Session,
    *,
    erp_codes: Sequence[str] = (),
    credit_codes: Sequence[str] = (),
    crm_customer_ids: Sequence[uuid.UUID] = (),
) -> list[ErpUnmatchedEvent]:
    """The waiting events naming any of these identifiers, in the order the ERP made them."""
    conditions = []
    if erp_codes:
        conditions.append(ErpUnmatchedEvent.erp_code.in_(list(erp_codes)))
    if credit_codes:
        conditions.append(ErpUnmatchedEvent.credit_code.in_(list(credit_codes)))
    if crm_customer_ids:
        conditions.append(ErpUnmatchedEvent.crm_customer_id.in_(list(crm_customer_ids)))
    if not conditions:
        return []
    return list(
        session.scalars(
            select(ErpUnmatchedEvent)
            .where(ErpUnmatchedEvent.status == WAITING, or_(*conditions))
            .order_by(ErpUnmatchedEvent.occurred_at, ErpUnmatchedEvent.id)
        )
    )


def mark_applied(
    session: Session, row: ErpUnmatchedEvent, customer_id: uuid.UUID, now: datetime
) -> None:
    row.status = APPLIED
    row.customer_id = customer_id
    row.applied_at = now
    row.last_error = None
    session.flush()


def mark_failed(session: Session, row_id: uuid.UUID, error: str, now: datetime) -> None:
    session.execute(
        update(ErpUnmatchedEvent)
        .where(ErpUnmatchedEvent.id == row_id)
        .values(attempts=ErpUnmatchedEvent.attempts + 1, last_error=error[:2000], last_seen_at=now)
    )


def unmatched_page(session: Session, query: dict[str, Any]) -> Page:
    """Unmatched events, oldest first, filtered by status, type and ERP code."""
    stmt = select(ErpUnmatchedEvent).where(ErpUnmatchedEvent.status == query["status"])
    if query.get("event_type"):
        stmt = stmt.where(ErpUnmatchedEvent.event_type == query["event_type"])
    if query.get("erp_code"):
        stmt = stmt.where(ErpUnmatchedEvent.erp_code == query["erp_code"])
    key = SortKey(ErpUnmatchedEvent.first_seen_at, ErpUnmatchedEvent.id)
    return keyset_page(session, stmt, key, query.get("cursor"), query.get("limit"))
