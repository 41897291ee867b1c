"""The scope helper: grants parsed, evaluated in Python and turned into SQL that agrees."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert, select

from crm_common.context import Principal
from crm_common.scope import (
    Grant,
    MalformedGrant,
    RegionRule,
    ScopeColumns,
    ScopeValues,
    in_scope,
    scope_condition,
    scope_filter,
    scope_parameters,
    scope_shape,
)

metadata = MetaData()
records = Table(
    "records",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("owner_id", String),
    Column("department_id", String),
    Column("region", String),
    Column("category", String),
)
COLUMNS = ScopeColumns(
    owner=records.c.owner_id,
    department=records.c.department_id,
    region=records.c.region,
    category=records.c.category,
)

ROWS = [
    ScopeValues("u-1", "d-east", "华东/江苏/苏州", "A"),
    ScopeValues("u-2", "d-east-js", "华东/江苏", "VIP"),
    ScopeValues("u-1", "d-north", "华北/北京", None),
    ScopeValues("u-3", None, "华东x/杭州", "B"),
    ScopeValues(None, "d-south", None, "C"),
    ScopeValues("u-2", "d-east", "Abc/Def", "A"),
    ScopeValues("u-3", "d-east", "abc/def", "A"),
    ScopeValues("u-1", "d-east", "50%_off/x", "B"),
    ScopeValues("u-1", "d-east", "50%Xoff/x", "B"),
]


@pytest.fixture(scope="module")
def engine():
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(
            insert(records),
            [{"id": i, **vars(row)} for i, row in enumerate(ROWS)],
        )
    return engine


def selected(engine, principal, columns=COLUMNS):
    with engine.connect() as connection:
        stmt = select(records.c.id).where(scope_filter(principal, columns)).order_by(records.c.id)
        return list(connection.scalars(stmt))


def allowed(principal):
    return [i for i, row in enumerate(ROWS) if in_scope(principal, row)]


def principal_with(*grants, user_id="u-1"):
    return Principal(user_id, grants=grants)


CASES = {
    "no grants sees nothing": ((), []),
    "an empty grant sees everything": (({},), list(range(len(ROWS)))),
    "owner self": (({"owner": "self"},), [0, 2, 7, 8]),
    "departments": (({"departments": ["d-east", "d-east-js"]},), [0, 1, 5, 6, 7, 8]),
    "no departments at all": (({"departments": []},), []),
    "region subtree stops at the separator": (
        ({"regions": [{"path": "华东", "subtree": True}]},),
        [0, 1],
    ),
    "region without subtree is exact": (
        ({"regions": [{"path": "华东/江苏", "subtree": False}]},),
        [1],
    ),
    "regions compare case-sensitively": (({"regions": [{"path": "Abc"}]},), [5]),
    "wildcard characters in a region are literal": (({"regions": [{"path": "50%_off"}]},), [7]),
    "categories never match a missing category": (({"categories": ["A", "C"]},), [0, 4, 5, 6]),
    "crossed dimensions are ANDed": (
        ({"departments": ["d-east"], "categories": ["A"], "owner": "self"},),
        [0],
    ),
    "grants are ORed": (
        ({"owner": "self", "categories": ["B"]}, {"departments": ["d-south"]}),
        [4, 7, 8],
    ),
}


@pytest.mark.parametrize("grants, expected", CASES.values(), ids=CASES.keys())
def test_sql_and_python_select_the_same_records(engine, grants, expected):
    principal = principal_with(*grants)
    assert allowed(principal) == expected
    assert selected(engine, principal) == expected


def test_a_dimension_the_model_lacks_covers_none_of_its_rows(engine):
    no_category = ScopeColumns(owner=records.c.owner_id, department=records.c.department_id)
    principal = principal_with({"categories": ["A"]}, {"owner": "self"})
    assert selected(engine, principal, no_category) == [0, 2, 7, 8]


def test_grants_round_trip_through_their_dict_form():
    data = {
        "departments": ["d-b", "d-a"],
        "regions": [{"path": "华东", "subtree": False}],
        "categories": ["VIP"],
        "owner": "self",
    }
    grant = Grant.from_dict(data)
    assert grant.departments == {"d-a", "d-b"}
    assert grant.regions == (RegionRule("华东", False),)
    assert Grant.from_dict(grant.as_dict()) == grant
    assert Grant.from_dict({}).unrestricted


@pytest.mark.parametrize(
    "data, reason",
    [
        ({"department": ["d-1"]}, "unknown grant dimensions"),
        ({"owner": "u-2"}, "owner can only be 'self'"),
        ({"departments": "d-1"}, "must be a list"),
        ({"categories": [1]}, "list of strings"),
        ({"regions": ["华东"]}, "region constraint"),
        ({"regions": [{"path": "/"}]}, "must not be empty"),
        ({"regions": [{"path": "华东", "subtree": "yes"}]}, "true or false"),
        (["owner"], "must be an object"),
    ],
)
def test_malformed_grants_are_refused(data, reason):
    with pytest.raises(MalformedGrant, match=reason):
        Grant.from_dict(data)


names = st.sampled_from(["a", "A", "ab", "a%", "a_", "华东", "华东x"])
paths = st.lists(names, min_size=1, max_size=3).map("/".join)
values = st.builds(
    ScopeValues,
    owner_id=st.sampled_from([None, "u-1", "u-2"]),
    department_id=st.sampled_from([None, "d-1", "d-2", "d-3"]),
    region=st.none() | paths,
    category=st.sampled_from([None, "A", "B", "VIP"]),
)
grants = st.fixed_dictionaries(
    {},
    optional={
        "departments": st.lists(st.sampled_from(["d-1", "d-2", "d-3"]), max_size=2),
        "regions": st.lists(
            st.fixed_dictionaries({"path": paths, "subtree": st.booleans()}), max_size=2
        ),
        "categories": st.lists(st.sampled_from(["A", "B", "VIP"]), max_size=2),
        "owner": st.just("self"),
    },
)


def test_one_statement_per_shape_serves_every_principal_of_that_shape(engine):
    statements = {}
    for grants, expected in CASES.values():
        principal = principal_with(*grants)
        shape = scope_shape(principal)
        stmt = statements.setdefault(
            shape,
            select(records.c.id).where(scope_condition(shape, COLUMNS)).order_by(records.c.id),
        )
        with engine.connect() as connection:
            assert list(connection.scalars(stmt, scope_parameters(principal))) == expected
    assert len(statements) < len(CASES)


def test_principals_whose_grants_differ_only_in_values_share_a_shape():
    one = principal_with({"departments": ["d-1"], "regions": [{"path": "华东"}]}, {"owner": "self"})
    other = principal_with(
        {"departments": ["d-2", "d-3"], "regions": [{"path": "华北/北京"}]},
        {"owner": "self"},
        user_id="u-2",
    )
    exact_region = principal_with(
        {"departments": ["d-1"], "regions": [{"path": "华东", "subtree": False}]},
        {"owner": "self"},
    )
    assert scope_shape(one) == scope_shape(other) != scope_shape(exact_region)
    assert scope_shape(principal_with({}, {"owner": "self"})) is None


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(values, max_size=12), grant_list=st.lists(grants, max_size=3))
def test_the_sql_filter_agrees_with_the_python_evaluation(rows, grant_list):
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    with engine.begin() as connection:
        if rows:
            connection.execute(
                insert(records), [{"id": i, **vars(row)} for i, row in enumerate(rows)]
            )
        principal = principal_with(*grant_list)
        expected = [i for i, row in enumerate(rows) if in_scope(principal, row)]
        stmt = select(records.c.id).where(scope_filter(principal, COLUMNS)).order_by(records.c.id)
        assert list(connection.scalars(stmt)) == expected
        shared = (
            select(records.c.id)
            .where(scope_condition(scope_shape(principal), COLUMNS))
            .order_by(records.c.id)
        )
        assert list(connection.scalars(shared, scope_parameters(principal))) == expected
