"""Contracts (合同): drafted directly, from a won opportunity, from an accepted quote or for a
sales order; changed while a draft; signed (``contract_signed``), terminated; read, listed,
and those ending within N days (``expiring``, which notify's expiring-contract alerts read too).

A contract is between a customer and one of our signing entities, with an amount, start and
end dates, terms, the names of its attachments and its payment milestones (回款计划): all by
amount, or all by percentage of the amount (the rounding remainder on the last), adding up to
the amount exactly (``sales.domain.contracts``). It is scoped like every sales record: the
owner's department, the customer's region and category.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from crm_common.errors import Conflict, Forbidden, ValidationFailed
from crm_common.history import FieldChange, filled
from crm_common.ids import BUSINESS_TZ
from crm_common.models import check_version, split_version
from crm_common.schemas import load
from sales import events
from sales.application.activities import SalesUseCases
from sales.application.history import dump
from sales.domain.codes import format_code
from sales.domain.contracts import (
    IN_FORCE,
    ContractStatus,
    PaymentMilestone,
    becomes_active,
    check_contract,
    check_contract_transition,
    expiry_window,
    has_lapsed,
    milestones_from_percentages,
)
from sales.domain.money import parse_amount, parse_currency, parse_decimal
from sales.models import Customer, HistoryEntry
from sales.models.orders import Contract, ContractMilestone
from sales.repository import activities as activity_rows
from sales.repository import contracts as rows
from sales.repository import orders as order_rows
from sales.repository.opportunities import allocate_sequence, customers_by_id
from sales.schemas.orders import (
    ContractInputSchema,
    ContractQuerySchema,
    ContractSchema,
    ContractSignSchema,
    ContractTerminateSchema,
    ContractUpdateSchema,
    ExpiringQuerySchema,
)

READ = "contract:read"
WRITE = "contract:write"
DUE_RECORDS = "sales:due-records:read"
"""What notify's service identity holds to read the contracts its alerts are about."""
CODE_PREFIX = "HT"
HISTORY_TYPE = "contract"
CONTRACT_FIELDS = (
    "code",
    "title",
    "status",
    "customer_id",
    "opportunity_id",
    "quote_id",
    "order_id",
    "our_entity",
    "customer_signatory",
    "owner_id",
    "department_id",
    "amount",
    "currency",
    "start_date",
    "end_date",
    "signed_on",
    "terms",
    "attachments",
    "milestones",
)
DUMPED_FIELDS = (
    "id",
    "code",
    "title",
    "status",
    "customer_id",
    "opportunity_id",
    "quote_id",
    "order_id",
    "our_entity",
    "customer_signatory",
    "owner_id",
    "department_id",
    "region",
    "category",
    "amount",
    "currency",
    "start_date",
    "end_date",
    "signed_on",
    "terms",
    "attachments",
    "terminated_at",
    "termination_reason",
    "created_by",
    "created_at",
    "updated_at",
    "version",
)
PLAIN_FIELDS = ("title", "our_entity", "customer_signatory", "terms", "start_date", "end_date")

contract_schema = ContractSchema()


def dump_contract(
    contract: Contract,
    customer: Customer | None,
    milestones: Sequence[ContractMilestone] | None,
    today: date,
) -> dict[str, Any]:
    values: dict[str, Any] = {name: getattr(contract, name) for name in DUMPED_FIELDS}
    values["customer_code"] = customer.code if customer else None
    values["customer_name"] = customer.name if customer else None
    values["days_to_end"] = (contract.end_date - today).days
    if milestones is not None:
        values["milestones"] = [
            {
                "seq": m.seq,
                "name": m.name,
                "due_date": m.due_date,
                "amount": m.amount,
                "percent": m.percent,
            }
            for m in milestones
        ]
    return dump(contract_schema, values)


def planned_milestones(
    amount: Decimal, given: Sequence[dict[str, Any]]
) -> tuple[list[PaymentMilestone], list[Decimal | None]]:
    """The milestones as amounts (and the percentages they were planned as, if so)."""
    by_percent = [item.get("percent") is not None for item in given]
    if any(by_percent) and not all(by_percent):
        raise ValidationFailed.on(
            "milestones", "give every milestone an amount, or every one a percent"
        )
    if given and all(by_percent):
        percents = [
            parse_decimal(item["percent"], f"milestones.{number}.percent")
            for number, item in enumerate(given, start=1)
        ]
        plan = [
            (item["name"], item["due_date"], percent)
            for item, percent in zip(given, percents, strict=True)
        ]
        return list(milestones_from_percentages(amount, plan)), list(percents)
    milestones = [
        PaymentMilestone(
            item["name"],
            item["due_date"],
            parse_amount(item["amount"], f"milestones.{number}.amount"),
        )
        for number, item in enumerate(given, start=1)
    ]
    return milestones, [None] * len(milestones)


class Contracts(SalesUseCases):
    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self.visible = rows.visible_contracts(self.principal)

    def today(self) -> date:
        return self.context.now.astimezone(BUSINESS_TZ).date()

    def contract(self, contract_id: Any) -> Contract:
        return rows.get_contract(self.session, contract_id, self.visible)

    def dumped(self, contract: Contract, *, detail: bool = True) -> dict[str, Any]:
        customer = self.session.get(Customer, contract.customer_id)
        milestones = (
            rows.milestones_of(self.session, [contract.id])[contract.id] if detail else None
        )
        return dump_contract(contract, customer, milestones, self.today())

    # -- create --------------------------------------------------------------------------------
    def create(self, data: Any) -> dict[str, Any]:
        self.principal.require(WRITE)
        values = load(ContractInputSchema(), data)
        source = self.source_of(values)
        customer = self.usable_customer(source["customer_id"])
        owner_id = values.get("owner_id") or source.get("owner_id") or self.principal.user_id
        placement = {
            "owner_id": owner_id,
            "department_id": source.get("department_id") or self.department_of(owner_id),
            "region": customer.region,
            "category": customer.category,
        }
        if values.get("owner_id"):
            placement["department_id"] = self.department_of(owner_id)
        written = ["owner_id"] if values.get("owner_id") else []
        self.check_placement(placement, [*written, "region", "category"], "contract")
        if values.get("amount") is not None:
            amount = parse_amount(values["amount"], allow_zero=False)
        elif source.get("amount") is not None:
            amount = source["amount"]
        else:
            raise ValidationFailed.on("amount", "is required (or give an accepted quote)")
        currency = parse_currency(values.get("currency") or source.get("currency"))
        milestones, percents = planned_milestones(amount, values["milestones"])
        check_contract(amount, values["start_date"], values["end_date"], milestones)
        year = self.context.now.astimezone(BUSINESS_TZ).year
        contract = Contract(
            id=uuid.uuid4(),
            code=format_code(CODE_PREFIX, year, allocate_sequence(self.session, CODE_PREFIX, year)),
            status=ContractStatus.DRAFT.value,
            customer_id=customer.id,
            opportunity_id=source.get("opportunity_id"),
            quote_id=source.get("quote_id"),
            order_id=source.get("order_id"),
            amount=amount,
            currency=currency,
            attachments=list(values.get("attachments") or []),
            created_by=self.context.actor_id,
            created_at=self.context.now,
            updated_at=self.context.now,
            **{name: values.get(name) for name in PLAIN_FIELDS},
            **placement,
        )
        self.session.add(contract)
        self.session.flush()
        self.save_milestones(contract.id, milestones, percents)
        dumped = self.dumped(contract)
        self.record_history(
            HISTORY_TYPE, contract.id, "created", new=filled(dumped, CONTRACT_FIELDS)
        )
        return dumped

    def source_of(self, values: dict[str, Any]) -> dict[str, Any]:
        """What the quote, opportunity and order the contract comes from give it, each one
        visible to the caller and all of one customer."""
        found: dict[str, Any] = {}
        customers: list[tuple[str, uuid.UUID]] = []
        if values.get("customer_id") is not None:
            customers.append(("customer_id", values["customer_id"]))
        if values.get("quote_id") is not None:
            quote = self.accepted_quote(values["quote_id"])
            customers.append(("quote_id", quote.customer_id))
            found.update(
                quote_id=quote.id,
                amount=quote.gross,
                currency=quote.currency,
                owner_id=quote.owner_id,
                department_id=quote.department_id,
            )
            if quote.opportunity_id is not None:
                found["opportunity_id"] = quote.opportunity_id
        if values.get("opportunity_id") is not None:
            opportunity = activity_rows.visible_opportunity(
                self.session, values["opportunity_id"], self.principal
            )
            if opportunity is None:
                raise ValidationFailed.on("opportunity_id", "is not an opportunity you can see")
            if opportunity.status != "won":
                raise ValidationFailed.on(
                    "opportunity_id", f"is {opportunity.status}; a contract follows a won one"
                )
            customers.append(("opportunity_id", opportunity.customer_id))
            found["opportunity_id"] = opportunity.id
            found.setdefault("owner_id", opportunity.owner_id)
        if values.get("order_id") is not None:
            order = order_rows.get_order(
                self.session, values["order_id"], order_rows.visible_orders(self.principal)
            )
            customers.append(("order_id", order.customer_id))
            found["order_id"] = order.id
        if not customers:
            raise ValidationFailed.on(
                "customer_id", "is required unless a quote or opportunity gives it"
            )
        field, customer_id = customers[0]
        for other, other_id in customers[1:]:
            if other_id != customer_id:
                raise ValidationFailed.on(other, f"belongs to another customer than {field}")
        found["customer_id"] = customer_id
        return found

    def accepted_quote(self, quote_id: uuid.UUID) -> Any:
        try:
            quotes = importlib.import_module("sales.repository.quotes")
        except ImportError:
            quotes = None
        quote_for_order = getattr(quotes, "quote_for_order", None)
        if quote_for_order is None:
            raise ValidationFailed.on("quote_id", "quotes are not recorded here")
        quote = quote_for_order(self.session, quote_id, self.principal)
        if quote.status not in ("accepted", "ordered"):
            raise ValidationFailed.on(
                "quote_id", f"is {quote.status}; a contract follows an accepted one"
            )
        return quote

    def save_milestones(
        self,
        contract_id: uuid.UUID,
        milestones: Sequence[PaymentMilestone],
        percents: Sequence[Decimal | None],
    ) -> None:
        rows.replace_milestones(
            self.session,
            contract_id,
            (
                {"name": m.name, "due_date": m.due_date, "amount": m.amount, "percent": p}
                for m, p in zip(milestones, percents, strict=True)
            ),
        )

    # -- read ----------------------------------------------------------------------------------
    def get(self, contract_id: Any) -> dict[str, Any]:
        self.principal.require(READ)
        return self.dumped(self.contract(contract_id))

    def list(self, query: Any) -> dict[str, Any]:
        self.principal.require(READ)
        params = load(ContractQuerySchema(), query)
        page = rows.contracts_page(self.session, params, self.visible)
        return self.page(page.items, page.next_cursor)

    def expiring(self, query: Any) -> dict[str, Any]:
        """Signed and active contracts ending within ``days`` (30 unless given), the soonest
        first; read by people with ``contract:read`` and by notify's service identity."""
        if not (
            self.principal.can(READ)
            or (self.principal.is_service and self.principal.can(DUE_RECORDS))
        ):
            raise Forbidden(f"this needs the permission {READ}", {"permission": READ})
        params = load(ExpiringQuerySchema(), query or {})
        first, last = expiry_window(self.today(), params["days"])
        params["sort"] = "end_date"
        page = rows.contracts_page(
            self.session,
            params,
            self.visible,
            rows.expiring_condition(first, last, sorted(s.value for s in IN_FORCE)),
        )
        return self.page(page.items, page.next_cursor)

    def page(self, contracts: Sequence[Contract], next_cursor: str | None) -> dict[str, Any]:
        customers = customers_by_id(self.session, (c.customer_id for c in contracts))
        today = self.today()
        return {
            "items": [
                dump_contract(c, customers.get(c.customer_id), None, today) for c in contracts
            ],
            "next_cursor": next_cursor,
        }

    def history_of(self, contract_id: Any, cursor: Any, limit: Any) -> dict[str, Any]:
        self.principal.require(READ)
        return self.history(HISTORY_TYPE, self.contract(contract_id).id, cursor, limit)

    # -- change --------------------------------------------------------------------------------
    def update(self, contract_id: Any, changes: Any, expected_version: Any) -> dict[str, Any]:
        """Change a draft; milestones given replace them all, and a new amount re-plans
        milestones given as percentages."""
        self.principal.require(WRITE)
        values, version = split_version(changes if changes is not None else {}, expected_version)
        contract = self.contract(contract_id)
        check_version(contract, version)
        given = load(ContractUpdateSchema(), values)
        if contract.status != ContractStatus.DRAFT:
            raise Conflict(
                f"contract {contract.code} is {contract.status}; only a draft can be changed",
                {"reason": "not_draft", "status": contract.status},
            )
        before = self.dumped(contract)
        for name in PLAIN_FIELDS:
            if name in given:
                setattr(contract, name, given[name])
        if "attachments" in given:
            contract.attachments = list(given["attachments"])
        if "currency" in given:
            contract.currency = parse_currency(given["currency"])
        if "amount" in given:
            contract.amount = parse_amount(given["amount"], allow_zero=False)
        stored = rows.milestones_of(self.session, [contract.id])[contract.id]
        plan = given.get("milestones") or [
            {
                "name": m.name,
                "due_date": m.due_date,
                "amount": None if m.percent is not None else m.amount,
                "percent": m.percent,
            }
            for m in stored
        ]
        milestones, percents = planned_milestones(contract.amount, plan)
        check_contract(contract.amount, contract.start_date, contract.end_date, milestones)
        contract.updated_at = self.context.now
        self.session.flush()
        self.save_milestones(contract.id, milestones, percents)
        dumped = self.dumped(contract)
        self.record_history(
            HISTORY_TYPE,
            contract.id,
            "updated",
            [
                FieldChange(name, before.get(name), dumped.get(name))
                for name in CONTRACT_FIELDS
                if before.get(name) != dumped.get(name)
            ],
        )
        return dumped

    def sign(self, contract_id: Any, data: Any) -> dict[str, Any]:
        """Sign a draft: ``signed``, or ``active`` at once when it has already started."""
        self.principal.require(WRITE)
        values = load(ContractSignSchema(), data or {})
        contract = self.contract(contract_id)
        current = ContractStatus(contract.status)
        check_contract_transition(current, ContractStatus.SIGNED)
        contract.signed_on = values.get("signed_on") or self.today()
        status = ContractStatus.SIGNED
        if becomes_active(status, contract.start_date, self.today()):
            check_contract_transition(status, ContractStatus.ACTIVE)
            status = ContractStatus.ACTIVE
        dumped = self.move(contract, current, status, "signed")
        self.context.publish(
            events.CONTRACT_SIGNED,
            {
                "contract": dumped,
                "customer_id": dumped["customer_id"],
                "owner_id": dumped["owner_id"],
                "department_id": dumped["department_id"],
            },
        )
        return dumped

    def terminate(self, contract_id: Any, data: Any) -> dict[str, Any]:
        self.principal.require(WRITE)
        values = load(ContractTerminateSchema(), data or {})
        contract = self.contract(contract_id)
        current = ContractStatus(contract.status)
        check_contract_transition(current, ContractStatus.TERMINATED)
        contract.terminated_at = self.context.now
        contract.termination_reason = values["reason"]
        return self.move(contract, current, ContractStatus.TERMINATED, "terminated")

    def complete(self, contract_id: Any) -> dict[str, Any]:
        """Mark an active (or expired) contract fulfilled."""
        self.principal.require(WRITE)
        contract = self.contract(contract_id)
        current = ContractStatus(contract.status)
        check_contract_transition(current, ContractStatus.COMPLETED)
        return self.move(contract, current, ContractStatus.COMPLETED, "completed")

    def move(
        self, contract: Contract, current: ContractStatus, target: ContractStatus, change: str
    ) -> dict[str, Any]:
        contract.status = target.value
        contract.updated_at = self.context.now
        self.session.flush()
        self.record_history(
            HISTORY_TYPE,
            contract.id,
            change,
            [FieldChange("status", current.value, target.value)],
        )
        return self.dumped(contract)


ACTIVATION_CHECK_SECONDS = 3600
"""How often the service looks for contracts whose start or end date has come."""


def activate_started(session: Any, now: datetime) -> int:
    """Signed contracts whose start date (in the business time zone) has come become active,
    and contracts in force whose end date has passed expire; how many changed. The service's
    timer runs this."""
    today = now.astimezone(BUSINESS_TZ).date()
    changed = 0
    for contract in rows.signed_and_started(session, today):
        if has_lapsed(ContractStatus.SIGNED, contract.end_date, today):
            continue  # it expires below instead
        changed += _follow(session, contract, ContractStatus.ACTIVE, "activated", now)
    for contract in rows.in_force_and_ended(session, today):
        changed += _follow(session, contract, ContractStatus.EXPIRED, "expired", now)
    session.flush()
    return changed


def _follow(
    session: Any, contract: Contract, target: ContractStatus, change: str, now: datetime
) -> int:
    current = ContractStatus(contract.status)
    check_contract_transition(current, target)
    contract.status = target.value
    contract.updated_at = now
    session.add(
        HistoryEntry(
            entity_type=HISTORY_TYPE,
            entity_id=str(contract.id),
            change=change,
            actor_id=None,
            field="status",
            old=current.value,
            new=target.value,
            at=now,
        )
    )
    return 1
