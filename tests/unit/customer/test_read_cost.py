"""What a read costs the database: one statement per get, page and count, and no analysis of
the customers table at every check-in of the connection."""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager

import pytest
from nameko.testing.services import worker_factory
from sqlalchemy import event

from crm_common.outbox import OutboxWriter
from customer.models import OutboxMessage
from customer.service import CustomerService

REGIONS = ("华东/上海", "华东/江苏", "华北/北京")


@pytest.fixture
def customers(make_customer):
    """A few customers, none with an ERP code: the partial unique index on ERP codes is empty."""
    return [
        make_customer(f"上海第{n}机电设备有限公司", region=REGIONS[n % 3], tags=["重点客户"])
        for n in range(6)
    ]


@contextmanager
def statements(engine):
    """The SQL statements the engine runs meanwhile (the list fills as they run)."""
    ran: list[str] = []

    def count(_conn, _cursor, statement, _parameters, _context, _executemany):
        ran.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield ran
    finally:
        event.remove(engine, "before_cursor_execute", count)


@pytest.mark.parametrize(
    "read",
    [
        pytest.param(lambda service, ids: service.get_customer(ids[0]), id="get"),
        pytest.param(lambda service, ids: service.list_customers({"limit": 20}), id="list"),
        pytest.param(
            lambda service, ids: service.list_customers(
                {"limit": 2, "q": "机电", "region": "华东", "tags": "重点客户"}
            ),
            id="search",
        ),
        pytest.param(lambda service, ids: service.count_customers({}), id="count"),
        pytest.param(
            lambda service, ids: service.count_customers({"q": "机电", "tags": "重点客户"}),
            id="count over customers",
        ),
        pytest.param(lambda service, ids: service.summarize_customers({}), id="summary"),
    ],
)
def test_a_read_runs_one_statement(db, service, customers, read):
    ids = [c["id"] for c in customers]
    read(service, ids)  # the connection's first check-ins may analyse tables
    with statements(db.engine) as ran:
        read(service, ids)
    assert len(ran) == 1, ran


def test_reads_do_not_analyse_the_customers_again_at_every_check_in(db, service, customers):
    """SQLite 3.40 keeps no statistics for an empty partial index, and PRAGMA optimize then
    finds its table in need of ANALYZE at every call: a full scan of every customer per
    request, 80 ms at 100,000 customers. (Empty tables stay in need: analysing them is free.)"""
    analysed: list[str] = []

    def watch(action, table, *_):
        if action == sqlite3.SQLITE_ANALYZE and table == "customers":
            analysed.append(table)
        return sqlite3.SQLITE_OK

    with db.engine.connect() as connection:  # the file's one pooled connection
        dbapi_connection = connection.connection.dbapi_connection
        dbapi_connection.set_authorizer(watch)
    try:
        for _ in range(20):
            service.list_customers({"limit": 20, "region": "华东", "status": "potential"})
            service.get_customer(customers[0]["id"])
        with db.engine.connect() as connection:
            pending = connection.exec_driver_sql("PRAGMA optimize(3)").scalars().all()
    finally:
        dbapi_connection.set_authorizer(None)
    assert len(analysed) <= 1
    assert not [statement for statement in pending if "customers" in statement]


def test_counts_and_summaries_on_sqlite_stay_exact_whatever_the_threshold(db, customers):
    """Estimates are PostgreSQL's (tests/integration/test_customer_postgres.py)."""
    service = worker_factory(
        CustomerService,
        db=db,
        outbox=OutboxWriter(OutboxMessage, "customer"),
        count_estimate_above=1,
    )
    for query in ({"q": "机电"}, {"tags": "重点客户"}, {}):
        assert service.count_customers(query) == {"count": len(customers)}
        assert service.summarize_customers(query)["total"] == len(customers)
        assert "estimated" not in service.summarize_customers(query)
