"""Activities (行动): plan, log as done, complete (result and next step), cancel, replan, check
in on a visit; list, calendar and overdue list.

An activity belongs to a customer the caller can see, optionally to one of its contacts and to
one of its opportunities the caller can see. It carries the customer's region and category and
its owner's department for scoping, like every sales record. Completing an activity on an
opportunity moves the opportunity's "last activity at" on.

``SalesUseCases`` holds what the activity, expense and target use cases share: the checks on
the records a new one hangs off, history rows and dumping.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from crm_common.application import UseCases
from crm_common.errors import Conflict, ValidationFailed
from crm_common.history import FieldChange, diff, filled, snapshot
from crm_common.models import check_version, split_version
from crm_common.schemas import load
from crm_common.scope import SCOPE_FIELDS, ScopeValues, check_in_scope
from sales import events
from sales.application.history import dump, record_history
from sales.domain import activities as rules
from sales.models import Activity, Customer, Opportunity
from sales.repository import activities as rows
from sales.repository import opportunities as opportunity_rows
from sales.repository import read_models
from sales.schemas.activities import (
    ActivityCompletionSchema,
    ActivityInputSchema,
    ActivityQuerySchema,
    ActivityReplanSchema,
    ActivitySchema,
    ActivityUpdateSchema,
    CalendarQuerySchema,
    CheckInInputSchema,
    OverdueQuerySchema,
)
from sales.schemas.opportunities import HistoryEntrySchema

READ = "activity:read"
WRITE = "activity:write"
MERGED = "merged"

ACTIVITY_FIELDS = (
    "type",
    "subject",
    "status",
    "customer_id",
    "contact_id",
    "opportunity_id",
    "owner_id",
    "department_id",
    "region",
    "category",
    "start_at",
    "duration_minutes",
    "done_at",
    "result",
    "next_step",
    "checkin_lat",
    "checkin_lng",
    "checkin_at",
    "participants",
)
UNORDERED = frozenset({"participants"})

activity_schema = ActivitySchema()
history_schema = HistoryEntrySchema()


def dump_activity(activity: Activity, now: datetime) -> dict[str, Any]:
    """The activity with its planned end and whether it is overdue at ``now``."""
    dumped = dump(activity_schema, activity)
    start = rows.aware(activity.start_at)
    planned = activity.status == rules.ActivityStatus.PLANNED and start is not None
    end = rules.ends_at(start, activity.duration_minutes or 0) if planned and start else None
    dumped["ends_at"] = end.isoformat() if end else None
    dumped["overdue"] = rules.is_overdue(
        activity.status, start, activity.duration_minutes or 0, now
    )
    return dumped


class SalesUseCases(UseCases):
    """What the activity, expense and target use cases share."""

    def usable_customer(self, customer_id: Any, field: str = "customer_id") -> Customer:
        """A customer the caller can see and that was not merged away; a merged one is
        refused naming the survivor to use instead."""
        customer = rows.visible_customer(self.session, customer_id, self.principal)
        if customer is None:
            raise ValidationFailed.on(field, "is not a customer you can see")
        if customer.status == MERGED:
            survivor = read_models.survivor_of(self.session, customer.id)
            raise ValidationFailed(
                f"{field}: customer {customer.code} was merged into another customer",
                {
                    "errors": {field: [f"was merged into customer {survivor}: use that one"]},
                    "merged_into_id": str(survivor),
                },
            )
        return customer

    def opportunity_of(
        self, opportunity_id: uuid.UUID, customer: Customer, field: str = "opportunity_id"
    ) -> Opportunity:
        """An opportunity the caller can see, of ``customer``."""
        opportunity = rows.visible_opportunity(self.session, opportunity_id, self.principal)
        if opportunity is None:
            raise ValidationFailed.on(field, "is not an opportunity you can see")
        if opportunity.customer_id != customer.id:
            raise ValidationFailed.on(field, f"is not an opportunity of customer {customer.code}")
        return opportunity

    def department_of(self, user_id: str) -> str | None:
        """The caller's department for the caller, else the department of the user's person."""
        if user_id == self.principal.user_id:
            return self.principal.department_id
        person = read_models.person_of_user(self.session, user_id)
        return person.department_id if person else None

    def check_placement(self, values: dict[str, Any], written: Iterable[str], noun: str) -> None:
        """``ValidationFailed`` unless a record with these scope values stays in the caller's
        data scope."""
        record = ScopeValues(**{name: values.get(name) for name in SCOPE_FIELDS})
        check_in_scope(self.principal, record, written, noun=noun)

    def record_history(
        self,
        entity_type: str,
        entity_id: Any,
        change: str,
        changes: Iterable[FieldChange] = (),
        *,
        new: Any = None,
    ) -> None:
        record_history(self.context, entity_type, entity_id, change, changes, new=new)

    def history(
        self, entity_type: str, entity_id: uuid.UUID, cursor: Any, limit: Any
    ) -> dict[str, Any]:
        """One page of a record's history, newest first."""
        page = opportunity_rows.history_page(
            self.session, entity_type, str(entity_id), cursor, limit
        )
        return {
            "items": [dump(history_schema, entry) for entry in page.items],
            "next_cursor": page.next_cursor,
        }


class Activities(SalesUseCases):
    def activity(self, activity_id: Any) -> Activity:
        return rows.get_activity(self.session, activity_id, rows.visible_activities(self.principal))

    def dumped(self, activity: Activity) -> dict[str, Any]:
        return dump_activity(activity, self.context.now)

    # -- writes ------------------------------------------------------------------------------
    def plan(self, data: Any) -> dict[str, Any]:
        """Plan an activity, or log one already done (``status`` ``done``)."""
        self.principal.require(WRITE)
        values = load(ActivityInputSchema(), data)
        now = self.context.now
        customer = self.usable_customer(values["customer_id"])
        links = self.links(values, customer)
        owner_id = values.get("owner_id") or self.principal.user_id
        placement = {
            "owner_id": owner_id,
            "department_id": self.department_of(owner_id),
            "region": customer.region,
            "category": customer.category,
        }
        written = ["owner_id"] if values.get("owner_id") else []
        self.check_placement(placement, [*written, "region", "category"], "activity")
        activity = Activity(
            type=rules.check_type(values["type"]),
            subject=values["subject"],
            customer_id=customer.id,
            participants=rules.normalize_participants(values.get("participants", []), owner_id),
            **links,
            **placement,
        )
        if values["status"] == rules.ActivityStatus.DONE:
            done = rules.complete(
                rules.ActivityStatus.PLANNED,
                values.get("result"),
                values.get("next_step"),
                values.get("done_at") or now,
                now,
            )
            activity.status = rules.ActivityStatus.DONE.value
            activity.result, activity.next_step, activity.done_at = (
                done.result,
                done.next_step or None,
                done.done_at,
            )
            activity.start_at = values.get("start_at") or done.done_at
            activity.duration_minutes = values.get("duration_minutes")
        else:
            activity.status = rules.ActivityStatus.PLANNED.value
            activity.start_at = values.get("start_at")
            activity.duration_minutes = rules.check_plan(
                values.get("start_at"), values.get("duration_minutes")
            )
        self.apply_check_in(activity, values)
        self.session.add(activity)
        self.session.flush()
        dumped = self.dumped(activity)
        self.record_history("activity", activity.id, "created", new=filled(dumped, ACTIVITY_FIELDS))
        if activity.status == rules.ActivityStatus.DONE:
            self.touch_opportunity(activity)
            self.context.publish(events.ACTIVITY_COMPLETED, events.activity_event(dumped))
        else:
            self.context.publish(events.ACTIVITY_PLANNED, events.activity_event(dumped))
        return dumped

    def links(self, values: dict[str, Any], customer: Customer) -> dict[str, Any]:
        """The contact and opportunity of the values, checked against the customer."""
        found: dict[str, Any] = {}
        if "contact_id" in values:
            contact_id = values["contact_id"]
            if contact_id is not None and not rows.contact_of(
                self.session, contact_id, customer.id
            ):
                raise ValidationFailed.on(
                    "contact_id", f"is not a contact of customer {customer.code}"
                )
            found["contact_id"] = contact_id
        if "opportunity_id" in values:
            opportunity_id = values["opportunity_id"]
            if opportunity_id is not None:
                self.opportunity_of(opportunity_id, customer)
            found["opportunity_id"] = opportunity_id
        return found

    def apply_check_in(self, activity: Activity, values: dict[str, Any]) -> None:
        position = rules.check_in(
            activity.type,
            values.get("checkin_lat"),
            values.get("checkin_lng"),
            values.get("checkin_at"),
            self.context.now,
        )
        if position is not None:
            activity.checkin_lat, activity.checkin_lng, activity.checkin_at = (
                position.lat,
                position.lng,
                position.at,
            )

    def touch_opportunity(self, activity: Activity) -> None:
        if activity.opportunity_id is not None and activity.done_at is not None:
            opportunity_rows.touch_last_activity(
                self.session, activity.opportunity_id, activity.done_at
            )

    def change(
        self, activity: Activity, apply: Any, change: str = "updated"
    ) -> tuple[dict[str, Any], list[FieldChange]]:
        """Run ``apply(activity)``, then write the history of what it changed."""
        before = snapshot(activity, ACTIVITY_FIELDS)
        apply(activity)
        changes = diff(
            before, snapshot(activity, ACTIVITY_FIELDS), ACTIVITY_FIELDS, unordered=UNORDERED
        )
        if changes:
            activity.updated_at = self.context.now
            self.session.flush()
            self.record_history("activity", activity.id, change, changes)
        return self.dumped(activity), changes

    def update(self, activity_id: Any, changes: Any, expected_version: Any) -> dict[str, Any]:
        """Change the subject, type, contact, opportunity or participants."""
        self.principal.require(WRITE)
        activity = self.activity(activity_id)
        changes, version = split_version(changes, expected_version)
        check_version(activity, version)
        values = load(ActivityUpdateSchema(), changes)
        customer = self.session.get(Customer, activity.customer_id)
        if customer is None:
            raise ValidationFailed.on("customer_id", "the activity's customer is unknown")
        links = self.links(values, customer)
        if values.get("type") and activity.checkin_lat is not None:
            rules.check_in(
                values["type"], activity.checkin_lat, activity.checkin_lng, None, self.context.now
            )

        def apply(record: Activity) -> None:
            for name, value in links.items():
                setattr(record, name, value)
            if "subject" in values:
                record.subject = values["subject"]
            if "type" in values:
                record.type = rules.check_type(values["type"])
            if "participants" in values:
                record.participants = rules.normalize_participants(
                    values["participants"], record.owner_id
                )

        dumped, _ = self.change(activity, apply)
        return dumped

    def complete(self, activity_id: Any, data: Any) -> dict[str, Any]:
        """Mark a planned activity done with its result and next step."""
        self.principal.require(WRITE)
        activity = self.activity(activity_id)
        values = load(ActivityCompletionSchema(), data)
        now = self.context.now
        done = rules.complete(
            activity.status,
            values.get("result"),
            values.get("next_step"),
            values.get("done_at") or now,
            now,
        )

        def apply(record: Activity) -> None:
            record.status = rules.ActivityStatus.DONE.value
            record.result, record.next_step, record.done_at = (
                done.result,
                done.next_step or None,
                done.done_at,
            )
            self.apply_check_in(record, values)

        dumped, _ = self.change(activity, apply, "completed")
        self.touch_opportunity(activity)
        self.context.publish(events.ACTIVITY_COMPLETED, events.activity_event(dumped))
        return dumped

    def cancel(self, activity_id: Any) -> dict[str, Any]:
        self.principal.require(WRITE)
        activity = self.activity(activity_id)
        rules.check_cancel(activity.status)

        def apply(record: Activity) -> None:
            record.status = rules.ActivityStatus.CANCELLED.value

        dumped, _ = self.change(activity, apply, "cancelled")
        return dumped

    def replan(self, activity_id: Any, data: Any, expected_version: Any) -> dict[str, Any]:
        """Move a planned activity to another time (and duration)."""
        self.principal.require(WRITE)
        activity = self.activity(activity_id)
        data, version = split_version(data, expected_version)
        check_version(activity, version)
        rules.check_replan(activity.status)
        values = load(ActivityReplanSchema(), data)
        duration = rules.check_plan(
            values["start_at"], values.get("duration_minutes", activity.duration_minutes)
        )

        def apply(record: Activity) -> None:
            record.start_at, record.duration_minutes = values["start_at"], duration

        dumped, _ = self.change(activity, apply, "replanned")
        return dumped

    def check_in(self, activity_id: Any, data: Any) -> dict[str, Any]:
        """Record where and when a visit's owner checked in."""
        self.principal.require(WRITE)
        activity = self.activity(activity_id)
        if activity.status == rules.ActivityStatus.CANCELLED:
            raise Conflict(
                "a cancelled activity takes no check-in", {"reason": "activity_cancelled"}
            )
        values = load(CheckInInputSchema(), data)
        for name in ("checkin_lat", "checkin_lng"):
            if values.get(name) is None:
                raise ValidationFailed.on(name, "is required to check in")
        dumped, _ = self.change(
            activity, lambda record: self.apply_check_in(record, values), "checked_in"
        )
        return dumped

    # -- reads -------------------------------------------------------------------------------
    def get(self, activity_id: Any) -> dict[str, Any]:
        self.principal.require(READ)
        return self.dumped(self.activity(activity_id))

    def list(self, query: Any) -> dict[str, Any]:
        self.principal.require(READ)
        params = load(ActivityQuerySchema(), query)
        page = rows.activities_page(
            self.session, params, rows.visible_activities(self.principal), self.context.now
        )
        return {"items": [self.dumped(a) for a in page.items], "next_cursor": page.next_cursor}

    def calendar(self, query: Any) -> dict[str, Any]:
        """One owner's or one department's activities starting in a range (the caller's own
        when neither is given), planned and done unless ``status`` says otherwise."""
        self.principal.require(READ)
        params = load(CalendarQuerySchema(), query)
        rules.check_calendar_range(params["start"], params["end"])
        department_id = params.pop("department_id", None)
        if department_id and params.pop("include_sub_departments"):
            params["department_ids"] = rows.departments_under(self.session, department_id)
        elif department_id:
            params["department_id"] = department_id
        else:
            params["participant_id"] = params.pop("owner_id", None) or self.principal.user_id
        params["status"] = params.get("status") or [
            rules.ActivityStatus.PLANNED.value,
            rules.ActivityStatus.DONE.value,
        ]
        found = rows.calendar(
            self.session, params, rows.visible_activities(self.principal), self.context.now
        )
        return {"items": [self.dumped(a) for a in found]}

    def overdue(self, query: Any) -> dict[str, Any]:
        """Planned activities past their planned end, the longest overdue first."""
        self.principal.require(READ)
        params = load(OverdueQuerySchema(), query)
        page = rows.overdue_page(
            self.session, params, rows.visible_activities(self.principal), self.context.now
        )
        return {"items": [self.dumped(a) for a in page.items], "next_cursor": page.next_cursor}

    def history_of(self, activity_id: Any, cursor: Any, limit: Any) -> dict[str, Any]:
        self.principal.require(READ)
        activity = self.activity(activity_id)
        return self.history("activity", activity.id, cursor, limit)
