import pytest

from crm_common.context import Principal
from crm_common.scope import Grant, ScopeValues, in_scope
from org.domain.grants import GrantDefinition, Reference, combine, compile_grant
from org.domain.trees import Tree

DEPARTMENTS = Tree(
    {
        "d-hq": None,
        "d-east": "d-hq",
        "d-east-sh": "d-east",
        "d-east-js": "d-east",
        "d-north": "d-hq",
        "d-north-bj": "d-north",
    }
)
REGION_PATHS = {"rg-east": "华东", "rg-east-js": "华东/江苏", "rg-north": "华北"}


def compiled(**kwargs):
    return compile_grant(GrantDefinition(**kwargs), DEPARTMENTS, REGION_PATHS)


def test_include_children_expands_to_every_department_below():
    assert compiled(departments=(Reference("d-east", include_children=True),)) == {
        "departments": ["d-east", "d-east-js", "d-east-sh"]
    }
    assert compiled(departments=(Reference("d-east"),)) == {"departments": ["d-east"]}
    assert compiled(
        departments=(Reference("d-east-sh"), Reference("d-north", include_children=True))
    ) == {"departments": ["d-east-sh", "d-north", "d-north-bj"]}


def test_regions_become_paths_with_or_without_subtree():
    assert compiled(
        regions=(Reference("rg-east-js"), Reference("rg-north", include_children=True))
    ) == {
        "regions": [
            {"path": "华东/江苏", "subtree": False},
            {"path": "华北", "subtree": True},
        ]
    }
    twice = (Reference("rg-east"), Reference("rg-east", include_children=True))
    assert compiled(regions=twice) == {"regions": [{"path": "华东", "subtree": True}]}


def test_dimensions_are_crossed_in_one_grant():
    grant = compiled(
        departments=(Reference("d-east", include_children=True),),
        categories=("VIP", "A", "A"),
        owner_self=True,
    )
    assert grant == {
        "departments": ["d-east", "d-east-js", "d-east-sh"],
        "categories": ["A", "VIP"],
        "owner": "self",
    }
    principal = Principal(user_id="u1", grants=(grant,))
    assert in_scope(principal, ScopeValues("u1", "d-east-sh", None, "VIP"))
    assert not in_scope(principal, ScopeValues("u2", "d-east-sh", None, "VIP"))
    assert not in_scope(principal, ScopeValues("u1", "d-east-sh", None, "B"))
    assert not in_scope(principal, ScopeValues("u1", "d-north", None, "A"))


def test_a_grant_without_constraints_is_unrestricted():
    assert compiled() == {}
    assert Grant.from_dict(compiled()).unrestricted


@pytest.mark.parametrize("dimension", ["departments", "regions", "categories"])
def test_an_empty_list_still_restricts_to_nothing(dimension):
    grant = compiled(**{dimension: ()})
    assert grant == {dimension: []}
    principal = Principal(user_id="u1", grants=(grant,))
    assert not in_scope(principal, ScopeValues("u1", "d-east", "华东", "A"))


def test_references_to_unknown_ids_cover_nothing():
    assert compiled(departments=(Reference("d-gone", True),)) == {"departments": []}
    assert compiled(regions=(Reference("rg-gone", True),)) == {"regions": []}


def test_the_compiled_form_is_what_crm_common_reads_back():
    grant = compiled(
        departments=(Reference("d-north", True),),
        regions=(Reference("rg-east", True),),
        categories=("B",),
        owner_self=True,
    )
    assert Grant.from_dict(grant).as_dict() == grant


def test_from_record_reads_the_stored_form():
    definition = GrantDefinition.from_record(
        [{"department_id": "d-east", "include_children": True}],
        [{"region_id": "rg-east-js", "include_children": False}],
        None,
        False,
    )
    assert definition == GrantDefinition(
        departments=(Reference("d-east", True),), regions=(Reference("rg-east-js", False),)
    )


def test_combine_deduplicates_and_an_unrestricted_grant_stands_alone():
    own = {"owner": "self"}
    east = {"departments": ["d-east"]}
    assert combine([east, own, dict(own)]) == [east, own]
    assert combine([own, {}, east]) == [{}]
    assert combine([]) == []
