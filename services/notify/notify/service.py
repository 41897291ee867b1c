"""The notify service: thin Nameko entrypoints over ``notify.application``.

Each entrypoint is one line that runs a use case: a write in one transaction, a read in none::

    @rpc
    def update_thing(self, thing_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Things(context).update(thing_id, changes)

    @rpc
    def get_thing(self, thing_id: str) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Things(context).get(thing_id)

with ``rpc`` from ``crm_common.entrypoints``, ``unit_of_work`` and ``read_only`` from
``crm_common.application``: a read runs on ``db.read()``, which sends the database no BEGIN or
COMMIT and refuses writes. An RPC refuses callers without a verified token unless marked
``@public``. ``ping``, ``api_schemas`` and ``api_events`` come from the kit.
"""

from __future__ import annotations

from typing import Any

from nameko.timer import timer

from crm_common import kit
from crm_common.application import read_only, unit_of_work
from crm_common.db import Database
from crm_common.entrypoints import public, rpc
from crm_common.models import utcnow
from crm_common.outbox import Outbox
from notify.application.deliveries import Deliveries
from notify.application.delivery_runtime import (
    DELIVERY_POLL_SECONDS,
    DeliveryChannels,
    DeliveryRuntime,
    receive_receipts,
    send_due,
)
from notify.events import EVENT_SCHEMAS
from notify.models import Base, OutboxMessage
from notify.schemas import PUBLIC_SCHEMAS


class NotifyService(kit.ServiceKit):
    name = "notify"
    public_schemas = PUBLIC_SCHEMAS
    event_schemas = EVENT_SCHEMAS

    db = Database(Base)
    outbox = Outbox(OutboxMessage)

    # -- rules, recipients, preferences and the inbox -------------------------------------------
    # -- end rules

    # -- deliveries ----------------------------------------------------------------------------
    channels: DeliveryRuntime = DeliveryChannels()

    @timer(interval=DELIVERY_POLL_SECONDS)  # type: ignore[untyped-decorator]
    def send_due_deliveries(self) -> None:
        """Send the email and SMS deliveries that are due (see ``application.sending``)."""
        if self.channels.enabled:
            send_due(self.db, self.channels, utcnow)

    @rpc
    def list_deliveries(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Deliveries(context).search(query)

    @rpc
    def get_delivery(self, delivery_id: str) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Deliveries(context).get(delivery_id)

    @rpc
    def retry_delivery(self, delivery_id: str) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Deliveries(context).retry(delivery_id)

    @rpc
    @public
    def receive_sms_receipts(self, provider: str, token: Any, body: Any) -> dict[str, Any]:
        """A provider's delivery reports (the gateway's public receipt route, which passes
        the shared token; see ``application.delivery_runtime``)."""
        return receive_receipts(self.db, self.channels, provider, token, body)

    # -- end deliveries
