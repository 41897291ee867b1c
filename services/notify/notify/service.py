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

import logging
from typing import Any

from nameko.exceptions import RemoteError, RpcTimeout, UnknownService
from nameko.extensions import DependencyProvider
from nameko.timer import timer
from sqlalchemy.exc import IntegrityError

from crm_common import kit
from crm_common.application import read_only, unit_of_work
from crm_common.catch_up import CatchUpState, read_pending_snapshots
from crm_common.consumer import ReceivedEvent, event_handler
from crm_common.db import Database
from crm_common.entrypoints import public, rpc
from crm_common.errors import CrmError, Unavailable
from crm_common.identity import ServiceCredentials, ServiceIdentity
from crm_common.models import utcnow
from crm_common.outbox import Outbox
from notify.application.alerts import Alerts, RuleIndex, count, forget_old_keys
from notify.application.catch_up import CatchUp
from notify.application.deliveries import Deliveries
from notify.application.delivery_runtime import (
    DELIVERY_POLL_SECONDS,
    DeliveryChannels,
    DeliveryRuntime,
    receive_receipts,
    send_due,
)
from notify.application.inbox import Inbox, Preferences
from notify.application.read_models import ReadModels
from notify.application.rules import Rules, seed_defaults
from notify.application.schedules import SCHEDULE_CHECK_SECONDS, run_due
from notify.events import EVENT_SCHEMAS
from notify.models import Base, InboxEvent, OutboxMessage
from notify.schemas import PUBLIC_SCHEMAS

CATCH_UP_CHECK_SECONDS = 15
"""How often the service tries again to read the snapshots it has not read to their end."""
SEED_CHECK_SECONDS = 300
"""How often the service makes sure the built-in rules are stored."""
PRUNE_SECONDS = 3600
"""How often old alert keys are forgotten."""

log = logging.getLogger(__name__)


class RuleIndexProvider(DependencyProvider):
    """The container's one index of enabled event rules (see ``application.alerts``)."""

    def setup(self) -> None:
        self.index = RuleIndex()

    def get_dependency(self, worker_ctx: Any) -> RuleIndex:
        return self.index


class NotifyService(kit.ServiceKit):
    name = "notify"
    public_schemas = PUBLIC_SCHEMAS
    event_schemas = EVENT_SCHEMAS

    db = Database(Base)
    outbox = Outbox(OutboxMessage)

    # -- rules, recipients, preferences and the inbox -------------------------------------------
    inbox_model = InboxEvent
    identity: ServiceCredentials = ServiceIdentity()
    rule_index: RuleIndex = RuleIndexProvider()
    catch_up_state: CatchUpState = CatchUpState()

    # the copy of org's people and departments
    @event_handler("org", "person_changed")
    def on_person_changed(self, event: ReceivedEvent) -> None:
        with self.db.session() as session:
            if event.first_delivery(session):
                ReadModels(session).keep_person(event.data.get("person"))

    @event_handler("org", "department_changed")
    def on_department_changed(self, event: ReceivedEvent) -> None:
        with self.db.session() as session:
            if event.first_delivery(session):
                ReadModels(session).keep_department(event.data.get("department"))

    @timer(interval=CATCH_UP_CHECK_SECONDS, eager=True)  # type: ignore[untyped-decorator]
    def catch_up_from_snapshots(self) -> None:
        """Fill a fresh database from org's structure snapshot, read as this service."""
        read_pending_snapshots(CatchUp(self.db), self.catch_up_state, self.identity.rpc)

    # events that fire rules (sales')
    def _fire(self, source: str, event: ReceivedEvent) -> None:
        fired = None
        with self.db.session() as session:
            if event.first_delivery(session):
                fired = Alerts(session, utcnow(), self.rule_index).on_event(source, event.envelope)
        if fired is not None:
            count(fired, "event")

    @event_handler("sales", "opportunity_won")
    def on_opportunity_won(self, event: ReceivedEvent) -> None:
        self._fire("sales", event)

    @event_handler("sales", "expense_submitted")
    def on_expense_submitted(self, event: ReceivedEvent) -> None:
        self._fire("sales", event)

    @event_handler("sales", "quote_submitted")
    def on_quote_submitted(self, event: ReceivedEvent) -> None:
        self._fire("sales", event)

    @event_handler("sales", "quote_approved")
    def on_quote_approved(self, event: ReceivedEvent) -> None:
        self._fire("sales", event)

    @event_handler("sales", "order_confirmed")
    def on_order_confirmed(self, event: ReceivedEvent) -> None:
        self._fire("sales", event)

    @event_handler("sales", "contract_signed")
    def on_contract_signed(self, event: ReceivedEvent) -> None:
        self._fire("sales", event)

    @event_handler("sales", "invoice_overdue")
    def on_invoice_overdue(self, event: ReceivedEvent) -> None:
        self._fire("sales", event)

    @event_handler("sales", "payment_received")
    def on_payment_received(self, event: ReceivedEvent) -> None:
        self._fire("sales", event)

    # schedules: the owning service's due records, asked as notify
    @timer(interval=SCHEDULE_CHECK_SECONDS, eager=False)  # type: ignore[untyped-decorator]
    def run_schedules(self) -> None:
        """Run the schedule rules that are due (see ``application.schedules``)."""

        def ask(source: str, kind: str, params: dict[str, Any]) -> dict[str, Any]:
            with self.identity.rpc(source) as proxy:
                answer: dict[str, Any] = proxy.due_records(kind, params)
                return answer

        run_due(
            self.db,
            ask,
            utcnow(),
            failures=(RpcTimeout, UnknownService, Unavailable),
            refusals=(CrmError, RemoteError),
        )

    @timer(interval=PRUNE_SECONDS)  # type: ignore[untyped-decorator]
    def prune_alert_keys(self) -> None:
        """Forget the keys of alerts fired long ago (``application.alerts.KEY_DAYS``)."""
        with self.db.session() as session:
            forget_old_keys(session, utcnow())

    @timer(interval=SEED_CHECK_SECONDS, eager=True)  # type: ignore[untyped-decorator]
    def seed_alert_rules(self) -> None:
        """The built-in U8 rules, disabled, in a database without them (another replica
        storing them at the same moment wins; this one finds them next time)."""
        try:
            with self.db.session() as session:
                stored = seed_defaults(session, utcnow())
        except IntegrityError:
            return
        if stored:
            log.info("%s built-in alert rules stored (disabled)", stored)

    # alert rules
    @rpc
    def create_alert_rule(self, data: dict[str, Any]) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Rules(context).create(data)

    @rpc
    def get_alert_rule(self, rule_id: str) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Rules(context).get(rule_id)

    @rpc
    def list_alert_rules(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Rules(context).list(query)

    @rpc
    def update_alert_rule(
        self, rule_id: str, changes: dict[str, Any], expected_version: int | None = None
    ) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Rules(context).update(rule_id, changes, expected_version)

    @rpc
    def enable_alert_rule(
        self, rule_id: str, expected_version: int | None = None
    ) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Rules(context).enable(rule_id, expected_version)

    @rpc
    def disable_alert_rule(
        self, rule_id: str, expected_version: int | None = None
    ) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Rules(context).disable(rule_id, expected_version)

    @rpc
    def delete_alert_rule(self, rule_id: str, expected_version: int | None = None) -> None:
        with unit_of_work(self.db, self.outbox) as context:
            Rules(context).delete(rule_id, expected_version)

    @rpc
    def alert_rule_versions(self, rule_id: str) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Rules(context).versions(rule_id)

    @rpc
    def alert_rule_version(self, rule_id: str, revision: int) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Rules(context).version(rule_id, revision)

    # the inbox and preferences
    @rpc
    def list_inbox(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Inbox(context).list(query)

    @rpc
    def inbox_unread_count(self) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Inbox(context).unread_count()

    @rpc
    def mark_inbox_item_read(self, item_id: str) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Inbox(context).mark_read(item_id)

    @rpc
    def mark_inbox_read(self) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Inbox(context).mark_all_read()

    @rpc
    def get_notification_preferences(self) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Preferences(context).get()

    @rpc
    def put_notification_preferences(
        self, data: dict[str, Any], expected_version: int | None = None
    ) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Preferences(context).put(data, expected_version)

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
