import datetime as dt
import random
from decimal import Decimal

import pytest

from crm_common.errors import Conflict, ValidationFailed
from sales.domain.quotes import (
    NO_DISCOUNT,
    Approver,
    Discount,
    DiscountAuthority,
    QuoteLine,
    QuoteStatus,
    QuoteVersion,
    allocate,
    authority_of,
    check_quote_transition,
    discount_limits,
    lapses,
    needs_approval,
    next_approver,
    quote_totals,
    revise,
    status_after_submit,
)

D = Decimal
VAT_9, VAT_6, ZERO_RATED = D("0.09"), D("0.06"), D(0)


def figures(line):
    return (line.amount, line.line_discount, line.document_discount, line.net, line.tax, line.gross)


# -- allocation ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("total", "weights", "shares"),
    [
        (D("100.00"), [D(100), D(100), D(100)], (D("33.33"), D("33.33"), D("33.34"))),
        (D("1.00"), [D(1)] * 7, (D("0.14"),) * 6 + (D("0.16"),)),
        (D("10.00"), [D("90"), D("10")], (D("9.00"), D("1.00"))),
        (D("0.01"), [D("0.01")] * 3, (D("0.00"), D("0.00"), D("0.01"))),
        (D("0.00"), [D(5), D(5)], (D("0.00"), D("0.00"))),
        (D("0.00"), [D(0), D(0)], (D("0.00"), D("0.00"))),
        (D("7.00"), [D(0), D(1)], (D("0.00"), D("7.00"))),
        (D("0.00"), [], ()),
    ],
)
def test_allocate_rounds_each_share_and_puts_the_remainder_last(total, weights, shares):
    assert allocate(total, weights) == shares


def test_allocate_over_hundreds_of_tiny_lines_keeps_every_share_within_its_line():
    weights = [D("0.01")] * 300
    shares = allocate(D("1.50"), weights)
    assert sum(shares) == D("1.50")
    assert all(D(0) <= share <= D("0.01") for share in shares)


@pytest.mark.parametrize(("total", "weights"), [(D(1), []), (D(1), [D(0), D(0)])])
def test_allocate_refuses_a_total_with_nowhere_to_go(total, weights):
    with pytest.raises(ValueError):
        allocate(total, weights)


# -- totals --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("case", "line", "include_tax", "expected"),
    [
        (
            "tax-exclusive at 13 % by default",
            QuoteLine(D(10), D("100.00")),
            False,
            (D("1000.00"), D(0), D(0), D("1000.00"), D("130.00"), D("1130.00")),
        ),
        (
            "tax-inclusive price",
            QuoteLine(D(1), D("113.00")),
            True,
            (D("113.00"), D(0), D(0), D("100.00"), D("13.00"), D("113.00")),
        ),
        (
            "tax-inclusive, net rounded and tax the difference",
            QuoteLine(D(1), D("1.00")),
            True,
            (D("1.00"), D(0), D(0), D("0.88"), D("0.12"), D("1.00")),
        ),
        (
            "tax at exactly half a fen rounds up",
            QuoteLine(D(1), D("10.50")),
            False,
            (D("10.50"), D(0), D(0), D("10.50"), D("1.37"), D("11.87")),
        ),
        (
            "amount at exactly half a fen rounds up",
            QuoteLine(D(3), D("0.335"), tax_rate=ZERO_RATED),
            False,
            (D("1.01"), D(0), D(0), D("1.01"), D(0), D("1.01")),
        ),
        (
            "percent line discount landing on half a fen rounds up once",
            QuoteLine(D(1), D("0.30"), Discount.percent("5"), ZERO_RATED),
            False,
            (D("0.30"), D("0.01"), D(0), D("0.29"), D(0), D("0.29")),
        ),
        (
            "percent line discount",
            QuoteLine(D(1), D("10.01"), Discount.percent("5")),
            False,
            (D("10.01"), D("0.50"), D(0), D("9.51"), D("1.24"), D("10.75")),
        ),
        (
            "amount line discount is off the whole line",
            QuoteLine(D(4), D("25.00"), Discount.amount("10.00"), VAT_9),
            False,
            (D("100.00"), D("10.00"), D(0), D("90.00"), D("8.10"), D("98.10")),
        ),
        (
            "zero-rated",
            QuoteLine(D(3), D("33.33"), tax_rate=ZERO_RATED),
            True,
            (D("99.99"), D(0), D(0), D("99.99"), D(0), D("99.99")),
        ),
        (
            "fractional quantity and a four-place unit price",
            QuoteLine(D("2.5"), D("3.1234"), tax_rate=VAT_6),
            False,
            (D("7.81"), D(0), D(0), D("7.81"), D("0.47"), D("8.28")),
        ),
        (
            "a free line",
            QuoteLine(D(2), D("0")),
            False,
            (D(0), D(0), D(0), D(0), D(0), D(0)),
        ),
        (
            "a 100 % line discount",
            QuoteLine(D(2), D("50.00"), Discount.percent("100")),
            False,
            (D("100.00"), D("100.00"), D(0), D(0), D(0), D(0)),
        ),
    ],
)
def test_one_line(case, line, include_tax, expected):
    totals = quote_totals([line], prices_include_tax=include_tax)
    assert figures(totals.lines[0]) == expected, case
    assert (totals.net, totals.tax, totals.gross) == expected[3:], case


def test_document_discount_shared_with_the_remainder_on_the_last_line():
    totals = quote_totals(
        [QuoteLine(D(1), D("100.00"))] * 3, document_discount=Discount.amount("100.00")
    )
    assert [figures(line) for line in totals.lines] == [
        (D("100.00"), D(0), D("33.33"), D("66.67"), D("8.67"), D("75.34")),
        (D("100.00"), D(0), D("33.33"), D("66.67"), D("8.67"), D("75.34")),
        (D("100.00"), D(0), D("33.34"), D("66.66"), D("8.67"), D("75.33")),
    ]
    # Document totals are the sums of line figures: 26.01 of tax, not 13 % of 200.00.
    assert (totals.net, totals.tax, totals.gross) == (D("200.00"), D("26.01"), D("226.01"))
    assert totals.document_discount == D("100.00")


def test_line_and_document_discounts_together_over_mixed_tax_rates():
    lines = [
        QuoteLine(D(2), D("500.00"), Discount.percent("10")),
        QuoteLine(D(1), D("300.00"), Discount.amount("50.00"), VAT_9),
        QuoteLine(D(4), D("25.00"), tax_rate=VAT_6),
    ]
    totals = quote_totals(lines, document_discount=Discount.percent("10"))
    assert [figures(line) for line in totals.lines] == [
        (D("1000.00"), D("100.00"), D("90.00"), D("810.00"), D("105.30"), D("915.30")),
        (D("300.00"), D("50.00"), D("25.00"), D("225.00"), D("20.25"), D("245.25")),
        (D("100.00"), D(0), D("10.00"), D("90.00"), D("5.40"), D("95.40")),
    ]
    assert totals.amount == D("1400.00")
    assert (totals.line_discount, totals.document_discount, totals.discount) == (
        D("150.00"),
        D("125.00"),
        D("275.00"),
    )
    assert (totals.net, totals.tax, totals.gross) == (D("1125.00"), D("130.95"), D("1255.95"))
    # 275 off 1400 is 19.642857… %, read rounded up.
    assert totals.effective_discount_percent == D("19.65")


def test_tax_inclusive_prices_with_a_document_discount():
    lines = [QuoteLine(D(1), D("113.00")), QuoteLine(D(1), D("106.00"), tax_rate=VAT_6)]
    totals = quote_totals(
        lines, prices_include_tax=True, document_discount=Discount.amount("19.00")
    )
    assert [figures(line) for line in totals.lines] == [
        (D("113.00"), D(0), D("9.80"), D("91.33"), D("11.87"), D("103.20")),
        (D("106.00"), D(0), D("9.20"), D("91.32"), D("5.48"), D("96.80")),
    ]
    assert (totals.net, totals.tax, totals.gross) == (D("182.65"), D("17.35"), D("200.00"))


def test_many_lines_keep_every_invariant():
    chooser = random.Random(20260310)
    lines = [
        QuoteLine(
            quantity=D(chooser.randint(1, 500)) / D(chooser.choice([1, 10, 100])),
            unit_price=D(chooser.randint(1, 2_000_000)) / D(1000),
            discount=chooser.choice(
                [
                    NO_DISCOUNT,
                    Discount.percent(str(chooser.randint(1, 30))),
                    Discount.amount("0.01"),
                ]
            ),
            tax_rate=chooser.choice([D("0.13"), VAT_9, VAT_6, ZERO_RATED]),
        )
        for _ in range(120)
    ]
    for include_tax in (False, True):
        totals = quote_totals(
            lines, prices_include_tax=include_tax, document_discount=Discount.percent("7.5")
        )
        assert len(totals.lines) == 120
        for line in totals.lines:
            assert line.net + line.tax == line.gross
            assert D(0) <= line.document_discount <= line.amount - line.line_discount
            assert all(value == value.quantize(D("0.01")) for value in figures(line))
            basis = line.gross if include_tax else line.net
            assert basis == line.amount - line.line_discount - line.document_discount
        assert totals.net == sum(line.net for line in totals.lines)
        assert totals.tax == sum(line.tax for line in totals.lines)
        assert totals.gross == sum(line.gross for line in totals.lines)
        base = totals.amount - totals.line_discount
        assert totals.document_discount == (base * D("0.075")).quantize(D("0.01"), "ROUND_HALF_UP")


def test_an_empty_quote_totals_zero():
    totals = quote_totals([])
    assert (totals.lines, totals.gross, totals.effective_discount_percent) == ((), 0, 0)


@pytest.mark.parametrize(
    ("case", "lines", "document_discount", "field"),
    [
        (
            "17 % is not a VAT rate here",
            [QuoteLine(D(1), D(1), tax_rate=D("0.17"))],
            NO_DISCOUNT,
            "lines.1.tax_rate",
        ),
        ("zero quantity", [QuoteLine(D(0), D(1))], NO_DISCOUNT, "lines.1.quantity"),
        ("negative price", [QuoteLine(D(1), D(-1))], NO_DISCOUNT, "lines.1.unit_price"),
        (
            "over 100 %",
            [QuoteLine(D(1), D(1), Discount.percent("100.01"))],
            NO_DISCOUNT,
            "lines.1.discount",
        ),
        (
            "negative discount",
            [QuoteLine(D(1), D(1), Discount.percent("-1"))],
            NO_DISCOUNT,
            "lines.1.discount",
        ),
        (
            "more off than the line",
            [QuoteLine(D(2), D(1), Discount.amount("2.01"))],
            NO_DISCOUNT,
            "lines.1.discount",
        ),
        (
            "finer than a fen",
            [QuoteLine(D(2), D(1), Discount.amount("0.001"))],
            NO_DISCOUNT,
            "lines.1.discount",
        ),
        (
            "document discount beyond the lines after their discounts",
            [QuoteLine(D(1), D(10), Discount.amount("5.00"))],
            Discount.amount("5.01"),
            "document_discount",
        ),
        (
            "second line named",
            [QuoteLine(D(1), D(1)), QuoteLine(D(1), D(1), tax_rate=D("0.03"))],
            NO_DISCOUNT,
            "lines.2.tax_rate",
        ),
    ],
)
def test_invalid_quotes_name_the_field(case, lines, document_discount, field):
    with pytest.raises(ValidationFailed) as caught:
        quote_totals(lines, document_discount=document_discount)
    assert field in caught.value.field_errors, case


def test_a_unit_price_below_the_reference_price_counts_as_discount():
    totals = quote_totals([QuoteLine(D(10), D("90.00"), reference_unit_price=D("100.00"))])
    assert (totals.reference_amount, totals.discount, totals.effective_discount_percent) == (
        D("1000.00"),
        D(0),
        D("10.00"),
    )


@pytest.mark.parametrize(
    ("line", "effective"),
    [
        (QuoteLine(D(1), D("2.00"), reference_unit_price=D("3.00")), D("33.34")),
        (QuoteLine(D(1), D("120.00"), reference_unit_price=D("100.00")), D("-20.00")),
        (QuoteLine(D(3), D("10.00"), Discount.amount("1.00")), D("3.34")),
    ],
)
def test_effective_discount_reads_rounded_up(line, effective):
    assert quote_totals([line]).effective_discount_percent == effective


# -- discount authority --------------------------------------------------------------------
def test_discount_limits_from_configuration():
    assert discount_limits({"sales": 5, "manager": "15", "director": 25.5, "gm": D(100)}) == {
        "sales": D(5),
        "manager": D(15),
        "director": D("25.5"),
        "gm": D(100),
    }


@pytest.mark.parametrize("bad", [-1, 101, "abc", True, None, "NaN", "Infinity", [5]])
def test_discount_limits_refuse_what_is_not_a_percent(bad):
    with pytest.raises(ValidationFailed) as caught:
        discount_limits({"sales": bad})
    assert "discount_limits.sales" in caught.value.field_errors


LIMITS = {"sales": D(5), "sales_manager": D(15), "director": D(25)}


@pytest.mark.parametrize(
    ("roles", "authority"),
    [
        (["sales"], DiscountAuthority(D(5), "sales")),
        (["sales", "sales_manager"], DiscountAuthority(D(15), "sales_manager")),
        (["director", "sales"], DiscountAuthority(D(25), "director")),
        (["clerk"], DiscountAuthority(D(0))),
        ([], DiscountAuthority(D(0))),
    ],
)
def test_authority_is_the_widest_of_the_roles(roles, authority):
    assert authority_of(roles, LIMITS) == authority


@pytest.mark.parametrize(
    ("effective", "limit", "needed"),
    [
        (D("5.00"), D(5), False),
        (D("5.01"), D(5), True),
        (D("0.00"), D(0), False),
        (D("0.01"), D(0), True),
        (D("-3.00"), D(0), False),
        (D("100.00"), D(100), False),
    ],
)
def test_needs_approval_only_beyond_the_authority(effective, limit, needed):
    assert needs_approval(effective, DiscountAuthority(limit, "any")) is needed


CHAIN = [
    ("d-east-team", "p-lead"),
    ("d-east", "p-east"),
    ("d-sales", None),
    ("d-hq", "p-gm"),
]


@pytest.mark.parametrize(
    ("case", "requester", "chain", "approved_by", "expected"),
    [
        ("the requester's own manager", "p-rep", CHAIN, (), Approver("d-east-team", "p-lead")),
        ("a manager asks their own manager", "p-lead", CHAIN, (), Approver("d-east", "p-east")),
        ("after the first approver", "p-rep", CHAIN, ("p-lead",), Approver("d-east", "p-east")),
        (
            "a department without manager is skipped",
            "p-rep",
            CHAIN,
            ("p-lead", "p-east"),
            Approver("d-hq", "p-gm"),
        ),
        ("never back down the chain", "p-rep", CHAIN, ("p-east",), Approver("d-hq", "p-gm")),
        ("nobody above the top", "p-rep", CHAIN, ("p-gm",), None),
        ("the top manager has nobody to ask", "p-gm", [("d-hq", "p-gm")], (), None),
        ("no department", "p-rep", [], (), None),
        (
            "one manager heading two levels approves once",
            "p-rep",
            [("d-a", "p-x"), ("d-b", "p-x"), ("d-c", "p-y")],
            ("p-x",),
            Approver("d-c", "p-y"),
        ),
    ],
)
def test_next_approver(case, requester, chain, approved_by, expected):
    assert next_approver(requester, chain, approved_by=approved_by) == expected, case


# -- statuses ------------------------------------------------------------------------------
TODAY = dt.date(2026, 3, 10)
S = QuoteStatus


def test_submitting_within_authority_approves_at_once():
    assert status_after_submit(approval_needed=False) is S.APPROVED
    assert status_after_submit(approval_needed=True) is S.SUBMITTED


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (S.DRAFT, S.SUBMITTED),
        (S.DRAFT, S.APPROVED),
        (S.SUBMITTED, S.APPROVED),
        (S.SUBMITTED, S.DRAFT),
        (S.APPROVED, S.SENT),
        (S.SENT, S.ACCEPTED),
        (S.SENT, S.REJECTED),
    ],
)
def test_allowed_moves_within_validity(old, new):
    check_quote_transition(old, new, valid_until=TODAY, today=TODAY)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (S.DRAFT, S.SENT),
        (S.SUBMITTED, S.SENT),
        (S.APPROVED, S.ACCEPTED),
        (S.SENT, S.DRAFT),
        (S.ACCEPTED, S.REJECTED),
        (S.REJECTED, S.SENT),
        (S.EXPIRED, S.SENT),
        (S.SUPERSEDED, S.SENT),
        (S.DRAFT, S.EXPIRED),
    ],
)
def test_refused_moves_say_what_is_allowed(old, new):
    with pytest.raises(ValidationFailed) as caught:
        check_quote_transition(old, new, valid_until=TODAY, today=TODAY)
    assert "allowed:" in caught.value.field_errors["status"][0]


@pytest.mark.parametrize(("old", "new"), [(S.APPROVED, S.SENT), (S.SENT, S.ACCEPTED)])
def test_a_quote_past_its_validity_cannot_be_sent_or_accepted(old, new):
    with pytest.raises(Conflict) as caught:
        check_quote_transition(old, new, valid_until=TODAY, today=TODAY + dt.timedelta(days=1))
    assert caught.value.details["reason"] == "quote_expired"


def test_only_a_quote_past_its_validity_expires():
    for status in (S.SUBMITTED, S.APPROVED, S.SENT):
        check_quote_transition(status, S.EXPIRED, valid_until=TODAY, today=TODAY + dt.timedelta(1))
        with pytest.raises(ValidationFailed):
            check_quote_transition(status, S.EXPIRED, valid_until=TODAY, today=TODAY)


@pytest.mark.parametrize(
    ("status", "today", "due"),
    [
        (S.SENT, TODAY, False),
        (S.SENT, TODAY + dt.timedelta(days=1), True),
        (S.APPROVED, TODAY + dt.timedelta(days=1), True),
        (S.SUBMITTED, TODAY + dt.timedelta(days=1), True),
        (S.DRAFT, TODAY + dt.timedelta(days=30), False),
        (S.ACCEPTED, TODAY + dt.timedelta(days=30), False),
        (S.REJECTED, TODAY + dt.timedelta(days=30), False),
    ],
)
def test_lapses_after_the_validity_day(status, today, due):
    assert lapses(status, TODAY, today) is due


# -- revisions -----------------------------------------------------------------------------
SENT_V1 = QuoteVersion(
    version=1,
    status=S.SENT,
    valid_until=TODAY,
    lines=(QuoteLine(D(2), D("500.00"), Discount.percent("5")),),
    document_discount=Discount.amount("10.00"),
    terms="款到发货",
)


def test_a_revision_supersedes_a_live_version_and_copies_it_into_a_draft():
    revision = revise(SENT_V1, valid_until=TODAY + dt.timedelta(days=30))
    assert revision.previous == QuoteVersion(**{**SENT_V1.__dict__, "status": S.SUPERSEDED})
    assert revision.draft.version == 2
    assert revision.draft.status is S.DRAFT
    assert revision.draft.valid_until == TODAY + dt.timedelta(days=30)
    assert (revision.draft.lines, revision.draft.terms) == (SENT_V1.lines, SENT_V1.terms)
    assert revision.draft.totals() == SENT_V1.totals()
    assert SENT_V1.status is S.SENT


@pytest.mark.parametrize("status", [S.REJECTED, S.EXPIRED])
def test_a_closed_version_keeps_its_status_when_revised(status):
    closed = QuoteVersion(**{**SENT_V1.__dict__, "status": status})
    revision = revise(closed)
    assert revision.previous == closed
    assert (revision.draft.version, revision.draft.valid_until) == (2, TODAY)


@pytest.mark.parametrize("status", [S.DRAFT, S.ACCEPTED, S.SUPERSEDED])
def test_drafts_accepted_and_superseded_versions_are_not_revised(status):
    with pytest.raises(Conflict) as caught:
        revise(QuoteVersion(**{**SENT_V1.__dict__, "status": status}))
    assert caught.value.details["reason"] == "not_revisable"


def test_quote_version_totals():
    totals = SENT_V1.totals()
    assert (totals.net, totals.tax, totals.gross) == (D("940.00"), D("122.20"), D("1062.20"))
