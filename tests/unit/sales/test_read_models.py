"""Sales' copies of customers, contacts, people, departments and regions: newest version wins
whatever the order of arrival, a merge moves the merged customer's records with history, and
the department chain expense approval walks."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from crm_common.db import SessionScope, engine_for
from sales.application.read_models import ReadModels, UnusableRecord
from sales.models import (
    Activity,
    Base,
    Contact,
    Customer,
    Expense,
    ExpenseCategory,
    HistoryEntry,
    Opportunity,
    Person,
    Region,
    SalesProcess,
)
from sales.models.orders import Contract, ContractMilestone, SalesOrder, SalesOrderLine
from sales.models.quotes import Quote
from sales.repository import read_models as repository
from sales.repository.read_models import ChainLink

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request, sqlite_uri):
    """An empty sales database on SQLite and on PostgreSQL (the upserts differ)."""
    uri = sqlite_uri if request.param == "sqlite" else request.getfixturevalue("pg_uri")
    engine = engine_for(uri)
    Base.metadata.create_all(engine)
    return SessionScope(engine)


def apply(db, method, *args):
    """Run one ``ReadModels`` method in a transaction of its own, as a handler does."""
    with db.session() as session:
        return getattr(ReadModels(session, now=T0), method)(*args)


def customer(customer_id, version, **fields):
    return {
        "id": str(customer_id),
        "code": "C2026000001",
        "name": "上海华东机电设备有限公司",
        "short_name": "华东机电",
        "kind": "enterprise",  # a field sales does not keep
        "status": "formal",
        "category": "A",
        "region": "华东/上海",
        "owner_id": "u-sales-01",
        "department_id": "d-east-sh",
        "merged_into_id": None,
        "tags": ["重点"],
        "version": version,
        "updated_at": (T0 + timedelta(minutes=version)).isoformat(),
        **fields,
    }


def contact(contact_id, customer_id, version, **fields):
    return {
        "id": str(contact_id),
        "customer_id": str(customer_id),
        "name": "王经理",
        "title": "采购经理",
        "mobile": "13812345678",
        "phone": None,
        "email": "wang@example.com",
        "version": version,
        "updated_at": (T0 + timedelta(minutes=version)).isoformat(),
        **fields,
    }


def person(person_id, version, user_id=None, **fields):
    return {
        "id": person_id,
        "code": f"P{version:04d}",
        "name": "张伟",
        "department_id": "d-east-sh",
        "position": "销售代表",
        "mobile": "13901880103",
        "email": None,
        "is_salesperson": True,
        "status": "active",
        "disabled": False,
        "user_id": user_id,
        "version": version,
        "updated_at": (T0 + timedelta(minutes=version)).isoformat(),
        **fields,
    }


def department(department_id, version, parent_id=None, manager_id=None, **fields):
    return {
        "id": department_id,
        "code": department_id,
        "name": department_id,
        "type": "sales",
        "parent_id": parent_id,
        "manager_id": manager_id,
        "path": department_id,
        "disabled": False,
        "version": version,
        **fields,
    }


def stored(db, model, key):
    with db.session() as session:
        return session.get(model, key)


# -- customers and contacts ----------------------------------------------------------------------
def test_a_customer_is_kept_and_only_a_newer_version_replaces_it(db):
    customer_id = uuid.uuid4()
    assert apply(db, "keep_customer", customer(customer_id, 2, name="二版")) is True
    assert apply(db, "keep_customer", customer(customer_id, 1, name="一版")) is False  # late
    assert apply(db, "keep_customer", customer(customer_id, 2, name="二版重发")) is False
    assert stored(db, Customer, customer_id).name == "二版"

    assert apply(db, "keep_customer", customer(customer_id, 3, status="dormant")) is True
    row = stored(db, Customer, customer_id)
    assert (row.status, row.source_version, row.region, row.short_name) == (
        "dormant",
        3,
        "华东/上海",
        "华东机电",
    )


@pytest.mark.parametrize(
    "order", [(1, 2, 3), (3, 2, 1), (2, 3, 1), (3, 1, 2)], ids=lambda o: "-".join(map(str, o))
)
def test_any_order_of_arrival_settles_on_the_newest(db, order):
    customer_id = uuid.uuid4()
    for version in order:
        apply(db, "keep_customer", customer(customer_id, version, owner_id=f"u-{version}"))
    row = stored(db, Customer, customer_id)
    assert (row.owner_id, row.source_version) == ("u-3", 3)


@pytest.mark.parametrize(
    "record, missing",
    [
        ({"version": 4, "name": "无编号"}, {"id", "code", "status"}),
        (
            {"id": str(uuid.uuid4()), "code": "C1", "name": "无版本", "status": "formal"},
            {"version"},
        ),
    ],
)
def test_a_customer_missing_required_fields_cannot_be_applied(db, record, missing):
    with pytest.raises(UnusableRecord) as info:
        apply(db, "keep_customer", record)
    assert all(field in str(info.value) for field in missing)
    with pytest.raises(UnusableRecord, match="not an object"):
        apply(db, "keep_customer", None)


def test_an_owner_change_applies_only_over_an_older_copy(db):
    customer_id = uuid.uuid4()
    apply(db, "keep_customer", customer(customer_id, 1))  # changed at T0 + 1 min
    change = {
        "customer_id": str(customer_id),
        "code": "C2026000001",
        "name": "上海华东机电设备有限公司",
        "old_owner_id": "u-sales-01",
        "new_owner_id": "u-sales-02",
        "old_department_id": "d-east-sh",
        "new_department_id": "d-east-js",
    }
    assert apply(db, "move_owner", change, T0) is False  # the copy is newer
    assert apply(db, "move_owner", change, T0 + timedelta(minutes=2)) is True
    row = stored(db, Customer, customer_id)
    assert (row.owner_id, row.department_id) == ("u-sales-02", "d-east-js")

    apply(db, "keep_customer", customer(customer_id, 2, owner_id="u-sales-02"))  # same change
    assert stored(db, Customer, customer_id).source_version == 2
    unknown = {**change, "customer_id": str(uuid.uuid4())}
    assert apply(db, "move_owner", unknown, T0 + timedelta(minutes=5)) is False


def test_contacts_are_kept_newest_first_and_follow_a_merged_customer(db):
    survivor, merged = uuid.uuid4(), uuid.uuid4()
    apply(db, "keep_customer", customer(survivor, 1))
    apply(db, "merge", merge_event(survivor, merged), "u-admin")
    contact_id = uuid.uuid4()

    assert apply(db, "keep_contact", contact(contact_id, merged, 2, mobile="13900000002"))
    assert not apply(db, "keep_contact", contact(contact_id, merged, 1, mobile="13900000001"))
    row = stored(db, Contact, contact_id)
    assert (row.customer_id, row.mobile, row.title) == (survivor, "13900000002", "采购经理")


# -- merges --------------------------------------------------------------------------------------
def merge_event(survivor_id, merged_id, version=5, **survivor_fields):
    return {
        "survivor_id": str(survivor_id),
        "survivor_code": "C2026000001",
        "merged_id": str(merged_id),
        "merged_code": "C2026000002",
        "survivor": customer(survivor_id, version, **survivor_fields),
    }


SCOPED_MODELS = {
    "opportunity": Opportunity,
    "activity": Activity,
    "expense": Expense,
    "quote": Quote,
    "order": SalesOrder,
    "contract": Contract,
}
"""The records scoped by their customer, by history entity type."""


def add_records(db, customer_id, region="华南/广东", category="B"):
    """An opportunity, an activity and an expense of ``customer_id``; their ids."""
    with db.session() as session:
        process = session.scalar(select(SalesProcess)) or SalesProcess(code="project", name="项目")
        if session.get(ExpenseCategory, "travel") is None:
            session.add(ExpenseCategory(code="travel", name="差旅"))
        session.add(process)
        session.flush()
        scope = {"region": region, "category": category, "department_id": "d-south-gd"}
        opportunity = Opportunity(
            code=f"OPP-2026-{uuid.uuid4().int % 10**6:06d}",
            name="产线改造",
            customer_id=customer_id,
            owner_id="u-sales-05",
            process_id=process.id,
            stage_code="initial",
            **scope,
        )
        session.add(opportunity)
        session.flush()
        activity = Activity(
            type="visit",
            subject="拜访",
            customer_id=customer_id,
            opportunity_id=opportunity.id,
            owner_id="u-sales-05",
            **scope,
        )
        session.add(activity)
        session.flush()
        expense = Expense(
            code=f"EXP-2026-{uuid.uuid4().int % 10**6:06d}",
            submitter_id="u-sales-05",
            expense_category="travel",
            amount=Decimal("320.50"),
            spent_on=date(2026, 3, 2),
            customer_id=customer_id,
            opportunity_id=opportunity.id,
            activity_id=activity.id,
            **scope,
        )
        session.add(expense)
        session.flush()
        return opportunity.id, activity.id, expense.id


def history_of(db, entity_id):
    with db.session() as session:
        rows = session.scalars(
            select(HistoryEntry).where(HistoryEntry.entity_id == str(entity_id))
        ).all()
        return {
            (row.entity_type, row.change, row.field, row.old, row.new, row.actor_id) for row in rows
        }


def test_a_merge_moves_the_merged_customers_records_to_the_survivor_with_history(db):
    survivor, merged, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    apply(db, "keep_customer", customer(survivor, 4))
    apply(db, "keep_customer", customer(merged, 2, region="华南/广东", category="B"))
    records = dict(
        zip(("opportunity", "activity", "expense"), add_records(db, merged), strict=True)
    ) | dict(zip(("quote", "order", "contract"), add_documents(db, merged), strict=True))
    untouched = add_records(db, other)
    untouched_documents = add_documents(db, other)
    contact_id = uuid.uuid4()
    apply(db, "keep_contact", contact(contact_id, merged, 1))

    moved = apply(db, "merge", merge_event(survivor, merged, status="formal"), "u-admin")

    assert moved == 6
    with db.session() as session:
        for entity_type, record_id in records.items():
            record = session.get(SCOPED_MODELS[entity_type], record_id)
            assert (record.customer_id, record.region, record.category) == (
                survivor,
                "华东/上海",
                "A",
            ), entity_type
            assert record.department_id == "d-south-gd"  # its own, not the survivor's
            assert record.version == 2, entity_type  # a client holding version 1 gets a conflict
        assert session.get(Opportunity, untouched[0]).customer_id == other
        documents = zip((Quote, SalesOrder, Contract), untouched_documents, strict=True)
        for model, record_id in documents:
            assert session.get(model, record_id).customer_id == other
        assert session.get(Contact, contact_id).customer_id == survivor
        merged_row = session.get(Customer, merged)
        assert (merged_row.status, merged_row.merged_into_id) == ("merged", survivor)
        assert session.get(Customer, survivor).source_version == 5
    for entity_type, record_id in records.items():
        assert history_of(db, record_id) == {
            (entity_type, "customer_merged", "customer_id", str(merged), str(survivor), "u-admin"),
            (entity_type, "customer_merged", "region", "华南/广东", "华东/上海", "u-admin"),
            (entity_type, "customer_merged", "category", "B", "A", "u-admin"),
        }


def test_a_merge_moves_a_contract_with_its_milestones_and_an_order_with_its_lines(db):
    survivor, merged = uuid.uuid4(), uuid.uuid4()
    apply(db, "keep_customer", customer(survivor, 4))
    apply(db, "keep_customer", customer(merged, 2, region="华南/广东", category="B"))
    _, order_id, contract_id = add_documents(db, merged)
    with db.session() as session:
        session.add_all(
            [
                SalesOrderLine(
                    order_id=order_id,
                    line_no=1,
                    item_code="ITEM-001",
                    item_name="伺服电机",
                    unit="台",
                    quantity=Decimal("2"),
                    unit_price=Decimal("500.00"),
                    amount=Decimal("1000.00"),
                    tax_rate=Decimal("0.13"),
                    discount=Decimal("0"),
                    net=Decimal("1000.00"),
                    tax=Decimal("130.00"),
                    gross=Decimal("1130.00"),
                ),
                ContractMilestone(
                    contract_id=contract_id,
                    seq=1,
                    name="预付款",
                    due_date=date(2026, 4, 1),
                    amount=Decimal("300.00"),
                ),
            ]
        )

    # the merged customer's survivor was itself merged since: its records go to the last one
    last = uuid.uuid4()
    apply(db, "merge", merge_event(last, survivor, region="西南/四川", category="C"), "u-admin")
    apply(db, "merge", merge_event(survivor, merged), "u-admin")

    with db.session() as session:
        order = session.get(SalesOrder, order_id)
        contract = session.get(Contract, contract_id)
        for record in (order, contract):
            assert (record.customer_id, record.region, record.category) == (
                last,
                "西南/四川",
                "C",
            )
        lines = session.scalars(select(SalesOrderLine).where(SalesOrderLine.order_id == order_id))
        assert [line.item_code for line in lines] == ["ITEM-001"]
        milestones = session.scalars(
            select(ContractMilestone).where(ContractMilestone.contract_id == contract_id)
        )
        assert [milestone.name for milestone in milestones] == ["预付款"]
    assert ("contract", "customer_merged", "customer_id", str(merged), str(last), "u-admin") in (
        history_of(db, contract_id)
    )


def test_a_merged_customer_stays_merged_whatever_arrives_late(db):
    survivor, merged = uuid.uuid4(), uuid.uuid4()
    apply(db, "merge", merge_event(survivor, merged), None)  # sales never heard of it before
    placeholder = stored(db, Customer, merged)
    assert (placeholder.status, placeholder.code, placeholder.merged_into_id) == (
        "merged",
        "C2026000002",
        survivor,
    )

    apply(db, "keep_customer", customer(merged, 3, name="晚到的", status="formal"))
    row = stored(db, Customer, merged)
    assert (row.name, row.status, row.merged_into_id) == ("晚到的", "merged", survivor)


def test_merges_in_a_chain_end_at_the_last_survivor_in_any_order(db):
    first, second, last = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    records = add_records(db, first)
    apply(db, "merge", merge_event(last, second), "u-admin")  # the later merge arrives first
    apply(db, "merge", merge_event(second, first), "u-admin")

    assert stored(db, Opportunity, records[0]).customer_id == last
    with db.session() as session:
        assert repository.survivor_of(session, first) == last
    earlier = uuid.uuid4()
    apply(db, "merge", merge_event(first, earlier), "u-admin")
    assert stored(db, Customer, earlier).merged_into_id == first
    with db.session() as session:
        assert repository.survivor_of(session, earlier) == last


def test_a_merge_into_itself_cannot_be_applied(db):
    same = uuid.uuid4()
    with pytest.raises(UnusableRecord, match="into itself"):
        apply(db, "merge", merge_event(same, same), None)


# -- org -----------------------------------------------------------------------------------------
def test_people_are_kept_newest_first_and_a_user_belongs_to_the_newest_claim(db):
    apply(db, "keep_person", person("p-old", 3, user_id="u-7"))
    apply(db, "keep_person", person("p-new", 5, user_id="u-7"))  # the user moved here
    apply(db, "keep_person", person("p-old", 2, user_id=None))  # late and older: ignored
    with db.session() as session:
        assert repository.person_of_user(session, "u-7").id == "p-new"
        assert repository.users_of_people(session, ["p-old", "p-new", "p-none"]) == {"p-new": "u-7"}
        assert repository.person_of_user(session, "u-unknown") is None

    apply(db, "keep_person", person("p-old", 6, user_id=None))  # org took it away
    row = stored(db, Person, "p-old")
    assert (row.user_id, row.source_version, row.department_id) == (None, 6, "d-east-sh")


def test_departments_and_regions_keep_the_newest_version(db):
    apply(db, "keep_department", department("d-east", 2, manager_id="p-b"))
    apply(db, "keep_department", department("d-east", 1, manager_id="p-a"))
    apply(
        db,
        "keep_region",
        {
            "id": "rg-1",
            "code": "31",
            "name": "上海",
            "parent_id": "rg-0",
            "path": "华东/上海",
            "disabled": False,
            "version": 4,
        },
    )
    apply(
        db,
        "keep_region",
        {
            "id": "rg-1",
            "code": "31",
            "name": "沪",
            "parent_id": "rg-0",
            "path": "华东/沪",
            "disabled": True,
            "version": 3,
        },
    )
    with db.session() as session:
        assert repository.department_chain(session, "d-east")[0].manager_person_id == "p-b"
        region = session.get(Region, "rg-1")
        assert (region.path, region.disabled) == ("华东/上海", False)


def test_the_department_chain_walks_to_the_top_with_each_manager(db):
    apply(db, "keep_department", department("d-hq", 1, manager_id="p-ceo"))
    apply(db, "keep_department", department("d-east", 1, "d-hq", manager_id="p-branch"))
    apply(db, "keep_department", department("d-east-sh", 1, "d-east"))  # no manager
    apply(db, "keep_person", person("p-ceo", 1))  # no user account
    apply(db, "keep_person", person("p-branch", 1, user_id="u-branch-east"))

    with db.session() as session:
        chain = repository.department_chain(session, "d-east-sh")
    assert chain == [
        ChainLink("d-east-sh", "d-east", False, None, None, False),
        ChainLink("d-east", "d-hq", False, "p-branch", "u-branch-east", True),
        ChainLink("d-hq", None, False, "p-ceo", None, True),
    ]

    apply(db, "keep_person", person("p-branch", 2, user_id="u-branch-east", status="left"))
    with db.session() as session:
        assert repository.department_chain(session, "d-east")[0].manager_active is False
        assert repository.department_chain(session, "d-nowhere") == []


def test_a_cycle_in_the_copied_tree_ends_the_chain(db):
    apply(db, "keep_department", department("d-a", 1, "d-b"))
    apply(db, "keep_department", department("d-b", 1, "d-a"))
    with db.session() as session:
        chain = repository.department_chain(session, "d-a")
    assert [link.department_id for link in chain] == ["d-a", "d-b"]


# -- a customer's region or category changes -----------------------------------------------------
def add_documents(db, customer_id, region="华南/广东", category="B"):
    """A quote, an order and a contract of ``customer_id``; their ids."""
    with db.session() as session:
        scope = {"region": region, "category": category, "department_id": "d-south-gd"}
        money = {"amount": Decimal("1000.00")}
        suffix = f"{uuid.uuid4().int % 10**6:06d}"
        quote = Quote(
            code=f"QT-2026-{suffix}",
            customer_id=customer_id,
            owner_id="u-sales-05",
            valid_until=date(2026, 4, 1),
            **scope,
        )
        order = SalesOrder(
            code=f"SO-2026-{suffix}",
            customer_id=customer_id,
            owner_id="u-sales-05",
            order_date=date(2026, 3, 2),
            discount=Decimal("0"),
            net=Decimal("1000.00"),
            tax=Decimal("130.00"),
            gross=Decimal("1130.00"),
            **money,
            **scope,
        )
        contract = Contract(
            code=f"CT-2026-{suffix}",
            title="年度框架合同",
            customer_id=customer_id,
            our_entity="华东机电销售有限公司",
            owner_id="u-sales-05",
            start_date=date(2026, 3, 1),
            end_date=date(2027, 2, 28),
            **money,
            **scope,
        )
        session.add_all([quote, order, contract])
        session.flush()
        return quote.id, order.id, contract.id


def test_a_customers_new_region_and_category_reach_its_records_with_history(db):
    moving, other = uuid.uuid4(), uuid.uuid4()
    apply(db, "keep_customer", customer(moving, 2, region="华南/广东", category="B"))
    apply(db, "keep_customer", customer(other, 2, region="华南/广东", category="B"))
    records = dict(
        zip(("opportunity", "activity", "expense"), add_records(db, moving), strict=True)
    ) | dict(zip(("quote", "order", "contract"), add_documents(db, moving), strict=True))
    untouched = add_records(db, other)

    # the customer moves region and category, and gets another owner: only the scope follows
    assert apply(
        db,
        "keep_customer",
        customer(moving, 3, region="华东/上海", category="A", owner_id="u-sales-09"),
    )

    with db.session() as session:
        for entity_type, record_id in records.items():
            record = session.get(SCOPED_MODELS[entity_type], record_id)
            assert (record.region, record.category) == ("华东/上海", "A"), entity_type
            assert record.department_id == "d-south-gd"  # its own, not the customer's
            assert record.version == 2, entity_type  # a client holding version 1 gets a conflict
        opportunity = session.get(Opportunity, records["opportunity"])
        assert opportunity.owner_id == "u-sales-05"
        assert session.get(Opportunity, untouched[0]).region == "华南/广东"
    for entity_type, record_id in records.items():
        assert history_of(db, record_id) == {
            (entity_type, "customer_updated", "region", "华南/广东", "华东/上海", None),
            (entity_type, "customer_updated", "category", "B", "A", None),
        }
    assert history_of(db, untouched[0]) == set()

    # an older copy arriving late changes nothing; a newer one that keeps the scope writes no
    # history; a category change alone is recorded alone
    assert not apply(db, "keep_customer", customer(moving, 1, region="西南/四川", category="C"))
    assert apply(db, "keep_customer", customer(moving, 4, region="华东/上海", category="A"))
    assert apply(db, "keep_customer", customer(moving, 5, region="华东/上海", category="C"))
    with db.session() as session:
        opportunity = session.get(Opportunity, records["opportunity"])
        assert (opportunity.region, opportunity.category, opportunity.version) == (
            "华东/上海",
            "C",
            3,
        )
    assert history_of(db, records["opportunity"]) == {
        ("opportunity", "customer_updated", "region", "华南/广东", "华东/上海", None),
        ("opportunity", "customer_updated", "category", "B", "A", None),
        ("opportunity", "customer_updated", "category", "A", "C", None),
    }


def test_a_merge_whose_survivor_changed_region_moves_the_survivors_own_records_too(db):
    survivor, merged = uuid.uuid4(), uuid.uuid4()
    apply(db, "keep_customer", customer(survivor, 4, region="华南/广东", category="B"))
    apply(db, "keep_customer", customer(merged, 2, region="华南/广东", category="B"))
    own = add_records(db, survivor)
    moved = add_records(db, merged)

    apply(db, "merge", merge_event(survivor, merged, region="华东/上海", category="A"), "u-admin")

    with db.session() as session:
        for record_id in (own[0], moved[0]):
            opportunity = session.get(Opportunity, record_id)
            assert (opportunity.customer_id, opportunity.region, opportunity.category) == (
                survivor,
                "华东/上海",
                "A",
            )
    assert ("opportunity", "customer_updated", "region", "华南/广东", "华东/上海", None) in (
        history_of(db, own[0])
    )
