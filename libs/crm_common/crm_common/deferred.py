"""Rows a batch of events writes with one multi-row INSERT per table, instead of one ORM
object each.

Append-only rows nothing reads back in the same transaction (outbox events, history entries)
cost far more as ORM objects (built, tracked, flushed, registered) than the INSERT itself.
Inside ``deferring(session)`` (``crm_common.batch_consumer.EventBatch.apply`` opens it), ``add_row``
keeps such a row as values, and ``write_deferred`` writes what was kept, table by table in
the order the tables were first used and rows in the order they were added; anywhere else
``add_row`` adds an ORM object as usual. What was kept when a savepoint rolls back is dropped
with ``drop_deferred``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

DEFERRED = "crm.deferred_rows"


def add_row(session: Session, model: type[Any], values: dict[str, Any]) -> None:
    """A new row of ``model``: kept for ``write_deferred`` while the session defers rows,
    else added as an object."""
    deferred: dict[type[Any], list[dict[str, Any]]] | None = session.info.get(DEFERRED)
    if deferred is None:
        session.add(model(**values))
    else:
        deferred.setdefault(model, []).append(values)


@contextmanager
def deferring(session: Session) -> Iterator[None]:
    """Rows added inside are kept for ``write_deferred`` (which the caller runs before its
    transaction or savepoint ends)."""
    session.info[DEFERRED] = {}
    try:
        yield
    finally:
        session.info.pop(DEFERRED, None)


def write_deferred(session: Session) -> None:
    """Write the kept rows (the session flushed first, so rows they refer to exist)."""
    deferred: dict[type[Any], list[dict[str, Any]]] | None = session.info.get(DEFERRED)
    if not deferred:
        return
    session.flush()
    connection = session.connection()
    for model, rows in deferred.items():
        for same_columns in _runs_of_same_keys(rows):
            connection.execute(insert(model.__table__), same_columns)
    deferred.clear()


def _runs_of_same_keys(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """The rows in order, cut where the columns given change (one INSERT takes one set)."""
    run: list[dict[str, Any]] = []
    for row in rows:
        if run and row.keys() != run[0].keys():
            yield run
            run = []
        run.append(row)
    if run:
        yield run


def drop_deferred(session: Session) -> None:
    """Forget the kept rows (their savepoint was rolled back)."""
    deferred: dict[type[Any], list[dict[str, Any]]] | None = session.info.get(DEFERRED)
    if deferred:
        deferred.clear()
