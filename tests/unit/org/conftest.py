"""Org service methods run through nameko's worker_factory on a fresh SQLite database, with
cheap Argon2 parameters and a clock the tests move by hand."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nameko.testing.services import worker_factory

from crm_common.context import Principal, bind
from crm_common.identity import Trust
from crm_common.models import utcnow
from crm_common.outbox import OutboxWriter
from demo.org import DEMO_PASSWORD, load_demo
from org.hashing import HashCost
from org.models import Base, OutboxMessage
from org.runtime import Runtime, Settings
from org.service import OrgService
from tests.fixtures import database_from, database_template, outbox_reader

CHEAP = HashCost(time_cost=1, memory_cost=8, parallelism=1)
SETTINGS = Settings(hash_cost=CHEAP)
ADMIN = Principal(user_id="u-root", permissions=("org:admin",))


class Clock:
    """Now, as the tests say it is."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture(scope="session")
def org_template(tmp_path_factory):
    return database_template(tmp_path_factory.mktemp("org"), Base.metadata)


@pytest.fixture
def db(sqlite_uri, org_template):
    return database_from(org_template, sqlite_uri)


@pytest.fixture
def clock():
    # Later than anything the fixtures write at the real time (demo records, their audit).
    return Clock(utcnow() + timedelta(hours=1))


def signing_trust() -> Trust:
    """A fresh Ed25519 key pair of the org service, the signer of access tokens."""
    key = Ed25519PrivateKey.generate()
    return Trust(public_keys={"org.test": key.public_key()}, private_keys={"org.test": key})


@pytest.fixture
def trust():
    return signing_trust()


@pytest.fixture
def runtime(clock, trust):
    return Runtime.create(SETTINGS, trust, clock)


@pytest.fixture
def service_with(db, clock):
    """A service with other settings, on the same database and clock."""

    def make(settings):
        return worker_factory(
            OrgService,
            db=db,
            outbox=OutboxWriter(OutboxMessage, "org"),
            runtime=Runtime.create(settings, signing_trust(), clock),
        )

    return make


@pytest.fixture
def service(db, runtime):
    yield worker_factory(
        OrgService, db=db, outbox=OutboxWriter(OutboxMessage, "org"), runtime=runtime
    )
    bind(None, None)


@pytest.fixture
def admin(service):
    """The service, called by an org administrator."""
    bind(ADMIN, "req-test")
    return service


@pytest.fixture
def demo(db, runtime):
    """The demo org, its users signing in with ``DEMO_PASSWORD`` (hashed cheaply)."""
    with db.session() as session:
        return load_demo(session, runtime.passwords.hash(DEMO_PASSWORD), with_events=False)


@pytest.fixture
def outbox_events(db):
    """The (type, data) of every event written to the outbox so far, oldest first."""
    return outbox_reader(db, OutboxMessage)


def act_as(user_id, *permissions, department_id=None):
    """Make the following calls come from this principal."""
    principal = Principal(user_id=user_id, department_id=department_id, permissions=permissions)
    bind(principal, "req-test")
    return principal
