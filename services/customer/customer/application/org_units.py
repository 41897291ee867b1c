"""The customer service's copy of org's departments and regions (see ``domain.org_units``).

Kept current by ``department_changed`` and ``region_changed`` from ``org.events``, and filled
from org's structure snapshot, which the service reads as itself when it starts and every
``ORG_SYNC_INTERVAL`` seconds after (so a fresh database, or events lost while the service's
queues did not exist yet, catch up). Both paths store a unit only if it is not older than the
stored one, so they may interleave in any order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from crm_common.models import utcnow
from customer import repository
from customer.domain.org_units import DEPARTMENT, REGION

SNAPSHOT_KINDS = {DEPARTMENT: "departments", REGION: "regions"}
SNAPSHOT_PAGE = 200
MAX_SNAPSHOT_PAGES = 1000

Fetch = Callable[[str, str | None, int], dict[str, Any]]
"""``org.structure_snapshot(kind, cursor, limit)``: one page of departments or regions."""


class OrgUnits:
    def __init__(self, session: Session) -> None:
        self.session = session

    def keep(self, kind: str, record: dict[str, Any]) -> bool:
        """Store a department or region as org sent it, unless a newer one is stored."""
        values = {
            "id": str(record["id"]),
            "code": str(record.get("code") or ""),
            "name": str(record.get("name") or ""),
            "parent_id": record.get("parent_id"),
            "path": str(record.get("path") or ""),
            "disabled": bool(record.get("disabled", False)),
            "version": int(record.get("version") or 0),
            "updated_at": utcnow(),
        }
        return repository.keep_org_unit(self.session, kind, values)

    def catch_up(self, fetch: Fetch) -> int:
        """Read every department and region from org's snapshot; returns how many were new
        or newer than the copy."""
        kept = 0
        for kind, snapshot_kind in SNAPSHOT_KINDS.items():
            cursor: str | None = None
            for _ in range(MAX_SNAPSHOT_PAGES):
                page = fetch(snapshot_kind, cursor, SNAPSHOT_PAGE)
                kept += sum(self.keep(kind, record) for record in page["items"])
                cursor = page.get("next_cursor")
                if not cursor:
                    break
        return kept
