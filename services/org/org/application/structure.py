"""The org structure other services keep a copy of: departments and regions, page by page.

``department_changed`` and ``region_changed`` keep a consumer's copy current; this snapshot
lets a consumer with an empty (or doubtful) copy catch up. Only services read it: the caller
must be a service identity holding ``org:structure:read`` (no role hands that out).
"""

from __future__ import annotations

from typing import Any

from crm_common.application import UseCases
from crm_common.errors import Forbidden, ValidationFailed
from crm_common.schemas import load
from org import repository
from org.schemas import DepartmentSchema, QuerySchema, RegionSchema

STRUCTURE_READ = "org:structure:read"
KINDS = {"departments": DepartmentSchema(), "regions": RegionSchema()}


class Structure(UseCases):
    def snapshot(self, kind: Any, cursor: Any = None, limit: Any = None) -> dict[str, Any]:
        """One page of every department or region, disabled ones included, each as its
        ``*_changed`` event carries it."""
        if not self.principal.is_service:
            raise Forbidden("only a service may read the org structure snapshot")
        self.principal.require(STRUCTURE_READ)
        if kind not in KINDS:
            raise ValidationFailed.on("kind", f"is one of {', '.join(KINDS)}")
        params = load(QuerySchema(), {"cursor": cursor, "limit": limit})
        page = repository.page(self.session, kind, params)
        return {"items": KINDS[kind].dump(page.items, many=True), "next_cursor": page.next_cursor}
