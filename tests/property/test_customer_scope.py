"""Data scope of the customer service, tested by property.

Hypothesis draws a department tree, a region tree (few names, so that paths collide, and
siblings whose names prefix one another: 华东 and 华东x, 江 and 江苏), customers spread over
them (NULL in every dimension included) and a principal with zero to three grants crossing
random dimensions. The grants are compiled the way the org service compiles them (departments
expanded with or without their sub-departments, region paths with or without their subtree).
An oracle written here evaluates the *uncompiled* grants on the generated trees in plain
Python, and the service must agree with it on every reading path and on every write.

Examples per run (``--hypothesis-show-statistics`` shows how they spread over seeing none, some
or all of the book): reading paths 400 on SQLite and 60 on PostgreSQL; contacts and
relationships 150; writes (mass assignment) 300.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from nameko.testing.services import worker_factory
from sqlalchemy import insert

from crm_common.context import Principal, bind
from crm_common.db import SessionScope, engine_for
from crm_common.errors import NotFound, ValidationFailed
from crm_common.outbox import OutboxWriter
from customer.domain.org_units import OUTSIDE_DEPARTMENTS
from customer.domain.regions import normalize_region
from customer.models import Base, Contact, Customer, OutboxMessage, Relationship
from customer.service import CustomerService
from tests.unit.customer.org_units import seed_org_units

USERS = ("u-1", "u-2", "u-3")
REGION_NAMES = ("华东", "华北", "江", "江苏")
CATEGORIES = ("A", "B", "C", "VIP")
STATUSES = ("potential", "formal", "dormant", "disabled", "merged")
NAMES = ("华东机电", "江苏轴承", "机电五金", "北方阀门")
FRAGMENT = "机电"
PERMISSIONS = (
    "customer:read",
    "customer:write",
    "customer:import",
    "customer:export",
    "customer:merge",
)
ADMIN = Principal("u-admin", None, (), PERMISSIONS, ({},))
START = datetime(2026, 1, 1, tzinfo=UTC)
READ_EXAMPLES = 400
PG_READ_EXAMPLES = 60
SUB_RESOURCE_EXAMPLES = 150
WRITE_EXAMPLES = 300
EITHER = st.sampled_from((True, False))
"""A coin that, unlike ``st.booleans()``, does not lean to False while generating."""
SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.function_scoped_fixture]}


# -- the generated world ---------------------------------------------------------------------
@dataclass(frozen=True)
class World:
    dept_parent: dict[str, str | None]
    region_parent: list[int | None]
    region_name: list[str]

    @property
    def departments(self) -> list[str]:
        return list(self.dept_parent)

    def region_path(self, node: int) -> str:
        names = []
        current: int | None = node
        while current is not None:
            names.append(self.region_name[current])
            current = self.region_parent[current]
        return "/".join(reversed(names))

    @property
    def region_paths(self) -> list[str]:
        return [self.region_path(n) for n in range(len(self.region_name))]


@dataclass(frozen=True)
class GrantDef:
    """A grant as an administrator writes it, before the org service compiles it."""

    departments: tuple[tuple[str, bool], ...] | None
    regions: tuple[tuple[str, bool], ...] | None
    categories: frozenset[str] | None
    owner_self: bool


@st.composite
def worlds(draw):
    dept_count = draw(st.integers(2, 6))
    dept_parent: dict[str, str | None] = {}
    for i in range(dept_count):
        parent = draw(st.none() | st.integers(0, i - 1)) if i else None
        dept_parent[f"d{i}"] = None if parent is None else f"d{parent}"
    region_count = draw(st.integers(1, 4))
    parents: list[int | None] = []
    names: list[str] = []
    for i in range(region_count):
        parent = draw(st.none() | st.integers(0, i - 1)) if i else None
        name = draw(st.sampled_from(REGION_NAMES))
        parents.append(parent)
        names.append(name)
        if draw(EITHER):
            # A sibling whose name starts with this one's: 华东 and 华东x, 江 and 江x.
            parents.append(parent)
            names.append(name + "x")
    return World(dept_parent, parents, names)


def constraint_size():
    """How many items a constraint lists: mostly one or two, sometimes none (covers nothing)."""
    return st.sampled_from((1, 1, 1, 2, 2, 0))


CONSTRAINED = st.sampled_from((True, False, False))


@st.composite
def grants_in(draw, world: World):
    """One grant; each dimension is constrained one time in three, owner = self one in two."""
    departments = regions = categories = None
    if draw(CONSTRAINED):
        size = draw(constraint_size())
        item = st.tuples(st.sampled_from(world.departments), EITHER)
        departments = tuple(draw(st.lists(item, min_size=size, max_size=size)))
    if draw(CONSTRAINED):
        size = draw(constraint_size())
        item = st.tuples(st.sampled_from(world.region_paths), EITHER)
        regions = tuple(draw(st.lists(item, min_size=size, max_size=size)))
    if draw(CONSTRAINED):
        size = draw(constraint_size())
        categories = draw(st.frozensets(st.sampled_from(CATEGORIES), min_size=size))
    return GrantDef(departments, regions, categories, draw(EITHER))


def principals_grants(world: World):
    """Zero to three grants; a principal without any sees nothing."""
    return st.sampled_from((1, 2, 3, 1, 2, 0)).flatmap(
        lambda n: st.lists(grants_in(world), min_size=n, max_size=n)
    )


def customers_in(world: World, max_size: int = 14, min_size: int = 0):
    row = st.fixed_dictionaries(
        {
            "owner_id": st.sampled_from((*USERS, None)),
            "department_id": st.sampled_from((*world.departments, None)),
            "region": st.sampled_from((*world.region_paths, None)),
            "category": st.sampled_from((*CATEGORIES, None)),
            "status": st.sampled_from(STATUSES),
            "name": st.sampled_from(NAMES),
        }
    )
    return st.lists(row, min_size=min_size, max_size=max_size)


@st.composite
def scenarios(draw, max_customers: int = 14):
    world = draw(worlds())
    customers = draw(customers_in(world, max_customers, min_size=4))
    user = draw(st.sampled_from(USERS))
    department = draw(st.none() | st.sampled_from(world.departments))
    grants = draw(principals_grants(world))
    return world, customers, user, department, grants


# -- compiling (what the org service hands over) and the oracle ------------------------------
def compile_grant(world: World, grant: GrantDef) -> dict:
    compiled: dict = {}
    if grant.departments is not None:
        covered = set()
        for root, with_children in grant.departments:
            covered.add(root)
            frontier = [root] if with_children else []
            while frontier:
                parent = frontier.pop()
                children = [d for d, p in world.dept_parent.items() if p == parent]
                covered.update(children)
                frontier += children
        compiled["departments"] = sorted(covered)
    if grant.regions is not None:
        compiled["regions"] = [{"path": p, "subtree": s} for p, s in grant.regions]
    if grant.categories is not None:
        compiled["categories"] = sorted(grant.categories)
    if grant.owner_self:
        compiled["owner"] = "self"
    return compiled


def principal_for(world, user, department, grants) -> Principal:
    """The principal as the services see it, with its grants compiled the way org does."""
    return Principal(
        user_id=user,
        department_id=department,
        permissions=PERMISSIONS,
        grants=tuple(compile_grant(world, g) for g in grants),
    )


def assignable(world: World, department: str | None, principal: Principal) -> set[str] | None:
    """The departments a write may name without a transfer (None: any): those of the grants
    on departments, and, for an owner-only grant, the caller's department and those below."""
    found: set[str] = set()
    for grant in principal.grants:
        if grant.departments is not None:
            found |= grant.departments
        elif grant.owner_self:
            if department is not None:
                found |= {d for d in world.departments if below_or_at(world, d, department, True)}
        else:
            return None
    return found


def may_place(world, user, department, grants, record, written) -> bool:
    """Whether a write of the fields ``written`` may leave the customer as ``record``: in the
    caller's data scope, in a department they may assign if it names one."""
    if not allowed(world, user, grants, record):
        return False
    reach = assignable(world, department, principal_for(world, user, department, grants))
    named = record["department_id"] if "department_id" in written else None
    return reach is None or named is None or named in reach


def below_or_at(world: World, department: str | None, root: str, with_children: bool) -> bool:
    if department is None:
        return False
    if department == root:
        return True
    if not with_children:
        return False
    ancestor = world.dept_parent.get(department)
    while ancestor is not None:
        if ancestor == root:
            return True
        ancestor = world.dept_parent.get(ancestor)
    return False


def region_covers(path: str, subtree: bool, region: str | None) -> bool:
    if region is None:
        return False
    mine, theirs = region.split("/"), path.split("/")
    if mine == theirs:
        return True
    return subtree and len(mine) > len(theirs) and mine[: len(theirs)] == theirs


def allowed(world: World, user: str, grants: list[GrantDef], customer: dict) -> bool:
    for grant in grants:
        if grant.departments is not None and not any(
            below_or_at(world, customer["department_id"], root, children)
            for root, children in grant.departments
        ):
            continue
        if grant.regions is not None and not any(
            region_covers(path, subtree, customer["region"]) for path, subtree in grant.regions
        ):
            continue
        if grant.categories is not None and customer["category"] not in grant.categories:
            continue
        if grant.owner_self and customer["owner_id"] != user:
            continue
        return True
    return False


# -- the database ----------------------------------------------------------------------------
class Book:
    """One database and service worker for all the examples of a test function."""

    def __init__(self, uri: str) -> None:
        self.db = SessionScope(engine_for(uri))
        Base.metadata.create_all(self.db.engine)
        self.service = worker_factory(
            CustomerService, db=self.db, outbox=OutboxWriter(OutboxMessage, "customer")
        )

    def load(self, customers: list[dict], world: World | None = None) -> list[dict]:
        """Replace every row with ``customers`` (and the copy of the org structure with the
        departments and regions of ``world``); returns them with id and code."""
        rows = [
            {
                **c,
                "id": uuid.uuid4(),
                "code": f"C2001{i + 1:06d}",  # a year new customers never get
                "name": f"{c['name']}{i}号有限公司",
                "name_key": f"{c['name']}{i}",
                "kind": "enterprise",
                "created_at": START + timedelta(minutes=i % 4),
                "updated_at": START,
                "version": 1,
            }
            for i, c in enumerate(customers)
        ]
        with self.db.session() as session:
            for table in reversed(Base.metadata.sorted_tables):
                session.execute(table.delete())
            if rows:
                session.execute(insert(Customer), rows)
            if world is not None:
                seed_org_units(session, world.dept_parent, world.region_paths)
        return [{**r, "id": str(r["id"])} for r in rows]

    def add(self, model, rows: list[dict]) -> None:
        if rows:
            with self.db.session() as session:
                session.execute(insert(model), rows)


@pytest.fixture
def sqlite_book(sqlite_uri):
    yield Book(sqlite_uri)
    bind(None, None)


@pytest.fixture
def pg_book(pg_uri):
    yield Book(pg_uri)
    bind(None, None)


# -- reading paths ---------------------------------------------------------------------------
def share(seen: int, total: int) -> str:
    """A label for the statistics: how much of the book the principal sees."""
    return "sees none" if not seen else "sees all" if seen == total else "sees some"


def every_page(service, query):
    seen, cursor = [], None
    while True:
        page = service.list_customers({**query, "cursor": cursor})
        assert len(page["items"]) <= query["limit"]
        seen += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return seen


def check_reading_paths(book: Book, scenario, sort: str) -> None:
    world, generated, user, department, grants = scenario
    customers = book.load(generated)
    bind(principal_for(world, user, department, grants), "req-property")
    service = book.service
    visible = [c for c in customers if allowed(world, user, grants, c)]
    listed = [c for c in visible if c["status"] != "merged"]
    expected = sorted(c["id"] for c in listed)
    event(share(len(visible), len(customers)))
    if any(
        subtree and c["region"] and c["region"].startswith(path) and c["region"][len(path)] != "/"
        for grant in grants
        for path, subtree in grant.regions or ()
        for c in customers
        if c["region"] != path
    ):
        event("a region rule meets a sibling whose name it prefixes")

    pages = every_page(service, {"limit": 3, "sort": sort})
    assert sorted(c["id"] for c in pages) == expected

    found = every_page(service, {"q": FRAGMENT, "limit": 4, "sort": sort})
    assert sorted(c["id"] for c in found) == sorted(
        c["id"] for c in listed if FRAGMENT in c["name"]
    )

    assert service.count_customers({}) == {"count": len(expected)}
    assert service.count_customers({"q": FRAGMENT}) == {"count": len(found)}

    summary = service.summarize_customers({})
    assert summary == {
        "total": len(listed),
        "by_status": dict(Counter(c["status"] for c in listed)),
        "by_category": dict(Counter(c["category"] or "none" for c in listed)),
        "by_department": dict(Counter(c["department_id"] or "none" for c in listed)),
    }

    exported = csv.DictReader(
        io.StringIO(service.export_customers({"sort": sort}).lstrip("\ufeff"))
    )
    assert sorted(row["code"] for row in exported) == sorted(c["code"] for c in listed)

    shown = {c["id"] for c in visible}
    for customer in customers:
        if customer["id"] in shown:
            assert service.get_customer(customer["id"])["code"] == customer["code"]
        else:
            with pytest.raises(NotFound) as info:
                service.get_customer(customer["id"])
            assert info.value.details == {"resource": "customer", "id": customer["id"]}


@settings(max_examples=READ_EXAMPLES, **SETTINGS)
@given(scenario=scenarios(), sort=st.sampled_from(["-created_at", "name", "code", "-name"]))
def test_reading_paths_show_exactly_what_the_grants_allow(sqlite_book, scenario, sort):
    check_reading_paths(sqlite_book, scenario, sort)


@pytest.mark.postgres
@settings(max_examples=PG_READ_EXAMPLES, **SETTINGS)
@given(scenario=scenarios(), sort=st.sampled_from(["-created_at", "name", "code", "-name"]))
def test_reading_paths_on_postgres(pg_book, scenario, sort):
    check_reading_paths(pg_book, scenario, sort)


# -- contacts and relationships --------------------------------------------------------------
@settings(max_examples=SUB_RESOURCE_EXAMPLES, **SETTINGS)
@given(scenario=scenarios(max_customers=8), data=st.data())
def test_contacts_and_relationships_follow_their_customers(sqlite_book, scenario, data):
    world, generated, user, department, grants = scenario
    customers = sqlite_book.load(generated)
    contacts = [
        {"id": uuid.uuid4(), "customer_id": uuid.UUID(c["id"]), "name": f"联系人{i}"}
        for i, c in enumerate(customers)
    ]
    sqlite_book.add(Contact, contacts)
    links: set[tuple[int, int, str]] = set()
    if len(customers) > 1:
        pairs = st.tuples(
            st.integers(0, len(customers) - 1),
            st.integers(0, len(customers) - 1),
            st.sampled_from(["partner", "influences"]),
        ).filter(lambda t: t[0] != t[1])
        links = data.draw(st.sets(pairs, min_size=1, max_size=10))
    relationships = [
        {
            "id": uuid.uuid4(),
            "from_customer_id": uuid.UUID(customers[a]["id"]),
            "to_customer_id": uuid.UUID(customers[b]["id"]),
            "kind": kind,
        }
        for a, b, kind in links
    ]
    sqlite_book.add(Relationship, relationships)
    bind(principal_for(world, user, department, grants), "req-property")
    service = sqlite_book.service
    shown = {c["id"] for c in customers if allowed(world, user, grants, c)}
    event(share(len(shown), len(customers)))
    event(f"{len(relationships)} relationships" if len(relationships) < 3 else "3+ relationships")

    for customer, contact in zip(customers, contacts, strict=True):
        if customer["id"] in shown:
            assert [c["id"] for c in service.list_contacts(customer["id"])] == [str(contact["id"])]
            assert service.get_contact(str(contact["id"]))["customer_id"] == customer["id"]
            listed = {r["id"] for r in service.list_relationships(customer["id"])}
            expected = {
                str(r["id"])
                for r in relationships
                if customer["id"] in (str(r["from_customer_id"]), str(r["to_customer_id"]))
                and {str(r["from_customer_id"]), str(r["to_customer_id"])} - {customer["id"]}
                <= shown
            }
            assert listed == expected
        else:
            for call in (service.list_contacts, service.list_relationships):
                with pytest.raises(NotFound):
                    call(customer["id"])
            with pytest.raises(NotFound):
                service.get_contact(str(contact["id"]))


# -- writes ----------------------------------------------------------------------------------
def writable_region_paths(world: World) -> list[str]:
    """The generated region paths a client may write (the input validation's rules)."""
    paths = []
    for path in world.region_paths:
        try:
            if normalize_region(path) == path:
                paths.append(path)
        except ValueError:
            pass
    return paths


def pick(draw, strategy, allowed_if, want: bool):
    """Of a few drawn candidates the first that the oracle allows (or refuses, as wanted), so
    that both outcomes stay common however narrow the grants are."""
    candidates = draw(st.lists(strategy, min_size=12, max_size=12))
    return next((c for c in candidates if allowed_if(c) == want), candidates[0])


@st.composite
def write_scenarios(draw):
    world = draw(worlds())
    user = draw(st.sampled_from(USERS))
    department = draw(st.none() | st.sampled_from(world.departments))
    grants = draw(principals_grants(world))

    def ok(record):
        return allowed(world, user, grants, record)

    choices = {
        "owner_id": st.sampled_from((*USERS, None)),
        "department_id": st.none() | st.sampled_from(world.departments),
        "region": st.sampled_from([*writable_region_paths(world), None]),
        "category": st.sampled_from((*CATEGORIES, None)),
    }
    some_values = st.fixed_dictionaries({}, optional=choices)
    defaults = {"owner_id": user, "department_id": department, "region": None, "category": None}
    create = pick(draw, some_values, lambda v: ok({**defaults, **v}), draw(EITHER))
    stored = pick(draw, customers_in(world, 1, min_size=1).map(lambda c: c[0]), ok, True)
    stored["status"] = "formal"
    update = pick(draw, some_values, lambda v: ok({**stored, **v}), draw(EITHER))
    return world, user, grants, defaults, create, stored, update


@settings(max_examples=WRITE_EXAMPLES, **SETTINGS)
@given(scenario=write_scenarios())
def test_writes_succeed_exactly_when_the_result_is_in_scope(sqlite_book, scenario):
    world, user, grants, defaults, values, stored, changes = scenario
    department = defaults["department_id"]
    [stored] = sqlite_book.load([stored], world)
    principal = principal_for(world, user, department, grants)
    bind(principal, "req-property")
    service = sqlite_book.service

    created = {**defaults, **values}
    written = {k for k, v in values.items() if v is not None}
    may_create = may_place(world, user, department, grants, created, written)
    event(f"create {'allowed' if may_create else 'refused'}")
    if may_create:
        made = service.create_customer({"name": "新建客户有限公司", **values})
        assert {k: made[k] for k in created} == created
        assert service.get_customer(made["id"])["id"] == made["id"]
    else:
        with pytest.raises(ValidationFailed) as info:
            service.create_customer({"name": "新建客户有限公司", **values})
        refused = info.value.field_errors
        assert refused and set(refused) <= set(created)
        assert all(
            reasons in (["is outside your data scope"], [OUTSIDE_DEPARTMENTS])
            for reasons in refused.values()
        )
        bind(ADMIN, "req-property")
        assert service.count_customers({}) == {"count": 1}
        bind(principal, "req-property")

    if not allowed(world, user, grants, stored):
        event("update of a hidden customer")
        with pytest.raises(NotFound):
            service.update_customer(stored["id"], changes, 1)
        return
    after = {**{k: stored[k] for k in created}, **changes}
    changed = {k for k in changes if changes[k] != stored[k]}
    may_update = may_place(world, user, department, grants, after, changed)
    event(f"update {'allowed' if may_update else 'refused'}")
    if may_update:
        updated = service.update_customer(stored["id"], changes, 1)
        assert {k: updated[k] for k in after} == after
        assert service.get_customer(stored["id"])["id"] == stored["id"]
    else:
        with pytest.raises(ValidationFailed) as info:
            service.update_customer(stored["id"], changes, 1)
        assert info.value.field_errors and set(info.value.field_errors) <= changed
        bind(ADMIN, "req-property")
        assert service.get_customer(stored["id"])["version"] == 1
