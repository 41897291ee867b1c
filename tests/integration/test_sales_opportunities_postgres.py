"""Opportunities on the real PostgreSQL: the scoped list and search (tags in JSON, customer
names, amounts, close dates, idle opportunities) for principals of different reach, codes
allocated under concurrency, the standard process stored once by containers starting
together, and a process revised twice at once."""

from __future__ import annotations

import uuid
from datetime import timedelta

import eventlet
import pytest
from nameko.testing.services import worker_factory
from sqlalchemy import func, select, update

from crm_common.context import Principal, bind
from crm_common.db import SessionScope, engine_for
from crm_common.errors import Conflict, NotFound
from crm_common.migrations import upgrade
from crm_common.models import utcnow
from crm_common.outbox import OutboxWriter
from sales.application.processes import seed_defaults
from sales.models import Opportunity, OutboxMessage, SalesProcess
from sales.repository.opportunities import allocate_sequence, touch_last_activity
from sales.service import SalesService
from tests.unit.sales.sample_org import (
    ADMIN,
    BUYER,
    COLLEAGUE,
    EAST_MACHINERY,
    GUANGZHOU_HEAVY,
    MANAGER,
    OTHER_OFFICE,
    SALES,
    SALES_PERMISSIONS,
    SHANGHAI_PRECISION,
    seed,
)

pytestmark = pytest.mark.postgres

CROSSED = Principal(
    user_id="u-east-analyst",
    department_id="d-east",
    permissions=SALES_PERMISSIONS,
    grants=(
        {"regions": [{"path": "华东", "subtree": True}], "categories": ["B"]},
        {"departments": ["d-south-gz"], "owner": "self"},
    ),
)
"""Category B in 华东 and below, or their own in Guangzhou."""


@pytest.fixture
def db(pg_uri):
    upgrade("sales", pg_uri)
    scope = SessionScope(engine_for(pg_uri))
    with scope.session() as session:
        seed(session)
    return scope


@pytest.fixture
def service(db):
    bind(SALES, "req-pg")
    yield worker_factory(SalesService, db=db, outbox=OutboxWriter(OutboxMessage, "sales"))
    bind(None, None)


def as_(principal):
    bind(principal, "req-pg")


@pytest.fixture
def deals(service):
    """Opportunities of 张伟, 刘洋 (Shanghai) and 黄磊 (Guangzhou), by name."""
    made = {}
    as_(SALES)
    made["machine"] = service.create_opportunity(
        {
            "name": "数控机床改造",
            "customer_id": str(EAST_MACHINERY),
            "expected_amount": "480000",
            "expected_close_date": "2026-06-30",
            "tags": ["重点", "年度框架"],
            "contacts": [{"contact_id": str(BUYER), "role": "decision_maker"}],
        }
    )
    made["tools"] = service.create_opportunity(
        {"name": "刀具试用", "customer_id": str(EAST_MACHINERY), "expected_amount": "8000"}
    )
    as_(COLLEAGUE)
    made["bearings"] = service.create_opportunity(
        {
            "name": "轴承年度采购",
            "customer_id": str(SHANGHAI_PRECISION),
            "expected_amount": "300000",
            "expected_close_date": "2026-04-15",
            "tags": ["重点"],
        }
    )
    as_(OTHER_OFFICE)
    made["press"] = service.create_opportunity(
        {
            "name": "液压机更新",
            "customer_id": str(GUANGZHOU_HEAVY),
            "expected_amount": "900000",
            "tags": ["重点"],
        }
    )
    return made


def names(service, principal, **query):
    as_(principal)
    found = service.list_opportunities({"sort": "name", **query})["items"]
    return [item["name"] for item in found]


def test_the_scoped_list_and_search_on_postgres(service, deals):
    everyone = sorted(deal["name"] for deal in deals.values())
    assert names(service, ADMIN) == everyone
    assert names(service, SALES) == ["刀具试用", "数控机床改造"]
    assert names(service, COLLEAGUE) == ["轴承年度采购"]
    assert names(service, OTHER_OFFICE) == ["液压机更新"]
    assert names(service, MANAGER) == ["刀具试用", "数控机床改造", "轴承年度采购"]
    assert names(service, CROSSED) == ["轴承年度采购"]  # category B in 华东 only

    assert names(service, ADMIN, tags="重点") == ["数控机床改造", "液压机更新", "轴承年度采购"]
    assert names(service, ADMIN, tags="重点,年度框架") == ["数控机床改造"]
    assert names(service, MANAGER, tags="重点") == ["数控机床改造", "轴承年度采购"]
    assert names(service, MANAGER, q="精工") == ["轴承年度采购"]
    assert names(service, MANAGER, q="华东机电") == ["刀具试用", "数控机床改造"]
    assert names(service, ADMIN, q="OPP-") == everyone
    assert names(service, ADMIN, amount_min="300000", amount_max="500000") == [
        "数控机床改造",
        "轴承年度采购",
    ]
    assert names(service, MANAGER, close_from="2026-05-01") == ["数控机床改造"]
    assert names(service, ADMIN, department_id="d-south-gz") == ["液压机更新"]
    assert names(service, ADMIN, department_id="d-south") == []
    below = {"department_id": "d-south", "include_sub_departments": "true"}
    assert names(service, ADMIN, **below) == ["液压机更新"]
    assert names(service, MANAGER, **below) == []


def test_outsiders_get_not_found_on_postgres(service, deals):
    for outsider in (OTHER_OFFICE, COLLEAGUE, CROSSED):
        as_(outsider)
        with pytest.raises(NotFound):
            service.get_opportunity(deals["machine"]["id"])


def test_idle_opportunities_on_postgres(service, db, deals):
    with db.session() as session:
        table = Opportunity.__table__
        session.execute(update(table).values(created_at=table.c.created_at - timedelta(days=20)))
        machine = uuid.UUID(deals["machine"]["id"])
        assert touch_last_activity(session, machine, utcnow() - timedelta(days=2))
    assert names(service, MANAGER, idle_days=10) == ["刀具试用", "轴承年度采购"]
    assert names(service, MANAGER, idle_days=1) == ["刀具试用", "数控机床改造", "轴承年度采购"]
    as_(SALES)
    service.abandon_opportunity(deals["tools"]["id"], {"reason": "客户不再需要"}, 1)
    assert names(service, MANAGER, idle_days=10) == ["轴承年度采购"]


def test_pages_cover_every_visible_opportunity_once(service):
    as_(SALES)
    for number in range(7):
        service.create_opportunity({"name": f"备件 {number}", "customer_id": str(EAST_MACHINERY)})
    for sort in ("-created_at", "name", "-code", "updated_at"):
        seen, cursor = [], None
        while True:
            page = service.list_opportunities({"sort": sort, "limit": 3, "cursor": cursor})
            seen += [item["code"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == len(set(seen)) == 7, sort


def test_concurrent_code_allocation_never_repeats(db):
    sequences: list[int] = []

    def allocate():
        with db.session() as session:
            sequence = allocate_sequence(session, "OPP", 2031)
            eventlet.sleep(0.01)  # hold the row lock while others queue behind it
            sequences.append(sequence)

    pool = eventlet.GreenPool(10)
    for _ in range(30):
        pool.spawn(allocate)
    pool.waitall()
    assert sorted(sequences) == list(range(1, 31))


def test_opportunities_made_at_once_get_distinct_codes(service, db):
    codes: list[str] = []

    def create(number):
        bind(SALES, f"req-{number}")
        made = service.create_opportunity(
            {"name": f"并发商机 {number}", "customer_id": str(EAST_MACHINERY)}
        )
        codes.append(made["code"])

    pool = eventlet.GreenPool(8)
    for number in range(16):
        pool.spawn(create, number)
    pool.waitall()
    assert len(set(codes)) == 16
    assert sorted(int(code[-6:]) for code in codes) == list(range(1, 17))


def test_the_standard_process_is_stored_once_by_containers_starting_together(db):
    def start():
        with db.session() as session:
            seed_defaults(session, utcnow())
            eventlet.sleep(0.01)

    pool = eventlet.GreenPool(6)
    for _ in range(6):
        pool.spawn(start)
    pool.waitall()
    with db.session() as session:
        count = session.scalar(
            select(func.count()).select_from(SalesProcess).where(SalesProcess.code == "standard")
        )
    assert count == 1


def test_two_revisions_of_one_revision_at_once_one_conflicts(service, db):
    as_(ADMIN)
    service.seed_sales_defaults()
    [standard] = service.list_sales_processes({})
    outcomes: list[str] = []

    def revise(name):
        bind(ADMIN, f"req-{name}")
        try:
            service.update_sales_process(standard["id"], {"name": name}, standard["version"])
            outcomes.append("revised")
        except Conflict:
            outcomes.append("conflict")

    pool = eventlet.GreenPool(2)
    for name in ("项目型销售", "标准流程"):
        pool.spawn(revise, name)
    pool.waitall()
    assert sorted(outcomes) == ["conflict", "revised"]
    as_(ADMIN)
    [current] = service.list_sales_processes({})
    assert current["revision"] == 2
