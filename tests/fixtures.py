"""Fixtures shared by every test package: fresh databases on SQLite and PostgreSQL, copies of
a database made once per run, and a reader of what a service wrote to its outbox."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import MetaData, create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from crm_common.db import SessionScope, dispose_engine, engine_for

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
    yield from postgres_database()


@pytest.fixture
def second_pg_uri():
    """Another one, for a test that compares two databases."""
    yield from postgres_database()


def postgres_database() -> Iterator[str]:
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


def database_template(
    directory: Path, metadata: MetaData, seed: Callable[[Session], object] | None = None
) -> Path:
    """A SQLite file holding ``metadata``'s tables and what ``seed`` adds, closed (so that
    its write-ahead log is folded in). Creating a service's schema takes a few hundred
    milliseconds; copying the file, a fraction of one."""
    path = directory / "template.db"
    uri = f"sqlite:///{path}"
    engine = engine_for(uri)
    metadata.create_all(engine)
    if seed is not None:
        with SessionScope(engine).session() as session:
            seed(session)
    dispose_engine(uri)
    return path


def database_from(template: Path, uri: str) -> SessionScope:
    """A fresh database at the SQLite ``uri``, as ``template`` holds it."""
    shutil.copyfile(template, str(make_url(uri).database))
    return SessionScope(engine_for(uri))


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
