"""The org service on the real PostgreSQL: migrations, the demo, JSON nulls, and the row locks
that keep sign-in counters and refresh-token rotation right under concurrency."""

from __future__ import annotations

import eventlet
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from nameko.testing.services import worker_factory
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from crm_common.context import Principal, bind
from crm_common.db import SessionScope, engine_for
from crm_common.errors import Conflict, Unauthenticated
from crm_common.outbox import OutboxWriter
from demo.org import DEMO_PASSWORD, ensure_demo
from org.domain.lockout import LockoutPolicy
from org.hashing import HashCost, Passwords
from org.models import AuthSession, Base, DataGrant, OutboxMessage, User
from org.runtime import Runtime, Settings
from org.service import OrgService
from tests.support.tokens import TRUST

pytestmark = pytest.mark.postgres

CHEAP = HashCost(time_cost=1, memory_cost=8, parallelism=1)
ADMIN = Principal(user_id="u-admin", permissions=("org:admin",))


@pytest.fixture
def db(pg_uri):
    ensure_demo(pg_uri, passwords=Passwords(CHEAP))
    return SessionScope(engine_for(pg_uri))


def make_service(db, **settings):
    runtime = Runtime.create(Settings(hash_cost=CHEAP, **settings), TRUST)
    return worker_factory(
        OrgService, db=db, outbox=OutboxWriter(OutboxMessage, "org"), runtime=runtime
    )


@pytest.fixture
def service(db):
    yield make_service(db)
    bind(None, None)


def test_migrations_build_the_models_and_guard_the_grant_holder(db):
    with db.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    with pytest.raises(IntegrityError), db.session() as session:
        session.add(DataGrant(role_id="role-admin", user_id="u-admin"))
        session.flush()


def test_the_demo_users_sign_in_with_their_grants(service):
    principal = service.sign_in("Branch.East", DEMO_PASSWORD)["principal"]
    assert principal["grants"] == [{"departments": ["d-east", "d-east-js", "d-east-sh"]}]
    assert service.sign_in("admin", DEMO_PASSWORD)["principal"]["grants"] == [{}]


def test_admin_lists_search_page_and_keep_json_nulls(service, db):
    bind(ADMIN, "req-pg")
    assert [r["id"] for r in service.list_records("regions", {"q": "华东/江"})["items"]] == [
        "rg-east-js"
    ]
    seen, cursor = [], None
    while True:
        page = service.list_records("grants", {"limit": 4, "cursor": cursor})
        seen += [g["id"] for g in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 12
    grant = service.create_record("grants", {"user_id": "u-sales-01", "categories": []})
    with db.engine.connect() as connection:
        row = connection.execute(
            text("SELECT departments IS NULL, categories IS NULL FROM grants WHERE id = :id"),
            {"id": grant["id"]},
        ).one()
    assert tuple(row) == (True, False)
    renamed = service.update_record("regions", "rg-east", {"name": "华东区"}, 1)
    assert renamed["path"] == "华东区"
    assert service.get_record("regions", "rg-east-sh")["path"] == "华东区/上海"


def test_concurrent_wrong_passwords_are_all_counted(db):
    service = make_service(db, lockout=LockoutPolicy(threshold=100, seconds=60))

    def attempt():
        with pytest.raises(Unauthenticated):
            service.sign_in("sales01", "Wrong-guess-1")

    pool = eventlet.GreenPool(8)
    for _ in range(8):
        pool.spawn(attempt)
    pool.waitall()
    with db.session() as session:
        user = session.get(User, "u-sales-01")
        assert user.failed_attempts == 8 and user.version == 1


def test_a_refresh_token_used_twice_at_once_ends_the_session(service, db):
    session = service.sign_in("sales01", DEMO_PASSWORD)
    outcomes: list[str] = []

    def refresh():
        try:
            service.refresh(session["refresh_token"])
            outcomes.append("ok")
        except Unauthenticated:
            outcomes.append("refused")

    pool = eventlet.GreenPool(2)
    pool.spawn(refresh)
    pool.spawn(refresh)
    pool.waitall()
    assert sorted(outcomes) == ["ok", "refused"]
    with db.session() as s:
        ended = s.scalar(
            select(AuthSession.revoked_reason).where(AuthSession.id == session["session_id"])
        )
    assert ended == "token_reused"


def test_the_last_administrator_is_kept_on_postgres(service):
    bind(ADMIN, "req-pg")
    role = service.get_record("roles", "role-admin")
    with pytest.raises(Conflict) as info:
        service.update_record("roles", "role-admin", {"permissions": []}, role["version"])
    assert info.value.details["reason"] == "last_administrator"
    with pytest.raises(Conflict) as info:
        service.set_disabled("users", "u-admin", True)
    assert info.value.details["reason"] == "self_disable"
    assert "org:admin" in service.get_record("roles", "role-admin")["permissions"]


def test_the_structure_snapshot_pages_on_postgres(service):
    bind(Principal.for_service("customer"), "req-pg")
    page = service.structure_snapshot("regions", None, 10)
    rest = service.structure_snapshot("regions", page["next_cursor"], 100)
    paths = [r["path"] for r in page["items"] + rest["items"]]
    assert len(paths) == len(set(paths)) == 25 and rest["next_cursor"] is None
