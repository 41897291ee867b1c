"""PostgreSQL under eventlet: a slow query parks its own green thread, not the process."""

import eventlet
import pytest
from sqlalchemy import text

from crm_common.db import engine_for


def test_two_slow_queries_overlap_in_one_process(pg_uri):
    engine = engine_for(pg_uri)

    def sleeper():
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_sleep(1.5) /* crm-overlap-probe */"))

    slow = eventlet.spawn(sleeper)
    eventlet.sleep(0.3)
    with engine.connect() as connection:
        running = connection.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE state = 'active' AND query LIKE '%crm-overlap-probe%' "
                "AND pid <> pg_backend_pid()"
            )
        ).scalar()
    slow.wait()
    # This second query ran while the first was still sleeping inside PostgreSQL.
    assert running == 1


def test_green_threads_keep_running_during_a_slow_query(pg_uri):
    engine = engine_for(pg_uri)
    ticks = []

    def ticker():
        for _ in range(10):
            ticks.append(1)
            eventlet.sleep(0.05)

    thread = eventlet.spawn(ticker)
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_sleep(1)"))
        ticks_during_query = len(ticks)
    thread.wait()
    assert ticks_during_query == 10


@pytest.mark.parametrize("statement", ["SELECT 1"])
def test_engine_is_pooled(pg_uri, statement):
    engine = engine_for(pg_uri)
    assert engine is engine_for(pg_uri)
    with engine.connect() as connection:
        assert connection.execute(text(statement)).scalar() == 1
    assert engine.pool.size() == 10
