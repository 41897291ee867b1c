"""A service's copies of other contexts' records, filled from their snapshots while its
database is fresh; their events keep the copies current afterwards.

The service reads, as itself, each source's snapshot RPC page by page into its read models,
one transaction per page (a row is replaced only by a newer version, so pages and events may
interleave in any order). Each snapshot read to its end is remembered in the service's
``catch_ups`` table (``crm_common.models.CatchUpMixin``) and never read again; one that fails
half-way (its service does not answer) is read again from its start next time. The service's
timer calls ``read_pending_snapshots`` until every snapshot is read, then stops looking
(``CatchUpState``)::

    class SalesCatchUp(CatchUp[ReadModels]):
        snapshots = (Snapshot("org", "structure_snapshot", "people", ReadModels.keep_person),)
        record_model = CatchUpRecord
        unusable = (UnusableRecord,)

        def read_models(self, session): return ReadModels(session)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import eventlet
from nameko.exceptions import RpcTimeout, UnknownService
from nameko.extensions import DependencyProvider
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_common.db import SessionScope
from crm_common.models import CatchUpMixin, utcnow

PAGE_SIZE = 200
MAX_PAGES = 100_000
"""A guard against a snapshot that never ends (20 million rows at ``PAGE_SIZE``)."""

log = logging.getLogger(__name__)

Models = TypeVar("Models")


@dataclass(frozen=True)
class Snapshot(Generic[Models]):
    """One snapshot: the service and RPC that page through it, the kind asked for, and how
    the read models keep one of its items (True if it was new or newer)."""

    service: str
    method: str
    kind: str
    keep: Callable[[Models, Any], bool]

    @property
    def source(self) -> str:
        return f"{self.service}.{self.kind}"


class CatchUp(Generic[Models]):
    """A service's snapshots, read into its read models."""

    snapshots: ClassVar[tuple[Snapshot[Any], ...]]
    record_model: ClassVar[type[CatchUpMixin]]
    unusable: ClassVar[tuple[type[Exception], ...]] = ()
    """What ``keep`` raises for an item the service cannot read: it is left out (its events
    would be refused the same way) rather than stopping the catch-up."""

    def __init__(self, db: SessionScope) -> None:
        self.db = db

    def read_models(self, session: Session) -> Models:
        raise NotImplementedError

    def page_kept(self, session: Session, snapshot: Snapshot[Models], items: list[Any]) -> None:
        """What else a page's transaction does once its items are kept; nothing by default."""

    def pending(self) -> list[Snapshot[Models]]:
        """The snapshots not yet read to their end."""
        with self.db.session() as session:
            finished = set(session.scalars(select(self.record_model.source)))
        return [snapshot for snapshot in self.snapshots if snapshot.source not in finished]

    def pending_services(self) -> list[str]:
        return list(dict.fromkeys(snapshot.service for snapshot in self.pending()))

    def read(self, service: str, proxy: Any) -> dict[str, int]:
        """Read the pending snapshots of ``service`` through its RPC ``proxy``, one
        transaction per page; how many rows of each were new or newer."""
        kept = {}
        for snapshot in self.pending():
            if snapshot.service == service:
                kept[snapshot.source] = self._read(snapshot, getattr(proxy, snapshot.method))
        return kept

    def _read(self, snapshot: Snapshot[Models], fetch: Callable[..., dict[str, Any]]) -> int:
        kept, rows, cursor = 0, 0, None
        for _ in range(MAX_PAGES):
            page = fetch(snapshot.kind, cursor, PAGE_SIZE)
            with self.db.session() as session:
                models = self.read_models(session)
                kept += sum(self._keep(snapshot, models, item) for item in page["items"])
                self.page_kept(session, snapshot, page["items"])
            rows += len(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                break
        else:
            raise RuntimeError(f"the {snapshot.source} snapshot has more than {MAX_PAGES} pages")
        with self.db.session() as session:
            record = self.record_model(source=snapshot.source, rows=rows, finished_at=utcnow())
            session.merge(record)
        return kept

    def _keep(self, snapshot: Snapshot[Models], models: Models, item: Any) -> bool:
        try:
            return snapshot.keep(models, item)
        except self.unusable as exc:
            log.warning("left out of the %s snapshot: %s", snapshot.source, exc)
            return False


class CatchUpState(DependencyProvider):
    """Whether this container has seen every snapshot read to its end (then its timer stops
    looking at the database)."""

    def setup(self) -> None:
        self.finished = False

    def get_dependency(self, worker_ctx: Any) -> CatchUpState:
        return self


STARTING_WAITS = (0.25, 0.5, 1.0, 2.0, 4.0)
"""Seconds to wait before asking again a service that is not there yet (no process has
started consuming its RPC queue): services of a stack start together, and until the copies
are filled, what depends on them (an alert's email address) is missing."""


def read_pending_snapshots(
    catch_up: CatchUp[Any],
    state: CatchUpState,
    rpc: Callable[[str], AbstractContextManager[Any]],
) -> None:
    """Read every pending snapshot whose service answers, through ``rpc(service)`` (a proxy
    that calls as this service). A service not there yet is asked again after each of
    ``STARTING_WAITS``; one that still does not answer, or times out, is tried again next
    time."""
    if state.finished:
        return
    for service in catch_up.pending_services():
        try:
            kept = _read_when_there(catch_up, service, rpc)
        except (RpcTimeout, UnknownService) as exc:
            log.warning("%s's snapshots not read yet, it does not answer: %r", service, exc)
            continue
        log.info("%s's snapshots read: %s rows new or changed", service, kept)
    state.finished = not catch_up.pending()


def _read_when_there(
    catch_up: CatchUp[Any], service: str, rpc: Callable[[str], AbstractContextManager[Any]]
) -> dict[str, int]:
    for wait in STARTING_WAITS:
        try:
            with rpc(service) as proxy:
                return catch_up.read(service, proxy)
        except UnknownService:
            eventlet.sleep(wait)
    with rpc(service) as proxy:
        return catch_up.read(service, proxy)
