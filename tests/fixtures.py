"""Fixtures shared by every test package: fresh databases on SQLite and PostgreSQL, and a
reader of what a service wrote to its outbox."""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from crm_common.db import dispose_engine

PG_ADMIN_URI = os.environ.get(
    "PG_ADMIN_URI", "postgresql+psycopg2://postgres@localhost:5432/postgres"
)


@pytest.fixture
def sqlite_uri(tmp_path):
    uri = f"sqlite:///{tmp_path / 'service.db'}"
    yield uri
    dispose_engine(uri)


@pytest.fixture
def pg_uri():
    """A new, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"crm_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URI, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # pragma: no cover - depends on the machine
        admin.dispose()
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URI}: {exc}")
    uri = make_url(PG_ADMIN_URI).set(database=name).render_as_string(hide_password=False)
    yield uri
    dispose_engine(uri)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def outbox_reader(db, model):
    """``read(event_type=None)``: the (type, data) of every event ``db`` holds in its outbox
    table ``model``, oldest first."""

    def read(event_type=None):
        with db.session() as session:
            rows = session.scalars(select(model).order_by(model.id)).all()
            return [
                (row.routing_key, row.payload["data"])
                for row in rows
                if event_type is None or row.routing_key == event_type
            ]

    return read
