"""The sales service: thin Nameko entrypoints over ``sales.application``.

Each entrypoint is one line that runs a use case in one transaction::

    @rpc
    def get_thing(self, thing_id: str) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Things(context).get(thing_id)

with ``rpc`` from ``crm_common.entrypoints`` and ``unit_of_work`` from
``crm_common.application``. An RPC refuses callers without a verified token unless marked
``@public``. ``ping``, ``api_schemas`` and ``api_events`` come from the kit.
"""

from __future__ import annotations

from crm_common import kit
from crm_common.db import Database
from crm_common.outbox import Outbox
from sales.events import EVENT_SCHEMAS
from sales.models import Base, OutboxMessage
from sales.schemas import PUBLIC_SCHEMAS


class SalesService(kit.ServiceKit):
    name = "sales"
    public_schemas = PUBLIC_SCHEMAS
    event_schemas = EVENT_SCHEMAS

    db = Database(Base)
    outbox = Outbox(OutboxMessage)
