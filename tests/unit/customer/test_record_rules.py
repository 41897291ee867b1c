"""Rules of one customer record and its contacts, called without a service or a database."""

from types import SimpleNamespace

import pytest

from crm_common.errors import Conflict, ValidationFailed
from crm_common.history import FieldChange
from customer.domain.contacts import new_contact_is_primary, primaries_to_demote
from customer.domain.customers import (
    candidate_view,
    candidate_views,
    check_credit_code_allowed,
    check_editable,
    credit_code_taken,
    credit_code_taken_outside,
    moves_owner,
    with_owner_defaults,
)
from customer.domain.merge import plan_merge
from customer.domain.relationships import seen_from


def customer(**values):
    defaults = {"id": "c1", "code": "C2026000001", "name": "甲", "status": "formal"}
    return SimpleNamespace(**{"merged_into_id": None, **defaults, **values})


def test_a_merged_customer_can_no_longer_be_edited():
    check_editable(customer())
    with pytest.raises(Conflict) as refused:
        check_editable(customer(status="merged", merged_into_id="c2"))
    assert refused.value.details == {"reason": "customer_merged", "merged_into_id": "c2"}


def test_an_individual_has_no_credit_code():
    check_credit_code_allowed("company", "914403001922038216")
    check_credit_code_allowed("individual", None)
    with pytest.raises(ValidationFailed) as refused:
        check_credit_code_allowed("individual", "914403001922038216")
    assert set(refused.value.field_errors) == {"credit_code"}


def test_the_creator_owns_a_new_customer_unless_told_otherwise():
    assert with_owner_defaults({"name": "甲"}, "u1", "d1") == {
        "name": "甲",
        "owner_id": "u1",
        "department_id": "d1",
    }
    assert with_owner_defaults({"owner_id": "u2"}, "u1", "d1")["owner_id"] == "u2"


def test_only_owner_or_department_changes_move_a_customer():
    assert moves_owner([FieldChange("department_id", "d1", "d2")])
    assert not moves_owner([FieldChange("region", "华东", "华北")])


def test_clashes_name_the_holder_only_to_those_who_may_see_it():
    seen = credit_code_taken(customer(merged_into_id="c9"))
    assert seen.details["candidates"][0]["code"] == "C2026000001"
    assert seen.details["merged_into_id"] == "c9"
    unseen = credit_code_taken_outside()
    assert unseen.details["candidates"] == [{"in_scope": False}]
    candidate = {"id": "c1", "code": "C1", "name": "甲", "score": 0.9, "reasons": ["x"]}
    assert candidate_view(candidate, True)["code"] == "C1"
    assert candidate_view(candidate, False) == {"in_scope": False}
    other = {**candidate, "id": "c2", "code": "C2"}
    third = {**candidate, "id": "c3", "code": "C3"}
    views = candidate_views([other, candidate, third], {"c1"})
    assert views == [{**candidate, "in_scope": True}, {"in_scope": False}]


def test_a_customers_first_contact_is_primary_unless_told_and_a_new_primary_demotes():
    assert new_contact_is_primary(None, customer_has_primary=False)
    assert not new_contact_is_primary(None, customer_has_primary=True)
    assert not new_contact_is_primary(False, customer_has_primary=False)
    assert new_contact_is_primary(True, customer_has_primary=True)
    a, b, c = (SimpleNamespace(id=i, is_primary=p) for i, p in ((1, True), (2, False), (3, True)))
    assert primaries_to_demote([a, b, c]) == [a, c]
    assert primaries_to_demote([a, b, c], keep=3) == [a]


def test_a_relationship_reads_inverted_from_its_other_end():
    assert seen_from("a", "parent", "a") == ("parent", "outgoing")
    assert seen_from("a", "parent", "b") == ("subsidiary", "incoming")


def test_a_merge_plan_says_what_each_side_becomes():
    survivor = {"id": "s", "status": "potential", "tags": ["a"], "phone": None}
    merged = {"id": "m", "status": "formal", "tags": ["b"], "phone": "021", "credit_code": "X"}
    plan = plan_merge(survivor, merged)
    assert plan.survivor_values(["a"]) == {
        "phone": "021",
        "credit_code": "X",
        "tags": ["a", "b"],
        "status": "formal",
    }
    assert [c.as_dict() for c in plan.merged_away(merged, "s")] == [
        {"field": "status", "old": "formal", "new": "merged"},
        {"field": "merged_into_id", "old": None, "new": "s"},
        {"field": "credit_code", "old": "X", "new": None},
    ]
