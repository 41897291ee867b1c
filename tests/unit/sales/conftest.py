"""Sales service methods run through nameko's worker_factory on a fresh SQLite database whose
copies of org and customer hold the sample organisation (``sample_org``)."""

from __future__ import annotations

import pytest
from nameko.testing.services import worker_factory
from sqlalchemy import insert

from crm_common.context import bind
from crm_common.outbox import OutboxWriter
from sales.domain.expenses import CATEGORY_LABELS, DEFAULT_CATEGORIES, DEFAULT_SECOND_LEVEL_AMOUNT
from sales.models import Base, ExpenseCategory, OutboxMessage
from sales.service import SalesService
from tests.fixtures import database_from, database_template, outbox_reader

from .sample_org import SALES, seed


@pytest.fixture(scope="session")
def sales_template(tmp_path_factory):
    return database_template(tmp_path_factory.mktemp("sales"), Base.metadata, seed)


@pytest.fixture
def db(sqlite_uri, sales_template):
    return database_from(sales_template, sqlite_uri)


@pytest.fixture
def principal():
    """Calls are made as 张伟 (``sample_org.SALES``) unless a test acts as someone else."""
    bind(SALES, "req-test")
    yield SALES
    bind(None, None)


@pytest.fixture
def act_as():
    """Make the following service calls as ``principal`` (the test's principal is restored
    afterwards by the ``principal`` fixture's teardown)."""

    def act(principal):
        bind(principal, "req-test")
        return principal

    return act


@pytest.fixture
def service(db, principal):
    return worker_factory(SalesService, db=db, outbox=OutboxWriter(OutboxMessage, "sales"))


@pytest.fixture
def expense_service(db, principal):
    """The service with the default expense categories and second approval level."""
    with db.session() as session:
        session.execute(
            insert(ExpenseCategory),
            [
                {"code": code, "name": CATEGORY_LABELS[code], "active": True}
                for code in DEFAULT_CATEGORIES
            ],
        )
    return worker_factory(
        SalesService,
        db=db,
        outbox=OutboxWriter(OutboxMessage, "sales"),
        second_level_amount=DEFAULT_SECOND_LEVEL_AMOUNT,
    )


@pytest.fixture
def outbox_events(db):
    """The (type, data) of every event written to the outbox so far, oldest first."""
    return outbox_reader(db, OutboxMessage)
