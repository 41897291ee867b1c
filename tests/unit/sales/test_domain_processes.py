from dataclasses import asdict
from decimal import Decimal

import pytest

from crm_common.errors import Conflict, ValidationFailed
from sales.domain.processes import (
    STANDARD_STAGES,
    Process,
    define_process,
    is_filled,
    missing_fields,
    plan_move,
    revise_process,
    stage_as_json,
)


def stages_json(stages=STANDARD_STAGES):
    return [stage_as_json(stage) for stage in stages]


def process(allow_skip=False):
    return define_process("p1", "project", "项目销售", stages_json(), allow_skip=allow_skip)


READY = {
    "expected_amount": Decimal("50000.00"),
    "expected_close_date": "2026-06-30",
    "contacts": [{"contact_id": "c1", "role": "decision_maker"}],
}


# -- definition ----------------------------------------------------------------------------
def test_the_standard_process_is_valid():
    defined = process()
    assert [s.code for s in defined.open_stages] == [
        "initial_contact",
        "needs_confirmed",
        "proposal",
        "negotiation",
    ]
    assert defined.won_stage.code == "won"
    assert [s.code for s in defined.lost_stages] == ["lost"]
    assert defined.first_stage.code == "initial_contact"
    assert [s.code for s in defined.funnel_stages][-1] == "won"
    assert defined.version == 1


def test_positions_default_to_the_listed_order():
    raw = [{k: v for k, v in s.items() if k != "position"} for s in stages_json()]
    defined = define_process("p1", "x", "x", raw)
    assert [s.position for s in defined.stages] == [10, 20, 30, 40, 50, 60]


def with_stage(index, **changes):
    raw = stages_json()
    raw[index] = {**raw[index], **changes}
    return raw


@pytest.mark.parametrize(
    ("stages", "field", "reason"),
    [
        (with_stage(1, code="initial_contact"), "stages.1.code", "is used by another stage"),
        (with_stage(0, code="  "), "stages.0.code", "is required"),
        (with_stage(2, name=""), "stages.2.name", "is required"),
        (with_stage(2, position=15), "stages.2.position", "must be greater than"),
        (with_stage(2, position="x"), "stages.2.position", "must be a whole number"),
        (with_stage(1, probability=101), "stages.1.probability", "from 0 to 100"),
        (with_stage(1, probability=-1), "stages.1.probability", "from 0 to 100"),
        (with_stage(1, probability=True), "stages.1.probability", "from 0 to 100"),
        (with_stage(1, probability=12.5), "stages.1.probability", "from 0 to 100"),
        (with_stage(4, probability=90), "stages.4.probability", "must be 100 for the won"),
        (with_stage(5, probability=5), "stages.5.probability", "must be 0 for a lost"),
        (with_stage(1, outcome="maybe"), "stages.1.outcome", "must be one of open, won, lost"),
        (
            with_stage(2, required_fields=["budget"]),
            "stages.2.required_fields",
            "'budget' cannot be required",
        ),
        (
            with_stage(2, required_fields=["expected_amount", "expected_amount"]),
            "stages.2.required_fields",
            "names a field twice",
        ),
        (
            with_stage(2, required_fields="expected_amount"),
            "stages.2.required_fields",
            "must be a list",
        ),
    ],
)
def test_process_definition_faults_are_named_by_field(stages, field, reason):
    with pytest.raises(ValidationFailed) as caught:
        define_process("p1", "x", "x", stages)
    errors = caught.value.field_errors
    assert field in errors, errors
    assert any(reason in message for message in errors[field]), errors


def test_lost_stages_may_come_before_the_won_stage():
    raw = stages_json()
    raw[4], raw[5] = {**raw[5], "position": 90}, {**raw[4], "position": 99}
    defined = define_process("p1", "x", "x", raw)
    assert defined.won_stage.position == 99
    assert [s.code for s in defined.funnel_stages][-1] == "won"


def test_an_open_stage_after_a_closing_one_is_refused():
    raw = stages_json()
    raw[3], raw[4] = {**raw[4], "position": 40}, {**raw[3], "position": 50}
    with pytest.raises(ValidationFailed) as caught:
        define_process("p1", "x", "x", raw)
    assert caught.value.field_errors == {
        "stages.4.outcome": ["an open stage cannot come after a won or lost stage"]
    }


@pytest.mark.parametrize(
    "stages",
    [
        [],
        stages_json()[:4] + stages_json()[5:],
        stages_json()[:5],
        stages_json()[4:],
        [*stages_json(), {**stages_json()[4], "code": "won2", "position": 95}],
    ],
    ids=["empty", "no won", "no lost", "no open", "two won"],
)
def test_a_process_needs_open_won_and_lost_stages(stages):
    with pytest.raises(ValidationFailed) as caught:
        define_process("p1", "x", "x", stages)
    assert "stages" in caught.value.field_errors


def test_every_fault_is_reported_at_once():
    raw = with_stage(1, probability=200, name="")
    with pytest.raises(ValidationFailed) as caught:
        define_process("p1", "", "", raw)
    assert set(caught.value.field_errors) == {
        "code",
        "name",
        "stages.1.probability",
        "stages.1.name",
    }


def test_a_revision_is_a_new_version_with_the_same_code():
    current = process()
    renamed = revise_process(current, "p2", name="项目型销售", allow_skip=True)
    assert (renamed.id, renamed.code, renamed.version) == ("p2", "project", 2)
    assert renamed.allow_skip and renamed.stages == current.stages
    restaged = revise_process(renamed, "p3", stages=with_stage(1, probability=40))
    assert restaged.version == 3
    assert restaged.stage("needs_confirmed").probability == 40
    assert current.stage("needs_confirmed").probability == 30
    with pytest.raises(ValidationFailed):
        revise_process(current, "p4", name=" ")
    with pytest.raises(ValidationFailed):
        revise_process(current, "p4", stages=[])


def test_unknown_stage_codes_are_refused():
    with pytest.raises(ValidationFailed) as caught:
        process().stage("closing")
    assert list(caught.value.field_errors) == ["stage_code"]


def test_stage_as_json_round_trips():
    defined = process()
    again = define_process("p1", "project", "项目销售", stages_json(defined.stages))
    assert [asdict(s) for s in again.stages] == [asdict(s) for s in defined.stages]


# -- filled fields -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "values", "filled"),
    [
        ("expected_amount", {}, False),
        ("expected_amount", {"expected_amount": None}, False),
        ("expected_amount", {"expected_amount": Decimal("0.00")}, False),
        ("expected_amount", {"expected_amount": Decimal("0.01")}, True),
        ("description", {"description": "   "}, False),
        ("description", {"description": "需求明确"}, True),
        ("tags", {"tags": []}, False),
        ("tags", {"tags": ["重点"]}, True),
        ("decision_maker", {"contacts": [{"contact_id": "c", "role": "influencer"}]}, False),
        ("decision_maker", {"contacts": [{"contact_id": "c", "role": "decision_maker"}]}, True),
        ("decision_maker", {"contacts": None}, False),
    ],
)
def test_what_counts_as_filled(field, values, filled):
    assert is_filled(field, values) is filled


def test_missing_fields_name_the_first_stage_needing_them():
    defined = process()
    stages = (defined.stage("proposal"), defined.stage("negotiation"), defined.won_stage)
    assert missing_fields(stages, {}) == {
        "expected_amount": ["is required to enter 方案报价"],
        "expected_close_date": ["is required to enter 方案报价"],
        "decision_maker": ["is required to enter 商务谈判"],
    }


# -- moves ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("allow_skip", "source", "target", "values", "reason", "status", "skipped"),
    [
        (False, "initial_contact", "needs_confirmed", {}, None, "open", []),
        (False, "needs_confirmed", "proposal", READY, None, "open", []),
        (False, "negotiation", "won", READY, None, "won", []),
        (False, "initial_contact", "lost", {}, None, "lost", []),
        (False, "proposal", "lost", {}, None, "lost", []),
        (False, "negotiation", "initial_contact", {}, "客户换了负责人", "open", []),
        (True, "initial_contact", "proposal", READY, None, "open", ["needs_confirmed"]),
        (
            True,
            "initial_contact",
            "won",
            READY,
            None,
            "won",
            [
                "needs_confirmed",
                "proposal",
                "negotiation",
            ],
        ),
    ],
)
def test_allowed_moves(allow_skip, source, target, values, reason, status, skipped):
    move = plan_move(process(allow_skip), source, target, values, reason)
    assert move.target.code == target
    assert move.status == status
    assert move.closes is (status != "open")
    assert [s.code for s in move.skipped] == skipped
    assert move.reason == reason


def test_forward_with_missing_fields_names_each_field():
    with pytest.raises(ValidationFailed) as caught:
        plan_move(process(), "needs_confirmed", "proposal", {"description": "x"})
    error = caught.value
    assert error.status == 422
    assert error.field_errors == {
        "expected_amount": ["is required to enter 方案报价"],
        "expected_close_date": ["is required to enter 方案报价"],
    }
    assert error.details["stage_code"] == "proposal"
    assert "expected_amount, expected_close_date" in error.message


def test_one_missing_field_is_named_alone():
    values = {"expected_close_date": "2026-06-30"}
    with pytest.raises(ValidationFailed) as caught:
        plan_move(process(), "needs_confirmed", "proposal", values)
    assert caught.value.field_errors == {"expected_amount": ["is required to enter 方案报价"]}


def test_skipping_checks_the_fields_of_the_stages_skipped():
    with pytest.raises(ValidationFailed) as caught:
        plan_move(process(allow_skip=True), "initial_contact", "negotiation", {})
    assert caught.value.field_errors == {
        "expected_amount": ["is required to enter 方案报价"],
        "expected_close_date": ["is required to enter 方案报价"],
        "decision_maker": ["is required to enter 商务谈判"],
    }


def test_the_won_stage_checks_its_own_fields():
    values = {k: v for k, v in READY.items() if k != "expected_amount"}
    with pytest.raises(ValidationFailed) as caught:
        plan_move(process(), "negotiation", "won", values)
    assert caught.value.field_errors == {"expected_amount": ["is required to enter 赢单"]}


@pytest.mark.parametrize(
    ("source", "target", "skipped"),
    [
        ("initial_contact", "proposal", "需求确认"),
        ("initial_contact", "negotiation", "需求确认, 方案报价"),
        ("proposal", "won", "商务谈判"),
    ],
)
def test_skipping_is_refused_unless_the_process_allows_it(source, target, skipped):
    with pytest.raises(ValidationFailed) as caught:
        plan_move(process(), source, target, READY)
    [reason] = caught.value.field_errors["stage_code"]
    assert reason.startswith(f"cannot skip {skipped}:")


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_moving_back_needs_a_reason(reason):
    with pytest.raises(ValidationFailed) as caught:
        plan_move(process(), "proposal", "needs_confirmed", READY, reason)
    assert caught.value.field_errors == {
        "reason": ["is required to move back from 方案报价 to 需求确认"]
    }


def test_moving_back_does_not_check_required_fields():
    move = plan_move(process(), "negotiation", "needs_confirmed", {}, " 预算冻结 ")
    assert not move.forward
    assert move.reason == "预算冻结"


def test_staying_put_is_refused():
    with pytest.raises(ValidationFailed) as caught:
        plan_move(process(), "proposal", "proposal", READY)
    assert "stage_code" in caught.value.field_errors


@pytest.mark.parametrize("source", ["won", "lost"])
def test_a_closed_stage_cannot_be_left_by_a_move(source):
    with pytest.raises(Conflict) as caught:
        plan_move(process(), source, "proposal", READY, "again")
    assert caught.value.details["reason"] == "opportunity_closed"


def test_a_lost_stage_checks_its_own_required_fields_only():
    raw = with_stage(5, required_fields=["competitors"])
    defined = define_process("p1", "x", "x", raw)
    with pytest.raises(ValidationFailed) as caught:
        plan_move(defined, "initial_contact", "lost", {})
    assert caught.value.field_errors == {"competitors": ["is required to enter 输单"]}


def test_moves_follow_the_version_the_opportunity_keeps():
    old: Process = process()
    new = revise_process(old, "p2", stages=with_stage(1, required_fields=["description"]))
    assert plan_move(old, "initial_contact", "needs_confirmed", {}).target.code == (
        "needs_confirmed"
    )
    with pytest.raises(ValidationFailed):
        plan_move(new, "initial_contact", "needs_confirmed", {})
