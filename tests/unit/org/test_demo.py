import pytest
from nameko.testing.services import worker_factory
from sqlalchemy import func, select

from crm_common.db import SessionScope, engine_for
from crm_common.outbox import OutboxWriter
from demo.org import (
    DEMO_PASSWORD,
    DEMO_USERS,
    DEPARTMENTS,
    GRANTS,
    PEOPLE,
    REGIONS,
    ROLES,
    ensure_demo,
    main,
)
from org.domain.passwords import policy_problems
from org.hashing import Passwords
from org.models import OutboxMessage
from org.runtime import Runtime
from org.schemas import (
    DepartmentInputSchema,
    GrantInputSchema,
    PersonInputSchema,
    RegionInputSchema,
    RoleInputSchema,
)
from org.service import OrgService

from .conftest import CHEAP, SETTINGS, signing_trust

READ, WRITE, EXPORT, MERGE, IMPORT = (
    "customer:read",
    "customer:write",
    "customer:export",
    "customer:merge",
    "customer:import",
)
TRANSFER, CARE = "customer:transfer", "customer:care-on-behalf"
SELLING = [
    "opportunity:read",
    "opportunity:write",
    "activity:read",
    "activity:write",
    "expense:read",
    "expense:submit",
    "forecast:read",
    "receivable:read",
    "order:read",
    "order:write",
    "contract:read",
    "contract:write",
]
MANAGING = ["expense:approve", "opportunity:reopen", "order:approve"]
SALES_ADMIN = [*SELLING, *MANAGING, "expense:pay", "sales:admin"]
OPERATING = ["alerts:admin", "org:admin", "system:admin"]
EAST = ["d-east", "d-east-js", "d-east-sh"]
EVERYTHING = [{}]
# What the contracts of issue 3 (customers) and issue 10 (sales) say each demo user may do
# and see.
EXPECTED = {
    "admin": (
        "d-hq",
        [READ, WRITE, IMPORT, EXPORT, MERGE, TRANSFER, CARE, *SALES_ADMIN, *OPERATING],
        EVERYTHING,
    ),
    "manager01": (
        "d-east",
        [READ, WRITE, EXPORT, MERGE, *SELLING, *MANAGING],
        [{"categories": ["A", "VIP"], "departments": EAST}, {"owner": "self"}],
    ),
    "branch.east": (
        "d-east",
        [READ, WRITE, EXPORT, MERGE, IMPORT, TRANSFER, CARE, *SELLING, *MANAGING],
        [{"departments": EAST}],
    ),
    "branch.north": (
        "d-north",
        [READ, WRITE, EXPORT, MERGE, IMPORT, TRANSFER, CARE, *SELLING, *MANAGING],
        [{"departments": ["d-north", "d-north-bj", "d-north-tj"]}],
    ),
    "branch.south": (
        "d-south",
        [READ, WRITE, EXPORT, MERGE, IMPORT, TRANSFER, CARE, *SELLING, *MANAGING],
        [{"departments": ["d-south", "d-south-gd", "d-south-xn"]}],
    ),
    "marketing01": (
        "d-marketing",
        [READ, EXPORT],
        [{"regions": [{"path": "华东", "subtree": True}]}],
    ),
    "ceo": (
        "d-hq",
        [
            READ,
            EXPORT,
            "opportunity:read",
            "activity:read",
            "expense:read",
            "forecast:read",
            "receivable:read",
            "order:read",
            "contract:read",
            *MANAGING,
        ],
        EVERYTHING,
    ),
    "business01": ("d-business", [READ, EXPORT], EVERYTHING),
    "engineer01": ("d-service", [READ], [{"regions": [{"path": "华东/上海", "subtree": True}]}]),
    "service.manager": ("d-service", [READ, EXPORT], EVERYTHING),
    **{
        f"sales0{n}": (office, [READ, WRITE, EXPORT, *SELLING], [{"owner": "self"}])
        for n, office in enumerate(
            ["d-east-sh", "d-east-js", "d-north-bj", "d-north-tj", "d-south-gd", "d-south-xn"],
            start=1,
        )
    },
}


@pytest.fixture
def loaded(sqlite_uri):
    counts = ensure_demo(sqlite_uri, passwords=Passwords(CHEAP))
    return sqlite_uri, counts


@pytest.fixture
def org(loaded, clock):
    scope = SessionScope(engine_for(loaded[0]))
    return worker_factory(
        OrgService,
        db=scope,
        outbox=OutboxWriter(OutboxMessage, "org"),
        runtime=Runtime.create(SETTINGS, signing_trust(), clock),
    )


def test_loads_once_through_the_migrations_with_events(loaded):
    uri, counts = loaded
    assert counts == {
        "departments": 13,
        "regions": 25,
        "people": 18,
        "roles": 9,
        "users": 16,
        "grants": 12,
    }
    assert ensure_demo(uri, passwords=Passwords(CHEAP)) == {}
    with SessionScope(engine_for(uri)).session() as session:
        kinds = dict(
            session.execute(
                select(OutboxMessage.routing_key, func.count()).group_by(OutboxMessage.routing_key)
            ).all()
        )
    assert kinds == {"department_changed": 13, "region_changed": 25, "user_changed": 16}


@pytest.mark.parametrize("username", sorted(EXPECTED))
def test_every_demo_user_signs_in_with_the_grants_the_contract_implies(org, username):
    department, permissions, grants = EXPECTED[username]
    principal = org.sign_in(username, DEMO_PASSWORD)["principal"]
    assert principal["department_id"] == department
    assert principal["permissions"] == sorted(permissions)
    assert principal["grants"] == grants


def test_the_demo_users_as_data():
    assert len(DEMO_USERS) == len(EXPECTED) == len({u.username for u in DEMO_USERS})
    roles = {code for _, code, *_ in ROLES}
    for user in DEMO_USERS:
        assert user.role in roles and user.password == DEMO_PASSWORD
        assert policy_problems(user.password, user.username) == []
        assert EXPECTED[user.username][0] == user.department_id


def test_every_demo_record_passes_the_input_validation():
    for _, code, name, kind, parent, city, manager in DEPARTMENTS:
        DepartmentInputSchema().load(
            {
                "code": code,
                "name": name,
                "type": kind,
                "parent_id": parent,
                "city": city,
                "manager_id": manager,
            }
        )
    for _, code, name, parent in REGIONS:
        RegionInputSchema().load({"code": code, "name": name, "parent_id": parent})
    for _, code, name, department, position, mobile, mail, sales, engineer in PEOPLE:
        loaded = PersonInputSchema().load(
            {
                "code": code,
                "name": name,
                "department_id": department,
                "position": position,
                "mobile": mobile,
                "email": f"{mail}@example.com",
                "is_salesperson": sales,
                "is_service_engineer": engineer,
            }
        )
        assert loaded["mobile"] == mobile
    for _, code, name, permissions, description in ROLES:
        RoleInputSchema().load(
            {
                "code": code,
                "name": name,
                "permissions": list(permissions),
                "description": description,
            }
        )
    for _, name, role_id, user_id, departments, regions, categories, owner in GRANTS:
        GrantInputSchema().load(
            {
                "name": name,
                "role_id": role_id,
                "user_id": user_id,
                "departments": departments,
                "regions": regions,
                "categories": categories,
                "owner_self": owner,
            }
        )


def test_the_command_line(sqlite_uri, capsys, monkeypatch):
    monkeypatch.setattr("demo.org.Passwords", lambda: Passwords(CHEAP))
    main(["--uri", sqlite_uri, "--no-events"])
    assert "org demo data loaded" in capsys.readouterr().out
    main(["--uri", sqlite_uri])
    assert "already holds an org" in capsys.readouterr().out
