"""Opportunities (商机): create, read, search, change, move through the stages of their sales
process, win, lose, abandon and reopen; their stage history and field history.

Every use case first checks the caller's function permission (403) and reaches opportunities
only through the caller's data scope, applied in SQL: one outside it is answered like a
missing one (404), and no write may put one outside it (422). A new opportunity is opened for
a customer the caller may see in sales' copy of customers; it takes the customer's region and
category for scoping, and the caller as owner unless told otherwise.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from crm_common.application import UseCaseContext, UseCases
from crm_common.errors import ValidationFailed
from crm_common.history import diff, filled, jsonable, snapshot
from crm_common.models import check_version, split_version
from crm_common.schemas import load
from crm_common.scope import SCOPE_FIELDS, check_in_scope, scope_values
from sales import events
from sales.application.history import dump, record_history
from sales.application.processes import Processes
from sales.domain.activities import idle_cutoff
from sales.domain.forecast import weighted_amount
from sales.domain.money import DEFAULT_CURRENCY, quantize_fen
from sales.domain.opportunities import (
    CODE_PREFIX,
    StageChange,
    StageVisit,
    Status,
    change_stage,
    check_contacts_belong,
    check_customer_usable,
    check_open,
    check_probability_override,
    close,
    days_between,
    days_per_stage,
    effective_probability,
    format_opportunity_code,
    last_open_stage,
    normalize_tags,
    parse_competitor_entries,
    parse_contacts,
    parse_lines,
    reopen,
    scope_from_customer,
)
from sales.domain.processes import Process, missing_fields
from sales.models import Customer, Opportunity
from sales.repository import activities as activity_rows
from sales.repository import opportunities as rows
from sales.repository import read_models
from sales.schemas.opportunities import (
    AbandonInputSchema,
    HistoryEntrySchema,
    LoseInputSchema,
    OpportunityInputSchema,
    OpportunityQuerySchema,
    OpportunitySchema,
    ReopenInputSchema,
    StageHistorySchema,
    StageMoveInputSchema,
    WinInputSchema,
)

READ = "opportunity:read"
WRITE = "opportunity:write"
HISTORY_TYPE = "opportunity"
MERGED = "merged"

RECORD_FIELDS = (
    "name",
    "customer_id",
    "owner_id",
    "department_id",
    "region",
    "category",
    "process_id",
    "stage_code",
    "probability",
    "probability_override",
    "status",
    "expected_amount",
    "currency",
    "expected_close_date",
    "source_campaign_id",
    "source_lead_id",
    "description",
    "tags",
    "loss_reason",
    "won_competitor_id",
    "closed_at",
)
"""The opportunity's own columns that its history follows."""
CHILD_FIELDS = ("contacts", "lines", "competitors")
HISTORY_FIELDS = (*RECORD_FIELDS, *CHILD_FIELDS)
UNORDERED_FIELDS = frozenset({"tags", "contacts", "competitors"})
PLAIN_FIELDS = (
    "name",
    "expected_amount",
    "currency",
    "expected_close_date",
    "source_campaign_id",
    "source_lead_id",
    "description",
)
"""Input fields copied onto the opportunity as they are."""
CLOSED_EDITABLE = frozenset(
    {
        "name",
        "description",
        "tags",
        "source_campaign_id",
        "source_lead_id",
        "owner_id",
        "department_id",
    }
)
"""What may still change once an opportunity is won, lost or abandoned."""

opportunity_schema = OpportunitySchema()
history_schema = HistoryEntrySchema()
stage_history_schema = StageHistorySchema()


def aware(moment: datetime) -> datetime:
    """SQLite gives timestamps back without their zone: they are UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def customer_fields(customer: Customer) -> dict[str, Any]:
    return {
        "code": customer.code,
        "status": customer.status,
        "region": customer.region,
        "category": customer.category,
        "merged_into_id": customer.merged_into_id,
    }


class Opportunities(UseCases):
    def __init__(self, context: UseCaseContext) -> None:
        super().__init__(context)
        self.visible = rows.visible_opportunities(self.principal)
        self.processes = Processes(context)

    # -- create --------------------------------------------------------------------------------
    def create(self, data: Any) -> dict[str, Any]:
        self.principal.require(WRITE)
        values = load(OpportunityInputSchema(), data)
        customer = self.usable_customer(values["customer_id"])
        process = self.processes.for_new_opportunity(values.get("process_id"))
        scope = self.new_scope(customer, values)
        currency = values.get("currency") or DEFAULT_CURRENCY
        children = self.children(values, customer.id, currency)
        stage = process.first_stage
        override = check_probability_override(values.get("probability_override"))
        tags = normalize_tags(values.get("tags") or ())
        missing = missing_fields((stage,), {**values, **children, "tags": tags})
        if missing:
            raise ValidationFailed(f"fill in {', '.join(missing)}", {"errors": missing})
        year = rows.business_year(self.context.now)
        sequence = rows.allocate_sequence(self.session, CODE_PREFIX, year)
        plain = {name: values.get(name) for name in PLAIN_FIELDS}
        plain["currency"] = currency
        opportunity = Opportunity(
            id=uuid.uuid4(),
            code=format_opportunity_code(year, sequence),
            customer_id=customer.id,
            process_id=uuid.UUID(process.id),
            stage_code=stage.code,
            status=Status.OPEN.value,
            probability=effective_probability(stage, override, Status.OPEN),
            probability_override=override,
            tags=tags,
            created_by=self.context.actor_id,
            created_at=self.context.now,
            updated_at=self.context.now,
            **plain,
            **scope,
        )
        self.session.add(opportunity)
        self.session.flush()
        self.save_children(opportunity.id, children)
        self.enter_stage(opportunity, None)
        record_history(
            self.context,
            HISTORY_TYPE,
            opportunity.id,
            "created",
            new=filled(self.state(opportunity), HISTORY_FIELDS),
        )
        dumped = self.view(opportunity, detail=True)
        self.context.publish(events.OPPORTUNITY_CREATED, events.opportunity_created(dumped))
        return dumped

    def usable_customer(self, customer_id: uuid.UUID) -> Customer:
        """The customer in sales' copy, if the caller may see it and it is usable; a merged
        customer is refused, naming the customer it was merged into."""
        customer = rows.find_customer(
            self.session, customer_id, rows.visible_customers(self.principal)
        )
        if customer is not None and customer.status == MERGED:
            survivor = read_models.survivor_of(self.session, customer.id)
            raise ValidationFailed(
                f"customer {customer.code} was merged into another customer",
                {
                    "errors": {"customer_id": [f"was merged into customer {survivor}"]},
                    "merged_into_id": str(survivor),
                },
            )
        check_customer_usable(None if customer is None else customer_fields(customer))
        assert customer is not None
        return customer

    def new_scope(self, customer: Customer, values: dict[str, Any]) -> dict[str, Any]:
        """Owner and department (the caller and theirs, or the owner given and theirs), region
        and category from the customer; refused unless inside the caller's data scope."""
        given = {name for name in ("owner_id", "department_id") if values.get(name)}
        defaults = dict(values)
        if "owner_id" in given:
            department = self.known_owner_department(values["owner_id"])
            if "department_id" not in given:
                defaults["department_id"] = department
        if "department_id" in given:
            self.check_known_department(values["department_id"])
        scope = scope_from_customer(
            customer_fields(customer),
            self.principal.user_id,
            self.principal.department_id,
            defaults,
        )
        check_in_scope(self.principal, scope_values(scope), SCOPE_FIELDS, noun="opportunity")
        return scope

    def known_owner_department(self, owner_id: str) -> str | None:
        """The department of the owner's person; ``ValidationFailed`` for a user no person
        in org's copy has."""
        if owner_id == self.principal.user_id:
            return self.principal.department_id
        person = read_models.person_of_user(self.session, owner_id)
        if person is None:
            raise ValidationFailed.on("owner_id", "is not a user of anyone in the organisation")
        return person.department_id

    def check_known_department(self, department_id: str) -> None:
        if department_id == self.principal.department_id:
            return
        if not rows.department_known(self.session, department_id):
            raise ValidationFailed.on("department_id", "is not a department of the organisation")

    def children(
        self, values: Mapping[str, Any], customer_id: uuid.UUID, currency: str
    ) -> dict[str, Any]:
        """The contacts, lines and competitors among ``values``, checked by the domain."""
        found: dict[str, Any] = {}
        if "contacts" in values:
            contacts = parse_contacts(values["contacts"])
            check_contacts_belong(contacts, rows.contacts_of_customer(self.session, customer_id))
            found["contacts"] = contacts
        if "lines" in values:
            found["lines"] = parse_lines([_given(item) for item in values["lines"]], currency)
        if "competitors" in values:
            found["competitors"] = parse_competitor_entries(
                [{**_given(item), "currency": currency} for item in values["competitors"]],
                rows.active_competitor_ids(self.session),
            )
        return found

    def save_children(self, opportunity_id: uuid.UUID, children: Mapping[str, Any]) -> None:
        if "contacts" in children:
            rows.replace_contacts(
                self.session, opportunity_id, ((c.contact_id, c.role) for c in children["contacts"])
            )
        if "lines" in children:
            rows.replace_lines(
                self.session,
                opportunity_id,
                (
                    {
                        "line_no": line.line_no,
                        "item_name": line.item_name,
                        "spec": line.spec or None,
                        "quantity": line.quantity,
                        "expected_price": line.expected_price.amount,
                    }
                    for line in children["lines"]
                ),
            )
        if "competitors" in children:
            rows.replace_competitors(
                self.session,
                opportunity_id,
                (
                    {
                        "competitor_id": uuid.UUID(entry.competitor_id),
                        "offer": entry.offer.amount if entry.offer else None,
                        "threat_level": entry.threat_level,
                        "notes": entry.notes or None,
                    }
                    for entry in children["competitors"]
                ),
            )
        self.session.flush()

    # -- read ----------------------------------------------------------------------------------
    def get(self, opportunity_id: Any) -> dict[str, Any]:
        self.principal.require(READ)
        return self.view(self.opportunity(opportunity_id), detail=True)

    def list(self, query: Any) -> dict[str, Any]:
        self.principal.require(READ)
        params = load(OpportunityQuerySchema(), query)
        if params.get("department_id") and params.pop("include_sub_departments"):
            department_id = params.pop("department_id")
            params["department_ids"] = activity_rows.departments_under(self.session, department_id)
        idle_since = None
        if params.get("idle_days"):
            idle_since = idle_cutoff(self.context.now, params["idle_days"])
        page = rows.opportunities_page(self.session, params, self.visible, idle_since)
        return {"items": self.views(page.items), "next_cursor": page.next_cursor}

    def stages(self, opportunity_id: Any) -> dict[str, Any]:
        """Each stay in a stage with its days, and the days per stage over every stay; the
        time of a closed opportunity stops at its closing."""
        self.principal.require(READ)
        opportunity = self.opportunity(opportunity_id)
        visits = rows.stage_visits(self.session, opportunity.id)
        names = rows.stage_names(self.session, {visit.process_id for visit in visits})
        until = aware(opportunity.closed_at) if opportunity.closed_at else self.context.now
        stays = [
            StageVisit(v.stage_code, aware(v.entered_at), aware(v.left_at) if v.left_at else None)
            for v in visits
        ]
        items = [
            {
                "stage_code": visit.stage_code,
                "stage_name": names.get((visit.process_id, visit.stage_code)),
                "process_id": visit.process_id,
                "entered_at": stay.entered_at,
                "left_at": stay.left_at,
                "days": days_between(stay.entered_at, stay.left_at or until),
                "moved_by": visit.moved_by,
                "reason": visit.reason,
            }
            for visit, stay in zip(visits, stays, strict=True)
        ]
        totals = days_per_stage(stays, until)
        return dump(
            stage_history_schema,
            {
                "opportunity_id": opportunity.id,
                "items": items,
                "days_per_stage": {code: str(days) for code, days in totals.items()},
            },
        )

    def history(self, opportunity_id: Any, cursor: str | None, limit: Any) -> dict[str, Any]:
        """Who changed which field, from what to what, newest first."""
        self.principal.require(READ)
        opportunity = self.opportunity(opportunity_id)
        page = rows.history_page(self.session, HISTORY_TYPE, str(opportunity.id), cursor, limit)
        return {
            "items": [dump(history_schema, entry) for entry in page.items],
            "next_cursor": page.next_cursor,
        }

    # -- change --------------------------------------------------------------------------------
    def update(self, opportunity_id: Any, changes: Any, expected_version: Any) -> dict[str, Any]:
        self.principal.require(WRITE)
        changes, expected_version = split_version(changes, expected_version)
        opportunity = self.opportunity(opportunity_id)
        check_version(opportunity, expected_version)
        values = load(OpportunityInputSchema(), changes, partial=True)
        for name in ("customer_id", "process_id"):
            if name in values and values[name] != getattr(opportunity, name):
                raise ValidationFailed.on(name, "cannot be changed")
            values.pop(name, None)
        if set(values) - CLOSED_EDITABLE:
            check_open(opportunity.status)
        with self.session.no_autoflush:
            before = self.state(opportunity)
            self.apply_scope(opportunity, values)
            for name in PLAIN_FIELDS:
                if name in values:
                    setattr(opportunity, name, values[name])
            if opportunity.currency is None:
                opportunity.currency = DEFAULT_CURRENCY
            if "tags" in values:
                opportunity.tags = normalize_tags(values["tags"] or ())
            process = self.processes.definition_of(opportunity.process_id)
            if "probability_override" in values:
                opportunity.probability_override = check_probability_override(
                    values["probability_override"]
                )
                opportunity.probability = effective_probability(
                    process.stage(opportunity.stage_code),
                    opportunity.probability_override,
                    opportunity.status,
                )
            children = self.children(values, opportunity.customer_id, opportunity.currency)
            if opportunity.status == Status.OPEN:
                self.check_stage_still_met(opportunity, process, children)
            field_changes = diff(
                before,
                self.state(opportunity, children),
                HISTORY_FIELDS,
                unordered=UNORDERED_FIELDS,
            )
        if not field_changes:
            return self.view(opportunity, detail=True)
        opportunity.updated_at = self.context.now
        self.save_children(opportunity.id, children)
        record_history(self.context, HISTORY_TYPE, opportunity.id, "updated", field_changes)
        dumped = self.view(opportunity, detail=True)
        self.context.publish(
            events.OPPORTUNITY_UPDATED,
            events.opportunity_updated(dumped, [c.as_dict() for c in field_changes]),
        )
        return dumped

    def apply_scope(self, opportunity: Opportunity, values: dict[str, Any]) -> None:
        """A new owner or department, checked like on create: a change that would take the
        opportunity out of the caller's scope is refused on the fields that do."""
        written = [
            name
            for name in ("owner_id", "department_id")
            if name in values and values[name] != getattr(opportunity, name)
        ]
        if not written:
            return
        after = {name: getattr(opportunity, name) for name in SCOPE_FIELDS}
        if "owner_id" in written:
            if not values["owner_id"]:
                raise ValidationFailed.on("owner_id", "an opportunity always has an owner")
            department = self.known_owner_department(values["owner_id"])
            after["owner_id"] = values["owner_id"]
            if "department_id" not in values:
                after["department_id"] = department
                written.append("department_id")
        if "department_id" in values:
            if values["department_id"]:
                self.check_known_department(values["department_id"])
            after["department_id"] = values["department_id"]
        check_in_scope(self.principal, scope_values(after), written, noun="opportunity")
        opportunity.owner_id = after["owner_id"]
        opportunity.department_id = after["department_id"]

    def check_stage_still_met(
        self, opportunity: Opportunity, process: Process, children: Mapping[str, Any]
    ) -> None:
        """An open opportunity keeps filled what the stages it has reached required."""
        stage = process.stage(opportunity.stage_code)
        reached = [s for s in process.open_stages if s.position <= stage.position]
        missing = missing_fields(reached, {**self.rule_values(opportunity), **children})
        if missing:
            raise ValidationFailed(
                f"{stage.name} needs {', '.join(missing)}",
                {"errors": {field: [f"is required in {stage.name}"] for field in missing}},
            )

    def move(self, opportunity_id: Any, data: Any, expected_version: Any) -> dict[str, Any]:
        """Move to another stage of the process; entering its won or a lost stage closes the
        opportunity (as ``win`` and ``lose`` do)."""
        self.principal.require(WRITE)
        opportunity, values = self.versioned(opportunity_id, data, expected_version)
        move = load(StageMoveInputSchema(), values)
        process = self.processes.definition_of(opportunity.process_id)
        override = move.get("probability_override", opportunity.probability_override)
        change = change_stage(
            process,
            status=opportunity.status,
            stage_code=opportunity.stage_code,
            to_code=move["stage_code"],
            values=self.rule_values(opportunity),
            reason=move.get("reason"),
            probability_override=check_probability_override(override),
            loss_reason=move.get("loss_reason"),
            loss_reasons=rows.active_loss_reason_codes(self.session),
            won_competitor_id=_text(move.get("won_competitor_id")),
            competitors=rows.active_competitor_ids(self.session),
        )
        return self.apply_change(opportunity, process, change)

    def win(self, opportunity_id: Any, data: Any, expected_version: Any) -> dict[str, Any]:
        self.principal.require(WRITE)
        opportunity, values = self.versioned(opportunity_id, data, expected_version)
        given = load(WinInputSchema(), values)
        return self.close_as(opportunity, "won", reason=given.get("reason"))

    def lose(self, opportunity_id: Any, data: Any, expected_version: Any) -> dict[str, Any]:
        self.principal.require(WRITE)
        opportunity, values = self.versioned(opportunity_id, data, expected_version)
        given = load(LoseInputSchema(), values)
        return self.close_as(
            opportunity,
            "lost",
            reason=given.get("reason"),
            loss_reason=given["loss_reason"],
            loss_reasons=rows.active_loss_reason_codes(self.session),
            won_competitor_id=_text(given.get("won_competitor_id")),
            lost_stage_code=given.get("lost_stage_code"),
            competitors=rows.active_competitor_ids(self.session),
        )

    def abandon(self, opportunity_id: Any, data: Any, expected_version: Any) -> dict[str, Any]:
        self.principal.require(WRITE)
        opportunity, values = self.versioned(opportunity_id, data, expected_version)
        given = load(AbandonInputSchema(), values)
        return self.close_as(opportunity, "abandoned", reason=given["reason"])

    def reopen(self, opportunity_id: Any, data: Any, expected_version: Any) -> dict[str, Any]:
        """Open a closed opportunity again (``opportunity:reopen``), back in the last open
        stage it was in."""
        self.principal.require(WRITE)
        opportunity, values = self.versioned(opportunity_id, data, expected_version)
        given = load(ReopenInputSchema(), values)
        process = self.processes.definition_of(opportunity.process_id)
        visits = [
            StageVisit(v.stage_code, aware(v.entered_at))
            for v in rows.stage_visits(self.session, opportunity.id)
        ]
        change = reopen(
            process,
            status=opportunity.status,
            stage_code=opportunity.stage_code,
            last_open_stage_code=last_open_stage(visits, process),
            permissions=self.principal.permissions,
        )
        return self.apply_change(opportunity, process, change, reason=given.get("reason"))

    def close_as(self, opportunity: Opportunity, outcome: str, **kwargs: Any) -> dict[str, Any]:
        process = self.processes.definition_of(opportunity.process_id)
        change = close(
            process,
            status=opportunity.status,
            stage_code=opportunity.stage_code,
            outcome=outcome,
            values=self.rule_values(opportunity),
            **kwargs,
        )
        return self.apply_change(opportunity, process, change)

    def apply_change(
        self,
        opportunity: Opportunity,
        process: Process,
        change: StageChange,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """Apply a stage move, close or reopen with its stage history, field history and
        events (the stage change, then the new status)."""
        before = self.state(opportunity)
        old_stage, old_status = opportunity.stage_code, opportunity.status
        opportunity.stage_code = change.stage_code
        opportunity.status = change.status
        opportunity.probability = change.probability
        opportunity.probability_override = change.probability_override
        opportunity.loss_reason = change.loss_reason
        opportunity.won_competitor_id = (
            uuid.UUID(change.won_competitor_id) if change.won_competitor_id else None
        )
        opportunity.closed_at = self.context.now if change.closes else None
        opportunity.updated_at = self.context.now
        self.session.flush()
        moved = old_stage != change.stage_code
        if opportunity.status == Status.ABANDONED:
            self.leave_stage(opportunity)
        elif moved or old_status in (Status.ABANDONED, Status.WON, Status.LOST):
            self.enter_stage(opportunity, change.reason or reason)
        field_changes = diff(
            before, self.state(opportunity), HISTORY_FIELDS, unordered=UNORDERED_FIELDS
        )
        label = "stage_changed" if old_status == change.status else _status_change(change.status)
        record_history(self.context, HISTORY_TYPE, opportunity.id, label, field_changes)
        dumped = self.view(opportunity, detail=True)
        if moved:
            self.context.publish(
                events.OPPORTUNITY_STAGE_CHANGED,
                events.opportunity_stage_changed(
                    dumped, old_stage, change.stage_code, change.reason or reason
                ),
            )
        if old_status != change.status:
            self.context.publish(
                events.STATUS_EVENTS[change.status], events.opportunity_status_changed(dumped)
            )
        return dumped

    # -- stage history -------------------------------------------------------------------------
    def leave_stage(self, opportunity: Opportunity) -> None:
        current = rows.current_visit(self.session, opportunity.id)
        if current is not None:
            current.left_at = self.context.now
            self.session.flush()

    def enter_stage(self, opportunity: Opportunity, reason: str | None) -> None:
        """The opportunity leaves the stage it was in (if any) and enters its stage now."""
        self.leave_stage(opportunity)
        rows.add_stage_visit(
            self.session,
            opportunity_id=opportunity.id,
            process_id=opportunity.process_id,
            stage_code=opportunity.stage_code,
            entered_at=self.context.now,
            moved_by=self.context.actor_id,
            reason=reason,
        )

    # -- helpers -------------------------------------------------------------------------------
    def opportunity(self, opportunity_id: Any) -> Opportunity:
        """The opportunity, if the caller may see it; else ``NotFound``."""
        return rows.get_opportunity(self.session, opportunity_id, self.visible)

    def versioned(
        self, opportunity_id: Any, data: Any, expected_version: Any
    ) -> tuple[Opportunity, Any]:
        """The visible opportunity at the version the caller read, and the rest of ``data``."""
        values, version = split_version(data if data is not None else {}, expected_version)
        opportunity = self.opportunity(opportunity_id)
        check_version(opportunity, version)
        return opportunity, values

    def rule_values(self, opportunity: Opportunity) -> dict[str, Any]:
        """The opportunity's values as the stage rules read them (``required_fields``)."""
        return {
            "expected_amount": opportunity.expected_amount,
            "expected_close_date": opportunity.expected_close_date,
            "description": opportunity.description,
            "tags": opportunity.tags,
            "source_campaign_id": opportunity.source_campaign_id,
            "source_lead_id": opportunity.source_lead_id,
            "contacts": rows.deal_contacts(self.session, opportunity.id),
            "lines": rows.lines_of(self.session, opportunity.id),
            "competitors": rows.competitor_entries(self.session, opportunity.id),
        }

    def state(
        self, opportunity: Opportunity, children: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Everything the field history follows, JSON-ready: the contacts, lines and
        competitors in ``children`` (checked, about to be saved), else those stored."""
        children = children or {}
        values = snapshot(opportunity, RECORD_FIELDS)
        contacts = children.get("contacts")
        values["contacts"] = jsonable(
            [{"contact_id": c.contact_id, "role": c.role} for c in contacts]
            if contacts is not None
            else [
                {"contact_id": c["contact_id"], "role": c["role"]}
                for c in rows.deal_contacts(self.session, opportunity.id)
            ]
        )
        lines = children.get("lines")
        values["lines"] = jsonable(
            [
                _line_state(line.line_no, line.item_name, line.spec, line.quantity, price)
                for line, price in (
                    [(line, line.expected_price.amount) for line in lines]
                    if lines is not None
                    else [
                        (line, line.expected_price)
                        for line in rows.lines_of(self.session, opportunity.id)
                    ]
                )
            ]
        )
        entries = children.get("competitors")
        values["competitors"] = jsonable(
            [
                {
                    "competitor_id": entry.competitor_id,
                    "offer": entry.offer.amount if entry.offer else None,
                    "threat_level": entry.threat_level,
                    "notes": entry.notes or None,
                }
                for entry in entries
            ]
            if entries is not None
            else [
                {key: entry[key] for key in ("competitor_id", "offer", "threat_level", "notes")}
                for entry in rows.competitor_entries(self.session, opportunity.id)
            ]
        )
        return values

    def views(self, opportunities: Sequence[Opportunity]) -> Sequence[dict[str, Any]]:
        """List items: the opportunities without their contacts, lines and competitors."""
        customers = rows.customers_by_id(self.session, (o.customer_id for o in opportunities))
        names = rows.stage_names(self.session, {o.process_id for o in opportunities})
        return [
            dump(
                opportunity_schema,
                _fields(o, customers.get(o.customer_id), names.get((o.process_id, o.stage_code))),
            )
            for o in opportunities
        ]

    def view(self, opportunity: Opportunity, *, detail: bool) -> dict[str, Any]:
        customer = rows.customers_by_id(self.session, [opportunity.customer_id]).get(
            opportunity.customer_id
        )
        names = rows.stage_names(self.session, [opportunity.process_id])
        values = _fields(
            opportunity, customer, names.get((opportunity.process_id, opportunity.stage_code))
        )
        if detail:
            values["contacts"] = rows.deal_contacts(self.session, opportunity.id)
            values["lines"] = [
                {
                    "line_no": line.line_no,
                    "item_name": line.item_name,
                    "spec": line.spec,
                    "quantity": Decimal(_number(line.quantity)),
                    "expected_price": line.expected_price,
                    "amount": quantize_fen((line.expected_price or Decimal(0)) * line.quantity),
                }
                for line in rows.lines_of(self.session, opportunity.id)
            ]
            values["competitors"] = rows.competitor_entries(self.session, opportunity.id)
        return dump(opportunity_schema, values)


def _fields(
    opportunity: Opportunity, customer: Customer | None, stage_name: str | None
) -> dict[str, Any]:
    values: dict[str, Any] = {
        name: getattr(opportunity, name)
        for name in (
            "id",
            "code",
            *RECORD_FIELDS,
            "last_activity_at",
            "created_by",
            "created_at",
            "updated_at",
            "version",
        )
    }
    values["customer_code"] = customer.code if customer else None
    values["customer_name"] = customer.name if customer else None
    values["stage_name"] = stage_name
    values["weighted_amount"] = (
        weighted_amount(opportunity.expected_amount, opportunity.probability)
        if opportunity.expected_amount is not None
        else None
    )
    return values


def _line_state(
    line_no: int, item_name: str, spec: str | None, quantity: Decimal, price: Decimal | None
) -> dict[str, Any]:
    return {
        "line_no": line_no,
        "item_name": item_name,
        "spec": spec or None,
        "quantity": _number(quantity),
        "expected_price": price,
    }


def _given(item: Mapping[str, Any]) -> dict[str, Any]:
    """An input item without its empty values (the domain applies its defaults)."""
    return {key: value for key, value in item.items() if value is not None}


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _status_change(status: str) -> str:
    return "reopened" if status == Status.OPEN else status


def _number(value: Decimal) -> str:
    """A quantity without trailing zeros, never in exponent form."""
    return f"{value.normalize():f}"
