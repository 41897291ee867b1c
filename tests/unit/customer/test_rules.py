import datetime as dt
import uuid
from decimal import Decimal

import pytest

from crm_common.errors import Conflict, ValidationFailed
from crm_common.history import diff, jsonable
from customer.domain.codes import format_customer_code, is_customer_code, parse_customer_code
from customer.domain.history import UNORDERED_FIELDS
from customer.domain.merge import plan_merge
from customer.domain.regions import normalize_region, region_area, within
from customer.domain.relationships import (
    Drop,
    Link,
    Repoint,
    canonical_key,
    check_new_link,
    repoint_for_merge,
)
from customer.domain.status import allowed_next, check_transition
from customer.domain.tags import normalize_tags, split_tags


# -- codes ---------------------------------------------------------------------------------
def test_code_is_c_year_and_six_digit_sequence():
    assert format_customer_code(2026, 123) == "C2026000123"
    assert format_customer_code(2026, 999_999) == "C2026999999"
    assert parse_customer_code("C2026000123") == (2026, 123)
    assert parse_customer_code(" c2026000123 ") == (2026, 123)


@pytest.mark.parametrize(
    "bad", ["", "C2026", "C20260001234", "X2026000123", "C2026000000", "C26000123"]
)
def test_malformed_codes_do_not_parse(bad):
    assert parse_customer_code(bad) is None
    assert not is_customer_code(bad)


@pytest.mark.parametrize(("year", "seq"), [(2026, 0), (2026, 1_000_000), (26, 1)])
def test_codes_out_of_range_are_refused(year, seq):
    with pytest.raises(ValueError):
        format_customer_code(year, seq)


# -- status --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("potential", "formal"),
        ("potential", "disabled"),
        ("formal", "dormant"),
        ("dormant", "formal"),
        ("formal", "disabled"),
        ("disabled", "potential"),
        ("disabled", "formal"),
        ("formal", "formal"),
    ],
)
def test_allowed_transitions(old, new):
    check_transition(old, new)


@pytest.mark.parametrize(
    ("old", "new"), [("potential", "dormant"), ("formal", "potential"), ("dormant", "potential")]
)
def test_forbidden_transitions_explain_on_the_status_field(old, new):
    with pytest.raises(ValidationFailed) as info:
        check_transition(old, new)
    [reason] = info.value.field_errors["status"]
    assert old in reason and new in reason and "allowed" in reason


def test_a_merged_customer_is_frozen():
    with pytest.raises(Conflict) as info:
        check_transition("merged", "formal")
    assert info.value.details["reason"] == "customer_merged"
    with pytest.raises(ValidationFailed):
        check_transition("formal", "merged")


def test_allowed_next_lists_targets():
    assert allowed_next("potential") == ["disabled", "formal"]
    assert allowed_next("merged") == []


# -- merge ---------------------------------------------------------------------------------
def customer(**overrides):
    base = {
        "id": str(uuid.uuid4()),
        "code": "C2026000001",
        "status": "formal",
        "short_name": None,
        "industry": None,
        "region": None,
        "address": None,
        "phone": None,
        "credit_code": None,
        "credit_level": None,
        "category": None,
        "owner_id": None,
        "department_id": None,
        "tags": [],
    }
    base.update(overrides)
    return base


def test_survivor_keeps_its_values_and_fills_the_gaps():
    survivor = customer(industry="机电", phone="021-1", tags=["重点", "华东"])
    merged = customer(
        code="C2026000002",
        industry="五金",
        phone="021-2",
        address="上海市浦东新区",
        credit_code="91350100M000100Y43",
        tags=["华东", "年采购>100万"],
    )
    plan = plan_merge(survivor, merged)
    assert plan.fills == {"address": "上海市浦东新区", "credit_code": "91350100M000100Y43"}
    assert plan.moves_credit_code
    assert plan.tags == ["重点", "华东", "年采购>100万"]
    assert plan.status is None


def test_owner_and_department_move_together_or_not_at_all():
    merged = customer(owner_id="u-sales-02", department_id="d-north")
    assert plan_merge(customer(owner_id="u-sales-01"), merged).fills == {}
    assert plan_merge(customer(), merged).fills == {
        "owner_id": "u-sales-02",
        "department_id": "d-north",
    }


@pytest.mark.parametrize(
    ("mine", "theirs", "expected"),
    [
        ("potential", "formal", "formal"),
        ("dormant", "formal", "formal"),
        ("potential", "dormant", "dormant"),
        ("formal", "potential", None),
        ("formal", "dormant", None),
    ],
)
def test_survivor_status_becomes_the_furthest_along(mine, theirs, expected):
    assert plan_merge(customer(status=mine), customer(status=theirs)).status == expected


def test_cannot_merge_into_itself():
    one = customer()
    with pytest.raises(ValidationFailed) as info:
        plan_merge(one, dict(one))
    assert "merged_id" in info.value.field_errors


@pytest.mark.parametrize("status", ["disabled", "merged"])
@pytest.mark.parametrize("role", ["survivor", "merged"])
def test_disabled_or_merged_customers_are_refused(status, role):
    survivor, merged = customer(), customer()
    (survivor if role == "survivor" else merged)["status"] = status
    with pytest.raises(Conflict) as info:
        plan_merge(survivor, merged)
    assert info.value.details["reason"] == "not_mergeable"
    assert info.value.details["role"] == role


def test_moved_primary_contacts_are_demoted_when_the_survivor_has_one():
    assert plan_merge(customer(), customer(), survivor_has_primary=True).demote_moved_primaries
    assert not plan_merge(customer(), customer()).demote_moved_primaries


# -- relationships -------------------------------------------------------------------------
def test_inverse_hierarchy_is_the_same_fact():
    assert canonical_key("a", "b", "parent") == canonical_key("b", "a", "subsidiary")
    assert canonical_key("a", "b", "partner") == canonical_key("b", "a", "partner")
    assert canonical_key("a", "b", "influences") != canonical_key("b", "a", "influences")


def test_no_self_links():
    with pytest.raises(ValidationFailed) as info:
        check_new_link("a", "a", "partner", [])
    assert "related_customer_id" in info.value.field_errors


@pytest.mark.parametrize(
    ("existing", "new", "message"),
    [
        (("a", "b", "parent"), ("a", "b", "parent"), "already have this relationship"),
        (("a", "b", "parent"), ("b", "a", "subsidiary"), "already have this relationship"),
        (("a", "b", "parent"), ("b", "a", "parent"), "the other way"),
        (("a", "b", "partner"), ("b", "a", "partner"), "already have this relationship"),
    ],
)
def test_duplicate_or_contradicting_links_conflict(existing, new, message):
    with pytest.raises(Conflict) as info:
        check_new_link(*new, [Link("r1", *existing)])
    assert message in info.value.message
    assert info.value.details == {"reason": "duplicate_relationship", "relationship_id": "r1"}


def test_distinct_links_are_fine():
    existing = [Link("r1", "a", "b", "influences"), Link("r2", "a", "c", "parent")]
    check_new_link("b", "a", "influences", existing)
    check_new_link("a", "b", "partner", existing)


def test_merge_repoints_links_and_drops_self_links_and_duplicates():
    s, m = "survivor", "merged"
    links = [
        Link("1", s, "x", "parent"),  # survivor's own, untouched
        Link("2", m, "x", "parent"),  # same fact once repointed: dropped
        Link("3", m, s, "partner"),  # would link survivor to itself
        Link("4", "y", m, "influences"),  # moves to the survivor
        Link("5", m, "z", "partner"),  # moves
    ]
    actions = repoint_for_merge(links, s, m)
    assert actions == [
        Drop("2", "duplicate"),
        Drop("3", "self_link"),
        Repoint("4", "y", s),
        Repoint("5", s, "z"),
    ]


# -- history -------------------------------------------------------------------------------
def test_diff_lists_changed_fields_only():
    before = {"name": "甲", "phone": "", "tags": ["b", "a"], "birthday": dt.date(1980, 5, 1)}
    after = {"name": "乙", "phone": None, "tags": ["a", "b"], "birthday": dt.date(1980, 5, 2)}
    changes = diff(
        before, after, ["name", "phone", "tags", "birthday", "missing"], unordered=UNORDERED_FIELDS
    )
    assert [c.as_dict() for c in changes] == [
        {"field": "name", "old": "甲", "new": "乙"},
        {"field": "birthday", "old": "1980-05-01", "new": "1980-05-02"},
    ]


def test_diff_sees_tag_additions():
    [change] = diff({"tags": ["a"]}, {"tags": ["a", "b"]}, ["tags"], unordered=UNORDERED_FIELDS)
    assert (change.old, change.new) == (["a"], ["a", "b"])


def test_jsonable_values():
    uid = uuid.uuid4()
    assert jsonable(uid) == str(uid)
    assert jsonable(Decimal("1.50")) == "1.50"
    assert jsonable(dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC)) == "2026-01-02T03:04:00+00:00"
    assert jsonable({"a": [uid]}) == {"a": [str(uid)]}


# -- regions and tags ----------------------------------------------------------------------
def test_regions_are_paths_under_a_known_area():
    assert normalize_region("华东／江苏／苏州") == "华东/江苏/苏州"
    assert normalize_region(" 华北 / 北京 ") == "华北/北京"
    assert region_area("华南/广东/深圳") == "华南"
    for bad in ["", "江苏", "华东//苏州", "华东/江苏/苏州/工业园区"]:
        with pytest.raises(ValueError):
            normalize_region(bad)


def test_region_scope_is_a_prefix_on_whole_levels():
    assert within("华东/江苏/苏州", "华东")
    assert within("华东/江苏", "华东/江苏")
    assert not within("华东/江苏", "华东/江")
    assert not within(None, "华东")


def test_tags_are_tidied_and_deduplicated():
    assert normalize_tags([" 重点客户 ", "重点客户", "ＶＩＰ"]) == ["重点客户", "VIP"]
    assert split_tags("重点；华东、VIP|年采购>100万, 老客户") == [
        "重点",
        "华东",
        "VIP",
        "年采购>100万",
        "老客户",
    ]
    with pytest.raises(ValueError):
        normalize_tags([str(i) for i in range(21)])
    with pytest.raises(ValueError):
        normalize_tags([""])
