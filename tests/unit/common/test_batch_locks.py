"""Batch locks: batches of one family of documents apply one at a time; on PostgreSQL batches
of different families side by side, elsewhere (SQLite's one writer) each in turn."""

import eventlet
import pytest
from nameko.containers import ServiceContainer
from nameko.testing.utils import get_extension

from crm_common.batch_consumer import BatchLock, FamilyLocks


class Batches:
    name = "batches"
    locks = BatchLock()


def locks_of(db_uri: str) -> FamilyLocks:
    container = ServiceContainer(Batches, {"DB_URIS": {"batches": db_uri}})
    provider = get_extension(container, BatchLock)
    provider.setup()
    return provider.get_dependency(None)


def holders_at_once(locks: FamilyLocks, families: list[str]) -> int:
    """How many of the greenlets, one per family, held their lock at the same time at most."""
    holding: list[str] = []
    most = 0

    def hold(family: str) -> None:
        nonlocal most
        with locks.of(family):
            holding.append(family)
            most = max(most, len(holding))
            eventlet.sleep(0.01)  # as a batch waiting on its database
            holding.remove(family)

    pool = eventlet.GreenPool()
    for family in families:
        pool.spawn(hold, family)
    pool.waitall()
    return most


def test_on_postgresql_families_apply_side_by_side_and_each_one_alone():
    locks = locks_of("postgresql+psycopg2://postgres@localhost/crm")

    assert locks.of("orders") is locks.of("orders")
    assert holders_at_once(locks, ["orders", "receivables", "catalog"]) == 3
    assert holders_at_once(locks, ["orders", "orders", "orders"]) == 1


@pytest.mark.parametrize(
    "db_uri", ["sqlite:///var/batches.db", "mysql+pymysql://root@localhost/crm"]
)
def test_elsewhere_every_family_takes_the_one_writers_turn(db_uri):
    locks = locks_of(db_uri)

    assert locks.of("orders") is locks.of("receivables")
    assert holders_at_once(locks, ["orders", "receivables", "catalog"]) == 1


def test_without_a_configured_database_the_default_sqlite_file_shares_one_lock():
    container = ServiceContainer(Batches, {})
    provider = get_extension(container, BatchLock)
    provider.setup()

    assert provider.get_dependency(None).shared
