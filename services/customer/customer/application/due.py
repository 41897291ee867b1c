"""What is coming due among customers, for the notify service's scheduled alert rules.

``due_records(kind, query)`` answers the records of one kind due within ``query["days"]`` days
from today (in the business time zone, or from ``query["as_of"]``):

- ``birthdays``: contacts whose birthday recurs in the window (29 February on 28 February in
  a common year), with the contact's name and mobile and the customer's name and owner;
- ``founding_anniversaries``: customers whose founding date (``established_on``) recurs in it;
- ``care_due``: care records are kept of care given (a visit, a call, a gift on a date), not
  planned: nothing is ever due, and the answer is always empty.

Customers merged or disabled are left out. Only a service acting as itself (notify) or a user
holding ``system:admin`` may ask; the records are those of the caller's data scope.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from crm_common.application import UseCases
from crm_common.errors import Forbidden, ValidationFailed
from crm_common.ids import BUSINESS_TZ
from crm_common.schemas import load
from customer import repository
from customer.domain.anniversaries import due_within, month_day_ranges
from customer.schemas import DueRecordsQuerySchema

OPERATOR = "system:admin"
"""Besides services, who may list due records: an operator checking what a schedule sees."""

BIRTHDAYS = "birthdays"
FOUNDING_ANNIVERSARIES = "founding_anniversaries"
CARE_DUE = "care_due"
KINDS = (BIRTHDAYS, FOUNDING_ANNIVERSARIES, CARE_DUE)


class DueRecords(UseCases):
    def find(self, kind: Any, query: Any) -> dict[str, Any]:
        if not (self.principal.is_service or self.principal.can(OPERATOR)):
            raise Forbidden(f"only a service or a holder of {OPERATOR} may list due records")
        if kind not in KINDS:
            raise ValidationFailed.on("kind", f"is one of {', '.join(KINDS)}")
        params = load(DueRecordsQuerySchema(), query)
        today = params.get("as_of") or self.context.now.astimezone(BUSINESS_TZ).date()
        answers: dict[str, Callable[[date, int], list[dict[str, Any]]]] = {
            BIRTHDAYS: self.birthdays,
            FOUNDING_ANNIVERSARIES: self.founding_anniversaries,
            CARE_DUE: self.care_due,
        }
        return {"items": answers[kind](today, params["days"])}

    def birthdays(self, today: date, days: int) -> list[dict[str, Any]]:
        visible = repository.visible_to(self.principal)
        rows = repository.contacts_with_birthday_in(
            self.session, month_day_ranges(today, days), visible
        )
        items = []
        for row in rows:
            due = due_within(row.birthday, today, days)
            if due is None:
                continue
            items.append(
                {
                    "record_type": "contact",
                    "record_id": str(row.id),
                    "code": row.customer_code,
                    "owner_id": row.owner_id,
                    "department_id": row.department_id,
                    "customer_id": str(row.customer_id),
                    "due_on": due.on.isoformat(),
                    "fields": {
                        "contact_name": row.name,
                        "title": row.title,
                        "mobile": row.mobile,
                        "email": row.email,
                        "birthday": row.birthday.isoformat(),
                        "age": due.years,
                        "days_until": due.days_until,
                        "customer_code": row.customer_code,
                        "customer_name": row.customer_name,
                        "owner_id": row.owner_id,
                    },
                }
            )
        return _by_day(items)

    def founding_anniversaries(self, today: date, days: int) -> list[dict[str, Any]]:
        visible = repository.visible_to(self.principal)
        rows = repository.customers_founded_in(self.session, month_day_ranges(today, days), visible)
        items = []
        for row in rows:
            due = due_within(row.established_on, today, days)
            if due is None:
                continue
            items.append(
                {
                    "record_type": "customer",
                    "record_id": str(row.id),
                    "code": row.code,
                    "owner_id": row.owner_id,
                    "department_id": row.department_id,
                    "customer_id": str(row.id),
                    "due_on": due.on.isoformat(),
                    "fields": {
                        "customer_code": row.code,
                        "customer_name": row.name,
                        "established_on": row.established_on.isoformat(),
                        "years": due.years,
                        "days_until": due.days_until,
                        "category": row.category,
                        "region": row.region,
                        "owner_id": row.owner_id,
                    },
                }
            )
        return _by_day(items)

    def care_due(self, today: date, days: int) -> list[dict[str, Any]]:
        """Care records tell care given, with no planned date or done mark: none is due."""
        return []


def _by_day(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Soonest first; within a day, in customer code order (as the rows came)."""
    return sorted(items, key=lambda item: item["due_on"])
