"""Customer service methods run through nameko's worker_factory on a fresh SQLite database."""

from __future__ import annotations

import pytest
from nameko.testing.services import worker_factory

from crm_common.context import Principal, bind
from crm_common.outbox import OutboxWriter
from customer.models import Base, OutboxMessage
from customer.service import CustomerService
from tests.fixtures import database_from, database_template, outbox_reader

from .org_units import seed_org_units

CUSTOMER_PERMISSIONS = (
    "customer:read",
    "customer:write",
    "customer:import",
    "customer:export",
    "customer:merge",
)
SALES = Principal(
    user_id="u-sales-01",
    department_id="d-east",
    roles=("sales",),
    permissions=CUSTOMER_PERMISSIONS,
    grants=({},),
)


@pytest.fixture(scope="session")
def customer_template(tmp_path_factory):
    return database_template(tmp_path_factory.mktemp("customer"), Base.metadata, seed_org_units)


@pytest.fixture
def db(sqlite_uri, customer_template):
    """A fresh database whose copy of the org structure holds the demo org chart and regions
    (and the few units the tests make up)."""
    return database_from(customer_template, sqlite_uri)


@pytest.fixture
def principal():
    bind(SALES, "req-test")
    yield SALES
    bind(None, None)


@pytest.fixture
def act_as():
    """Make the following service calls as ``principal`` (the test's principal is restored
    afterwards by the ``principal`` fixture's teardown)."""

    def act(principal):
        bind(principal, "req-test")
        return principal

    return act


@pytest.fixture
def service(db, principal):
    return worker_factory(CustomerService, db=db, outbox=OutboxWriter(OutboxMessage, "customer"))


@pytest.fixture
def outbox_events(db):
    """The (type, data) of every event written to the outbox so far, oldest first."""
    return outbox_reader(db, OutboxMessage)


@pytest.fixture
def make_customer(service):
    def make(name="上海华东机电设备有限公司", **fields):
        return service.create_customer({"name": name, **fields}, allow_duplicate=True)

    return make
