"""Database engines and the per-worker session provider.

SQLite (the one-machine default) runs with WAL and foreign keys on. PostgreSQL runs through
psycopg2 made green by psycogreen, so a slow query parks only its own green thread.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nameko.extensions import DependencyProvider
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from crm_common import metrics
from crm_common.errors import Conflict

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()
_psycopg_greened = False


def _green_psycopg() -> None:
    global _psycopg_greened
    if not _psycopg_greened:
        from psycogreen.eventlet import patch_psycopg

        patch_psycopg()
        _psycopg_greened = True


def _configure_sqlite(engine: Engine) -> None:
    """WAL, foreign keys, and transactions SQLAlchemy controls itself.

    The sqlite3 module otherwise opens transactions lazily on its own, which makes a SAVEPOINT
    issued first in a session commit everything when it is released.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_connection: Any, _record: Any) -> None:
        # Without statistics SQLite's planner may gather every row an OR of indexed terms
        # matches (a data scope is such an OR) and sort them, instead of walking the sort
        # index: 30 ms instead of 1 ms at 100k rows. PRAGMA optimize analyses the tables this
        # connection has queried that were never analysed or have grown a lot since; when
        # there is nothing to do it costs a few microseconds.
        if dbapi_connection is not None:
            dbapi_connection.execute("PRAGMA optimize")


def engine_for(uri: str) -> Engine:
    """One engine per database URI and process, created on first use."""
    with _engines_lock:
        engine = _engines.get(uri)
        if engine is not None:
            return engine
        url = make_url(uri)
        if url.get_backend_name() == "sqlite":
            if url.database and url.database != ":memory:":
                Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            # One connection per file: SQLite's busy-wait would block the whole eventlet hub
            # while another green thread holds the write lock, so writers queue in the pool.
            engine = create_engine(
                uri,
                connect_args={"check_same_thread": False},
                pool_size=1,
                max_overflow=0,
                pool_timeout=30,
            )
            _configure_sqlite(engine)
        else:
            if url.get_driver_name() == "psycopg2":
                _green_psycopg()
            engine = create_engine(uri, pool_size=10, max_overflow=20, pool_pre_ping=True)
        _engines[uri] = engine
        return engine


def dispose_engine(uri: str) -> None:
    with _engines_lock:
        engine = _engines.pop(uri, None)
    if engine is not None:
        engine.dispose()


def database_uri(config: dict[str, Any], service_name: str) -> str:
    """``DB_URIS[<service>]`` from the Nameko config, else ``DB_URI``, else a file under var/."""
    uris = config.get("DB_URIS") or {}
    return uris.get(service_name) or config.get("DB_URI") or f"sqlite:///var/{service_name}.db"


class SessionScope:
    """What a worker gets: ``with db.session() as session`` commits or rolls back as a unit.

    Inside ``with db.transaction()`` (one per call, e.g. a write sent with an Idempotency-Key)
    every ``db.session()`` joins that one transaction as a savepoint: only the outermost
    commits, so whatever the call writes lands together or not at all.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._factory = sessionmaker(bind=engine, expire_on_commit=False)
        self._ambient: contextvars.ContextVar[Session | None] = contextvars.ContextVar(
            f"ambient_session_{id(self)}", default=None
        )

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """The one transaction of the current call: ``session()`` inside joins it."""
        if self._ambient.get() is not None:
            raise RuntimeError("a transaction of this database is already open in this call")
        with self._outermost() as session:
            token = self._ambient.set(session)
            try:
                yield session
            finally:
                self._ambient.reset(token)

    @contextmanager
    def session(self) -> Iterator[Session]:
        ambient = self._ambient.get()
        if ambient is None:
            with self._outermost() as session:
                yield session
            return
        try:
            with ambient.begin_nested():
                yield ambient
        except StaleDataError as exc:
            raise _stale() from exc

    @contextmanager
    def _outermost(self) -> Iterator[Session]:
        session = self._factory()
        try:
            yield session
            session.commit()
        except StaleDataError as exc:
            session.rollback()
            raise _stale() from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()


def _stale() -> Conflict:
    return Conflict("the record was changed by someone else; reload it and retry")


class Database(DependencyProvider):
    """Nameko dependency giving each worker a ``SessionScope`` on the service's own database."""

    def __init__(self, base: type[DeclarativeBase]) -> None:
        self.base = base

    def setup(self) -> None:
        self.uri = database_uri(self.container.config, self.container.service_name)
        self.engine = engine_for(self.uri)
        self.scope = SessionScope(self.engine)
        metrics.watch_pool(self.container.service_name, self.engine)

    def get_dependency(self, worker_ctx: Any) -> SessionScope:
        return self.scope
