"""Notify's deliveries on PostgreSQL: the migration builds exactly the models' tables, two
workers claiming at once take different rows (FOR UPDATE SKIP LOCKED), and a delivery goes
from enqueue to a real SMTP server. People's role codes are kept and replaced there too."""

from __future__ import annotations

from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from crm_common.db import SessionScope, dispose_engine, engine_for
from crm_common.migrations import upgrade
from notify.application.read_models import ReadModels
from notify.models import Base
from notify.repository import deliveries as repository
from notify.repository import rules as people
from tests.unit.notify import delivery_support as support

pytestmark = pytest.mark.postgres
DELIVERY_TABLES = {"deliveries", "delivery_attempts", "delivery_receipts", "person_roles"}
NOON = support.local("2026-03-02 12:00")


def table_of(diff):
    """The table a compare_metadata difference is about."""
    item = diff[0] if isinstance(diff, list) else diff
    for part in item[1:]:
        table = getattr(part, "table", None)
        name = getattr(table, "name", None) or getattr(part, "name", None)
        if isinstance(name, str):
            return name
        if isinstance(part, str):
            return part
    return None


@pytest.fixture
def db(pg_uri):
    upgrade("notify", pg_uri)
    yield SessionScope(engine_for(pg_uri))
    dispose_engine(pg_uri)


def test_the_delivery_tables_are_exactly_the_models(db, pg_uri):
    engine = create_engine(pg_uri)
    try:
        with engine.connect() as connection:
            diffs = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()
    assert [d for d in diffs if table_of(d) in DELIVERY_TABLES] == []


def test_two_workers_claiming_at_once_take_different_rows(db):
    for n in range(6):
        support.put(
            db,
            "sms",
            NOON,
            dedup_key=f"k{n}",
            recipient=support.Recipient(f"u-{n}", "收件人", None, f"1381234567{n}"),
        )
    later = NOON + timedelta(minutes=1)
    with db.session() as first:
        mine = repository.claim_due(first, later, 4)
        with db.session() as second:
            theirs = repository.claim_due(second, later, 4)
            assert len(mine) == 4 and len(theirs) == 2
            assert not {row.id for row in mine} & {row.id for row in theirs}


def test_an_email_goes_from_enqueue_to_the_smtp_server(db):
    with support.mail_catcher() as catcher:
        delivery_id = support.put(db, "email", NOON)
        worker = support.worker(db, mail_port=catcher.smtp_port)
        assert worker.run_once(NOON).sent == 1
        assert catcher.messages[0].message["Subject"] == support.OVERDUE.subject
    stored = support.row(db, delivery_id)
    assert stored.status == "sent" and stored.sent_at is not None
    assert worker.measure_lag(NOON) == {}


def test_role_codes_are_replaced_with_each_newer_person(db):
    person = {"id": "p-1", "user_id": "u-1", "code": "P1", "name": "张伟"}
    for version, codes in ((1, ["sales_rep", "marketing"]), (2, ["sales_rep"]), (3, [])):
        with db.session() as session:
            ReadModels(session).keep_person({**person, "version": version, "role_codes": codes})
        with db.session() as session:
            holders = {
                code: [row.user_id for row in people.people_with_role(session, code)]
                for code in ("sales_rep", "marketing")
            }
        assert holders == {code: ["u-1"] if code in codes else [] for code in holders}
