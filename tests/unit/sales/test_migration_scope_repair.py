"""Revision 0009 repairs, once, the region and category of records that went stale before
they followed their customer: from the customer's copy, with history and a new version."""

from __future__ import annotations

import uuid

import pytest
from alembic import command
from sqlalchemy import select

from crm_common.db import SessionScope, dispose_engine, engine_for
from crm_common.migrations import alembic_config, upgrade
from sales.models import Customer, HistoryEntry, Opportunity
from tests.unit.sales.test_read_models import (
    SCOPED_MODELS,
    T0,
    add_documents,
    add_records,
    history_of,
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def uri(request, sqlite_uri):
    return sqlite_uri if request.param == "sqlite" else request.getfixturevalue("pg_uri")


def add_customer(db, customer_id, region, category, source_version=3, merged_into_id=None):
    """A customer in sales' read model (merged into ``merged_into_id`` when given)."""
    with db.session() as session:
        session.add(
            Customer(
                id=customer_id,
                code=f"C{uuid.uuid4().int % 10**10:010d}",
                name="上海华东机电设备有限公司",
                status="merged" if merged_into_id else "formal",
                region=region,
                category=category,
                merged_into_id=merged_into_id,
                source_version=source_version,
                updated_at=T0,
            )
        )


def test_upgrading_repairs_stale_scopes_once_with_history(uri):
    upgrade("sales", uri, "0008")
    db = SessionScope(engine_for(uri))
    moved, in_step, placeholder = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    add_customer(db, moved, "华东/上海", "A")  # its records still say 华南/广东, B
    add_customer(db, in_step, "华南/广东", "B")
    add_customer(db, placeholder, None, None, source_version=0)  # merged, never heard of
    stale = dict(
        zip(("opportunity", "activity", "expense"), add_records(db, moved), strict=True)
    ) | dict(zip(("quote", "order", "contract"), add_documents(db, moved), strict=True))
    with db.session() as session:  # one record went stale in its category only
        session.get(Opportunity, stale["opportunity"]).region = "华东/上海"
    current = add_records(db, in_step)
    orphan = add_records(db, placeholder)
    dispose_engine(uri)

    upgrade("sales", uri)

    db = SessionScope(engine_for(uri))
    with db.session() as session:
        for entity_type, record_id in stale.items():
            record = session.get(SCOPED_MODELS[entity_type], record_id)
            assert (record.region, record.category) == ("华东/上海", "A"), entity_type
            assert record.department_id == "d-south-gd"  # its own
        versions = {
            entity_type: session.get(SCOPED_MODELS[entity_type], record_id).version
            for entity_type, record_id in stale.items()
        }
        for record_id in (current[0], orphan[0]):
            opportunity = session.get(Opportunity, record_id)
            assert opportunity.version == 1
        assert session.get(Opportunity, current[0]).region == "华南/广东"
        assert session.get(Opportunity, orphan[0]).region == "华南/广东"
    assert versions == {
        "opportunity": 3,  # 2 by the test's own change above
        "activity": 2,
        "expense": 2,
        "quote": 2,
        "order": 2,
        "contract": 2,
    }
    for entity_type, record_id in stale.items():
        expected = {(entity_type, "customer_updated", "category", "B", "A", None)}
        if entity_type != "opportunity":
            region = ("region", "华南/广东", "华东/上海")
            expected.add((entity_type, "customer_updated", *region, None))
        assert history_of(db, record_id) == expected, entity_type
    assert history_of(db, current[0]) == history_of(db, orphan[0]) == set()

    # a downgrade leaves the repair in place, and upgrading again finds nothing stale
    command.downgrade(alembic_config("sales", uri), "0008")
    upgrade("sales", uri)
    with db.session() as session:
        assert len(session.scalars(select(HistoryEntry)).all()) == 11
    dispose_engine(uri)
