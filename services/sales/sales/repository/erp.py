"""Queries of the ERP inbound side: which CRM customer an ERP customer is, and the ERP events
waiting for their customer."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import event, or_, select, update
from sqlalchemy.orm import Session

from crm_common.pagination import Page, SortKey, keyset_page
from sales.models import Customer
from sales.models.erp import APPLIED, WAITING, ErpCustomerMapping, ErpUnmatchedEvent
from sales.repository.read_models import survivor_of

CustomerKey = tuple[uuid.UUID | None, str | None, str | None]
"""``(crm_customer_id, credit_code, erp_code)`` of an ERP customer."""


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
    key = (crm_customer_id, credit_code, erp_code)
    return match_customers(session, [key])[key]


def match_customers(
    session: Session, keys: Iterable[CustomerKey]
) -> dict[CustomerKey, uuid.UUID | None]:
    """``match_customer`` of each key, in one query of customers and one of mappings."""
    wanted = list(dict.fromkeys(keys))
    ids = {key[0] for key in wanted if key[0] is not None}
    credit_codes = {key[1] for key in wanted if key[1]}
    erp_codes = {key[2] for key in wanted if key[2]}
    conditions = []
    if ids:
        conditions.append(Customer.id.in_(sorted(ids)))
    if credit_codes:
        conditions.append(Customer.credit_code.in_(sorted(credit_codes)))
    if erp_codes:
        conditions.append(Customer.erp_code.in_(sorted(erp_codes)))
    rows: Sequence[Any] = ()
    if conditions:
        rows = session.execute(
            select(Customer.id, Customer.credit_code, Customer.erp_code, Customer.merged_into_id)
            .where(or_(*conditions))
            .order_by(Customer.id)
        ).all()
    found: dict[CustomerKey, Any] = {}
    matched: dict[CustomerKey, uuid.UUID | None] = {}
    for key in wanted:
        for column, value in zip(("id", "credit_code", "erp_code"), key, strict=True):
            if value is None or value == "":
                continue
            chosen = next((row for row in rows if getattr(row, column) == value), None)
            if chosen is not None:
                if chosen.merged_into_id is None:
                    matched[key] = uuid.UUID(str(chosen.id))
                else:
                    found[key] = chosen.id
                break
    unmatched = [key for key in wanted if key not in matched and key not in found and key[2]]
    if unmatched:
        mappings = dict(
            session.execute(
                select(ErpCustomerMapping.erp_code, ErpCustomerMapping.customer_id).where(
                    ErpCustomerMapping.erp_code.in_(sorted({key[2] for key in unmatched}))
                )
            ).all()
        )
        for key in unmatched:
            if key[2] in mappings:
                found[key] = mappings[key[2]]
    for key in wanted:
        if key not in matched:
            matched[key] = None if key not in found else survivor_of(session, found[key])
    return matched


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


def unmatched_of_events(
    session: Session, event_ids: Iterable[str]
) -> dict[str, ErpUnmatchedEvent | None]:
    """The waiting (or once waiting) row of each of these events, None for those without."""
    wanted = sorted(set(event_ids))
    found: dict[str, ErpUnmatchedEvent | None] = dict.fromkeys(wanted)
    if wanted:
        stmt = select(ErpUnmatchedEvent).where(ErpUnmatchedEvent.event_id.in_(wanted))
        for row in session.scalars(stmt):
            found[row.event_id] = row
    return found


def keep_unmatched(
    session: Session,
    values: dict[str, Any],
    now: datetime,
    kept: dict[str, ErpUnmatchedEvent | None] | None = None,
) -> ErpUnmatchedEvent:
    """Store an event waiting for its customer (seen again: one more attempt). ``kept``: the
    rows of a batch's events (``unmatched_of_events``), kept current; the row is then
    written with the batch's flush."""
    event_id = values["event_id"]
    if kept is not None and event_id in kept:
        row = kept[event_id]
    else:
        stmt = select(ErpUnmatchedEvent).where(ErpUnmatchedEvent.event_id == event_id)
        row = session.scalar(stmt)
    if row is None:
        row = ErpUnmatchedEvent(**values, first_seen_at=now, last_seen_at=now, attempts=1)
        session.add(row)
    else:
        row.attempts += 1
        row.last_seen_at = now
    if kept is None:
        session.flush()
    else:
        kept[event_id] = row
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


# -- what an ERP batch loaded ----------------------------------------------------------------
def batch_documents(session: Session, key: str) -> Any:
    """What ``keep_batch_documents`` kept under ``key`` for the current transaction, or None
    (none kept, another transaction, or a savepoint rolled back since: a rollback forgets
    every object the savepoint added, so what was kept cannot be trusted any longer)."""
    kept = session.info.get(BATCH_KEY, {}).get(key)
    if kept is None or kept[0] is not session.get_transaction():
        return None
    return kept[1]


def keep_batch_documents(session: Session, key: str, documents: Any) -> None:
    """Keep ``documents`` (one batch's documents by number) for the rest of the transaction."""
    if BATCH_KEY not in session.info:
        event.listen(session, "after_soft_rollback", _forget_batch)
    session.info.setdefault(BATCH_KEY, {})[key] = (session.get_transaction(), documents)


def _forget_batch(session: Session, previous_transaction: Any) -> None:
    session.info.get(BATCH_KEY, {}).clear()


BATCH_KEY = "erp.batch"
