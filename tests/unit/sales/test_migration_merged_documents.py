"""Revision 0010 moves, once, the sales orders and contracts that a merge left on the merged
customer to the survivor: with its scope, history and a new version."""

from __future__ import annotations

import uuid

import pytest
from alembic import command
from sqlalchemy import func, select

from crm_common.db import SessionScope, dispose_engine, engine_for
from crm_common.migrations import alembic_config, upgrade
from sales.models import HistoryEntry
from sales.models.orders import Contract, SalesOrder
from tests.unit.sales.test_migration_scope_repair import add_customer
from tests.unit.sales.test_read_models import add_documents, history_of


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def uri(request, sqlite_uri):
    return sqlite_uri if request.param == "sqlite" else request.getfixturevalue("pg_uri")


def test_upgrading_moves_documents_left_on_merged_customers_once(uri):
    upgrade("sales", uri, "0009")
    db = SessionScope(engine_for(uri))
    survivor, merged_since, merged, other = (uuid.uuid4() for _ in range(4))
    add_customer(db, survivor, "华东/上海", "A")
    add_customer(db, merged_since, "华东/江苏", "B", merged_into_id=survivor)
    add_customer(db, merged, "华南/广东", "B", merged_into_id=merged_since)
    add_customer(db, other, "华南/广东", "B")
    _, order, contract = add_documents(db, merged)
    _, other_order, other_contract = add_documents(db, other)
    dispose_engine(uri)

    upgrade("sales", uri)

    db = SessionScope(engine_for(uri))
    with db.session() as session:
        for model, record_id in ((SalesOrder, order), (Contract, contract)):
            record = session.get(model, record_id)
            assert (record.customer_id, record.region, record.category) == (
                survivor,
                "华东/上海",
                "A",
            )
            assert record.version == 2 and record.department_id == "d-south-gd"
        for model, record_id in ((SalesOrder, other_order), (Contract, other_contract)):
            record = session.get(model, record_id)
            assert (record.customer_id, record.version) == (other, 1)
    for entity_type, record_id in (("order", order), ("contract", contract)):
        assert history_of(db, record_id) == {
            (entity_type, "customer_merged", "customer_id", str(merged), str(survivor), None),
            (entity_type, "customer_merged", "region", "华南/广东", "华东/上海", None),
            (entity_type, "customer_merged", "category", "B", "A", None),
        }
    assert history_of(db, other_order) == history_of(db, other_contract) == set()

    # a downgrade leaves the documents where they went, and upgrading again moves nothing
    command.downgrade(alembic_config("sales", uri), "0009")
    upgrade("sales", uri)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(HistoryEntry)) == 6
    dispose_engine(uri)
