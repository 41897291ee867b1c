"""The customers and contacts other services keep a copy of, page by page.

``customer_created``, ``customer_updated``, ``customer_merged``, ``contact_created`` and
``contact_updated`` keep a consumer's copy current; this snapshot lets a consumer with an empty
(or doubtful) copy catch up. Only services read it: the caller must be a service identity
holding ``customer:snapshot:read`` (no role hands that out).
"""

from __future__ import annotations

from typing import Any

from crm_common.application import UseCases
from crm_common.errors import Forbidden, ValidationFailed
from crm_common.ids import parse_id
from crm_common.pagination import page_size
from customer import repository
from customer.application.base import dump_all
from customer.schemas import ContactSchema, CustomerSchema

SNAPSHOT_READ = "customer:snapshot:read"
DUMPERS = {"customers": CustomerSchema(), "contacts": ContactSchema()}


class Snapshot(UseCases):
    def page(self, kind: Any, cursor: Any = None, limit: Any = None) -> dict[str, Any]:
        """One page of every customer or contact, merged and disabled ones included, each as
        its events carry it, in id order; ``next_cursor`` is none after the last page."""
        if not self.principal.is_service:
            raise Forbidden("only a service may read the customer snapshot")
        self.principal.require(SNAPSHOT_READ)
        if kind not in DUMPERS:
            raise ValidationFailed.on("kind", f"is one of {', '.join(DUMPERS)}")
        after = parse_id(cursor, "cursor") if cursor else None
        page = repository.snapshot_page(self.session, kind, after, page_size(limit))
        return {"items": dump_all(DUMPERS[kind], page.items), "next_cursor": page.next_cursor}
