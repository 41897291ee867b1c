"""Queries on opportunities and what hangs off them (contacts, product lines, competitors,
stage history, field history), sales processes, competitors and loss reasons, and the code
counters.

Every query answering with opportunities takes the caller's ``visible`` condition
(``visible_opportunities(principal)``): an opportunity outside it is answered exactly like one
that does not exist. Customers an opportunity may be opened for are found under the customer
scope of the sales copy of customers (``visible_customers``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Select,
    cast,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from crm_common.context import Principal
from crm_common.errors import NotFound
from crm_common.ids import BUSINESS_TZ, lookup_id
from crm_common.pagination import Page, SortKey, keyset_page
from crm_common.scope import ScopeColumns, scope_filter
from sales.domain.codes import MAX_SEQUENCE, codes_exhausted
from sales.domain.opportunities import Status
from sales.models import (
    CodeCounter,
    Competitor,
    Contact,
    Customer,
    Department,
    HistoryEntry,
    LossReason,
    Opportunity,
    OpportunityCompetitor,
    OpportunityContact,
    OpportunityLine,
    SalesProcess,
    SalesStage,
    StageHistory,
)

OPPORTUNITY_SCOPE = ScopeColumns(
    owner=Opportunity.owner_id,
    department=Opportunity.department_id,
    region=Opportunity.region,
    category=Opportunity.category,
)
CUSTOMER_SCOPE = ScopeColumns(
    owner=Customer.owner_id,
    department=Customer.department_id,
    region=Customer.region,
    category=Customer.category,
)


def business_year(now: datetime | None = None) -> int:
    return (now or datetime.now(UTC)).astimezone(BUSINESS_TZ).year


def _insert(session: Session) -> Callable[..., Any]:
    """The dialect's INSERT, which knows ON CONFLICT."""
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


# -- scope -------------------------------------------------------------------------------------
def visible_opportunities(principal: Principal) -> ColumnElement[bool]:
    """The SQL condition on ``Opportunity`` selecting what ``principal`` may see."""
    return scope_filter(principal, OPPORTUNITY_SCOPE)


def visible_customers(principal: Principal) -> ColumnElement[bool]:
    """The SQL condition on the copy of customers selecting what ``principal`` may see."""
    return scope_filter(principal, CUSTOMER_SCOPE)


def find_customer(
    session: Session, customer_id: uuid.UUID, visible: ColumnElement[bool]
) -> Customer | None:
    return session.scalar(select(Customer).where(Customer.id == customer_id, visible))


def department_known(session: Session, department_id: str) -> bool:
    """Whether org's copy has the department and it is not disabled."""
    department = session.get(Department, department_id)
    return department is not None and not department.disabled


def contacts_of_customer(session: Session, customer_id: uuid.UUID) -> set[str]:
    """The ids of the customer's contacts, as text."""
    ids = session.scalars(select(Contact.id).where(Contact.customer_id == customer_id))
    return {str(contact_id) for contact_id in ids}


# -- opportunities -----------------------------------------------------------------------------
def get_opportunity(
    session: Session, opportunity_id: Any, visible: ColumnElement[bool]
) -> Opportunity:
    """The visible opportunity, or ``NotFound`` alike for one that is missing, outside the
    scope or whose id is not even well formed."""
    key = lookup_id(opportunity_id)
    found = (
        session.scalar(select(Opportunity).where(Opportunity.id == key, visible)) if key else None
    )
    if found is None:
        raise NotFound.of("opportunity", opportunity_id)
    return found


def customers_by_id(session: Session, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Customer]:
    wanted = set(ids)
    if not wanted:
        return {}
    return {c.id: c for c in session.scalars(select(Customer).where(Customer.id.in_(wanted)))}


def stage_names(
    session: Session, process_ids: Iterable[uuid.UUID]
) -> dict[tuple[uuid.UUID, str], str]:
    """(process id, stage code) → stage name, for the stages of these processes."""
    wanted = set(process_ids)
    if not wanted:
        return {}
    rows = session.execute(
        select(SalesStage.process_id, SalesStage.code, SalesStage.name).where(
            SalesStage.process_id.in_(wanted)
        )
    )
    return {(process_id, code): name for process_id, code, name in rows}


def deal_contacts(session: Session, opportunity_id: uuid.UUID) -> list[dict[str, Any]]:
    """The opportunity's contacts with their roles, and their names as the copy has them."""
    rows = session.execute(
        select(OpportunityContact.contact_id, OpportunityContact.role, Contact)
        .outerjoin(Contact, Contact.id == OpportunityContact.contact_id)
        .where(OpportunityContact.opportunity_id == opportunity_id)
        .order_by(OpportunityContact.role, Contact.name, OpportunityContact.contact_id)
    )
    return [
        {
            "contact_id": contact_id,
            "role": role,
            "name": contact.name if contact else None,
            "title": contact.title if contact else None,
            "mobile": contact.mobile if contact else None,
        }
        for contact_id, role, contact in rows
    ]


def lines_of(session: Session, opportunity_id: uuid.UUID) -> Sequence[OpportunityLine]:
    return session.scalars(
        select(OpportunityLine)
        .where(OpportunityLine.opportunity_id == opportunity_id)
        .order_by(OpportunityLine.line_no)
    ).all()


def competitor_entries(session: Session, opportunity_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = session.execute(
        select(OpportunityCompetitor, Competitor.name)
        .join(Competitor, Competitor.id == OpportunityCompetitor.competitor_id)
        .where(OpportunityCompetitor.opportunity_id == opportunity_id)
        .order_by(Competitor.name)
    )
    return [
        {
            "competitor_id": entry.competitor_id,
            "competitor_name": name,
            "offer": entry.offer,
            "threat_level": entry.threat_level,
            "notes": entry.notes,
        }
        for entry, name in rows
    ]


def replace_contacts(
    session: Session, opportunity_id: uuid.UUID, contacts: Iterable[tuple[str, str]]
) -> None:
    """The opportunity's contacts become ``contacts`` ((contact id, role) pairs)."""
    session.execute(
        delete(OpportunityContact).where(OpportunityContact.opportunity_id == opportunity_id)
    )
    session.add_all(
        OpportunityContact(opportunity_id=opportunity_id, contact_id=uuid.UUID(cid), role=role)
        for cid, role in contacts
    )


def replace_lines(
    session: Session, opportunity_id: uuid.UUID, lines: Iterable[dict[str, Any]]
) -> None:
    session.execute(delete(OpportunityLine).where(OpportunityLine.opportunity_id == opportunity_id))
    session.add_all(OpportunityLine(opportunity_id=opportunity_id, **line) for line in lines)


def replace_competitors(
    session: Session, opportunity_id: uuid.UUID, entries: Iterable[dict[str, Any]]
) -> None:
    session.execute(
        delete(OpportunityCompetitor).where(OpportunityCompetitor.opportunity_id == opportunity_id)
    )
    session.add_all(
        OpportunityCompetitor(opportunity_id=opportunity_id, **entry) for entry in entries
    )


def touch_last_activity(session: Session, opportunity_id: Any, at: datetime) -> bool:
    """An activity done at ``at`` on the opportunity: its "last activity at" moves to ``at``
    unless it is later already; whether it moved. The opportunity's version stays (no one
    edited it), so a change being made to it meanwhile is not refused as stale."""
    key = lookup_id(opportunity_id)
    if key is None:
        return False
    result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(Opportunity)
        .where(
            Opportunity.id == key,
            or_(Opportunity.last_activity_at.is_(None), Opportunity.last_activity_at < at),
        )
        .values(last_activity_at=at)
        .execution_options(synchronize_session="fetch")
    )
    return bool(result.rowcount)


# -- lists -------------------------------------------------------------------------------------
SORT_COLUMNS = {
    "created_at": Opportunity.created_at,
    "updated_at": Opportunity.updated_at,
    "name": Opportunity.name,
    "code": Opportunity.code,
}


def sort_key(sort: str) -> SortKey:
    return SortKey(SORT_COLUMNS[sort.lstrip("-")], Opportunity.id, descending=sort.startswith("-"))


def _has_tag(dialect: str, tag: str) -> ColumnElement[bool]:
    """The opportunity's tag list (JSON) holds ``tag``."""
    if dialect == "postgresql":
        return cast(Opportunity.tags, JSONB).contains(func.jsonb_build_array(tag))
    values = func.json_each(Opportunity.tags).table_valued("value")
    return exists(select(literal(1)).select_from(values).where(values.c.value == tag))


def filter_conditions(
    query: dict[str, Any], dialect: str, idle_since: datetime | None = None
) -> list[ColumnElement[bool]]:
    """SQL conditions for a validated ``OpportunityQuerySchema`` result; ``idle_since`` is
    the cutoff of its ``idle_days``."""
    conditions: list[ColumnElement[bool]] = []
    text = query.get("q")
    if text:
        conditions.append(
            or_(
                Opportunity.name.icontains(text, autoescape=True),
                Opportunity.code.icontains(text, autoescape=True),
                exists().where(
                    Customer.id == Opportunity.customer_id,
                    or_(
                        Customer.name.icontains(text, autoescape=True),
                        Customer.short_name.icontains(text, autoescape=True),
                    ),
                ),
            )
        )
    if query.get("status"):
        conditions.append(Opportunity.status.in_(query["status"]))
    if query.get("stage_code"):
        conditions.append(Opportunity.stage_code.in_(query["stage_code"]))
    for name, column in (
        ("owner_id", Opportunity.owner_id),
        ("department_id", Opportunity.department_id),
        ("customer_id", Opportunity.customer_id),
        ("process_id", Opportunity.process_id),
    ):
        if query.get(name) is not None:
            conditions.append(column == query[name])
    if query.get("department_ids") is not None:
        conditions.append(Opportunity.department_id.in_(sorted(query["department_ids"])))
    if query.get("close_from") is not None:
        conditions.append(Opportunity.expected_close_date >= query["close_from"])
    if query.get("close_to") is not None:
        conditions.append(Opportunity.expected_close_date <= query["close_to"])
    if query.get("amount_min") is not None:
        conditions.append(Opportunity.expected_amount >= query["amount_min"])
    if query.get("amount_max") is not None:
        conditions.append(Opportunity.expected_amount <= query["amount_max"])
    for tag in query.get("tags") or ():
        conditions.append(_has_tag(dialect, tag))
    if idle_since is not None:
        conditions.append(Opportunity.status == Status.OPEN.value)
        conditions.append(
            func.coalesce(Opportunity.last_activity_at, Opportunity.created_at) < idle_since
        )
    return conditions


def opportunity_select(
    session: Session,
    query: dict[str, Any],
    visible: ColumnElement[bool],
    idle_since: datetime | None = None,
) -> Select[Opportunity]:
    dialect = session.get_bind().dialect.name
    return select(Opportunity).where(visible, *filter_conditions(query, dialect, idle_since))


def opportunities_page(
    session: Session,
    query: dict[str, Any],
    visible: ColumnElement[bool],
    idle_since: datetime | None = None,
) -> Page:
    """One page of the visible opportunities matching a validated ``OpportunityQuerySchema``
    result."""
    return keyset_page(
        session,
        opportunity_select(session, query, visible, idle_since),
        sort_key(query["sort"]),
        query.get("cursor"),
        query.get("limit"),
    )


# -- stage history -----------------------------------------------------------------------------
def current_visit(session: Session, opportunity_id: uuid.UUID) -> StageHistory | None:
    """The stay in a stage the opportunity has not left, if any."""
    return session.scalar(
        select(StageHistory)
        .where(StageHistory.opportunity_id == opportunity_id, StageHistory.left_at.is_(None))
        .order_by(StageHistory.entered_at.desc(), StageHistory.id)
        .limit(1)
    )


def stage_visits(session: Session, opportunity_id: uuid.UUID) -> Sequence[StageHistory]:
    """Every stay of the opportunity in a stage, oldest first."""
    return session.scalars(
        select(StageHistory)
        .where(StageHistory.opportunity_id == opportunity_id)
        .order_by(StageHistory.entered_at, StageHistory.id)
    ).all()


def add_stage_visit(
    session: Session,
    *,
    opportunity_id: uuid.UUID,
    process_id: uuid.UUID,
    stage_code: str,
    entered_at: datetime,
    moved_by: str | None,
    reason: str | None,
) -> None:
    session.add(
        StageHistory(
            opportunity_id=opportunity_id,
            process_id=process_id,
            stage_code=stage_code,
            entered_at=entered_at,
            moved_by=moved_by,
            reason=reason,
        )
    )
    session.flush()


# -- field history -----------------------------------------------------------------------------
def history_page(
    session: Session, entity_type: str, entity_id: str, cursor: str | None, limit: Any
) -> Page:
    """One page of a record's history, newest first."""
    return keyset_page(
        session,
        select(HistoryEntry).where(
            HistoryEntry.entity_type == entity_type, HistoryEntry.entity_id == entity_id
        ),
        SortKey(HistoryEntry.at, HistoryEntry.id, descending=True),
        cursor,
        limit,
    )


# -- codes -------------------------------------------------------------------------------------
def allocate_sequence(session: Session, prefix: str, year: int) -> int:
    """The next sequence of ``prefix`` (``OPP``, ``EXP``…) in ``year``. The counter moves by
    one atomic upsert: concurrent callers wait on the counter row until the first commits, so
    no two transactions get the same sequence. A year with no sequence left is a
    ``Conflict``."""
    table = CodeCounter.__table__
    stmt = (
        _insert(session)(table)
        .values(prefix=prefix, year=year, last_value=1)
        .on_conflict_do_update(
            index_elements=[table.c.prefix, table.c.year],
            set_={"last_value": table.c.last_value + 1},
            where=table.c.last_value < MAX_SEQUENCE,
        )
        .returning(table.c.last_value)
    )
    value: int | None = session.execute(stmt).scalar_one_or_none()
    if value is None:
        raise codes_exhausted(prefix, year)
    return value


# -- sales processes ---------------------------------------------------------------------------
def find_process(
    session: Session, process_id: Any, *, for_update: bool = False
) -> SalesProcess | None:
    """A process revision by id; ``for_update`` locks its row until the transaction ends
    (PostgreSQL), so that two revisions of one revision queue up."""
    key = lookup_id(process_id)
    return session.get(SalesProcess, key, with_for_update=for_update) if key else None


def get_process(session: Session, process_id: Any, *, for_update: bool = False) -> SalesProcess:
    found = find_process(session, process_id, for_update=for_update)
    if found is None:
        raise NotFound.of("sales process", process_id)
    return found


def stages_of(
    session: Session, process_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[SalesStage]]:
    """The stages of each process, in position order."""
    wanted = set(process_ids)
    found: dict[uuid.UUID, list[SalesStage]] = {key: [] for key in wanted}
    if not wanted:
        return found
    rows = session.scalars(
        select(SalesStage)
        .where(SalesStage.process_id.in_(wanted))
        .order_by(SalesStage.process_id, SalesStage.position)
    )
    for stage in rows:
        found[stage.process_id].append(stage)
    return found


def current_processes(session: Session, include_inactive: bool) -> Sequence[SalesProcess]:
    """The latest revision of every process (the active ones unless ``include_inactive``)."""
    stmt = select(SalesProcess).where(SalesProcess.superseded_by.is_(None))
    if not include_inactive:
        stmt = stmt.where(SalesProcess.active.is_(True))
    return session.scalars(stmt.order_by(SalesProcess.created_at, SalesProcess.code)).all()


def current_process_of_code(session: Session, code: str) -> SalesProcess | None:
    return session.scalar(
        select(SalesProcess).where(SalesProcess.code == code, SalesProcess.superseded_by.is_(None))
    )


def process_code_taken(session: Session, code: str) -> bool:
    return bool(session.scalar(select(exists().where(SalesProcess.code == code))))


def insert_process(
    session: Session, values: dict[str, Any], stages: Iterable[dict[str, Any]]
) -> SalesProcess:
    process = SalesProcess(**values)
    session.add(process)
    session.flush()
    session.add_all(SalesStage(process_id=process.id, **stage) for stage in stages)
    session.flush()
    return process


def insert_process_once(
    session: Session, values: dict[str, Any], stages: Iterable[dict[str, Any]]
) -> bool:
    """Insert a process revision unless one of the same code and revision exists (another
    transaction may be inserting it at this moment: this one then waits and inserts nothing);
    whether it did."""
    table = SalesProcess.__table__
    stmt = (
        _insert(session)(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[table.c.code, table.c.revision])
        .returning(table.c.id)
    )
    process_id = session.execute(stmt).scalar_one_or_none()
    if process_id is None:
        return False
    session.add_all(SalesStage(process_id=process_id, **stage) for stage in stages)
    session.flush()
    return True


# -- competitors and loss reasons --------------------------------------------------------------
def competitors(session: Session, text: str | None, include_inactive: bool) -> Sequence[Competitor]:
    stmt = select(Competitor)
    if text:
        stmt = stmt.where(Competitor.name.icontains(text, autoescape=True))
    if not include_inactive:
        stmt = stmt.where(Competitor.active.is_(True))
    return session.scalars(stmt.order_by(Competitor.name, Competitor.id)).all()


def get_competitor(session: Session, competitor_id: Any) -> Competitor:
    key = lookup_id(competitor_id)
    found = session.get(Competitor, key) if key else None
    if found is None:
        raise NotFound.of("competitor", competitor_id)
    return found


def competitor_named(session: Session, name: str) -> Competitor | None:
    return session.scalar(select(Competitor).where(Competitor.name == name))


def active_competitor_ids(session: Session) -> set[str]:
    ids = session.scalars(select(Competitor.id).where(Competitor.active.is_(True)))
    return {str(competitor_id) for competitor_id in ids}


def competitor_in_use(session: Session, competitor_id: uuid.UUID) -> bool:
    """Whether an opportunity names the competitor (in its entries or as the winner)."""
    return bool(
        session.scalar(
            select(
                or_(
                    exists().where(OpportunityCompetitor.competitor_id == competitor_id),
                    exists().where(Opportunity.won_competitor_id == competitor_id),
                )
            )
        )
    )


def loss_reasons(
    session: Session, text: str | None, include_inactive: bool
) -> Sequence[LossReason]:
    stmt = select(LossReason)
    if text:
        stmt = stmt.where(LossReason.name.icontains(text, autoescape=True))
    if not include_inactive:
        stmt = stmt.where(LossReason.active.is_(True))
    return session.scalars(stmt.order_by(LossReason.code)).all()


def find_loss_reason(session: Session, code: str) -> LossReason | None:
    return session.get(LossReason, code)


def get_loss_reason(session: Session, code: str) -> LossReason:
    found = find_loss_reason(session, code)
    if found is None:
        raise NotFound.of("loss reason", code)
    return found


def active_loss_reason_codes(session: Session) -> set[str]:
    return set(session.scalars(select(LossReason.code).where(LossReason.active.is_(True))))


def loss_reason_in_use(session: Session, code: str) -> bool:
    return bool(session.scalar(select(exists().where(Opportunity.loss_reason == code))))


def has_loss_reasons(session: Session) -> bool:
    return bool(session.scalar(select(exists().where(LossReason.code.is_not(None)))))


def insert_loss_reasons_once(session: Session, rows: Iterable[dict[str, Any]]) -> None:
    """Insert the loss reasons whose code is not taken."""
    values = list(rows)
    if values:
        table = LossReason.__table__
        session.execute(
            _insert(session)(table)
            .values(values)
            .on_conflict_do_nothing(index_elements=[table.c.code])
        )
