"""The sales demo data set: loaded once through the migrations into SQLite, consistent with the
customer and org demos, and shaped by the domain's own rules."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from crm_common.db import SessionScope, dispose_engine, engine_for
from crm_common.migrations import upgrade
from demo.customer import DEMO_USERS as CUSTOMER_OWNERS
from demo.customer import build as build_customers
from demo.org import DEPARTMENTS, PEOPLE
from demo.sales import (
    COMPETITORS,
    DEMO_NOW,
    OPPORTUNITY_COUNT,
    PERSON_OF_USER,
    PROCESS_CODE,
    TARGET_YEAR,
    build,
    ensure_demo,
    main,
    standard_process,
)
from sales.application.competitors import DEFAULT_LOSS_REASONS
from sales.domain.activities import is_overdue
from sales.domain.expenses import (
    ApprovalStep,
    ExpenseStatus,
    approval_chain,
    parse_expense_code,
    pending_step,
)
from sales.domain.forecast import PipelineRow, weighted_amount, weighted_pipeline
from sales.domain.money import Money
from sales.domain.opportunities import Status, effective_probability, parse_opportunity_code
from sales.domain.processes import Outcome, missing_fields
from sales.models import (
    Activity,
    CodeCounter,
    Competitor,
    Contact,
    Customer,
    Expense,
    ExpenseApproval,
    HistoryEntry,
    LossReason,
    Opportunity,
    OpportunityContact,
    OutboxMessage,
    Person,
    SalesProcess,
    SalesStage,
    SalesTarget,
    StageHistory,
)
from sales.repository.read_models import department_chain, person_of_user

NOW = DEMO_NOW.replace(tzinfo=None)
"""``DEMO_NOW`` as SQLite gives timestamps back: without their zone (UTC)."""


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    uri = f"sqlite:///{tmp_path_factory.mktemp('sales-demo') / 'sales.db'}"
    counts = ensure_demo(uri)
    yield uri, counts
    dispose_engine(uri)


@pytest.fixture(scope="module")
def rows(loaded):
    """Every table the demo fills, read back as ORM records."""
    with SessionScope(engine_for(loaded[0])).session() as session:
        session.expire_on_commit = False
        return {
            model: list(session.scalars(select(model)))
            for model in (
                Opportunity,
                OpportunityContact,
                StageHistory,
                Activity,
                Expense,
                ExpenseApproval,
                SalesTarget,
                Customer,
                Contact,
                Person,
                CodeCounter,
            )
        }


def by_id(records):
    return {record.id: record for record in records}


def test_the_data_set_is_deterministic():
    assert build() == build()


def test_loads_once_through_the_migrations_and_announces_nothing(loaded):
    uri, counts = loaded
    assert counts["opportunities"] == OPPORTUNITY_COUNT
    assert counts["customers"] == len(build_customers()["customers"])
    assert {"departments": len(DEPARTMENTS), "people": len(PEOPLE)}.items() <= counts.items()
    assert ensure_demo(uri) == {}
    with SessionScope(engine_for(uri)).session() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
        assert session.scalar(select(func.count()).select_from(Opportunity)) == OPPORTUNITY_COUNT
        assert session.scalar(select(func.count()).select_from(SalesProcess)) == 1
        assert session.scalar(select(func.count()).select_from(Competitor)) == len(COMPETITORS)
        reasons = set(session.scalars(select(LossReason.code)))
        assert reasons == {code for code, _ in DEFAULT_LOSS_REASONS}
        created = session.scalars(
            select(HistoryEntry.entity_type).where(HistoryEntry.change == "created")
        )
        assert Counter(created) == {
            "opportunity": OPPORTUNITY_COUNT,
            "expense": counts["expenses"],
            "quote": counts["quotes"],
            "order": counts["orders"],
            "contract": counts["contracts"],
        }


def test_opportunities_spread_over_statuses_stages_and_owners(rows):
    opportunities = rows[Opportunity]
    statuses = Counter(o.status for o in opportunities)
    assert len(opportunities) == OPPORTUNITY_COUNT
    assert 0.35 < statuses[Status.OPEN] / OPPORTUNITY_COUNT < 0.65
    assert statuses[Status.WON] > 40 and statuses[Status.LOST] > 40
    assert statuses[Status.ABANDONED] > 10
    process = standard_process()
    open_stages = Counter(o.stage_code for o in opportunities if o.status == Status.OPEN)
    assert set(open_stages) == {stage.code for stage in process.open_stages}
    assert all(count >= 20 for count in open_stages.values())
    assert {o.owner_id for o in opportunities} == set(CUSTOMER_OWNERS)
    assert any(o.probability_override is not None for o in opportunities)
    lost = [o for o in opportunities if o.status == Status.LOST]
    assert all(o.loss_reason for o in lost) and any(o.won_competitor_id for o in lost)


def test_every_record_belongs_to_a_customer_it_shares_its_scope_with(rows):
    customers = by_id(rows[Customer])
    contacts = by_id(rows[Contact])
    for record in (*rows[Opportunity], *rows[Activity]):
        customer = customers[record.customer_id]
        assert customer.status not in ("disabled", "merged")
        assert (record.owner_id, record.department_id) == (
            customer.owner_id,
            customer.department_id,
        )
        assert (record.region, record.category) == (customer.region, customer.category)
        if getattr(record, "contact_id", None):
            assert contacts[record.contact_id].customer_id == customer.id
    opportunities = by_id(rows[Opportunity])
    for deal_contact in rows[OpportunityContact]:
        customer_id = opportunities[deal_contact.opportunity_id].customer_id
        assert contacts[deal_contact.contact_id].customer_id == customer_id
    for expense in rows[Expense]:
        if expense.customer_id:
            customer = customers[expense.customer_id]
            assert (expense.region, expense.category) == (customer.region, customer.category)


def test_stage_history_follows_the_process(rows):
    process = standard_process()
    visits = defaultdict(list)
    for visit in rows[StageHistory]:
        visits[visit.opportunity_id].append(visit)
    contacts = defaultdict(list)
    for deal_contact in rows[OpportunityContact]:
        contacts[deal_contact.opportunity_id].append({"role": deal_contact.role})
    moved_back = 0
    for opportunity in rows[Opportunity]:
        stays = sorted(visits[opportunity.id], key=lambda v: v.entered_at)
        assert stays[0].stage_code == process.first_stage.code
        assert stays[0].entered_at == opportunity.created_at
        for stay, following in zip(stays, stays[1:], strict=False):
            assert stay.left_at == following.entered_at > stay.entered_at
            source, target = process.stage(stay.stage_code), process.stage(following.stage_code)
            if target.position < source.position:
                assert following.reason
                moved_back += 1
            elif target.outcome == Outcome.OPEN:
                assert process.open_stages.index(target) == process.open_stages.index(source) + 1
            elif target.outcome == Outcome.WON:
                assert source == process.open_stages[-1]
        last = stays[-1]
        assert last.left_at is None and last.stage_code == opportunity.stage_code
        assert last.entered_at <= NOW
        values = {
            "expected_amount": opportunity.expected_amount,
            "expected_close_date": opportunity.expected_close_date,
            "contacts": contacts[opportunity.id],
        }
        entered = [process.stage(stay.stage_code) for stay in stays]
        assert missing_fields(entered, values) == {}
        stage = process.stage(opportunity.stage_code)
        assert opportunity.probability == effective_probability(
            stage, opportunity.probability_override, opportunity.status
        )
        if opportunity.status in (Status.WON, Status.LOST):
            assert opportunity.closed_at == last.entered_at
            assert stage.outcome == opportunity.status
        elif opportunity.status == Status.ABANDONED:
            assert stage.is_open and opportunity.closed_at > last.entered_at
        else:
            assert stage.is_open and opportunity.closed_at is None
    assert moved_back > 0


def test_activities_done_planned_overdue_and_checked_in(rows):
    activities = rows[Activity]
    statuses = Counter(a.status for a in activities)
    assert statuses["done"] > 800 and statuses["planned"] > 50 and statuses["cancelled"] > 0
    done = [a for a in activities if a.status == "done"]
    assert all(a.result and a.done_at <= NOW for a in done)
    visits = [a for a in done if a.type == "visit"]
    assert visits and all(a.checkin_lat is not None and a.checkin_at for a in visits)
    planned = [a for a in activities if a.status == "planned"]
    overdue = [a for a in planned if is_overdue(a.status, a.start_at, a.duration_minutes, NOW)]
    assert 0 < len(overdue) < len(planned)
    last_done = defaultdict(lambda: None)
    for activity in done:
        if activity.opportunity_id:
            seen = last_done[activity.opportunity_id]
            last_done[activity.opportunity_id] = max(filter(None, (seen, activity.done_at)))
    for opportunity in rows[Opportunity]:
        assert opportunity.last_activity_at == last_done[opportunity.id]


def test_expenses_wait_for_the_managers_their_approval_chain_names(loaded, rows):
    approvals = defaultdict(list)
    for approval in rows[ExpenseApproval]:
        approvals[approval.expense_id].append(approval)
    statuses = Counter(e.status for e in rows[Expense])
    assert {s.value for s in ExpenseStatus} == set(statuses)
    with SessionScope(engine_for(loaded[0])).session() as session:
        for expense in rows[Expense]:
            submitter = person_of_user(session, expense.submitter_id)
            assert submitter.department_id == expense.department_id
            chain = department_chain(session, expense.department_id)
            expected = approval_chain(
                submitter.id,
                [(link.department_id, link.manager_person_id) for link in chain],
                Money(expense.amount, expense.currency),
            )
            levels = sorted(approvals[expense.id], key=lambda a: a.level)
            assert [a.approver_person_id for a in levels] == [
                s.approver_person_id for s in expected
            ]
            steps = [ApprovalStep(a.level, "", a.approver_person_id, a.decision) for a in levels]
            decisions = [a.decision for a in levels if a.decision]
            if expense.status == ExpenseStatus.SUBMITTED:
                waiting = pending_step(steps)
                assert waiting is not None and decisions == []
                approver = session.get(Person, waiting.approver_person_id)
                assert approver is not None and approver.id != submitter.id
                assert levels[0].approver_user_id == approver.user_id
                assert waiting.approver_person_id in {link.manager_person_id for link in chain}
            elif expense.status == ExpenseStatus.REJECTED:
                assert decisions[-1] == "rejected" and levels[len(decisions) - 1].comment
            else:
                assert decisions == ["approved"] * len(levels)
                assert (expense.paid_at is not None) == (expense.status == ExpenseStatus.PAID)


def test_no_two_codes_alike_and_the_counters_go_on_from_them(rows):
    counters = {(c.prefix, c.year): c.last_value for c in rows[CodeCounter]}
    for prefix, records, parse in (
        ("OPP", rows[Opportunity], parse_opportunity_code),
        ("EXP", rows[Expense], parse_expense_code),
    ):
        codes = [parse(record.code) for record in records]
        assert None not in codes and len(set(codes)) == len(codes)
        for year in {year for year, _ in codes}:
            assert counters[(prefix, year)] == max(seq for y, seq in codes if y == year)


def test_targets_for_every_month_of_the_year_per_salesperson_and_department(rows):
    targets = defaultdict(dict)
    for target in rows[SalesTarget]:
        targets[(target.subject_type, target.subject_id)][target.period] = target.amount
    months = {f"{TARGET_YEAR}-{n:02d}" for n in range(1, 13)}
    people = {PERSON_OF_USER[owner] for owner in CUSTOMER_OWNERS}
    assert {subject for kind, subject in targets if kind == "person"} == people
    assert all(set(periods) == months for periods in targets.values())
    for period in months:
        company = targets[("department", "d-hq")][period]
        assert company == sum(targets[("person", p)][period] for p in people)


def test_the_weighted_pipeline_rounds_per_opportunity(rows):
    open_deals = [o for o in rows[Opportunity] if o.status == Status.OPEN]
    groups = weighted_pipeline(
        (
            PipelineRow(o.owner_id, o.department_id, o.stage_code, o.probability, o.expected_amount)
            for o in open_deals
        ),
        "owner",
    )
    per_owner = defaultdict(Decimal)
    for o in open_deals:
        per_owner[o.owner_id] += weighted_amount(o.expected_amount, o.probability)
    assert {g.key: g.weighted for g in groups} == per_owner
    assert sum(per_owner.values()) > 0


def test_the_demo_follows_a_standard_process_the_database_has_already(sqlite_uri):
    upgrade("sales", sqlite_uri)
    process_id = uuid.uuid4()
    with SessionScope(engine_for(sqlite_uri)).session() as session:
        session.add(SalesProcess(id=process_id, code=PROCESS_CODE, name="标准流程", revision=1))
        session.flush()
        session.add_all(
            SalesStage(
                process_id=process_id,
                code=stage.code,
                name=stage.name,
                position=stage.position,
                probability=stage.probability,
                required_fields=list(stage.required_fields),
                outcome=str(stage.outcome),
            )
            for stage in standard_process().stages
        )
    ensure_demo(sqlite_uri, migrate=False)
    with SessionScope(engine_for(sqlite_uri)).session() as session:
        assert session.scalar(select(func.count()).select_from(SalesProcess)) == 1
        used = set(session.scalars(select(Opportunity.process_id).distinct()))
        assert used == {process_id}
        assert set(session.scalars(select(StageHistory.process_id).distinct())) == used


def test_the_command_line(sqlite_uri, capsys):
    main(["--uri", sqlite_uri])
    assert "sales demo data loaded" in capsys.readouterr().out
    main(["--uri", sqlite_uri])
    assert "already has opportunities" in capsys.readouterr().out


def test_items_a_price_list_and_quotes_in_every_status(loaded):
    from sales.models.catalog import Item, PriceList
    from sales.models.quotes import Quote, QuoteApproval

    uri, counts = loaded
    with SessionScope(engine_for(uri)).session() as session:
        assert session.scalar(select(func.count()).select_from(Item)) == counts["items"] > 30
        assert session.scalar(select(func.count()).select_from(PriceList)) == 1
        statuses = Counter(session.scalars(select(Quote.status)))
        assert set(statuses) == {"draft", "submitted", "approved", "sent", "rejected", "expired"}
        assert sum(statuses.values()) == counts["quotes"]
        waiting = session.scalars(select(QuoteApproval).where(QuoteApproval.decision.is_(None)))
        assert {a.quote_id for a in waiting} == set(
            session.scalars(select(Quote.id).where(Quote.status == "submitted"))
        )
        for quote in session.scalars(select(Quote)):
            opportunity = session.get(Opportunity, quote.opportunity_id)
            assert opportunity is not None and opportunity.customer_id == quote.customer_id
            assert quote.owner_id == opportunity.owner_id


def test_orders_and_contracts_in_their_statuses(loaded):
    from sales.models.orders import Contract, SalesOrder, SalesOrderShipment

    uri, counts = loaded
    with SessionScope(engine_for(uri)).session() as session:
        orders = Counter(session.scalars(select(SalesOrder.status)))
        assert sum(orders.values()) == counts["orders"] > 0
        assert {"draft", "confirmed", "partially_shipped", "shipped", "rejected"} <= set(orders)
        assert session.scalar(select(func.count()).select_from(SalesOrderShipment)) > 0
        contracts = Counter(session.scalars(select(Contract.status)))
        assert sum(contracts.values()) == counts["contracts"] > 0
        assert {"draft", "active", "completed", "terminated"} <= set(contracts)
        for order in session.scalars(select(SalesOrder)):
            opportunity = session.get(Opportunity, order.opportunity_id)
            assert opportunity is not None and opportunity.status == "won"
            assert (order.customer_id, order.owner_id) == (
                opportunity.customer_id,
                opportunity.owner_id,
            )
