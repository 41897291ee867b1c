"""The read path: a customer, a page and a count answered from one statement of rows each are
exactly what the schema makes of the customer objects; counts and summaries added up from
``customer_counts`` agree with the customers themselves through every kind of write."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest
from alembic import command
from sqlalchemy import create_engine, func, insert, select

from crm_common.migrations import alembic_config, upgrade
from customer.application.base import customer_schema
from customer.models import (
    SQLITE_CONTACT_TRIGGERS,
    SQLITE_COUNT_TRIGGERS,
    Contact,
    Customer,
    CustomerCount,
)
from customer.repository import compact_counts

COMBINATION = ("status", "kind", "category", "region", "owner_id", "department_id")


@pytest.fixture
def book(service, make_customer):
    """Customers with and without tags, values, contacts, a merge and a transfer."""
    plain = make_customer("北京简单机电有限公司", region=None, category=None)
    full = make_customer(
        "上海华东机电设备有限公司",
        short_name="华东机电",
        phone="021-5888 1234",
        credit_code="91350100M000100Y43",
        region="华东/上海",
        category="VIP",
        industry="机电设备",
        address="上海市浦东新区",
        credit_level="AA",
        remark="重要",
        tags=["重点客户", "年采购>100万", "华东"],
    )
    service.create_contact(full["id"], {"name": "王建国", "is_primary": True})
    service.create_contact(full["id"], {"name": "李娜"})
    survivor = make_customer("江苏轴承有限公司", region="华东/江苏", tags=["轴承"])
    merged = make_customer("江苏轴承（重复）有限公司", region="华东/江苏")
    service.merge_customers(survivor["id"], merged["id"])
    moved = make_customer("广州五金工具有限公司", region="华南/广东", category="B")
    service.update_customer(
        moved["id"], {"status": "formal", "category": "A", "tags": ["五金"]}, moved["version"]
    )
    return [plain, full, survivor, merged, moved]


def schema_dump(db, customer_id):
    """The customer as the schema dumps the mapped object (the answer's contract)."""
    with db.session() as session:
        return customer_schema.dump(session.get(Customer, uuid.UUID(customer_id)))


def test_a_customer_is_answered_as_the_schema_dumps_it_with_its_contacts_counted(db, service, book):
    for created in book:
        answered = service.get_customer(created["id"])
        expected = schema_dump(db, created["id"])
        with db.session() as session:
            contacts = session.scalar(
                select(func.count()).where(Contact.customer_id == uuid.UUID(created["id"]))
            )
        assert list(answered.items()) == [*expected.items(), ("contacts_count", contacts)]
    assert service.get_customer(book[1]["id"])["contacts_count"] == 2


def test_a_page_is_answered_as_the_schema_dumps_its_customers(db, service, book):
    for query in ({}, {"q": "机电"}, {"status": "merged,formal,potential", "sort": "name"}):
        page = service.list_customers({**query, "limit": 2})
        seen = []
        while True:
            for item in page["items"]:
                assert list(item.items()) == list(schema_dump(db, item["id"]).items())
            seen += page["items"]
            if not page["next_cursor"]:
                break
            page = service.list_customers({**query, "limit": 2, "cursor": page["next_cursor"]})
        assert seen


def test_counts_and_summaries_agree_with_the_customers_through_every_write(db, service, book):
    check_counts(db, service)
    with db.session() as session:
        folded = compact_counts(session)
    assert folded > 0
    with db.session() as session:
        rows = session.execute(select(*(CustomerCount.__table__.c[c] for c in COMBINATION)))
        combinations = [tuple(row) for row in rows]
    assert len(combinations) == len(set(combinations))
    check_counts(db, service)
    with db.session() as session:
        assert compact_counts(session) == 0
        session.execute(Customer.__table__.delete().where(Customer.id == uuid.UUID(book[0]["id"])))
    check_counts(db, service)


def check_counts(db, service):
    with db.session() as session:
        customers = session.execute(select(Customer)).scalars().all()
        counted = session.scalar(select(func.sum(CustomerCount.n)))
    assert counted == len(customers)
    listed = [c for c in customers if c.status != "merged"]
    merged = len(customers) - len(listed)
    assert service.count_customers({}) == {"count": len(listed)}
    assert service.count_customers({"status": "merged"}) == {"count": merged}
    in_east = sum(1 for c in listed if (c.region or "").startswith("华东"))
    assert service.count_customers({"region": "华东"}) == {"count": in_east}
    assert service.summarize_customers({}) == {
        "total": len(listed),
        "by_status": dict(sorted(Counter(c.status for c in listed).items())),
        "by_category": dict(sorted(Counter(c.category or "none" for c in listed).items())),
        "by_department": dict(sorted(Counter(c.department_id or "none" for c in listed).items())),
    }


def test_the_migrations_fill_counts_and_contacts_and_create_the_models_triggers(tmp_path):
    uri = f"sqlite:///{tmp_path / 'migrated.db'}"
    upgrade("customer", uri, "0003")
    engine = create_engine(uri)
    ids = [uuid.uuid4() for _ in range(7)]
    try:
        with engine.begin() as connection:
            connection.execute(
                insert(Customer.__table__),
                [
                    {
                        "id": ids[n],
                        "code": f"C2001{n:06d}",
                        "name": f"旧客户{n}",
                        "name_key": f"旧客户{n}",
                        "kind": "enterprise",
                        "status": "formal" if n % 3 else "potential",
                        "category": None if n % 2 else "A",
                        "version": 1,
                    }
                    for n in range(7)
                ],
            )
            connection.execute(
                insert(Contact.__table__),
                [
                    {"id": uuid.uuid4(), "customer_id": ids[0], "name": name, "mobile": mobile}
                    for name, mobile in (("王建国", "13912345678"), ("李娜", None))
                ],
            )
        upgrade("customer", uri)
        with engine.connect() as connection:
            counts = connection.execute(
                select(CustomerCount.status, CustomerCount.category, CustomerCount.n)
            ).all()
            assert sorted(counts) == [
                ("formal", "", 2),
                ("formal", "A", 2),
                ("potential", "", 1),
                ("potential", "A", 2),
            ]
            contacts = connection.execute(
                select(Customer.contact_names, Customer.contact_mobiles).where(
                    Customer.id == ids[0]
                )
            ).one()
            assert sorted(contacts.contact_names.split("\x1f")) == ["李娜", "王建国"]
            assert contacts.contact_mobiles == "13912345678"
            triggers = connection.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name"
            ).scalars()
            assert [t.replace("IF NOT EXISTS ", "") for t in triggers] == sorted(
                t.replace("IF NOT EXISTS ", "")
                for t in (*SQLITE_COUNT_TRIGGERS, *SQLITE_CONTACT_TRIGGERS)
            )
        command.downgrade(alembic_config("customer", uri), "0003")
        upgrade("customer", uri)
    finally:
        engine.dispose()


WILD = "北京ABC机电50%_off有限公司"
TAME = "北京ABC机电50X有限公司"


SEARCHES = [
    ("abc", [WILD, TAME]),  # letters fold to either case
    ("c机电50x", [TAME]),
    ("机电50%_", [WILD]),  # no case: a plain substring search, wildcards literal
    ("0%_O", [WILD]),  # with letters: LIKE, its wildcards escaped
    ("0%x", []),
    ("_OFF", [WILD]),
    ("机电5_", []),
]


@pytest.mark.parametrize(("query", "found"), SEARCHES)
def test_a_search_folds_letter_case_and_takes_wildcards_literally(
    service, make_customer, query, found
):
    make_customer(WILD)
    make_customer(TAME)
    names = sorted(item["name"] for item in service.list_customers({"q": query})["items"])
    assert names == found
    assert service.count_customers({"q": query}) == {"count": len(found)}


def test_a_search_finds_customers_by_their_contacts_as_they_are_now(service, make_customer):
    first = make_customer("上海联系人机电有限公司")
    second = make_customer("江苏联系人轴承有限公司")
    contact = service.create_contact(first["id"], {"name": "欧阳建华", "mobile": "13922334455"})

    def found(query):
        return sorted(item["name"] for item in service.list_customers({"q": query})["items"])

    assert found("欧阳") == [first["name"]]
    assert found("2233 4455") == [first["name"]]
    service.update_contact(contact["id"], {"name": "欧阳明"}, contact["version"])
    assert found("建华") == []
    assert found("欧阳明") == [first["name"]]
    service.merge_customers(second["id"], first["id"])
    assert found("欧阳明") == [second["name"]]
    assert service.count_customers({"q": "欧阳明"}) == {"count": 1}
