"""Sales' copies of other contexts on the real RabbitMQ: a fresh database catches up from org's
and customer's snapshots, then follows their events; a merge moves the merged customer's
records; a redelivered event is applied once; an event sales cannot apply is dead-lettered with
its reason while the next one is handled; a customer's new region reaches its records."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from kombu import Connection, Exchange
from nameko.standalone.rpc import ServiceRpcProxy
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from crm_common.context import Principal
from crm_common.db import SessionScope, engine_for
from crm_common.events import make_envelope
from crm_common.migrations import upgrade
from customer.models import Contact as SourceContact
from customer.models import Customer as SourceCustomer
from customer.models import OrgUnit
from customer.service import CustomerService
from demo.customer import ensure_demo
from demo.org import load_demo
from org.hashing import HashCost, Passwords
from org.models import Person as SourcePerson
from org.service import OrgService
from sales.application.catch_up import SNAPSHOTS
from sales.models import (
    Activity,
    CatchUp,
    Contact,
    Customer,
    Department,
    Expense,
    ExpenseCategory,
    HistoryEntry,
    InboxEvent,
    Opportunity,
    Person,
    Region,
    SalesProcess,
)
from sales.service import SalesService
from tests.support.polling import eventually
from tests.support.tokens import context_of

ADMIN = context_of(Principal("u-admin", permissions=("system:admin",)))
SALES_REP = Principal(
    user_id="u-sales-01",
    department_id="d-east",
    permissions=("customer:read", "customer:write", "customer:merge"),
    grants=({},),
)


def sales_config(rabbit_config, tmp_path, **extra):
    uri = f"sqlite:///{tmp_path / 'sales.db'}"
    upgrade("sales", uri)
    return {
        **rabbit_config,
        "DB_URIS": {"sales": uri},
        "EVENT_RETRY_DELAYS": "0.2,0.4",
        "OUTBOX_POLL_SECONDS": 0.2,
        "METRICS_PORT": 0,
        **extra,
    }


def sales_db(config):
    return SessionScope(engine_for(config["DB_URIS"]["sales"]))


def already_caught_up(config):
    """Mark every snapshot read, so that the service only follows events."""
    with sales_db(config).session() as session:
        now = datetime.now(UTC)
        session.add_all(CatchUp(source=s.source, rows=0, finished_at=now) for s in SNAPSHOTS)


def publish(config, source, event_type, data, *, envelope=None):
    """Publish as a service's outbox does: an envelope, JSON, on ``<source>.events``."""
    body = envelope or make_envelope(event_type, data, source=source, actor_id="u-admin")
    exchange = Exchange(f"{source}.events", type="topic", durable=True)
    with Connection(config["AMQP_URI"]) as connection:
        connection.Producer().publish(
            body, exchange=exchange, routing_key=event_type, serializer="json", declare=[exchange]
        )
    return body


def customer_record(customer_id, version, **fields):
    return {
        "id": str(customer_id),
        "code": "C2026000101",
        "name": "苏州工业园精密机械有限公司",
        "short_name": "苏州精机",
        "status": "formal",
        "category": "A",
        "region": "华东/江苏",
        "owner_id": "u-sales-02",
        "department_id": "d-east-js",
        "merged_into_id": None,
        "version": version,
        **fields,
    }


def copied(config, model, key):
    with sales_db(config).session() as session:
        return session.get(model, key)


def count(config, model):
    with sales_db(config).session() as session:
        return session.scalar(select(func.count()).select_from(model))


def dead_letters(config):
    with ServiceRpcProxy("sales", config, context_data=ADMIN, timeout=10) as sales:
        return sales.list_dead_letters()["items"]


def add_opportunity(config, customer_id):
    """An opportunity, an activity and an expense of the customer, as sales' use cases would
    write them; their ids."""
    with sales_db(config).session() as session:
        process = SalesProcess(code="project", name="项目型销售")
        session.add(process)
        if session.get(ExpenseCategory, "travel") is None:
            session.add(ExpenseCategory(code="travel", name="差旅"))
        session.flush()
        scope = {"department_id": "d-east-js", "region": "华东/江苏", "category": "B"}
        opportunity = Opportunity(
            code="OPP-2026-000001",
            name="五轴加工中心",
            customer_id=customer_id,
            owner_id="u-sales-02",
            process_id=process.id,
            stage_code="initial",
            **scope,
        )
        session.add(opportunity)
        session.flush()
        activity = Activity(
            type="visit",
            subject="现场拜访",
            customer_id=customer_id,
            opportunity_id=opportunity.id,
            owner_id="u-sales-02",
            **scope,
        )
        session.add(activity)
        session.flush()
        expense = Expense(
            code="EXP-2026-000001",
            submitter_id="u-sales-02",
            expense_category="travel",
            amount=Decimal("680.00"),
            spent_on=datetime.now(UTC).date(),
            customer_id=customer_id,
            opportunity_id=opportunity.id,
            **scope,
        )
        session.add(expense)
        session.flush()
        return opportunity.id, activity.id, expense.id


# -- events alone --------------------------------------------------------------------------------
def test_a_customer_merged_event_moves_the_merged_customers_records(
    container_factory, rabbit_config, tmp_path
):
    config = sales_config(rabbit_config, tmp_path)
    already_caught_up(config)
    survivor, merged = uuid.uuid4(), uuid.uuid4()
    records = add_opportunity(config, merged)
    container_factory(SalesService, config).start()
    publish(config, "customer", "customer_created", {"customer": customer_record(merged, 1)})
    eventually(lambda: copied(config, Customer, merged), what="the merged customer's copy")

    publish(
        config,
        "customer",
        "customer_merged",
        {
            "survivor_id": str(survivor),
            "survivor_code": "C2026000100",
            "merged_id": str(merged),
            "merged_code": "C2026000101",
            "survivor": customer_record(survivor, 7, code="C2026000100", category="A"),
        },
    )

    moved = eventually(
        lambda: (lambda o: o if o.customer_id == survivor else None)(
            copied(config, Opportunity, records[0])
        ),
        what="the opportunity moved to the survivor",
    )
    assert (moved.category, moved.version) == ("A", 2)
    assert copied(config, Activity, records[1]).customer_id == survivor
    assert copied(config, Expense, records[2]).customer_id == survivor
    assert copied(config, Customer, merged).merged_into_id == survivor
    with sales_db(config).session() as session:
        history = session.scalars(
            select(HistoryEntry).where(HistoryEntry.field == "customer_id")
        ).all()
        assert sorted(entry.entity_type for entry in history) == [
            "activity",
            "expense",
            "opportunity",
        ]
        assert {(e.old, e.new, e.actor_id) for e in history} == {
            (str(merged), str(survivor), "u-admin")
        }


def test_a_customer_updated_to_another_region_takes_its_records_along(
    container_factory, rabbit_config, tmp_path
):
    config = sales_config(rabbit_config, tmp_path)
    already_caught_up(config)
    customer_id = uuid.uuid4()
    records = add_opportunity(config, customer_id)
    container_factory(SalesService, config).start()
    publish(
        config,
        "customer",
        "customer_created",
        {"customer": customer_record(customer_id, 1, category="B")},
    )
    eventually(lambda: copied(config, Customer, customer_id), what="the customer's copy")

    publish(
        config,
        "customer",
        "customer_updated",
        {
            "customer": customer_record(
                customer_id, 2, region="华东/浙江", category="A", owner_id="u-sales-07"
            ),
            "changes": [],
        },
    )

    moved = eventually(
        lambda: (lambda o: o if o.region == "华东/浙江" else None)(
            copied(config, Opportunity, records[0])
        ),
        what="the opportunity in the customer's new region",
    )
    assert (moved.category, moved.owner_id, moved.department_id) == ("A", "u-sales-02", "d-east-js")
    for model, record_id in ((Activity, records[1]), (Expense, records[2])):
        record = copied(config, model, record_id)
        assert (record.region, record.category) == ("华东/浙江", "A")
    with sales_db(config).session() as session:
        history = session.scalars(
            select(HistoryEntry).where(HistoryEntry.change == "customer_updated")
        ).all()
        assert {(e.entity_type, e.field, e.old, e.new, e.actor_id) for e in history} == {
            (entity_type, field, old, new, None)
            for entity_type in ("opportunity", "activity", "expense")
            for field, old, new in (("region", "华东/江苏", "华东/浙江"), ("category", "B", "A"))
        }


def test_a_redelivered_customer_event_is_applied_once(container_factory, rabbit_config, tmp_path):
    config = sales_config(rabbit_config, tmp_path)
    already_caught_up(config)
    container_factory(SalesService, config).start()
    customer_id = uuid.uuid4()
    labels = {
        "service": "sales",
        "handler": "sales.on_customer_updated",
        "event_type": "customer_updated",
        "outcome": "duplicate",
    }
    duplicates = REGISTRY.get_sample_value("crm_events_consumed_total", labels) or 0

    first = publish(
        config,
        "customer",
        "customer_updated",
        {"customer": customer_record(customer_id, 2, name="第一次"), "changes": []},
    )
    publish(config, "customer", "customer_updated", None, envelope=first)  # delivered again
    eventually(lambda: copied(config, Customer, customer_id), what="the customer's copy")
    publish(
        config,
        "customer",
        "customer_updated",
        {"customer": customer_record(customer_id, 3, name="第二次"), "changes": []},
    )
    eventually(lambda: copied(config, Customer, customer_id).name == "第二次", what="the newer one")
    publish(config, "customer", "customer_updated", None, envelope=first)  # and once more, late

    eventually(
        lambda: REGISTRY.get_sample_value("crm_events_consumed_total", labels) == duplicates + 2,
        what="both redeliveries skipped",
    )
    assert (copied(config, Customer, customer_id).name, count(config, InboxEvent)) == ("第二次", 2)


def test_a_customer_event_sales_cannot_apply_is_dead_lettered_while_the_next_is_handled(
    container_factory, rabbit_config, tmp_path
):
    config = sales_config(rabbit_config, tmp_path)
    already_caught_up(config)
    container_factory(SalesService, config).start()
    broken, good = uuid.uuid4(), uuid.uuid4()
    lacking = {k: v for k, v in customer_record(broken, 2).items() if k not in ("code", "status")}

    unusable = publish(config, "customer", "customer_updated", {"customer": lacking, "changes": []})
    publish(
        config,
        "customer",
        "customer_updated",
        {"customer": customer_record(good, 2), "changes": []},
    )

    eventually(lambda: copied(config, Customer, good), what="the next event applied")
    [item] = eventually(lambda: dead_letters(config), what="the dead letter")
    assert (item["handler"], item["reason"], item["attempts"]) == (
        "sales.on_customer_updated",
        "failed",
        3,
    )
    assert item["event_id"] == unusable["event_id"]
    assert "UnusableRecord: the customer cannot be applied" in item["error"]
    assert "'code'" in item["error"] and "'status'" in item["error"]
    assert copied(config, Customer, broken) is None


# -- catching up, then events, with the real org and customer services ---------------------------
@pytest.fixture
def sources(rabbit_config, tmp_path):
    """Org (demo org chart) and customer (demo customers) databases, and a config naming
    them and an empty, migrated sales database."""
    org_uri = f"sqlite:///{tmp_path / 'org.db'}"
    customer_uri = f"sqlite:///{tmp_path / 'customer.db'}"
    upgrade("org", org_uri)
    with SessionScope(engine_for(org_uri)).session() as session:
        load_demo(session, Passwords(HashCost(1, 8, 1)).hash("Crm-demo-2026"), with_events=False)
    ensure_demo(customer_uri, with_events=False)
    config = sales_config(rabbit_config, tmp_path)
    config["DB_URIS"] = {**config["DB_URIS"], "org": org_uri, "customer": customer_uri}
    return config


def source_count(config, service, model):
    with SessionScope(engine_for(config["DB_URIS"][service])).session() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_a_fresh_database_catches_up_from_the_snapshots_then_follows_events(
    sources, container_factory
):
    config = sources
    container_factory(OrgService, config).start()
    container_factory(CustomerService, config).start()
    container_factory(SalesService, config).start()

    eventually(
        lambda: count(config, CatchUp) == len(SNAPSHOTS), timeout=30, what="every snapshot read"
    )
    assert count(config, Department) == 13 and count(config, Region) == 25
    assert count(config, Person) == source_count(config, "org", SourcePerson)
    assert count(config, Customer) == source_count(config, "customer", SourceCustomer) > 200
    assert count(config, Contact) == source_count(config, "customer", SourceContact) > 200
    assert copied(config, Person, "p-sales-01").user_id == "u-sales-01"
    assert copied(config, Department, "d-east").manager_id == "p-branch-east"

    eventually(
        lambda: source_count(config, "customer", OrgUnit) == 13 + 25,
        timeout=20,
        what="customer's own copy of the org structure",
    )
    with ServiceRpcProxy(
        "customer", config, context_data=context_of(SALES_REP), timeout=10
    ) as customers:
        survivor = customers.create_customer({"name": "无锡新客户机电有限公司"})
        merged = customers.create_customer({"name": "无锡新客户机电设备厂"}, allow_duplicate=True)
        eventually(
            lambda: copied(config, Customer, uuid.UUID(merged["id"])),
            what="customer_created applied to the copy",
        )
        records = add_opportunity(config, uuid.UUID(merged["id"]))
        customers.merge_customers(survivor["id"], merged["id"])

    moved = eventually(
        lambda: (lambda o: o if str(o.customer_id) == survivor["id"] else None)(
            copied(config, Opportunity, records[0])
        ),
        timeout=20,
        what="the opportunity moved to the survivor",
    )
    assert moved.region is None and moved.category is None  # the survivor's, copied
    assert copied(config, Customer, uuid.UUID(merged["id"])).status == "merged"
