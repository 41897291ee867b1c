"""A customer's change history, as its reader may see it."""

from __future__ import annotations

from typing import Any

from customer import repository
from customer.application.base import READ, CustomerUseCases
from customer.domain.history import codes_named, hide_customers
from customer.schemas import HistoryEntrySchema

history_schema = HistoryEntrySchema()


class History(CustomerUseCases):
    def page(self, customer_id: Any, cursor: str | None, limit: Any) -> dict[str, Any]:
        """One page, newest first; customers the reader may not see are blanked out."""
        self.principal.require(READ)
        customer = self.customer(customer_id)
        page = repository.history_page(self.session, customer.id, cursor, limit)
        entries = history_schema.dump(page.items, many=True)
        named = codes_named(entries)
        hidden = named - repository.visible_codes(self.session, named, self.principal)
        return {
            "items": [hide_customers(entry, hidden) for entry in entries],
            "next_cursor": page.next_cursor,
        }
