"""Database engines and the per-worker session provider.

SQLite (the one-machine default) runs with WAL and foreign keys on. PostgreSQL runs through
psycopg2 made green by psycogreen, so a slow query parks only its own green thread.

Writes run in transactions (``SessionScope.session``). Reads run without one
(``SessionScope.read``): each statement on its own, no BEGIN, COMMIT or ROLLBACK sent, so a
read costs the database one round trip per statement. Connections are not pinged when taken
from the pool; they are recycled after ``POOL_RECYCLE_SECONDS``, and a read whose connection
turns out dead (the server restarted, a proxy dropped it) runs again once on a new one.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nameko.extensions import DependencyProvider
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.sql.dml import UpdateBase

from crm_common import metrics
from crm_common.errors import Conflict, Unavailable

POOL_RECYCLE_SECONDS = 1800
"""A PostgreSQL connection older than this is closed and replaced when next taken from the
pool: below the idle timeouts of the usual firewalls and connection proxies."""
OPTIMIZE_EVERY_SECONDS = 60.0
EARLY_OPTIMIZE_CHECKINS = 1024
EXPENSIVE_ANALYZE_SECONDS = 0.01
OPTIMIZED_AT = "crm_optimized_at"
ANALYSED = "crm_analysed"
CHECKINS = "crm_checkins"
READS = "crm_reads_only"
"""Execution option of the connections ``SessionScope.read`` uses: no transaction is begun."""

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
    def _on_begin(connection: Connection) -> None:
        if not connection.get_execution_options().get(READS):
            connection.exec_driver_sql("BEGIN")

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_connection: Any, record: Any) -> None:
        # Without statistics SQLite's planner may gather every row an OR of indexed terms
        # matches (a data scope is such an OR) and sort them, instead of walking the sort
        # index: 30 ms instead of 1 ms at 100k rows. A connection therefore looks at each of
        # its first 1024 check-ins (reads right after a bulk load get their statistics as
        # soon as they need them) and then once a minute for tables to analyse; looking costs
        # about 0.01 ms when there is nothing to do.
        if dbapi_connection is None:
            return
        checkins = record.info[CHECKINS] = record.info.get(CHECKINS, 0) + 1
        early = checkins <= EARLY_OPTIMIZE_CHECKINS
        now = time.monotonic()
        if early or now - record.info.get(OPTIMIZED_AT, now) >= OPTIMIZE_EVERY_SECONDS:
            optimize_sqlite(dbapi_connection, record.info.setdefault(ANALYSED, {}), now)
            record.info[OPTIMIZED_AT] = now


def optimize_sqlite(
    dbapi_connection: Any, analysed: dict[str, tuple[float, float]], now: float
) -> int:
    """Analyse the tables ``PRAGMA optimize`` finds in need (those this connection queried
    that were never analysed, have grown 25-fold since, or have an index without
    statistics); how many were analysed.

    SQLite 3.40 writes no statistics for a partial index that holds no row (the unique index
    on ERP codes while no customer has one), and then finds that table in need at every call:
    a full ANALYZE of every customer per request. So an empty partial index of an analysed
    table is given the statistics later versions write for it ("0 0"). And a table whose
    analysis took more than ``EXPENSIVE_ANALYZE_SECONDS`` is not analysed again by the same
    connection within ``OPTIMIZE_EVERY_SECONDS``, whatever else leaves it in need.

    ``analysed`` maps each statement run to (when, seconds it took); ``now`` is monotonic."""
    wanted = [row[0] for row in dbapi_connection.execute("PRAGMA optimize(3)").fetchall()]
    ran = 0
    for statement in wanted:
        at, took = analysed.get(statement, (None, 0.0))
        recent = at is not None and now - at < OPTIMIZE_EVERY_SECONDS
        if recent and took > EXPENSIVE_ANALYZE_SECONDS:
            continue
        began = time.perf_counter()
        dbapi_connection.execute(statement)
        analysed[statement] = (now, time.perf_counter() - began)
        ran += 1
    if ran and _state_empty_partial_indexes(dbapi_connection):
        dbapi_connection.execute("ANALYZE sqlite_schema")  # the planner reloads the statistics
    return ran


def _state_empty_partial_indexes(dbapi_connection: Any) -> int:
    """Give each partial index of an analysed table that has no statistics (it holds no row)
    the ones of an empty index; how many were given."""
    missing = dbapi_connection.execute(
        "SELECT t.name, i.name, (SELECT count(*) FROM pragma_index_info(i.name))"
        " FROM sqlite_schema AS t JOIN pragma_index_list(t.name) AS i"
        " WHERE t.type = 'table' AND i.partial"
        " AND EXISTS (SELECT 1 FROM sqlite_stat1 AS s WHERE s.tbl = t.name)"
        " AND NOT EXISTS (SELECT 1 FROM sqlite_stat1 AS s WHERE s.tbl = t.name AND s.idx = i.name)"
    ).fetchall()
    for table, index, columns in missing:
        dbapi_connection.execute(
            "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?, ?, ?)",
            (table, index, " ".join(["0"] * (columns + 1))),
        )
    return len(missing)


def _configure_postgresql(engine: Engine) -> None:
    """Reads run with the driver in autocommit mode, so it sends no BEGIN (and the pool's
    rollback on return sends nothing either); the connection goes back to the pool as it was.

    Toggling the driver's flag costs no round trip, unlike an isolation-level execution
    option, which makes psycopg2 send ``SET default_transaction_isolation`` at each switch."""

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get(READS):
            connection.connection.dbapi_connection.autocommit = True  # type: ignore[union-attr]

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_connection: Any, _record: Any) -> None:
        if dbapi_connection is not None and not dbapi_connection.closed:
            dbapi_connection.autocommit = False


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
            options: dict[str, Any] = {}
            if url.get_driver_name() == "psycopg2":
                _green_psycopg()
                # An UPDATE or DELETE run for many rows goes in pages of statements, not one
                # round trip per row (INSERTs already go as multi-row VALUES). Its rowcount
                # then counts the last page only: nothing here reads it off such a statement.
                options["executemany_mode"] = "values_plus_batch"
                # Positional placeholders: psycopg2 puts a statement's parameters into it at
                # about 60 % of the cost of named ones (multi-row INSERTs carry thousands).
                options["paramstyle"] = "format"
            engine = create_engine(
                uri, pool_size=10, max_overflow=20, pool_recycle=POOL_RECYCLE_SECONDS, **options
            )
            _configure_postgresql(engine)
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


class ReadSession(Session):
    """The session of ``SessionScope.read``: refuses to write, and runs a statement again,
    once, on a new connection when its connection was found dead.

    Without a transaction each statement stands alone, so running one again is safe."""

    def execute(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(statement, UpdateBase):
            raise RuntimeError("a read cannot write: use db.session()")
        return self._again_if_dead(super().execute, statement, *args, **kwargs)

    def scalar(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        return self._again_if_dead(super().scalar, statement, *args, **kwargs)

    def scalars(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        return self._again_if_dead(super().scalars, statement, *args, **kwargs)

    def _again_if_dead(self, run: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return run(*args, **kwargs)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            self.rollback()  # lets the dead connection go; the next statement takes another
        return run(*args, **kwargs)


@event.listens_for(ReadSession, "before_flush")
def _refuse_flush(_session: Session, _context: Any, _instances: Any) -> None:
    raise RuntimeError("a read cannot write: use db.session()")


class SessionScope:
    """What a worker gets: ``with db.session() as session`` commits or rolls back as a unit;
    ``with db.read() as session`` reads without a transaction.

    Inside ``with db.transaction()`` (one per call, e.g. a write sent with an Idempotency-Key)
    every ``db.session()`` joins that one transaction as a savepoint: only the outermost
    commits, so whatever the call writes lands together or not at all. ``db.read()`` there
    reads in that transaction too, and so sees what the call wrote.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._factory = sessionmaker(bind=engine, expire_on_commit=False)
        self._read_factory = sessionmaker(
            bind=engine.execution_options(**{READS: True}),
            class_=ReadSession,
            autoflush=False,
            expire_on_commit=False,
        )
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
    def read(self) -> Iterator[Session]:
        """A session for reads only: no transaction, nothing committed, writes refused.

        Each statement sees what was committed when it ran; a read needing several statements
        to agree with one another (a snapshot) belongs in ``session()``."""
        ambient = self._ambient.get()
        if ambient is not None:
            yield ambient
            return
        session = self._read_factory()
        try:
            yield session
        finally:
            session.close()

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
        except DBAPIError as exc:
            session.rollback()
            if exc.connection_invalidated:
                raise _connection_lost() from exc
            raise
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()


def _stale() -> Conflict:
    return Conflict("the record was changed by someone else; reload it and retry")


def _connection_lost() -> Unavailable:
    """A write whose connection died: nothing of it was committed unless the commit itself
    was under way, which an Idempotency-Key makes safe to retry."""
    return Unavailable("the database connection was lost; retry the request")


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
