"""The forecast's figures follow the same data scope as the opportunity list, tested by property.

Hypothesis draws a department tree and region tree (as ``test_customer_scope`` does, whose
strategies and oracle this module reuses), opportunities spread over them with every status,
amounts to the fen (none, too), probabilities 0..100 and two currencies, and a principal with
zero to three grants crossing random dimensions. For each example, per currency:

- the open opportunities the list (``list_opportunities``, every page) shows add up to the
  forecast's totals: count, amount, and the weighted amount rounded to the fen per opportunity;
- the forecast's groups (by a drawn grouping) are the domain's ``weighted_pipeline`` over the
  rows the oracle says the principal may see.

Examples per run: 150 on SQLite, 30 on PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from nameko.testing.services import worker_factory
from sqlalchemy import insert

from crm_common.context import Principal, bind
from crm_common.db import SessionScope, engine_for
from crm_common.outbox import OutboxWriter
from sales.application.processes import seed_defaults
from sales.domain.forecast import GROUPINGS, PipelineRow, weighted_amount, weighted_pipeline
from sales.models import Base, Customer, Opportunity, OutboxMessage, SalesProcess
from sales.service import SalesService
from tests.property.test_customer_scope import (
    CATEGORIES,
    SETTINGS,
    USERS,
    World,
    allowed,
    compile_grant,
    principals_grants,
    share,
    worlds,
)

SQLITE_EXAMPLES = 150
PG_EXAMPLES = 30
PERMISSIONS = ("opportunity:read", "forecast:read")
STATUSES = ("open", "open", "open", "won", "lost", "abandoned")
CURRENCIES = ("CNY", "CNY", "USD")
START = datetime(2026, 1, 1, tzinfo=UTC)
CUSTOMER = uuid.UUID("00000000-0000-4000-8000-0000000000c1")
PAGE = 7


def amounts():
    """Amounts to the fen, most of them ending in a half fen once weighted."""
    fen = st.integers(0, 10**9) | st.sampled_from((1, 5, 15, 25, 1001, 33333, 99999))
    return st.none() | fen.map(lambda n: Decimal(n) / 100)


def opportunities_in(world: World):
    row = st.fixed_dictionaries(
        {
            "owner_id": st.sampled_from(USERS),
            "department_id": st.sampled_from((*world.departments, None)),
            "region": st.sampled_from((*world.region_paths, None)),
            "category": st.sampled_from((*CATEGORIES, None)),
            "status": st.sampled_from(STATUSES),
            "expected_amount": amounts(),
            "probability": st.integers(0, 100),
            "currency": st.sampled_from(CURRENCIES),
            "expected_close_date": st.none()
            | st.integers(0, 120).map(lambda d: date(2026, 1, 1) + timedelta(days=d)),
        }
    )
    return st.lists(row, min_size=3, max_size=16)


@st.composite
def scenarios(draw):
    world = draw(worlds())
    opportunities = draw(opportunities_in(world))
    user = draw(st.sampled_from(USERS))
    grants = draw(principals_grants(world))
    group_by = draw(st.sampled_from(GROUPINGS))
    return world, opportunities, user, grants, group_by


class Book:
    """One database and service worker for all the examples of a test function."""

    def __init__(self, uri: str) -> None:
        self.db = SessionScope(engine_for(uri))
        Base.metadata.create_all(self.db.engine)
        with self.db.session() as session:
            seed_defaults(session, START)
            self.process_id = session.query(SalesProcess.id).limit(1).scalar()
            session.add(Customer(id=CUSTOMER, code="C2026000001", name="华东机电", status="formal"))
        self.service = worker_factory(
            SalesService, db=self.db, outbox=OutboxWriter(OutboxMessage, "sales")
        )

    def load(self, opportunities: list[dict]) -> list[dict]:
        rows = [
            {
                **o,
                "id": uuid.uuid4(),
                "code": f"OPP-2001-{i + 1:06d}",
                "name": f"商机{i}",
                "customer_id": CUSTOMER,
                "process_id": self.process_id,
                "stage_code": "proposal",
                "created_at": START + timedelta(minutes=i % 5),
                "updated_at": START,
                "version": 1,
            }
            for i, o in enumerate(opportunities)
        ]
        with self.db.session() as session:
            session.execute(Opportunity.__table__.delete())
            session.execute(insert(Opportunity), rows)
        return rows


@pytest.fixture
def sqlite_book(sqlite_uri):
    yield Book(sqlite_uri)
    bind(None, None)


@pytest.fixture
def pg_book(pg_uri):
    yield Book(pg_uri)
    bind(None, None)


def listed_open(service) -> list[dict]:
    seen, cursor = [], None
    while True:
        page = service.list_opportunities({"status": "open", "limit": PAGE, "cursor": cursor})
        seen += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return seen


def sums(items) -> dict[str, tuple[int, Decimal, Decimal]]:
    """Count, amount and weighted amount per currency of opportunities as the list shows
    them."""
    found: dict[str, list] = defaultdict(lambda: [0, Decimal(0), Decimal(0)])
    for item in items:
        amount = None if item["expected_amount"] is None else Decimal(item["expected_amount"])
        total = found[item["currency"]]
        total[0] += 1
        total[1] += amount or Decimal(0)
        total[2] += weighted_amount(amount, item["probability"])
    return {currency: (n, a, w) for currency, (n, a, w) in found.items()}


def check(book: Book, scenario) -> None:
    world, generated, user, grants, group_by = scenario
    rows = book.load(generated)
    principal = Principal(
        user_id=user,
        permissions=PERMISSIONS,
        grants=tuple(compile_grant(world, g) for g in grants),
    )
    bind(principal, "req-property")
    service = book.service
    shown = [r for r in rows if allowed(world, user, grants, r)]
    open_rows = [r for r in shown if r["status"] == "open"]
    event(share(len(shown), len(rows)))

    listed = listed_open(service)
    assert sorted(i["id"] for i in listed) == sorted(str(r["id"]) for r in open_rows)
    forecast = service.forecast_pipeline({"group_by": group_by})
    totals = {
        t["currency"]: (t["count"], Decimal(t["amount"]), Decimal(t["weighted"]))
        for t in forecast["totals"]
    }
    assert totals == sums(listed)

    expected = weighted_pipeline(
        [
            PipelineRow(
                r["owner_id"],
                r["department_id"],
                r["stage_code"],
                r["probability"],
                r["expected_amount"],
                r["currency"],
                r["expected_close_date"],
            )
            for r in open_rows
        ],
        group_by,
    )
    assert {
        (g["key"], g["currency"], g["count"], Decimal(g["amount"]), Decimal(g["weighted"]))
        for g in forecast["groups"]
    } == {(g.key, g.currency, g.count, g.amount, g.weighted) for g in expected}


@settings(max_examples=SQLITE_EXAMPLES, **SETTINGS)
@given(scenario=scenarios())
def test_list_totals_equal_the_forecast_for_any_principal(sqlite_book, scenario):
    check(sqlite_book, scenario)


@pytest.mark.postgres
@settings(max_examples=PG_EXAMPLES, **SETTINGS)
@given(scenario=scenarios())
def test_list_totals_equal_the_forecast_on_postgres(pg_book, scenario):
    check(pg_book, scenario)
