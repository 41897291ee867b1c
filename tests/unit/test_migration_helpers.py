"""crm_common.migrations' outbox and inbox DDL builds exactly crm_common.models' mixins."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import create_engine, inspect
from sqlalchemy.orm import DeclarativeBase

from crm_common.migrations import (
    create_inbox_table,
    create_outbox_table,
    drop_inbox_table,
    drop_outbox_table,
)
from crm_common.models import InboxMixin, OutboxMixin


class Base(DeclarativeBase):
    pass


class OutboxMessage(OutboxMixin, Base):
    pass


class InboxEvent(InboxMixin, Base):
    pass


@pytest.fixture(params=["sqlite", "postgres"])
def uri(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'helpers.db'}"
    return request.getfixturevalue("pg_uri")


def test_the_helpers_create_the_tables_of_the_mixins_and_drop_them(uri):
    engine = create_engine(uri)
    try:
        with engine.begin() as connection:
            context = MigrationContext.configure(connection)
            operations = Operations(context)
            create_outbox_table(operations)
            create_inbox_table(operations)
            assert compare_metadata(context, Base.metadata) == []
            drop_inbox_table(operations)
            drop_outbox_table(operations)
            assert inspect(connection).get_table_names() == []
    finally:
        engine.dispose()


def test_a_changed_column_would_be_noticed(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'helpers.db'}")
    try:
        with engine.begin() as connection:
            context = MigrationContext.configure(connection)
            create_outbox_table(Operations(context))
            create_inbox_table(Operations(context))
            OutboxMessage.__table__.c.last_error.nullable = False
            try:
                assert compare_metadata(context, Base.metadata) != []
            finally:
                OutboxMessage.__table__.c.last_error.nullable = True
    finally:
        engine.dispose()
