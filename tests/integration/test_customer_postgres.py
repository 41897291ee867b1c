"""The customer repository, search, import and merge on the real PostgreSQL, plus the service
answering over the real RabbitMQ with its database on PostgreSQL."""

from __future__ import annotations

import uuid

import eventlet
import psycopg2.extensions
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import worker_factory
from sqlalchemy import create_engine, delete, insert, inspect, select, text, update
from sqlalchemy.exc import IntegrityError

from crm_common.context import Principal, bind
from crm_common.db import SessionScope, engine_for
from crm_common.errors import Conflict, NotFound, Unavailable, ValidationFailed
from crm_common.migrations import upgrade
from crm_common.outbox import OutboxWriter
from customer.models import (
    Base,
    Contact,
    Customer,
    CustomerCodeCounter,
    CustomerTag,
    OrgUnit,
    OutboxMessage,
)
from customer.repository import allocate_code, compact_counts
from customer.schemas import CustomerSchema
from customer.service import CustomerService
from demo.customer import ensure_demo
from demo.org import load_demo
from org.hashing import HashCost, Passwords
from org.service import OrgService
from tests.fixtures import PG_ADMIN_URI
from tests.support.polling import eventually
from tests.support.tokens import context_of
from tests.unit.customer.org_units import seed_org_units
from tests.unit.customer.test_reads import SEARCHES, TAME, WILD

pytestmark = pytest.mark.postgres

CUSTOMER_PERMISSIONS = (
    "customer:read",
    "customer:write",
    "customer:import",
    "customer:export",
    "customer:merge",
)
SALES = Principal(
    user_id="u-sales-01", department_id="d-east", permissions=CUSTOMER_PERMISSIONS, grants=({},)
)
CROSSED = Principal(
    user_id="u-manager-01",
    department_id="d-east",
    permissions=CUSTOMER_PERMISSIONS,
    grants=(
        {"owner": "self"},
        {"departments": ["d-east", "d-east-js", "d-east-sh"], "categories": ["A", "VIP"]},
    ),
)


@pytest.fixture
def db(pg_uri):
    upgrade("customer", pg_uri)
    scope = SessionScope(engine_for(pg_uri))
    with scope.session() as session:
        seed_org_units(session)
    return scope


@pytest.fixture
def service(db):
    bind(SALES, "req-pg")
    yield worker_factory(CustomerService, db=db, outbox=OutboxWriter(OutboxMessage, "customer"))
    bind(None, None)


def make(service, name, **fields):
    return service.create_customer({"name": name, **fields}, allow_duplicate=True)


def test_alembic_migrations_build_the_models_on_postgres(db):
    with db.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
        indexes = {i["name"]: i for i in inspect(connection).get_indexes("contacts")}
    assert indexes["uq_contacts_one_primary"]["unique"]
    assert "is_primary" in str(indexes["uq_contacts_one_primary"]["dialect_options"])


def test_concurrent_code_allocation_never_repeats(db):
    codes: list[str] = []

    def allocate():
        with db.session() as session:
            code = allocate_code(session, 2031)
            eventlet.sleep(0.01)  # hold the row lock while others queue behind it
            codes.append(code)

    pool = eventlet.GreenPool(10)
    for _ in range(30):
        pool.spawn(allocate)
    pool.waitall()
    assert sorted(codes) == [f"C2031{n:06d}" for n in range(1, 31)]


def test_concurrent_allocation_skips_imported_codes_and_never_repeats(db, service):
    taken = [3, 4, 10, 999_999]
    rows = "".join(f"C2031{n:06d},导入客户{n}有限公司\n" for n in taken)
    assert service.import_customers("code,name\n" + rows)["created"] == len(taken)
    codes: list[str] = []

    def allocate():
        with db.session() as session:
            code = allocate_code(session, 2031)
            eventlet.sleep(0.01)
            codes.append(code)

    pool = eventlet.GreenPool(10)
    for _ in range(20):
        pool.spawn(allocate)
    pool.waitall()
    expected = [n for n in range(1, 24) if n not in taken]
    assert sorted(codes) == [f"C2031{n:06d}" for n in expected]


def test_an_exhausted_year_is_a_conflict_on_postgres(db):
    with db.session() as session:
        session.execute(
            CustomerCodeCounter.__table__.insert().values(year=2032, last_value=999_999)
        )
    with db.session() as session, pytest.raises(Conflict) as info:
        allocate_code(session, 2032)
    assert info.value.details["reason"] == "customer_codes_exhausted"


def test_create_update_conflicts_and_history(service):
    created = make(
        service, "上海华东机电设备有限公司", credit_code="91350100M000100Y43", tags=["重点客户"]
    )
    with pytest.raises(Conflict) as info:
        service.create_customer({"name": "上海华东机电设备股份有限公司"})
    assert info.value.details["candidates"][0]["id"] == created["id"]
    updated = service.update_customer(created["id"], {"status": "formal", "tags": ["VIP"]}, 1)
    assert updated["version"] == 2 and updated["tags"] == ["VIP"]
    with pytest.raises(Conflict):
        service.update_customer(created["id"], {"industry": "轴承"}, 1)
    with pytest.raises(NotFound):
        service.get_customer(str(uuid.uuid4()))
    history = service.customer_history(created["id"], limit=2)
    assert len(history["items"]) == 2 and history["next_cursor"]
    rest = service.customer_history(created["id"], cursor=history["next_cursor"])
    assert rest["items"][-1]["change"] == "created"


def test_search_filters_and_pages_in_sql(service):
    rows = [
        ("华东机电设备有限公司", "华东/上海", ["重点客户", "战略合作"]),
        ("苏州恒达轴承有限公司", "华东/江苏/苏州", ["重点客户"]),
        ("北京北方五金工具有限公司", "华北/北京", []),
        ("广州南粤阀门有限公司", "华南/广东/广州", ["战略合作"]),
    ]
    made = {name: make(service, name, region=region, tags=tags) for name, region, tags in rows}
    service.create_contact(
        made["广州南粤阀门有限公司"]["id"], {"name": "欧阳建华", "mobile": "13922334455"}
    )

    def names(query):
        return sorted(c["name"] for c in service.list_customers(query)["items"])

    assert names({"q": "华东"}) == ["华东机电设备有限公司"]
    assert names({"q": "欧阳"}) == names({"q": "2233 4455"}) == ["广州南粤阀门有限公司"]
    assert names({"q": "100%"}) == []
    assert names({"region": "华东"}) == ["华东机电设备有限公司", "苏州恒达轴承有限公司"]
    assert names({"tags": ["重点客户", "战略合作"]}) == ["华东机电设备有限公司"]
    seen, cursor = [], None
    while True:
        page = service.list_customers({"sort": "-name", "limit": 3, "cursor": cursor})
        seen += [c["name"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(made, reverse=True)


def test_import_keeps_good_rows_and_drops_bad_ones_whole(service):
    existing = make(service, "上海华东机电设备有限公司", credit_code="91350100M000100Y43")
    result = service.import_customers(
        "code,name,status,region,phone,credit_code\n"
        f"{existing['code']},,formal,华东/上海,,\n"
        ",北京北方五金工具有限公司,正式,华北/北京,010-66778899,\n"
        ",坏数据有限公司,unknown,火星,abc,\n"
        ",深圳鹏城轴承有限公司,,,,91350100M000100Y43\n"
    )
    assert (result["created"], result["updated"]) == (1, 2)
    assert [e["row"] for e in result["errors"]] == [4]
    names = {c["name"] for c in service.list_customers({})["items"]}
    assert names == {"北京北方五金工具有限公司", "深圳鹏城轴承有限公司"}
    exported = service.export_customers({"region": "华北"})
    assert exported.startswith("\ufeff") and "北京北方五金工具有限公司" in exported


def test_merge_and_primary_contact_rules(db, service):
    survivor = make(service, "甲机电有限公司")
    merged = make(service, "甲机电设备有限公司", credit_code="91350100M000100Y43", tags=["老客户"])
    other = make(service, "丙轴承有限公司")
    service.create_contact(survivor["id"], {"name": "王建国"})
    service.create_contact(merged["id"], {"name": "李红"})
    service.add_relationship(merged["id"], {"related_customer_id": other["id"], "kind": "partner"})
    service.add_care_record(merged["id"], {"kind": "festival", "date": "2026-02-12"})
    result = service.merge_customers(survivor["id"], merged["id"])
    assert result["credit_code"] == "91350100M000100Y43" and result["tags"] == ["老客户"]
    contacts = service.list_contacts(survivor["id"])
    assert [c["is_primary"] for c in contacts] == [True, False]
    assert service.list_relationships(survivor["id"])[0]["related_customer_id"] == other["id"]
    assert service.get_customer(merged["id"])["status"] == "merged"
    with pytest.raises(ValidationFailed):
        service.merge_customers(survivor["id"], survivor["id"])
    with pytest.raises(IntegrityError), db.session() as session:
        session.add(Contact(customer_id=uuid.UUID(survivor["id"]), name="x", is_primary=True))
        session.flush()


def test_data_scope_on_postgres(service):
    east = make(
        service,
        "上海华东机电设备有限公司",
        region="华东/上海",
        category="A",
        owner_id="u-sales-01",
        department_id="d-east-sh",
    )
    north = make(
        service,
        "北京北方五金工具有限公司",
        region="华北/北京",
        category="VIP",
        owner_id="u-sales-03",
        department_id="d-north-bj",
        credit_code="91350100M000100Y43",
    )
    service.add_relationship(east["id"], {"related_customer_id": north["id"], "kind": "partner"})
    rep = Principal(
        "u-sales-01",
        "d-east-sh",
        permissions=CUSTOMER_PERMISSIONS,
        grants=({"owner": "self"}, {"regions": [{"path": "华东", "subtree": True}]}),
    )
    bind(rep, "req-pg")
    assert [c["id"] for c in service.list_customers({})["items"]] == [east["id"]]
    assert service.count_customers({}) == {"count": 1}
    assert service.summarize_customers({})["by_category"] == {"A": 1}
    assert service.list_relationships(east["id"]) == []
    with pytest.raises(NotFound):
        service.get_customer(north["id"])
    with pytest.raises(Conflict) as info:
        service.create_customer({"name": "北京北方五金工具股份有限公司"})
    assert info.value.details["candidates"] == [{"in_scope": False}]
    with pytest.raises(ValidationFailed) as info:
        service.create_customer({"name": "天津新客户有限公司", "owner_id": "u-sales-04"})
    # Either would do: the caller as owner, or a region in 华东.
    assert info.value.field_errors == {
        "owner_id": ["is outside your data scope"],
        "region": ["is outside your data scope"],
    }
    result = service.import_customers("name,credit_code\n某公司,91350100M000100Y43\n")
    assert result["errors"] == [
        {
            "row": 2,
            "errors": {"credit_code": ["already used by a customer outside your data scope"]},
        }
    ]


def test_demo_data_loads_on_postgres(pg_uri, service):
    counts = ensure_demo(pg_uri)
    assert counts["customers"] >= 280
    assert service.list_customers({"q": "轴承", "region": "华东", "limit": 5})["items"]


def test_the_service_answers_over_rabbitmq_with_postgres(pg_uri, rabbit_config, container_factory):
    upgrade("customer", pg_uri)
    with SessionScope(engine_for(pg_uri)).session() as session:
        seed_org_units(session)
    config = {**rabbit_config, "DB_URIS": {"customer": pg_uri}, "OUTBOX_POLL_SECONDS": 0.2}
    container = container_factory(CustomerService, config)
    container.start()
    context = context_of(SALES, "req-over-the-wire")
    with ServiceRpcProxy("customer", config, context_data=context, timeout=10) as customer:
        created = customer.create_customer(
            {"name": "杭州钱江液压有限公司", "region": "华东/浙江/杭州"}
        )
        assert created["owner_id"] == "u-sales-01"
        with pytest.raises(Conflict) as info:
            customer.create_customer({"name": "杭州钱江液压股份有限公司"})
        assert info.value.details["reason"] == "duplicate_customer"
        assert info.value.details["candidates"][0]["code"] == created["code"]
        with pytest.raises(ValidationFailed) as info:
            customer.create_contact(created["id"], {"name": "王", "mobile": "123"})
        assert "mobile" in info.value.field_errors
    assert wait_for(lambda: sent_at_of(pg_uri, created["id"])), "customer_created not relayed"


ORG_ADMIN = Principal(user_id="u-admin", permissions=("org:admin",), grants=({},))


def org_units_of(uri):
    with SessionScope(engine_for(uri)).session() as session:
        return {(u.kind, u.id): u.path for u in session.scalars(select(OrgUnit))}


def test_the_copy_of_the_org_structure_catches_up_then_follows_org_events(
    pg_uri, sqlite_uri, rabbit_config, container_factory
):
    """A fresh customer database fills its copy from org's snapshot (read as the customer
    service itself) when the service starts, then follows region_changed and
    department_changed; the names it learns become usable on customers."""
    upgrade("org", sqlite_uri)
    with SessionScope(engine_for(sqlite_uri)).session() as session:
        load_demo(session, Passwords(HashCost(1, 8, 1)).hash("Crm-demo-2026"), with_events=False)
    upgrade("customer", pg_uri)
    config = {
        **rabbit_config,
        "DB_URIS": {"customer": pg_uri, "org": sqlite_uri},
        "OUTBOX_POLL_SECONDS": 0.2,
    }
    container_factory(OrgService, config).start()
    container_factory(CustomerService, config).start()
    units = eventually(
        lambda: (lambda u: u if len(u) == 13 + 25 else None)(org_units_of(pg_uri)),
        timeout=20,
        what="the customer's copy of the org structure filled from the snapshot",
    )
    assert units[("department", "d-east-sh")] == "总部 › 华东分公司 › 上海办事处"
    assert units[("region", "rg-east-js")] == "华东/江苏"
    with ServiceRpcProxy("org", config, context_data=context_of(ORG_ADMIN), timeout=10) as org:
        jiangsu = org.get_record("regions", "rg-east-js")
        org.update_record("regions", "rg-east-js", {"name": "苏"}, jiangsu["version"])
        made = org.create_record(
            "departments",
            {"code": "0203", "name": "浙江办事处", "type": "sales", "parent_id": "d-east"},
        )
    eventually(
        lambda: org_units_of(pg_uri).get(("department", made["id"])),
        timeout=20,
        what="department_changed applied to the copy",
    )
    assert org_units_of(pg_uri)[("region", "rg-east-js")] == "华东/苏"
    with ServiceRpcProxy("customer", config, context_data=context_of(SALES), timeout=10) as c:
        placed = c.create_customer(
            {"name": "宁波新客户有限公司", "department_id": made["id"], "region": "华东/苏/苏州"}
        )
        assert placed["department_id"] == made["id"]
        with pytest.raises(ValidationFailed) as info:
            c.create_customer({"name": "无锡新客户有限公司", "region": "华东/江苏/无锡"})
        assert set(info.value.field_errors) == {"region"}


def sent_at_of(uri, customer_id):
    with SessionScope(engine_for(uri)).session() as session:
        rows = session.scalars(
            select(OutboxMessage).where(OutboxMessage.routing_key == "customer_created")
        ).all()
        return [r.sent_at for r in rows if r.payload["data"]["customer"]["id"] == customer_id][0]


def wait_for(predicate, timeout=10.0):
    with eventlet.Timeout(timeout, False):
        while True:
            value = predicate()
            if value:
                return value
            eventlet.sleep(0.1)
    return None


# -- reads without a transaction, and a connection the server dropped ------------------------
def backend_pid(db):
    with db.read() as session:
        return session.scalar(text("SELECT pg_backend_pid()"))


def terminate(pg_uri, pid):
    admin = create_engine(PG_ADMIN_URI, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        admin.dispose()


def test_a_read_sends_no_transaction_and_leaves_the_connection_as_it_found_it(db, service):
    created = make(service, "上海只读机电有限公司")
    with db.read() as session:
        session.scalar(text("SELECT 1"))
        driver = session.connection().connection.dbapi_connection
        assert driver.autocommit
        assert driver.status == psycopg2.extensions.STATUS_READY  # no BEGIN sent
    with db.session() as session:
        session.scalar(text("SELECT 1"))
        driver = session.connection().connection.dbapi_connection
        assert not driver.autocommit
        assert driver.status == psycopg2.extensions.STATUS_BEGIN
    assert service.get_customer(created["id"])["name"] == "上海只读机电有限公司"


def test_a_read_on_a_connection_the_server_killed_runs_again_on_a_new_one(pg_uri, db, service):
    created = make(service, "上海断线机电有限公司")
    dead = backend_pid(db)
    terminate(pg_uri, dead)

    assert service.get_customer(created["id"])["code"] == created["code"]
    assert backend_pid(db) != dead


def test_a_write_on_a_connection_the_server_killed_is_unavailable_not_a_crash(pg_uri, db, service):
    created = make(service, "上海断线写入有限公司")
    terminate(pg_uri, backend_pid(db))

    with pytest.raises(Unavailable):
        service.update_customer(created["id"], {"remark": "lost"}, created["version"])
    updated = service.update_customer(created["id"], {"remark": "kept"}, created["version"])
    assert updated["remark"] == "kept"


# -- customer_counts on PostgreSQL: statement triggers and folding under concurrent writes -----
def counts_agree(db):
    """``customer_counts`` adds up to the customers there are, combination by combination."""
    combination = ", ".join(
        f"coalesce({name}, '')"
        for name in ("status", "kind", "category", "region", "owner_id", "department_id")
    )
    with db.session() as session:
        counted = session.execute(
            text(
                "SELECT status, kind, category, region, owner_id, department_id, sum(n) "
                "FROM customer_counts GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(n) <> 0"
            )
        ).all()
        actual = session.execute(
            text(f"SELECT {combination}, count(*) FROM customers GROUP BY 1, 2, 3, 4, 5, 6")
        ).all()
    assert sorted(counted) == sorted(actual)


def bulk_customers(count, start=0, **values):
    return [
        {
            "id": uuid.uuid4(),
            "code": f"C2001{start + n:06d}",
            "name": f"批量客户{start + n}",
            "name_key": f"批量客户{start + n}",
            "kind": "enterprise",
            "status": ("formal", "potential", "dormant")[n % 3],
            "category": (None, "A", "VIP")[n % 3],
            "region": ("华东/上海", None, "华北/北京")[n % 3],
            "owner_id": f"u-{n % 4}",
            "department_id": None if n % 5 == 0 else f"d-{n % 2}",
            "version": 1,
            **values,
        }
        for n in range(count)
    ]


def test_counts_follow_bulk_statements_and_the_services_writes(db, service):
    survivor = make(service, "上海计数机电有限公司", category="A", region="华东/上海")
    merged = make(service, "上海计数机电（重复）有限公司", region="华东/上海")
    service.merge_customers(survivor["id"], merged["id"])
    with db.session() as session:
        session.execute(insert(Customer), bulk_customers(300))
        session.execute(update(Customer).where(Customer.status == "dormant").values(category="B"))
        session.execute(
            update(Customer).where(Customer.owner_id == "u-1").values(remark="只改备注")
        )
        session.execute(delete(Customer).where(Customer.owner_id == "u-2"))
    counts_agree(db)
    assert service.count_customers({}) == {"count": 300 - 75 + 1}  # u-2 owned every 4th
    with db.session() as session:
        assert compact_counts(session) > 0
        assert compact_counts(session) == 0
    counts_agree(db)
    with db.session() as session:
        session.execute(text("TRUNCATE customers CASCADE"))
    counts_agree(db)
    assert service.count_customers({}) == {"count": 0}


def test_folding_while_others_write_loses_no_customer(db):
    def write(batch):
        for n in range(10):
            with db.session() as session:
                session.execute(insert(Customer), bulk_customers(7, start=batch * 100 + n * 7))

    def fold():
        for _ in range(15):
            with db.session() as session:
                compact_counts(session)
            eventlet.sleep(0)

    writers = [eventlet.spawn(write, batch) for batch in range(4)]
    folder = eventlet.spawn(fold)
    for thread in (*writers, folder):
        thread.wait()
    counts_agree(db)


def test_the_migration_fills_the_counts_of_the_customers_already_there(pg_uri):
    upgrade("customer", pg_uri, "0003")
    engine = engine_for(pg_uri)
    with engine.begin() as connection:
        connection.execute(insert(Customer.__table__), bulk_customers(50))
    upgrade("customer", pg_uri)
    counts_agree(SessionScope(engine))


def test_reads_answer_on_postgres_what_the_schema_dumps(db, service):
    created = make(
        service, "上海标签机电有限公司", tags=["重点客户", "A级", "华东"], region="华东/上海"
    )
    make(service, "上海无标签机电有限公司")
    service.create_contact(created["id"], {"name": "王建国"})
    with db.session() as session:
        customers = {str(c.id): CustomerSchema().dump(c) for c in session.scalars(select(Customer))}
    answered = service.get_customer(created["id"])
    assert list(answered.items()) == [*customers[created["id"]].items(), ("contacts_count", 1)]
    assert answered["tags"] == ["重点客户", "A级", "华东"]
    for item in service.list_customers({"q": "机电"})["items"]:
        assert list(item.items()) == list(customers[item["id"]].items())


def test_a_search_on_postgres_folds_letter_case_and_takes_wildcards_literally(service):
    for name in (WILD, TAME):
        make(service, name)
    make(service, "北京Ärger机电有限公司")
    for query, found in [*SEARCHES, ("äRGER", ["北京Ärger机电有限公司"])]:
        listed = sorted(item["name"] for item in service.list_customers({"q": query})["items"])
        assert listed == found, query
        assert service.count_customers({"q": query}) == {"count": len(found)}


def test_a_search_on_postgres_finds_customers_by_their_contacts_as_they_are_now(db, service):
    first = make(service, "上海联系人机电有限公司")
    second = make(service, "江苏联系人轴承有限公司")
    contact = service.create_contact(first["id"], {"name": "欧阳建华", "mobile": "13922334455"})

    def found(query):
        return sorted(item["name"] for item in service.list_customers({"q": query})["items"])

    assert found("欧阳") == [first["name"]]
    assert found("2233 4455") == [first["name"]]
    service.update_contact(contact["id"], {"name": "欧阳明"}, contact["version"])
    assert found("建华") == []
    service.merge_customers(second["id"], first["id"])
    assert found("欧阳明") == [second["name"]]
    with db.session() as session:
        session.execute(delete(Contact))
    assert found("欧阳明") == []


def test_erp_codes_are_unique_when_set_and_filtered_exactly_on_postgres(db, service):
    holder = make(service, "上海华东机电设备有限公司", erp_code="C0001234")
    make(service, "江苏恒达轴承有限公司")
    make(service, "广州五金工具有限公司")  # two customers without a code share no clash
    with pytest.raises(Conflict) as info:
        make(service, "北京北方机电有限公司", erp_code="C0001234")
    assert info.value.details["errors"] == {"erp_code": [f"already used by {holder['code']}"]}
    with db.engine.connect() as connection, pytest.raises(IntegrityError):
        connection.execute(update(Customer).where(Customer.erp_code.is_(None)).values(erp_code="X"))
    assert [c["id"] for c in service.list_customers({"erp_code": "C0001234"})["items"]] == [
        holder["id"]
    ]
    assert service.count_customers({"erp_code": "C0001234"}) == {"count": 1}
    assert service.summarize_customers({"erp_code": "C0001234"})["total"] == 1
    with db.engine.connect() as connection:
        indexes = {i["name"]: i for i in inspect(connection).get_indexes("customers")}
    assert indexes["uq_customers_erp_code"]["unique"]
    assert "erp_code IS NOT NULL" in str(indexes["uq_customers_erp_code"]["dialect_options"])


def test_due_records_compare_month_and_day_on_postgres(service):
    founded = make(service, "上海华东机电设备有限公司", established_on="2010-12-31")
    born = (("王建国", "1975-12-30"), ("李娜", "1988-01-03"), ("赵闰", "1980-02-29"))
    for name, birthday in born:
        service.create_contact(founded["id"], {"name": name, "birthday": birthday})
    bind(Principal.for_service("notify"), "req-pg")

    def due(kind, days, as_of):
        items = service.due_records(kind, {"days": days, "as_of": as_of})["items"]
        return [(i["fields"].get("contact_name"), i["due_on"]) for i in items]

    assert due("birthdays", 5, "2026-12-29") == [("王建国", "2026-12-30"), ("李娜", "2027-01-03")]
    assert due("birthdays", 7, "2027-02-21") == [("赵闰", "2027-02-28")]
    assert due("birthdays", 7, "2028-02-22") == [("赵闰", "2028-02-29")]
    assert due("birthdays", 30, "2027-03-01") == []
    assert due("founding_anniversaries", 3, "2026-12-29") == [(None, "2026-12-31")]


@pytest.fixture
def many_customers(db):
    """20,000 customers (bench_scope's), a third of them tagged, with fresh statistics."""
    from bench.bench_scope import customer_rows, tags_and_contacts

    rows = list(customer_rows(20_000))
    tags = [tag for index, row in enumerate(rows) for tag in tags_and_contacts(row, index)[0]]
    with db.engine.begin() as connection:
        connection.execute(insert(Customer.__table__), rows)
        connection.execute(insert(CustomerTag.__table__), tags)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("ANALYZE customers, customer_tags")


def counting(db, above):
    """The service answering counts with COUNT_ESTIMATE_ABOVE ``above``."""
    return worker_factory(
        CustomerService,
        db=db,
        outbox=OutboxWriter(OutboxMessage, "customer"),
        count_estimate_above=above,
    )


def test_big_counts_that_read_every_customer_are_estimated_and_flagged(db, service, many_customers):
    exact, estimating = counting(db, 0), counting(db, 1000)

    tagged = exact.count_customers({"tags": "重点客户"})
    assert set(tagged) == {"count"} and tagged["count"] > 1000
    estimated = estimating.count_customers({"tags": "重点客户"})
    assert estimated["estimated"] is True
    assert abs(estimated["count"] - tagged["count"]) <= 0.2 * tagged["count"]
    assert counting(db, 10 * tagged["count"]).count_customers({"tags": "重点客户"}) == tagged

    matching = exact.count_customers({"q": "轴承"})["count"]
    assert matching > 1000
    answer = estimating.count_customers({"q": "轴承"})
    if answer.get("estimated"):  # the sample's pages may hold too few matches to reach 1000
        # a 1 % sample of 20,000 customers is a few pages: within a factor of two
        assert answer["count"] >= 1000 and matching / 2 <= answer["count"] <= 2 * matching
    else:
        assert answer == {"count": matching}
    assert estimating.count_customers({"q": "没有这样的公司"}) == {"count": 0}

    summary, exact_summary = (s.summarize_customers({"q": "轴承"}) for s in (estimating, exact))
    assert exact_summary["total"] == matching and "estimated" not in exact_summary
    if summary.get("estimated"):
        assert summary["total"] >= 1000 and matching / 2 <= summary["total"] <= 2 * matching
        assert summary["total"] == sum(summary["by_status"].values())
    else:
        assert summary == exact_summary
    nothing = estimating.summarize_customers({"q": "没有这样的公司"})
    assert nothing == {"total": 0, "by_status": {}, "by_category": {}, "by_department": {}}

    # A scope of several grants (values bound as lists) is estimated alike.
    bind(CROSSED, "req-pg")
    crossed = exact.count_customers({"tags": "重点客户"})["count"]
    estimated = counting(db, 100).count_customers({"tags": "重点客户"})
    assert estimated["estimated"] is True and crossed / 2 <= estimated["count"] <= 2 * crossed
    bind(SALES, "req-pg")

    # What customer_counts answers, and a filter the planner knows to be rare, stay exact.
    assert estimating.count_customers({}) == exact.count_customers({})
    assert estimating.count_customers({"status": "formal"}) == exact.count_customers(
        {"status": "formal"}
    )
    assert estimating.count_customers({"erp_code": "E-1"}) == {"count": 0}
