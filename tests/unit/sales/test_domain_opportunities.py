from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from crm_common.errors import Conflict, Forbidden, ValidationFailed
from sales.domain.money import Money
from sales.domain.opportunities import (
    REOPEN_PERMISSION,
    DealContact,
    StageVisit,
    change_stage,
    check_contacts_belong,
    check_customer_usable,
    check_loss,
    check_open,
    check_probability_override,
    check_transition,
    close,
    days_between,
    days_per_stage,
    effective_probability,
    format_opportunity_code,
    is_overdue_close,
    last_open_stage,
    lines_total,
    normalize_tags,
    parse_competitor_entries,
    parse_contacts,
    parse_lines,
    parse_opportunity_code,
    reopen,
    scope_from_customer,
)
from sales.domain.processes import STANDARD_STAGES, define_process, stage_as_json

PROCESS = define_process("p1", "project", "项目销售", [stage_as_json(s) for s in STANDARD_STAGES])
READY = {
    "expected_amount": Decimal("80000.00"),
    "expected_close_date": date(2026, 6, 30),
    "contacts": [DealContact("c1", "decision_maker")],
}
LOSS_REASONS = ("price", "lost_to_competitor", "no_budget")
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def test_codes():
    assert format_opportunity_code(2026, 1) == "OPP-2026-000001"
    assert parse_opportunity_code("OPP-2026-000042") == (2026, 42)
    assert parse_opportunity_code("EXP-2026-000042") is None


# -- customer and owner --------------------------------------------------------------------
def test_the_customer_must_be_visible_and_usable():
    with pytest.raises(ValidationFailed) as caught:
        check_customer_usable(None)
    assert list(caught.value.field_errors) == ["customer_id"]
    with pytest.raises(ValidationFailed):
        check_customer_usable({"code": "C2026000001", "status": "disabled"})
    with pytest.raises(Conflict) as merged:
        check_customer_usable({"code": "C1", "status": "merged", "merged_into_id": "k2"})
    assert merged.value.details == {"reason": "customer_merged", "merged_into_id": "k2"}
    for status in ("potential", "formal", "dormant"):
        check_customer_usable({"code": "C1", "status": status})


def test_scope_comes_from_the_caller_and_the_customer():
    customer = {"region": "华东/上海", "category": "distributor", "owner_id": "someone-else"}
    assert scope_from_customer(customer, "u1", "d-east", {}) == {
        "owner_id": "u1",
        "department_id": "d-east",
        "region": "华东/上海",
        "category": "distributor",
    }
    given = scope_from_customer(customer, "u1", "d-east", {"owner_id": "u2", "department_id": "d2"})
    assert (given["owner_id"], given["department_id"]) == ("u2", "d2")


# -- status --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("current", "new", "permissions", "error"),
    [
        ("open", "won", (), None),
        ("open", "lost", (), None),
        ("open", "abandoned", (), None),
        ("won", "open", (REOPEN_PERMISSION,), None),
        ("lost", "open", (REOPEN_PERMISSION,), None),
        ("abandoned", "open", (REOPEN_PERMISSION,), None),
        ("won", "open", ("opportunity:write",), Forbidden),
        ("lost", "open", (), Forbidden),
        ("won", "lost", (REOPEN_PERMISSION,), Conflict),
        ("lost", "won", (REOPEN_PERMISSION,), Conflict),
        ("abandoned", "won", (), Conflict),
        ("open", "open", (), ValidationFailed),
        ("won", "won", (), ValidationFailed),
    ],
)
def test_status_transitions(current, new, permissions, error):
    if error is None:
        check_transition(current, new, permissions)
    else:
        with pytest.raises(error):
            check_transition(current, new, permissions)


@pytest.mark.parametrize("status", ["won", "lost", "abandoned"])
def test_only_open_opportunities_change(status):
    with pytest.raises(Conflict) as caught:
        check_open(status)
    assert caught.value.details == {"reason": "opportunity_closed", "status": status}


@pytest.mark.parametrize(
    ("reason", "competitor", "fields"),
    [
        (None, None, ["loss_reason"]),
        ("  ", None, ["loss_reason"]),
        ("weather", None, ["loss_reason"]),
        ("price", "k-unknown", ["won_competitor_id"]),
        ("nope", "k-unknown", ["loss_reason", "won_competitor_id"]),
    ],
)
def test_a_loss_needs_a_known_reason_and_competitor(reason, competitor, fields):
    with pytest.raises(ValidationFailed) as caught:
        check_loss(reason, LOSS_REASONS, competitor, {"k1"})
    assert sorted(caught.value.field_errors) == fields


def test_a_complete_loss():
    check_loss("price", LOSS_REASONS, "k1", {"k1"})
    check_loss("price", LOSS_REASONS)


# -- probability ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("stage", "override", "status", "expected"),
    [
        ("proposal", None, "open", 50),
        ("proposal", 65, "open", 65),
        ("proposal", 0, "open", 0),
        ("won", None, "won", 100),
        ("won", 40, "won", 100),
        ("lost", 40, "lost", 0),
        ("negotiation", 80, "abandoned", 0),
    ],
)
def test_probability_follows_the_stage_unless_overridden(stage, override, status, expected):
    assert effective_probability(PROCESS.stage(stage), override, status) == expected


@pytest.mark.parametrize("value", [-1, 101, 50.5, "50", True])
def test_bad_overrides(value):
    with pytest.raises(ValidationFailed) as caught:
        check_probability_override(value)
    assert list(caught.value.field_errors) == ["probability_override"]


def test_good_overrides():
    assert check_probability_override(None) is None
    assert check_probability_override(0) == 0
    assert check_probability_override(100) == 100


# -- stage changes -------------------------------------------------------------------------
def test_a_forward_move_takes_the_stage_probability():
    change = change_stage(
        PROCESS, status="open", stage_code="needs_confirmed", to_code="proposal", values=READY
    )
    assert (change.stage_code, change.status, change.probability) == ("proposal", "open", 50)
    assert change.probability_override is None
    assert not change.closes


def test_an_override_is_kept_across_open_moves():
    change = change_stage(
        PROCESS,
        status="open",
        stage_code="proposal",
        to_code="negotiation",
        values=READY,
        probability_override=60,
    )
    assert (change.probability, change.probability_override) == (60, 60)


def test_entering_the_won_stage_wins_and_drops_the_override():
    change = change_stage(
        PROCESS,
        status="open",
        stage_code="negotiation",
        to_code="won",
        values=READY,
        probability_override=60,
    )
    assert (change.status, change.probability, change.probability_override) == ("won", 100, None)
    assert change.closes
    assert change.loss_reason is None


def test_entering_a_lost_stage_needs_a_loss_reason():
    with pytest.raises(ValidationFailed) as caught:
        change_stage(
            PROCESS,
            status="open",
            stage_code="proposal",
            to_code="lost",
            values={},
            loss_reasons=LOSS_REASONS,
        )
    assert list(caught.value.field_errors) == ["loss_reason"]
    change = change_stage(
        PROCESS,
        status="open",
        stage_code="proposal",
        to_code="lost",
        values={},
        loss_reason="lost_to_competitor",
        loss_reasons=LOSS_REASONS,
        won_competitor_id="k1",
        competitors={"k1"},
    )
    assert (change.status, change.probability) == ("lost", 0)
    assert (change.loss_reason, change.won_competitor_id) == ("lost_to_competitor", "k1")


def test_a_move_back_keeps_its_reason():
    change = change_stage(
        PROCESS,
        status="open",
        stage_code="negotiation",
        to_code="needs_confirmed",
        values={},
        reason=" 客户换了负责人 ",
    )
    assert (change.stage_code, change.probability, change.reason) == (
        "needs_confirmed",
        30,
        "客户换了负责人",
    )


def test_a_closed_opportunity_does_not_move():
    with pytest.raises(Conflict):
        change_stage(
            PROCESS, status="won", stage_code="won", to_code="proposal", values=READY, reason="x"
        )


def test_stage_rules_apply_to_changes():
    with pytest.raises(ValidationFailed) as caught:
        change_stage(
            PROCESS, status="open", stage_code="needs_confirmed", to_code="proposal", values={}
        )
    assert set(caught.value.field_errors) == {"expected_amount", "expected_close_date"}


@pytest.mark.parametrize(
    ("outcome", "kwargs", "stage", "status", "probability"),
    [
        ("won", {}, "won", "won", 100),
        ("lost", {"loss_reason": "price"}, "lost", "lost", 0),
        ("abandoned", {"reason": "客户取消项目"}, "negotiation", "abandoned", 0),
    ],
)
def test_closing(outcome, kwargs, stage, status, probability):
    change = close(
        PROCESS,
        status="open",
        stage_code="negotiation",
        outcome=outcome,
        values=READY,
        loss_reasons=LOSS_REASONS,
        **kwargs,
    )
    assert (change.stage_code, change.status, change.probability) == (stage, status, probability)
    assert change.reason == kwargs.get("reason")


def test_winning_early_is_a_skip():
    with pytest.raises(ValidationFailed) as caught:
        close(PROCESS, status="open", stage_code="initial_contact", outcome="won", values=READY)
    assert "stage_code" in caught.value.field_errors


def test_losing_is_possible_from_any_open_stage():
    change = close(
        PROCESS,
        status="open",
        stage_code="initial_contact",
        outcome="lost",
        values={},
        loss_reason="no_budget",
        loss_reasons=LOSS_REASONS,
    )
    assert change.stage_code == "lost"


@pytest.mark.parametrize(
    ("kwargs", "error", "field"),
    [
        ({"outcome": "open"}, ValidationFailed, "status"),
        ({"outcome": "maybe"}, ValidationFailed, "status"),
        ({"outcome": "abandoned"}, ValidationFailed, "reason"),
        (
            {"outcome": "lost", "loss_reason": "price", "lost_stage_code": "proposal"},
            ValidationFailed,
            "lost_stage_code",
        ),
        ({"outcome": "won", "status": "lost"}, Conflict, None),
    ],
)
def test_refused_closes(kwargs, error, field):
    arguments = {"status": "open", "stage_code": "negotiation", "values": READY, **kwargs}
    with pytest.raises(error) as caught:
        close(PROCESS, loss_reasons=LOSS_REASONS, **arguments)
    if field:
        assert field in caught.value.field_errors


@pytest.mark.parametrize(
    ("status", "stage", "last_open", "expected"),
    [
        ("won", "won", "negotiation", "negotiation"),
        ("lost", "lost", "needs_confirmed", "needs_confirmed"),
        ("lost", "lost", None, "initial_contact"),
        ("abandoned", "proposal", "needs_confirmed", "proposal"),
    ],
)
def test_reopen_goes_back_to_the_last_open_stage(status, stage, last_open, expected):
    change = reopen(
        PROCESS,
        status=status,
        stage_code=stage,
        last_open_stage_code=last_open,
        permissions=(REOPEN_PERMISSION,),
    )
    assert (change.status, change.stage_code) == ("open", expected)
    assert change.probability == PROCESS.stage(expected).probability


def test_reopen_needs_the_permission():
    with pytest.raises(Forbidden) as caught:
        reopen(
            PROCESS,
            status="won",
            stage_code="won",
            last_open_stage_code="negotiation",
            permissions=("opportunity:write",),
        )
    assert caught.value.details == {"permission": REOPEN_PERMISSION}
    with pytest.raises(ValidationFailed):
        reopen(
            PROCESS,
            status="open",
            stage_code="proposal",
            last_open_stage_code=None,
            permissions=(REOPEN_PERMISSION,),
        )


# -- contacts, competitors, lines, tags ----------------------------------------------------
def test_contacts_with_roles():
    contacts = parse_contacts(
        [{"contact_id": "c1", "role": "decision_maker"}, {"contact_id": "c2", "role": "user"}]
    )
    assert contacts == (DealContact("c1", "decision_maker"), DealContact("c2", "user"))


def test_bad_contacts_are_named_by_position():
    with pytest.raises(ValidationFailed) as caught:
        parse_contacts(
            [
                {"contact_id": "c1", "role": "boss"},
                {"contact_id": "", "role": "user"},
                {"contact_id": "c1", "role": "purchaser"},
            ]
        )
    assert caught.value.field_errors == {
        "contacts.0.role": ["must be one of decision_maker, influencer, user, purchaser"],
        "contacts.1.contact_id": ["is required"],
        "contacts.2.contact_id": ["is listed twice"],
    }


def test_contacts_belong_to_the_customer():
    check_contacts_belong([DealContact("c1", "user")], {"c1", "c2"})
    with pytest.raises(ValidationFailed) as caught:
        check_contacts_belong([DealContact("c1", "user"), DealContact("c9", "user")], {"c1"})
    assert list(caught.value.field_errors) == ["contacts.1.contact_id"]


def test_competitor_entries():
    [entry] = parse_competitor_entries(
        [{"competitor_id": "k1", "offer": "95000", "threat_level": "high", "notes": " 低价 "}],
        {"k1", "k2"},
    )
    assert entry.offer == Money(Decimal("95000.00"))
    assert (entry.threat_level, entry.notes) == ("high", "低价")
    [default] = parse_competitor_entries([{"competitor_id": "k2"}], {"k2"})
    assert (default.threat_level, default.offer) == ("medium", None)


def test_bad_competitor_entries():
    with pytest.raises(ValidationFailed) as caught:
        parse_competitor_entries(
            [
                {"competitor_id": "k1", "threat_level": "extreme"},
                {"competitor_id": "k1"},
                {"competitor_id": "k9", "offer": 1.5},
            ],
            {"k1"},
        )
    assert set(caught.value.field_errors) == {
        "competitors.0.threat_level",
        "competitors.1.competitor_id",
        "competitors.2.competitor_id",
        "competitors.2.offer",
    }


def test_lines_are_numbered_and_priced_exactly():
    lines = parse_lines(
        [
            {
                "item_name": "伺服电机",
                "spec": "1.5kW",
                "quantity": "3",
                "expected_price": "1999.99",
            },
            {"item_name": "控制柜", "quantity": "0.5", "expected_price": "10000.01"},
        ],
        "CNY",
    )
    assert [line.line_no for line in lines] == [1, 2]
    assert lines[0].amount == Money(Decimal("5999.97"))
    assert lines[1].amount == Money(Decimal("5000.01"))
    assert lines_total(lines, "CNY") == Money(Decimal("10999.98"))


def test_bad_lines():
    with pytest.raises(ValidationFailed) as caught:
        parse_lines(
            [
                {"item_name": "", "quantity": "1", "expected_price": "1"},
                {"item_name": "a", "quantity": "0", "expected_price": "1"},
                {"item_name": "b", "quantity": 2.5, "expected_price": "1"},
                {"item_name": "c", "quantity": "1", "expected_price": "-1"},
            ],
            "CNY",
        )
    assert set(caught.value.field_errors) == {
        "lines.0.item_name",
        "lines.1.quantity",
        "lines.2.quantity",
        "lines.3.expected_price",
    }
    with pytest.raises(ValidationFailed):
        parse_lines([{"item_name": "x"}] * 201, "CNY")


def test_tags():
    assert normalize_tags([" 重点 ", "重点", "", "年度  框架"]) == ["重点", "年度 框架"]
    with pytest.raises(ValidationFailed):
        normalize_tags(["x" * 33])
    with pytest.raises(ValidationFailed):
        normalize_tags([str(i) for i in range(21)])


# -- stage history -------------------------------------------------------------------------
def test_days_between_rounds_to_a_tenth():
    assert days_between(T0, T0 + timedelta(days=2, hours=6)) == Decimal("2.3")
    assert days_between(T0, T0 + timedelta(hours=1)) == Decimal("0.0")


def test_days_per_stage_adds_up_repeated_stays_and_runs_to_now():
    visits = [
        StageVisit("initial_contact", T0, T0 + timedelta(days=3)),
        StageVisit("needs_confirmed", T0 + timedelta(days=3), T0 + timedelta(days=10)),
        StageVisit("initial_contact", T0 + timedelta(days=10), T0 + timedelta(days=11, hours=12)),
        StageVisit("needs_confirmed", T0 + timedelta(days=11, hours=12)),
    ]
    now = T0 + timedelta(days=20)
    assert days_per_stage(visits, now) == {
        "initial_contact": Decimal("4.5"),
        "needs_confirmed": Decimal("15.5"),
    }
    assert last_open_stage(visits, PROCESS) == "needs_confirmed"


def test_last_open_stage_skips_closing_stages():
    visits = [
        StageVisit("proposal", T0, T0 + timedelta(days=1)),
        StageVisit("lost", T0 + timedelta(days=1)),
    ]
    assert last_open_stage(visits, PROCESS) == "proposal"
    assert last_open_stage([], PROCESS) is None


def test_overdue_close_dates():
    today = date(2026, 4, 1)
    assert is_overdue_close(date(2026, 3, 31), "open", today)
    assert not is_overdue_close(date(2026, 4, 1), "open", today)
    assert not is_overdue_close(date(2026, 3, 31), "won", today)
    assert not is_overdue_close(None, "open", today)
