from decimal import Decimal

import pytest

from crm_common.errors import ValidationFailed
from sales.domain.credit import (
    CreditLimit,
    CreditOutcome,
    WhenNoLimit,
    check_credit,
    parse_when_no_limit,
)

D = Decimal
CO = CreditOutcome


@pytest.mark.parametrize(
    ("case", "outstanding", "open_orders", "order", "limit", "outcome", "available"),
    [
        (
            "well within",
            D("20000.00"),
            D(0),
            D("5000.00"),
            D("100000.00"),
            CO.WITHIN_LIMIT,
            D("75000.00"),
        ),
        (
            "exactly at the limit",
            D("95000.00"),
            D(0),
            D("5000.00"),
            D("100000.00"),
            CO.WITHIN_LIMIT,
            D("0.00"),
        ),
        (
            "one fen over",
            D("95000.01"),
            D(0),
            D("5000.00"),
            D("100000.00"),
            CO.OVER_LIMIT,
            D("-0.01"),
        ),
        (
            "this order alone is over",
            D(0),
            D(0),
            D("100000.01"),
            D("100000.00"),
            CO.OVER_LIMIT,
            D("-0.01"),
        ),
        (
            "open orders count",
            D("60000.00"),
            D("30000.00"),
            D("20000.00"),
            D("100000.00"),
            CO.OVER_LIMIT,
            D("-10000.00"),
        ),
        ("a zero limit is no credit", D(0), D(0), D("0.01"), D(0), CO.OVER_LIMIT, D("-0.01")),
        ("a zero order on a zero limit", D(0), D(0), D(0), D(0), CO.WITHIN_LIMIT, D(0)),
        (
            "a prepayment lowers exposure",
            D("-3000.00"),
            D(0),
            D("103000.00"),
            D("100000.00"),
            CO.WITHIN_LIMIT,
            D(0),
        ),
    ],
)
def test_credit_against_a_known_limit(
    case, outstanding, open_orders, order, limit, outcome, available
):
    check = check_credit(
        order_amount=order,
        outstanding=outstanding,
        open_orders=open_orders,
        credit_limit=CreditLimit(limit),
        when_no_limit=WhenNoLimit.REQUIRE_APPROVAL,
    )
    assert (check.outcome, check.available) == (outcome, available), case
    assert check.needs_approval is (outcome is CO.OVER_LIMIT), case
    assert check.exposure == outstanding + open_orders + order
    assert check.credit_limit == limit


@pytest.mark.parametrize(
    ("policy", "outcome", "needs_approval"),
    [
        (WhenNoLimit.ALLOW, CO.NO_LIMIT_ALLOWED, False),
        (WhenNoLimit.REQUIRE_APPROVAL, CO.NO_LIMIT_NEEDS_APPROVAL, True),
    ],
)
def test_no_known_limit_follows_the_configured_policy(policy, outcome, needs_approval):
    check = check_credit(
        order_amount=D("500.00"),
        outstanding=D("900000.00"),
        credit_limit=None,
        when_no_limit=policy,
    )
    assert (check.outcome, check.needs_approval) == (outcome, needs_approval)
    assert (check.credit_limit, check.available) == (None, None)
    assert check.exposure == D("900500.00")


def test_a_limit_in_another_currency_is_not_compared():
    with pytest.raises(ValidationFailed) as caught:
        check_credit(
            order_amount=D(1),
            outstanding=D(0),
            credit_limit=CreditLimit(D(1000), "USD"),
            when_no_limit=WhenNoLimit.ALLOW,
        )
    assert "USD" in caught.value.field_errors["currency"][0]


def test_a_limit_in_the_order_currency():
    check = check_credit(
        order_amount=D(10),
        outstanding=D(0),
        credit_limit=CreditLimit(D(1000), "USD"),
        when_no_limit=WhenNoLimit.ALLOW,
        currency="USD",
    )
    assert (check.outcome, check.currency) == (CO.WITHIN_LIMIT, "USD")


def test_a_negative_order_is_refused():
    with pytest.raises(ValidationFailed) as caught:
        check_credit(
            order_amount=D(-1),
            outstanding=D(0),
            credit_limit=None,
            when_no_limit=WhenNoLimit.ALLOW,
        )
    assert "order_amount" in caught.value.field_errors


@pytest.mark.parametrize(
    ("text", "policy"),
    [("allow", WhenNoLimit.ALLOW), ("require_approval", WhenNoLimit.REQUIRE_APPROVAL)],
)
def test_policy_from_configuration(text, policy):
    assert parse_when_no_limit(text) is policy


def test_an_unknown_policy_names_the_setting():
    with pytest.raises(ValidationFailed) as caught:
        parse_when_no_limit("deny")
    assert "allow, require_approval" in caught.value.field_errors["credit_when_no_limit"][0]
