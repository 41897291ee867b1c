"""Answers the gateway puts together from several services within one request.

``GET /api/customers/{id}/overview`` asks the customer service for the customer and its contacts
and the sales service for the customer's open opportunities and latest activities, all at once.
Each call goes through its service's bulkhead and shares the request's one deadline
(``gateway.rpc``), so the overview answers by the deadline whatever its backends do.

A part whose service does not answer in time, is not running, or has no free bulkhead slot comes
back as ``{"available": false, "reason": ..., "service": ...}`` while the other parts are
answered; so does a sales part the caller has no permission to read. The customer decides what
the caller may see: when the customer service says the customer is not there or not visible to
the caller, the whole answer is that 404, as ``GET /api/customers/{id}`` is. Every other error a
service raises about the request (401, 422 ...) is the answer too.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import eventlet
from nameko.exceptions import RemoteError, UnknownService

from crm_common.errors import CrmError, Forbidden, Unavailable
from gateway.problems import HttpProblem, UpstreamTimeout

_log = logging.getLogger(__name__)

LATEST_ACTIVITIES = 10
"""How many of the customer's activities the overview shows, latest first."""
OPPORTUNITY_PAGE = 200
"""The page size the open opportunities are read with (every page is read)."""
REASONS = ("timeout", "unavailable", "busy", "forbidden", "error")
"""Why a part is missing: no answer by the deadline; the service is not running or cannot reach
what it needs; its bulkhead is full; the caller may not read it; the service failed."""

BULKHEAD_FULL = "too_many_in_flight"
"""The ``reason`` of the 503 a full bulkhead answers (``gateway.limits.Bulkhead.slot``)."""

OVERVIEW_SCHEMA = "gateway.CustomerOverview"
UNAVAILABLE_SCHEMA = "gateway.UnavailablePart"
OVERVIEW_SUMMARY = "A customer at a glance: contacts, open opportunities, latest activities"
OVERVIEW_DESCRIPTION = (
    "The customer and its contacts (customer service), its open opportunities with their "
    "totals per currency (amount and weighted amount: amount × probability / 100, each "
    f"rounded to the fen) and its {LATEST_ACTIVITIES} latest planned or done activities "
    "(sales service), read at once within the request's deadline. Each part is "
    '`{"available": true, ...}`, or `{"available": false, "reason": ..., "service": ...}` '
    "when its service did not answer in time (`timeout`), is not running (`unavailable`), "
    "has too many requests in progress (`busy`), failed (`error`), or when the caller may "
    "not read it (`forbidden`); `complete` is true when every part is there. A customer "
    "the caller cannot see is a 404."
)


@dataclass(frozen=True)
class Part:
    """One part of an aggregate: the service answering it and how to fetch it."""

    name: str
    service: str
    fetch: Callable[[], dict[str, Any]]
    decides_visibility: bool = False
    """Its 403 is the whole answer's, instead of a part marked forbidden."""


def gather(parts: Iterable[Part]) -> dict[str, Any]:
    """Each part's answer by name, fetched in parallel; a part that could not be answered is
    marked unavailable with its reason. Raises the first error that is the whole answer's."""
    parts = list(parts)
    pool = eventlet.GreenPool(len(parts))
    # each green thread runs in a copy of the request's context: its arrival, hence its deadline
    threads = [pool.spawn(contextvars.copy_context().run, _outcome, part.fetch) for part in parts]
    outcomes = [thread.wait() for thread in threads]
    answered: dict[str, Any] = {}
    for part, outcome in sorted(
        zip(parts, outcomes, strict=True), key=lambda pair: not pair[0].decides_visibility
    ):
        if isinstance(outcome, BaseException):
            answered[part.name] = _unavailable(part, outcome)
        else:
            answered[part.name] = {"available": True, **outcome}
    return answered


def _outcome(fetch: Callable[[], dict[str, Any]]) -> dict[str, Any] | BaseException:
    try:
        return fetch()
    except Exception as exc:
        return exc


def unavailability(exc: BaseException) -> str | None:
    """Why a service's part is missing when ``exc`` says it could not answer; None when ``exc``
    is an answer about the request itself."""
    if isinstance(exc, UpstreamTimeout):
        return "timeout"
    if isinstance(exc, HttpProblem) and exc.status == 503:
        return "busy" if exc.extra.get("reason") == BULKHEAD_FULL else "unavailable"
    if isinstance(exc, Unavailable | UnknownService):
        return "unavailable"
    if isinstance(exc, CrmError) and exc.status < 500:
        return None
    if isinstance(exc, HttpProblem) and exc.status < 500:
        return None
    return "error"


def _unavailable(part: Part, exc: BaseException) -> dict[str, Any]:
    reason = unavailability(exc)
    if reason is None and isinstance(exc, Forbidden) and not part.decides_visibility:
        reason = "forbidden"
    if reason is None:
        raise exc
    if reason == "error":
        if isinstance(exc, RemoteError):
            _log.error("the %s part failed: %s", part.name, exc)
        else:
            _log.error("the %s part failed", part.name, exc_info=exc)
    else:
        _log.info("the %s part is %s: %s", part.name, reason, exc)
    return {"available": False, "reason": reason, "service": part.service}


def open_opportunities(sales: Any, customer_id: str) -> dict[str, Any]:
    """Every open opportunity of the customer the caller may see, and their totals."""
    items: list[dict[str, Any]] = []
    query: dict[str, Any] = {
        "customer_id": customer_id,
        "status": "open",
        "limit": OPPORTUNITY_PAGE,
    }
    while True:
        page = sales.list_opportunities(query)
        items += page["items"]
        if not page.get("next_cursor"):
            return {"items": items, "totals": totals_by_currency(items)}
        query = {**query, "cursor": page["next_cursor"]}


def totals_by_currency(opportunities: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Count, expected amount and weighted amount (each opportunity's, as sales rounded it)
    summed per currency; an opportunity without an amount counts and adds nothing."""
    sums: dict[str, dict[str, Any]] = {}
    for opportunity in opportunities:
        currency = opportunity.get("currency") or "CNY"
        total = sums.setdefault(
            currency,
            {
                "currency": currency,
                "count": 0,
                "amount": Decimal("0.00"),
                "weighted": Decimal("0.00"),
            },
        )
        total["count"] += 1
        total["amount"] += Decimal(opportunity.get("expected_amount") or 0)
        total["weighted"] += Decimal(opportunity.get("weighted_amount") or 0)
    return [
        {**total, "amount": str(total["amount"]), "weighted": str(total["weighted"])}
        for _, total in sorted(sums.items())
    ]


def latest_activities(sales: Any, customer_id: str) -> dict[str, Any]:
    page = sales.list_activities(
        {
            "customer_id": customer_id,
            "status": "planned,done",
            "sort": "-start_at",
            "limit": LATEST_ACTIVITIES,
        }
    )
    return {"items": page["items"]}


def customer_overview(backends: Any, customer_id: str) -> dict[str, Any]:
    """The overview of one customer; ``backends`` is the gateway's ``ServiceRpc()`` proxy."""
    customers = backends.for_service("customer")
    sales = backends.for_service("sales")
    parts = gather(
        (
            Part(
                "customer",
                "customer",
                lambda: {"record": customers.get_customer(customer_id)},
                decides_visibility=True,
            ),
            Part("contacts", "customer", lambda: {"items": customers.list_contacts(customer_id)}),
            Part("opportunities", "sales", lambda: open_opportunities(sales, customer_id)),
            Part("activities", "sales", lambda: latest_activities(sales, customer_id)),
        )
    )
    complete = all(part["available"] for part in parts.values())
    return {"customer_id": customer_id, "complete": complete, **parts}


# -- the OpenAPI document --------------------------------------------------------------------
def components(published: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The overview's component schemas, referring to the records the services publish (a
    plain object for a record no running service publishes)."""

    def record(name: str) -> dict[str, Any]:
        if name in published:
            return {"$ref": f"#/components/schemas/{name}"}
        return {"type": "object"}

    def items_of(name: str) -> dict[str, Any]:
        return {"type": "array", "items": record(name)}

    money = {"type": "string", "format": "decimal", "examples": ["125000.00"]}
    totals = {
        "type": "array",
        "description": "Per currency: how many, their expected amount and weighted amount",
        "items": {
            "type": "object",
            "properties": {
                "currency": {"type": "string"},
                "count": {"type": "integer"},
                "amount": money,
                "weighted": money,
            },
            "required": ["currency", "count", "amount", "weighted"],
        },
    }
    return {
        UNAVAILABLE_SCHEMA: {
            "type": "object",
            "description": "A part its service could not answer, or the caller may not read",
            "properties": {
                "available": {"const": False},
                "reason": {"type": "string", "enum": list(REASONS)},
                "service": {"type": "string", "description": "the service that answers it"},
            },
            "required": ["available", "reason", "service"],
        },
        OVERVIEW_SCHEMA: {
            "type": "object",
            "properties": {
                "customer_id": {"type": "string"},
                "complete": {"type": "boolean", "description": "every part is available"},
                "customer": _part({"record": record("customer.Customer")}),
                "contacts": _part({"items": items_of("customer.Contact")}),
                "opportunities": _part(
                    {"items": items_of("sales.Opportunity"), "totals": totals},
                    "The customer's open opportunities the caller may see",
                ),
                "activities": _part(
                    {"items": items_of("sales.Activity")},
                    f"The {LATEST_ACTIVITIES} latest planned or done activities, by start",
                ),
            },
            "required": [
                "customer_id",
                "complete",
                "customer",
                "contacts",
                "opportunities",
                "activities",
            ],
        },
    }


def _part(properties: Mapping[str, Any], description: str | None = None) -> dict[str, Any]:
    available = {
        "type": "object",
        "properties": {"available": {"const": True}, **properties},
        "required": ["available", *properties],
    }
    schema: dict[str, Any] = {
        "oneOf": [available, {"$ref": f"#/components/schemas/{UNAVAILABLE_SCHEMA}"}]
    }
    if description:
        schema["description"] = description
    return schema
