import pytest

from org.domain.trees import (
    DEPARTMENT_PATH_SEPARATOR,
    REGION_PATH_SEPARATOR,
    Tree,
    check_region_name,
    child_path,
)

ORG = Tree(
    {
        "hq": None,
        "east": "hq",
        "east-sh": "east",
        "east-js": "east",
        "east-js-nj": "east-js",
        "north": "hq",
        "other-root": None,
    }
)


def test_ancestors_nearest_first():
    assert ORG.ancestors("east-js-nj") == ["east-js", "east", "hq"]
    assert ORG.ancestors("hq") == []
    assert ORG.ancestors("unknown") == []


def test_subtree_is_the_node_and_everything_below_parents_first():
    assert ORG.subtree("east") == ["east", "east-js", "east-sh", "east-js-nj"]
    assert ORG.descendants("east") == ["east-js", "east-sh", "east-js-nj"]
    assert ORG.subtree("north") == ["north"]
    assert set(ORG.subtree("hq")) == set(ORG.parents) - {"other-root"}


@pytest.mark.parametrize(
    ("node", "new_parent", "cycles"),
    [
        ("east", "east", True),
        ("east", "east-sh", True),
        ("east", "east-js-nj", True),
        ("hq", "north", True),
        ("east", "north", False),
        ("east-js", "hq", False),
        ("east", None, False),
        ("east", "other-root", False),
    ],
)
def test_a_node_cannot_become_its_own_ancestor(node, new_parent, cycles):
    assert ORG.would_cycle(node, new_parent) is cycles


def test_paths_join_the_names_from_the_root():
    regions = Tree({"e": None, "js": "e", "sz": "js", "n": None})
    names = {"e": "华东", "js": "江苏", "sz": "苏州", "n": "华北"}
    assert regions.paths(names, REGION_PATH_SEPARATOR) == {
        "e": "华东",
        "js": "华东/江苏",
        "sz": "华东/江苏/苏州",
        "n": "华北",
    }
    assert regions.paths(names, DEPARTMENT_PATH_SEPARATOR, ["sz"]) == {"sz": "华东 › 江苏 › 苏州"}


def test_broken_data_with_a_cycle_does_not_hang():
    looped = Tree({"a": "b", "b": "a"})
    assert looped.ancestors("a") == ["b"]
    assert looped.subtree("a") == ["a", "b"]


def test_region_names_are_one_level():
    assert child_path(None, "华东", REGION_PATH_SEPARATOR) == "华东"
    assert child_path("华东", "江苏", REGION_PATH_SEPARATOR) == "华东/江苏"
    assert child_path("总部", "市场部", DEPARTMENT_PATH_SEPARATOR) == "总部 › 市场部"
    check_region_name("江苏")
    with pytest.raises(ValueError, match="cannot contain"):
        check_region_name("华东/江苏")
