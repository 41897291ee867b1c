from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from crm_common.migrations import upgrade
from customer.models import Base


def test_migrations_build_exactly_the_models(tmp_path):
    uri = f"sqlite:///{tmp_path / 'migrated.db'}"
    upgrade("customer", uri)
    engine = create_engine(uri)
    try:
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
            assert diff == []
            tables = set(inspect(connection).get_table_names())
        assert {"customers", "contacts", "customer_tags", "outbox", "inbox"} <= tables
        upgrade("customer", uri)  # a second run is a no-op
    finally:
        engine.dispose()
