"""The audit's case: writes committed while their client got an error, then retried.

With the customer database locked, a customer, a contact and a care record are created through
the gateway; each answers 504 and commits once the lock is gone. Retried with the same
``Idempotency-Key``, each gets its stored answer: no duplicate contact or care record, no 409
for the customer.
"""

from __future__ import annotations

import threading
import uuid

import eventlet
import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from customer.models import CareRecord, Contact, Customer
from devstack.stack import Suite
from tests.fixtures import PG_ADMIN_URI
from tests.support.polling import eventually

pytestmark = pytest.mark.postgres

LOCKED = ("customers", "contacts", "care_records")


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    """The stack with the customer database on a PostgreSQL database of its own."""

    name = f"crm_idem_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URI, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    uri = make_url(PG_ADMIN_URI).set(database=name).render_as_string(hide_password=False)
    try:
        with Suite(tmp_path_factory.mktemp("idempotency"), db_uri=uri) as running:
            yield running
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def rows(engine, model, where) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(model).where(where)).scalar()


def test_writes_committed_after_their_504_are_not_repeated_by_a_retry(suite):
    engine = create_engine(suite.db_uri)
    client = suite.client("sales01")

    def post(path, body, key):
        return client.post(suite.url(path), json=body, headers={"Idempotency-Key": key}, timeout=30)

    customer = post("/api/customers", {"name": "徐州重型机械配件有限公司"}, "setup").json()
    writes = {
        "customer": ("/api/customers", {"name": "连云港港口机械有限公司"}, str(uuid.uuid4())),
        "contact": (
            f"/api/customers/{customer['id']}/contacts",
            {"name": "赵建国", "mobile": "13912345678"},
            str(uuid.uuid4()),
        ),
        "care": (
            f"/api/customers/{customer['id']}/care",
            {"kind": "visit", "date": "2026-12-01", "note": "上门拜访"},
            str(uuid.uuid4()),
        ),
    }

    release = threading.Event()
    locked = threading.Event()

    def hold_lock():
        with engine.begin() as connection:
            for table in LOCKED:
                connection.execute(text(f"LOCK TABLE {table} IN EXCLUSIVE MODE"))
            locked.set()
            release.wait(60)

    holder = threading.Thread(target=hold_lock, daemon=True)
    holder.start()
    assert locked.wait(10)
    try:
        pending = {name: eventlet.spawn(post, *write) for name, write in writes.items()}
        first = {name: call.wait() for name, call in pending.items()}
    finally:
        release.set()
        holder.join(10)
    assert {name: answer.status_code for name, answer in first.items()} == {
        "customer": 504,
        "contact": 504,
        "care": 504,
    }

    def committed():
        return (
            rows(engine, Customer, Customer.name == "连云港港口机械有限公司") == 1
            and rows(engine, Contact, Contact.name == "赵建国") == 1
            and rows(engine, CareRecord, CareRecord.note == "上门拜访") == 1
        )

    eventually(committed, timeout=15, what="the three late writes committed")

    retried = {name: post(*write) for name, write in writes.items()}
    for name, answer in retried.items():
        assert answer.status_code == 201, (name, answer.text)
        assert answer.headers["Idempotent-Replayed"] == "true", name
    assert rows(engine, Customer, Customer.name == "连云港港口机械有限公司") == 1
    assert rows(engine, Contact, Contact.name == "赵建国") == 1
    assert rows(engine, CareRecord, CareRecord.note == "上门拜访") == 1
    engine.dispose()
