"""Catching up from snapshots, with the snapshot RPCs answered from lists in memory (the real
services answer them in tests/integration/test_sales_read_models.py)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from crm_common.db import SessionScope, engine_for
from sales.application.catch_up import SNAPSHOTS, CatchUp
from sales.models import Base, Contact, Customer, Department, Person, Region
from sales.models import CatchUp as CatchUpRow

from .test_read_models import contact, customer, department, person


@pytest.fixture
def db(sqlite_uri):
    engine = engine_for(sqlite_uri)
    Base.metadata.create_all(engine)
    return SessionScope(engine)


class Pages:
    """A service's snapshot RPC over lists: ``kind`` → items, ``size`` items a page."""

    def __init__(self, items_by_kind, size=2, fail_after=None):
        self.items_by_kind = items_by_kind
        self.size = size
        self.fail_after = fail_after
        self.calls = 0

    def __call__(self, kind, cursor, limit):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise TimeoutError("the service stopped answering")
        items = self.items_by_kind[kind]
        start = int(cursor or 0)
        end = start + min(self.size, limit)
        return {"items": items[start:end], "next_cursor": str(end) if end < len(items) else None}


class Org:
    def __init__(self, pages):
        self.structure_snapshot = pages


class CustomerService:
    def __init__(self, pages):
        self.customer_snapshot = pages


def org_items():
    return {
        "departments": [
            department("d-hq", 1, manager_id="p-1"),
            department("d-east", 2, "d-hq", manager_id="p-2"),
            department("d-east-sh", 1, "d-east"),
        ],
        "regions": [
            {"id": "rg-1", "code": "31", "name": "华东", "path": "华东", "version": 1},
            {"id": "rg-2", "code": "3101", "name": "上海", "path": "华东/上海", "version": 1},
        ],
        "people": [person("p-1", 1), person("p-2", 1, user_id="u-2"), person("p-3", 2)],
    }


def count(db, model):
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_an_empty_database_catches_up_from_every_snapshot_once(db):
    customers = [customer(uuid.uuid4(), 1, code=f"C20260000{n:02d}") for n in range(5)]
    contacts = [contact(uuid.uuid4(), customers[0]["id"], 1)]
    catch_up = CatchUp(db)
    assert catch_up.pending_services() == ["org", "customer"]

    assert catch_up.read("org", Org(Pages(org_items()))) == {
        "org.departments": 3,
        "org.regions": 2,
        "org.people": 3,
    }
    assert catch_up.pending_services() == ["customer"]
    customer_pages = Pages({"customers": customers, "contacts": contacts})
    catch_up.read("customer", CustomerService(customer_pages))

    assert catch_up.pending() == []
    assert [count(db, model) for model in (Department, Region, Person, Customer, Contact)] == [
        3,
        2,
        3,
        5,
        1,
    ]
    with db.session() as session:
        rows = {row.source: row.rows for row in session.scalars(select(CatchUpRow))}
    assert rows == {
        snapshot.source: n for snapshot, n in zip(SNAPSHOTS, [3, 2, 3, 5, 1], strict=True)
    }
    assert customer_pages.calls == 3 + 1  # five customers two a page, one contact


def test_a_snapshot_cut_off_half_way_is_read_again_from_its_start(db):
    catch_up = CatchUp(db)
    with pytest.raises(TimeoutError):  # after two pages of departments, one of regions and
        catch_up.read("org", Org(Pages(org_items(), fail_after=4)))  # one of people
    assert [snapshot.source for snapshot in catch_up.pending()] == [
        "org.people",
        "customer.customers",
        "customer.contacts",
    ]
    assert count(db, Person) == 2  # the page read before the cut stays: it is as good as any

    catch_up.read("org", Org(Pages(org_items())))
    assert [snapshot.source for snapshot in catch_up.pending()] == [
        "customer.customers",
        "customer.contacts",
    ]
    assert count(db, Person) == 3


def test_an_item_sales_cannot_read_is_left_out_and_the_rest_caught_up(db, caplog):
    broken = {"id": str(uuid.uuid4()), "name": "无编号", "version": 1}
    good = customer(uuid.uuid4(), 1)
    CatchUp(db).read(
        "customer", CustomerService(Pages({"customers": [broken, good], "contacts": []}))
    )

    assert count(db, Customer) == 1
    assert "left out of the customer.customers snapshot" in caplog.text
    assert "customer.customers" not in {snapshot.source for snapshot in CatchUp(db).pending()}
