"""The sales service: thin Nameko entrypoints over ``sales.application``, and the handlers and
timer that keep its copy of customers, contacts, people, departments and regions.

Each RPC is one line that runs a use case in one transaction::

    @rpc
    def get_thing(self, thing_id: str) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Things(context).get(thing_id)

with ``rpc`` from ``crm_common.entrypoints`` and ``unit_of_work`` from
``crm_common.application``. An RPC refuses callers without a verified token unless marked
``@public``. ``ping``, ``api_schemas`` and ``api_events`` come from the kit.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from nameko.timer import timer

from crm_common import kit
from crm_common.application import read_only, unit_of_work
from crm_common.batch_consumer import BatchLock, EventBatch, FamilyLocks, event_batch_handler
from crm_common.catch_up import CatchUpState, read_pending_snapshots
from crm_common.consumer import ReceivedEvent, event_handler
from crm_common.db import Database
from crm_common.entrypoints import rpc
from crm_common.identity import ServiceCredentials, ServiceIdentity
from crm_common.models import utcnow
from crm_common.outbox import Outbox
from sales.application.activities import Activities
from sales.application.catalog import Catalog
from sales.application.catch_up import CatchUp
from sales.application.competitors import Competitors, LossReasons
from sales.application.contracts import ACTIVATION_CHECK_SECONDS, Contracts, activate_started
from sales.application.erp_inbound import DOCUMENT_FAMILIES, ErpAdmin, ErpInbound
from sales.application.expenses import ExpenseCategories, Expenses, SecondLevelAmount
from sales.application.forecast import Forecast
from sales.application.opportunities import Opportunities
from sales.application.orders import CreditPolicy, Orders
from sales.application.processes import SEED_CHECK_SECONDS, Processes, seed_defaults
from sales.application.quotes import (
    QUOTE_EXPIRY_SECONDS,
    QuoteConfig,
    Quotes,
    QuoteSettings,
    expire_quotes,
)
from sales.application.read_models import ReadModels
from sales.application.receivables import (
    OVERDUE_CHECK_SECONDS,
    OverdueSchedule,
    Receivables,
    announce_overdue,
)
from sales.application.targets import Targets
from sales.domain.credit import WhenNoLimit
from sales.domain.money import Money
from sales.events import EVENT_SCHEMAS
from sales.models import Base, InboxEvent, OutboxMessage
from sales.schemas import PUBLIC_SCHEMAS

SERVICE_NAME = "sales"
CATCH_UP_CHECK_SECONDS = 15
"""How often the service tries again to read the snapshots it has not read to their end."""

log = logging.getLogger(__name__)


class SalesService(kit.ServiceKit):
    name = SERVICE_NAME
    public_schemas = PUBLIC_SCHEMAS
    event_schemas = EVENT_SCHEMAS

    db = Database(Base)
    outbox = Outbox(OutboxMessage)
    inbox_model = InboxEvent
    identity: ServiceCredentials = ServiceIdentity()
    catch_up_state: CatchUpState = CatchUpState()

    # -- the copy of customer's customers and contacts ----------------------------------------
    @event_handler("customer", "customer_created")
    def on_customer_created(self, event: ReceivedEvent) -> None:
        with self.db.session() as session:
            if event.first_delivery(session):
                ReadModels(session).keep_customer(event.data.get("customer"))
                ErpInbound(session, self.outbox).customer_known(event.data.get("customer"))

    @event_handler("customer", "customer_updated")
    def on_customer_updated(self, event: ReceivedEvent) -> None:
        with self.db.session() as session:
            if event.first_delivery(session):
                ReadModels(session).keep_customer(event.data.get("customer"))
                ErpInbound(session, self.outbox).customer_known(event.data.get("customer"))

    @event_handler("customer", "customer_owner_changed")
    def on_customer_owner_changed(self, event: ReceivedEvent) -> None:
        occurred_at = datetime.fromisoformat(event.envelope["occurred_at"])
        with self.db.session() as session:
            if event.first_delivery(session):
                ReadModels(session).move_owner(event.data, occurred_at)

    @event_handler("customer", "customer_merged")
    def on_customer_merged(self, event: ReceivedEvent) -> None:
        with self.db.session() as session:
            if event.first_delivery(session):
                ReadModels(session).merge(event.data, event.actor_id)

    @event_handler("customer", "contact_created")
    def on_contact_created(self, event: ReceivedEvent) -> None:
        with self.db.session() as session:
            if event.first_delivery(session):
                ReadModels(session).keep_contact(event.data.get("contact"))

    @event_handler("customer", "contact_updated")
    def on_contact_updated(self, event: ReceivedEvent) -> None:
        with self.db.session() as session:
            if event.first_delivery(session):
                ReadModels(session).keep_contact(event.data.get("contact"))

    # -- the copy of org's people, departments and regions ------------------------------------
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

    @event_handler("org", "region_changed")
    def on_region_changed(self, event: ReceivedEvent) -> None:
        with self.db.session() as session:
            if event.first_delivery(session):
                ReadModels(session).keep_region(event.data.get("region"))

    # -- opportunities, processes and competitors --------------------------------------------
    @rpc
    def create_opportunity(self, data: dict[str, Any]) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Opportunities(context).create(data)

    @rpc
    def get_opportunity(self, opportunity_id: str) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Opportunities(context).get(opportunity_id)

    @rpc
    def list_opportunities(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Opportunities(context).list(query)

    @rpc
    def update_opportunity(
        self, opportunity_id: str, changes: dict[str, Any], expected_version: int | None = None
    ) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Opportunities(context).update(opportunity_id, changes, expected_version)

    @rpc
    def move_opportunity_stage(
        self, opportunity_id: str, data: dict[str, Any], expected_version: int | None = None
    ) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Opportunities(context).move(opportunity_id, data, expected_version)

    @rpc
    def win_opportunity(
        self, opportunity_id: str, data: dict[str, Any], expected_version: int | None = None
    ) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Opportunities(context).win(opportunity_id, data, expected_version)

    @rpc
    def lose_opportunity(
        self, opportunity_id: str, data: dict[str, Any], expected_version: int | None = None
    ) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Opportunities(context).lose(opportunity_id, data, expected_version)

    @rpc
    def abandon_opportunity(
        self, opportunity_id: str, data: dict[str, Any], expected_version: int | None = None
    ) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Opportunities(context).abandon(opportunity_id, data, expected_version)

    @rpc
    def reopen_opportunity(
        self, opportunity_id: str, data: dict[str, Any], expected_version: int | None = None
    ) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Opportunities(context).reopen(opportunity_id, data, expected_version)

    @rpc
    def opportunity_stages(self, opportunity_id: str) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Opportunities(context).stages(opportunity_id)

    @rpc
    def opportunity_history(
        self, opportunity_id: str, cursor: str | None = None, limit: int | None = None
    ) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Opportunities(context).history(opportunity_id, cursor, limit)

    @rpc
    def list_sales_processes(self, query: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        with read_only(self.db) as context:
            return Processes(context).list(query)

    @rpc
    def get_sales_process(self, process_id: str) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Processes(context).get(process_id)

    @rpc
    def create_sales_process(self, data: dict[str, Any]) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Processes(context).create(data)

    @rpc
    def update_sales_process(
        self, process_id: str, changes: dict[str, Any], expected_version: int | None = None
    ) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Processes(context).update(process_id, changes, expected_version)

    @rpc
    def list_competitors(self, query: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        with read_only(self.db) as context:
            return Competitors(context).list(query)

    @rpc
    def get_competitor(self, competitor_id: str) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Competitors(context).get(competitor_id)

    @rpc
    def create_competitor(self, data: dict[str, Any]) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Competitors(context).create(data)

    @rpc
    def update_competitor(
        self, competitor_id: str, changes: dict[str, Any], expected_version: int | None = None
    ) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Competitors(context).update(competitor_id, changes, expected_version)

    @rpc
    def delete_competitor(self, competitor_id: str) -> None:
        with unit_of_work(self.db, self.outbox) as context:
            Competitors(context).delete(competitor_id)

    @rpc
    def list_loss_reasons(self, query: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        with read_only(self.db) as context:
            return LossReasons(context).list(query)

    @rpc
    def create_loss_reason(self, data: dict[str, Any]) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return LossReasons(context).create(data)

    @rpc
    def update_loss_reason(self, code: str, changes: dict[str, Any]) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return LossReasons(context).update(code, changes)

    @rpc
    def delete_loss_reason(self, code: str) -> None:
        with unit_of_work(self.db, self.outbox) as context:
            LossReasons(context).delete(code)

    @timer(interval=SEED_CHECK_SECONDS, eager=True)  # type: ignore[untyped-decorator]
    def seed_sales_defaults(self) -> None:
        """The standard sales process and the default loss reasons, in a database without
        them (see ``application.processes.seed_defaults``)."""
        with self.db.session() as session:
            if seed_defaults(session, utcnow()):
                log.info("the standard sales process is stored")

    # -- end opportunities ----------------------------------------------------------------------

    # -- activities, expenses, targets and forecast -------------------------------------------
    second_level_amount: Money = SecondLevelAmount()

    @rpc
    def plan_activity(self, data: dict[str, Any]) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Activities(context).plan(data)

    @rpc
    def get_activity(self, activity_id: str) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Activities(context).get(activity_id)

    @rpc
    def update_activity(
        self, activity_id: str, changes: dict[str, Any], expected_version: int | None = None
    ) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Activities(context).update(activity_id, changes, expected_version)

    @rpc
    def complete_activity(self, activity_id: str, data: dict[str, Any]) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Activities(context).complete(activity_id, data)

    @rpc
    def cancel_activity(self, activity_id: str) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Activities(context).cancel(activity_id)

    @rpc
    def replan_activity(
        self, activity_id: str, data: dict[str, Any], expected_version: int | None = None
    ) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Activities(context).replan(activity_id, data, expected_version)

    @rpc
    def check_in_activity(self, activity_id: str, data: dict[str, Any]) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Activities(context).check_in(activity_id, data)

    @rpc
    def list_activities(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Activities(context).list(query)

    @rpc
    def activity_calendar(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Activities(context).calendar(query)

    @rpc
    def overdue_activities(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Activities(context).overdue(query)

    @rpc
    def activity_history(
        self, activity_id: str, cursor: str | None = None, limit: int | None = None
    ) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Activities(context).history_of(activity_id, cursor, limit)

    @rpc
    def submit_expense(self, data: dict[str, Any]) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Expenses(context, self.second_level_amount).submit(data)

    @rpc
    def get_expense(self, expense_id: str) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Expenses(context).get(expense_id)

    @rpc
    def approve_expense(
        self, expense_id: str, data: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Expenses(context).approve(expense_id, data)

    @rpc
    def reject_expense(self, expense_id: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Expenses(context).reject(expense_id, data)

    @rpc
    def pay_expense(self, expense_id: str) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Expenses(context).pay(expense_id)

    @rpc
    def list_expenses(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Expenses(context).list(query)

    @rpc
    def expense_totals(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Expenses(context).totals(query)

    @rpc
    def cost_of_sale(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Expenses(context).cost_of_sale(query)

    @rpc
    def expense_history(
        self, expense_id: str, cursor: str | None = None, limit: int | None = None
    ) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Expenses(context).history_of(expense_id, cursor, limit)

    @rpc
    def list_expense_categories(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        with read_only(self.db) as context:
            return ExpenseCategories(context).list(query)

    @rpc
    def create_expense_category(self, data: dict[str, Any]) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return ExpenseCategories(context).create(data)

    @rpc
    def update_expense_category(self, code: str, changes: dict[str, Any]) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return ExpenseCategories(context).update(code, changes)

    @rpc
    def create_target(self, data: dict[str, Any]) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Targets(context).create(data)

    @rpc
    def get_target(self, target_id: str) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Targets(context).get(target_id)

    @rpc
    def update_target(
        self, target_id: str, changes: dict[str, Any], expected_version: int | None = None
    ) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Targets(context).update(target_id, changes, expected_version)

    @rpc
    def delete_target(self, target_id: str) -> None:
        with unit_of_work(self.db, self.outbox) as context:
            Targets(context).delete(target_id)

    @rpc
    def list_targets(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Targets(context).list(query)

    @rpc
    def forecast_pipeline(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Forecast(context).pipeline(query)

    @rpc
    def forecast_attainment(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Forecast(context).attainment(query)

    @rpc
    def forecast_funnel(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Forecast(context).funnel(query)

    @rpc
    def forecast_stage_durations(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Forecast(context).stage_durations(query)

    @rpc
    def forecast_win_rates(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Forecast(context).win_rates(query)

    # -- end activities -------------------------------------------------------------------------

    # -- catalog and quotes --------------------------------------------------------------------
    @rpc
    def list_items(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Catalog(context).list_items(query)

    @rpc
    def get_item(self, item_code: str) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Catalog(context).get_item(item_code)

    @rpc
    def item_price(self, item_code: str, query: dict[str, Any] | None = None) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Catalog(context).price(item_code, query)

    @rpc
    def list_price_lists(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Catalog(context).list_price_lists(query)

    @rpc
    def get_price_list(self, code: str) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Catalog(context).get_price_list(code)

    quote_settings: QuoteSettings = QuoteConfig()

    @rpc
    def create_quote(self, data: dict[str, Any]) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Quotes(context, self.quote_settings).create(data)

    @rpc
    def get_quote(self, quote_id: str) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Quotes(context, self.quote_settings).get(quote_id)

    @rpc
    def list_quotes(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Quotes(context, self.quote_settings).list(query)

    @rpc
    def update_quote(
        self, quote_id: str, changes: dict[str, Any], expected_version: int | None = None
    ) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Quotes(context, self.quote_settings).update(quote_id, changes, expected_version)

    @rpc
    def submit_quote(self, quote_id: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Quotes(context, self.quote_settings).submit(quote_id, data)

    @rpc
    def approve_quote(self, quote_id: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Quotes(context, self.quote_settings).approve(quote_id, data)

    @rpc
    def reject_quote(self, quote_id: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Quotes(context, self.quote_settings).reject(quote_id, data)

    @rpc
    def send_quote(self, quote_id: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Quotes(context, self.quote_settings).send(quote_id, data)

    @rpc
    def accept_quote(self, quote_id: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Quotes(context, self.quote_settings).accept(quote_id, data)

    @rpc
    def decline_quote(self, quote_id: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Quotes(context, self.quote_settings).decline(quote_id, data)

    @rpc
    def revise_quote(self, quote_id: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Quotes(context, self.quote_settings).revise(quote_id, data)

    @rpc
    def quote_version(self, quote_id: str, version_no: str) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Quotes(context, self.quote_settings).version_of(quote_id, version_no)

    @rpc
    def quote_history(
        self, quote_id: str, cursor: str | None = None, limit: int | None = None
    ) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Quotes(context, self.quote_settings).history_of(quote_id, cursor, limit)

    @rpc
    def print_quote(self, quote_id: str) -> str:
        with read_only(self.db) as context:
            return Quotes(context, self.quote_settings).printable(quote_id)

    @rpc
    def quote_pdf(self, quote_id: str) -> dict[str, str]:
        with read_only(self.db) as context:
            return Quotes(context, self.quote_settings).pdf(quote_id)

    @timer(interval=QUOTE_EXPIRY_SECONDS, eager=True)  # type: ignore[untyped-decorator]
    def expire_past_quotes(self) -> None:
        """Mark the live quotes past their validity expired (readers see it at once)."""
        with self.db.session() as session:
            expired = expire_quotes(session, utcnow())
        if expired:
            log.info("%s quotes expired", expired)

    # -- end catalog

    # -- orders and contracts ------------------------------------------------------------------
    credit_policy: WhenNoLimit = CreditPolicy()

    @rpc
    def create_order(self, data: dict[str, Any]) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Orders(context, self.credit_policy).create(data)

    @rpc
    def create_order_from_quote(
        self, quote_id: str, data: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Orders(context, self.credit_policy).create_from_quote(quote_id, data)

    @rpc
    def get_order(self, order_id: str) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Orders(context).get(order_id)

    @rpc
    def list_orders(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Orders(context).list(query)

    @rpc
    def update_order(
        self, order_id: str, changes: dict[str, Any], expected_version: int | None = None
    ) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Orders(context, self.credit_policy).update(order_id, changes, expected_version)

    @rpc
    def confirm_order(
        self,
        order_id: str,
        data: dict[str, Any] | None = None,
        expected_version: int | None = None,
    ) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Orders(context, self.credit_policy).confirm(order_id, data, expected_version)

    @rpc
    def approve_order(self, order_id: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Orders(context, self.credit_policy).approve(order_id, data)

    @rpc
    def reject_order(self, order_id: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Orders(context, self.credit_policy).reject(order_id, data)

    @rpc
    def cancel_order(self, order_id: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Orders(context, self.credit_policy).cancel(order_id, data)

    @rpc
    def rework_order(self, order_id: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Orders(context, self.credit_policy).rework(order_id, data)

    @rpc
    def order_shipments(self, order_id: str) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Orders(context).shipments(order_id)

    @rpc
    def order_history(
        self, order_id: str, cursor: str | None = None, limit: int | None = None
    ) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Orders(context).history_of(order_id, cursor, limit)

    @rpc
    def create_contract(self, data: dict[str, Any]) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Contracts(context).create(data)

    @rpc
    def get_contract(self, contract_id: str) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Contracts(context).get(contract_id)

    @rpc
    def list_contracts(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Contracts(context).list(query)

    @rpc
    def expiring_contracts(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Contracts(context).expiring(query)

    @rpc
    def update_contract(
        self, contract_id: str, changes: dict[str, Any], expected_version: int | None = None
    ) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Contracts(context).update(contract_id, changes, expected_version)

    @rpc
    def sign_contract(self, contract_id: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Contracts(context).sign(contract_id, data)

    @rpc
    def terminate_contract(
        self, contract_id: str, data: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Contracts(context).terminate(contract_id, data)

    @rpc
    def contract_history(
        self, contract_id: str, cursor: str | None = None, limit: int | None = None
    ) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Contracts(context).history_of(contract_id, cursor, limit)

    @rpc
    def complete_contract(self, contract_id: str) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Contracts(context).complete(contract_id)

    @timer(interval=ACTIVATION_CHECK_SECONDS, eager=True)  # type: ignore[untyped-decorator]
    def activate_contracts(self) -> None:
        """Signed contracts become active on their start date; those in force past their end
        date expire."""
        with self.db.session() as session:
            activated = activate_started(session, utcnow())
        if activated:
            log.info("%s contracts became active or expired", activated)

    # -- end orders

    # -- receivables ---------------------------------------------------------------------------
    overdue_schedule: OverdueSchedule = OverdueSchedule()

    @rpc
    def list_invoices(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Receivables(context).list_invoices(query)

    @rpc
    def get_invoice(self, invoice_no: str) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Receivables(context).get_invoice(invoice_no)

    @rpc
    def list_payments(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Receivables(context).list_payments(query)

    @rpc
    def receivable_aging(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Receivables(context).aging(query)

    @rpc
    def overdue_invoices(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Receivables(context).overdue(query)

    @rpc
    def receivable_collections(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Receivables(context).collections(query)

    @rpc
    def customer_receivable(self, customer_id: str) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Receivables(context).customer_receivable(customer_id)

    @rpc
    def waiting_allocations(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Receivables(context).waiting_allocations(query)

    @rpc
    def due_records(self, kind: str, query: dict[str, Any] | None = None) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Receivables(context).due_records(kind, query)

    @timer(interval=OVERDUE_CHECK_SECONDS, eager=True)  # type: ignore[untyped-decorator]
    def announce_overdue_invoices(self) -> None:
        """``invoice_overdue`` for the invoices that crossed an overdue threshold: when the
        service starts, then daily at ``INVOICE_OVERDUE_HOUR``."""
        now = utcnow()
        if not self.overdue_schedule.due(now):
            return
        with self.db.session() as session:
            written = announce_overdue(session, self.outbox, now)
        if written:
            log.info("%s overdue invoices announced", written)

    # -- end receivables

    # -- erp events ----------------------------------------------------------------------------
    # Each ERP event type has a batch handler on the queue the deployment topology declares
    # (``sales.on_erp_<type>``, see devstack/topology.py); ``apply_erp`` applies a batch.
    erp_batches: FamilyLocks = BatchLock()

    def apply_erp(self, batch: EventBatch) -> None:
        """ERP batches that write the same documents apply one at a time in this process (see
        ``BatchLock``), what each reads loaded in one query per kind of document."""
        with self.erp_batches.of(DOCUMENT_FAMILIES[batch.event_type]), self.db.session() as session:
            inbound = ErpInbound(session, self.outbox)
            inbound.prepare(batch.events)
            batch.apply(session, inbound.apply)

    @event_batch_handler("erp", "item_updated")
    def on_erp_item_updated(self, batch: EventBatch) -> None:
        self.apply_erp(batch)

    @event_batch_handler("erp", "price_list_updated")
    def on_erp_price_list_updated(self, batch: EventBatch) -> None:
        self.apply_erp(batch)

    @event_batch_handler("erp", "order_created")
    def on_erp_order_created(self, batch: EventBatch) -> None:
        self.apply_erp(batch)

    @event_batch_handler("erp", "order_rejected")
    def on_erp_order_rejected(self, batch: EventBatch) -> None:
        self.apply_erp(batch)

    @event_batch_handler("erp", "order_shipped")
    def on_erp_order_shipped(self, batch: EventBatch) -> None:
        self.apply_erp(batch)

    @event_batch_handler("erp", "order_cancelled")
    def on_erp_order_cancelled(self, batch: EventBatch) -> None:
        self.apply_erp(batch)

    @event_batch_handler("erp", "invoice_issued")
    def on_erp_invoice_issued(self, batch: EventBatch) -> None:
        self.apply_erp(batch)

    @event_batch_handler("erp", "payment_received")
    def on_erp_payment_received(self, batch: EventBatch) -> None:
        self.apply_erp(batch)

    @event_batch_handler("erp", "customer_credit_updated")
    def on_erp_customer_credit_updated(self, batch: EventBatch) -> None:
        self.apply_erp(batch)

    @rpc
    def list_erp_unmatched_events(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        with read_only(self.db) as context:
            return ErpAdmin(context).list_unmatched(query)

    @rpc
    def apply_erp_unmatched_event(self, unmatched_id: str, data: dict[str, Any]) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return ErpAdmin(context).map_customer(unmatched_id, data)

    # -- end erp

    @timer(interval=CATCH_UP_CHECK_SECONDS, eager=True)  # type: ignore[untyped-decorator]
    def catch_up_from_snapshots(self) -> None:
        """Fill a fresh database from org's and customer's snapshots, read as this service;
        each snapshot read to its end is not read again (see ``application.catch_up``)."""
        read_pending_snapshots(CatchUp(self.db), self.catch_up_state, self.identity.rpc)
