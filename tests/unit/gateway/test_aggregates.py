"""The overview's parts: which errors mark a part unavailable and which are the answer, and
the totals of the open opportunities."""

from __future__ import annotations

import pytest

from crm_common.errors import Forbidden, NotFound, Unavailable, ValidationFailed
from gateway.aggregates import Part, gather, totals_by_currency, unavailability
from gateway.limits import Bulkhead
from gateway.problems import UpstreamTimeout


def refused_by_a_full_bulkhead() -> Exception:
    bulkhead = Bulkhead("sales", 1, 2)
    with bulkhead.slot():
        try:
            with bulkhead.slot():
                pass
        except Exception as exc:
            return exc
    raise AssertionError("the second slot was given")


def failing(exc: Exception):
    def fetch():
        raise exc

    return fetch


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (UpstreamTimeout("sales", "list_opportunities", 2), "timeout"),
        (Unavailable("the sales service is not running"), "unavailable"),
        (refused_by_a_full_bulkhead(), "busy"),
        (RuntimeError("boom"), "error"),
        (NotFound.of("customer", "c-1"), None),
        (ValidationFailed.on("customer_id", "Not a valid UUID."), None),
    ],
)
def test_what_makes_a_part_unavailable(exc, reason):
    assert unavailability(exc) == reason


def test_parts_are_answered_or_marked_and_the_customer_decides_visibility():
    answered = gather(
        [
            Part("customer", "customer", lambda: {"record": {"id": "c-1"}}, True),
            Part("opportunities", "sales", failing(Forbidden("needs opportunity:read"))),
            Part("activities", "sales", failing(UpstreamTimeout("sales", "list_activities", 2))),
        ]
    )

    assert answered == {
        "customer": {"available": True, "record": {"id": "c-1"}},
        "opportunities": {"available": False, "reason": "forbidden", "service": "sales"},
        "activities": {"available": False, "reason": "timeout", "service": "sales"},
    }
    with pytest.raises(NotFound):
        gather(
            [
                Part("customer", "customer", failing(NotFound.of("customer", "c-1")), True),
                Part("activities", "sales", failing(ValidationFailed.on("customer_id", "bad"))),
            ]
        )
    with pytest.raises(Forbidden):
        gather([Part("customer", "customer", failing(Forbidden("needs customer:read")), True)])


def test_totals_per_currency_add_each_opportunitys_weighted_amount():
    totals = totals_by_currency(
        [
            {"currency": "CNY", "expected_amount": "35000.55", "weighted_amount": "3500.06"},
            {"currency": "CNY", "expected_amount": "120000.00", "weighted_amount": "12000.00"},
            {"currency": "USD", "expected_amount": "1000.00", "weighted_amount": "300.00"},
            {"currency": "CNY", "expected_amount": None, "weighted_amount": None},
        ]
    )

    assert totals == [
        {"currency": "CNY", "count": 3, "amount": "155000.55", "weighted": "15500.06"},
        {"currency": "USD", "count": 1, "amount": "1000.00", "weighted": "300.00"},
    ]
