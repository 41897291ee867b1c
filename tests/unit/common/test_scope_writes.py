"""Where a write may put a record: ``check_in_scope`` and the fields it blames."""

import pytest

from crm_common.context import Principal
from crm_common.errors import ValidationFailed
from crm_common.scope import OUTSIDE, ScopeValues, blamed_fields, check_in_scope, scope_values


def principal(*grants):
    return Principal(user_id="u1", department_id="d1", grants=grants)


EAST_MINE = principal({"regions": [{"path": "华东"}], "owner": "self"})


def test_scope_values_reads_the_dimension_fields():
    assert scope_values({"owner_id": "u1", "region": "华东", "name": "x"}) == ScopeValues(
        owner_id="u1", region="华东"
    )


def test_a_record_inside_the_scope_passes():
    check_in_scope(EAST_MINE, ScopeValues(owner_id="u1", region="华东/江苏"), ["region"])


def test_only_the_written_field_that_keeps_the_record_out_is_blamed():
    record = ScopeValues(owner_id="u1", region="华北")
    assert blamed_fields(EAST_MINE, record, ["region", "category"]) == ["region"]
    with pytest.raises(ValidationFailed) as refused:
        check_in_scope(EAST_MINE, record, ["region"], noun="customer")
    assert refused.value.message == "the customer would be outside your data scope"
    assert refused.value.field_errors == {"region": [OUTSIDE]}


def test_the_grant_within_reach_on_fewest_fields_is_the_one_blamed():
    two = principal({"regions": [{"path": "华东"}], "owner": "self"}, {"departments": ["d9"]})
    record = ScopeValues(owner_id="u2", department_id="d1", region="华北")
    written = ["owner_id", "region", "department_id"]
    assert blamed_fields(two, record, written) == ["department_id"]


def test_when_no_grant_is_within_reach_every_written_scope_field_is_blamed():
    record = ScopeValues(owner_id="u2", region="华北")
    assert blamed_fields(EAST_MINE, record, ["region", "name"]) == ["region"]
    with pytest.raises(ValidationFailed) as refused:
        check_in_scope(EAST_MINE, record, [])
    assert set(refused.value.field_errors) == {"owner_id", "department_id", "region", "category"}
