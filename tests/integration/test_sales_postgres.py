"""The sales database on PostgreSQL: the migrations build exactly the models, the indexes the
common queries need exist, and the migrations undo cleanly."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from crm_common.migrations import alembic_config, upgrade
from sales.models import Base

pytestmark = pytest.mark.postgres

QUERY_INDEXES = {
    "opportunities": {
        ("owner_id", "status"),
        ("department_id", "status"),
        ("status", "expected_close_date"),
        ("region",),
        ("category",),
    },
    "activities": {("owner_id", "start_at"), ("department_id", "start_at"), ("status", "start_at")},
    "expenses": {("submitter_id", "status"), ("status", "spent_on"), ("department_id", "spent_on")},
    "people": {("user_id",), ("department_id",)},
}


def test_migrations_build_exactly_the_models_and_undo_cleanly(pg_uri):
    upgrade("sales", pg_uri)
    engine = create_engine(pg_uri)
    try:
        with engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
            inspector = inspect(connection)
            for table, wanted in QUERY_INDEXES.items():
                indexed = {tuple(i["column_names"]) for i in inspector.get_indexes(table)}
                assert wanted <= indexed, table
        command.downgrade(alembic_config("sales", pg_uri), "0001")
        with engine.connect() as connection:
            left = set(inspect(connection).get_table_names())
        assert left == {"outbox", "inbox", "idempotency_records", "alembic_version"}
        upgrade("sales", pg_uri)
    finally:
        engine.dispose()
