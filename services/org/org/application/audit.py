"""The audit log of the org data: who changed what, and when. Its change lists follow the
suite's history rules (``crm_common.history``); it never holds a password or a hash."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from crm_common.application import UseCaseContext, UseCases
from crm_common.history import FieldChange
from crm_common.schemas import load
from org import repository
from org.domain.permissions import ORG_ADMIN
from org.models import AuditEntry
from org.schemas import AuditEntrySchema, AuditQuerySchema

audit_schema = AuditEntrySchema()


def write(
    session: Session,
    entity_type: str,
    entity_id: str,
    action: str,
    at: datetime,
    *,
    actor_id: str | None = None,
    changes: Iterable[FieldChange] | None = None,
) -> None:
    """Add one entry to the audit log of this transaction."""
    session.add(
        AuditEntry(
            entity_type=entity_type,
            entity_id=entity_id,
            action=action,
            changes=None if changes is None else [change.as_dict() for change in changes],
            actor_id=actor_id,
            at=at,
        )
    )


class AuditLog(UseCases):
    def __init__(self, context: UseCaseContext) -> None:
        context.principal.require(ORG_ADMIN)
        super().__init__(context)

    def entries(self, query: Any) -> dict[str, Any]:
        """A page of the log, newest first, by entity and actor."""
        page = repository.audit_page(self.session, load(AuditQuerySchema(), query))
        return {
            "items": audit_schema.dump(page.items, many=True),
            "next_cursor": page.next_cursor,
        }
