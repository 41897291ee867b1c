"""A fresh notify database catches up from org's structure snapshot, then events keep it
current.

Notify reads, as itself (``crm_common.identity.ServiceIdentity``, permission
``org:structure:read``), org's ``structure_snapshot`` of departments and people page by page
into its read models (a row is replaced only by a newer version, so pages and events may
interleave in any order). Each snapshot read to its end is remembered in ``catch_ups`` and not
read again; one that fails half-way is read again from its start next time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crm_common.db import SessionScope
from crm_common.models import utcnow
from notify.application.read_models import ReadModels, UnusableRecord
from notify.repository import rules as repository

PAGE_SIZE = 200
MAX_PAGES = 100_000

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    service: str
    method: str
    kind: str
    keep: Callable[[ReadModels, Any], bool]

    @property
    def source(self) -> str:
        return f"{self.service}.{self.kind}"


SNAPSHOTS = (
    Snapshot("org", "structure_snapshot", "departments", ReadModels.keep_department),
    Snapshot("org", "structure_snapshot", "people", ReadModels.keep_person),
)


class CatchUp:
    def __init__(self, db: SessionScope) -> None:
        self.db = db

    def pending(self) -> list[Snapshot]:
        with self.db.session() as session:
            finished = repository.finished_catch_ups(session)
        return [snapshot for snapshot in SNAPSHOTS if snapshot.source not in finished]

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

    def _read(self, snapshot: Snapshot, fetch: Callable[..., dict[str, Any]]) -> int:
        kept, rows, cursor = 0, 0, None
        for _ in range(MAX_PAGES):
            page = fetch(snapshot.kind, cursor, PAGE_SIZE)
            with self.db.session() as session:
                models = ReadModels(session)
                kept += sum(self._keep(snapshot, models, item) for item in page["items"])
            rows += len(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                break
        else:
            raise RuntimeError(f"the {snapshot.source} snapshot has more than {MAX_PAGES} pages")
        with self.db.session() as session:
            repository.record_catch_up(session, snapshot.source, rows, utcnow())
        return kept

    def _keep(self, snapshot: Snapshot, models: ReadModels, item: Any) -> bool:
        try:
            return snapshot.keep(models, item)
        except UnusableRecord as exc:
            log.warning("left out of the %s snapshot: %s", snapshot.source, exc)
            return False
