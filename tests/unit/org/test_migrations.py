from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from crm_common.migrations import alembic_config, upgrade
from org.models import Base


def test_migrations_build_exactly_the_models_and_come_down_again(tmp_path):
    uri = f"sqlite:///{tmp_path / 'migrated.db'}"
    upgrade("org", uri)
    engine = create_engine(uri)
    try:
        with engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
            tables = set(inspect(connection).get_table_names())
        assert {
            "departments",
            "regions",
            "people",
            "users",
            "user_roles",
            "roles",
            "grants",
            "auth_sessions",
            "refresh_tokens",
            "audit_entries",
            "outbox",
        } <= tables
        upgrade("org", uri)  # a second run is a no-op
        command.downgrade(alembic_config("org", uri), "base")
        with engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) == {"alembic_version"}
    finally:
        engine.dispose()
