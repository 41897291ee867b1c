"""The notify service as the scaffold made it: it migrates and answers the kit's entrypoints."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from nameko.testing.services import worker_factory
from sqlalchemy import create_engine

from crm_common.migrations import upgrade
from notify.models import Base
from notify.schemas import PUBLIC_SCHEMAS
from notify.service import NotifyService


def test_migrations_build_exactly_the_models(tmp_path):
    uri = f"sqlite:///{tmp_path / 'notify.db'}"
    upgrade("notify", uri)
    engine = create_engine(uri)
    try:
        with engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    finally:
        engine.dispose()


def test_answers_ping_and_publishes_its_schemas():
    service = worker_factory(NotifyService)
    assert service.ping() == "pong"
    assert set(PUBLIC_SCHEMAS) <= set(service.api_schemas())
    assert isinstance(service.api_events(), dict)
