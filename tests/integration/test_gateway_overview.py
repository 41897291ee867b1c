"""GET /api/customers/{id}/overview on the real broker: the gateway in front of the real org,
customer and sales services (demo org chart and customers; sales caught up from their
snapshots). Every part answered; sales stopped, then gone, and the customer still answered with
the sales parts marked unavailable; a customer out of the caller's scope is a 404."""

from __future__ import annotations

from decimal import Decimal

import pytest
from jsonschema import Draft202012Validator
from kombu import Connection
from nameko.testing.utils import get_container
from sqlalchemy import func, select

from crm_common.db import SessionScope, engine_for
from crm_common.migrations import upgrade
from customer.models import Contact as SourceContact
from customer.models import Customer as SourceCustomer
from customer.service import CustomerService
from demo.customer import ensure_demo
from demo.org import load_demo
from gateway.service import GatewayService
from org.hashing import HashCost, Passwords
from org.service import OrgService
from sales.application.catch_up import SNAPSHOTS
from sales.models import CatchUp
from sales.service import SalesService
from tests.integration.standins import Api, access_token, gateway_config, problem_of
from tests.support.polling import eventually
from tests.support.tokens import RUN_LONG

SELLING = (
    "customer:read",
    "customer:write",
    "opportunity:read",
    "opportunity:write",
    "activity:read",
    "activity:write",
)
RPC_TIMEOUT = 2


def token(user: str, department: str, *, permissions: tuple[str, ...] = SELLING) -> str:
    return access_token(
        user,
        ttl=RUN_LONG,
        username=user,
        department_id=department,
        permissions=list(permissions),
        grants=[{"owner": "self"}],
    )


SALES01 = token("u-sales-01", "d-east-sh")
SALES03 = token("u-sales-03", "d-north-bj")
CUSTOMERS_ONLY = token("u-sales-01", "d-east-sh", permissions=("customer:read",))


@pytest.fixture
def suite(rabbit_config, runner_factory, tmp_path):
    """The gateway, org, customer and sales in one runner; the config and the runner."""
    uris = {name: f"sqlite:///{tmp_path / f'{name}.db'}" for name in ("org", "customer", "sales")}
    upgrade("org", uris["org"])
    with SessionScope(engine_for(uris["org"])).session() as session:
        load_demo(session, Passwords(HashCost(1, 8, 1)).hash("Crm-demo-2026"), with_events=False)
    ensure_demo(uris["customer"], with_events=False)
    upgrade("sales", uris["sales"])
    config = gateway_config(
        rabbit_config,
        BACKEND_SERVICES="org,customer,sales",
        RPC_TIMEOUT=RPC_TIMEOUT,
        DB_URIS=uris,
        OUTBOX_POLL_SECONDS=0.2,
        METRICS_PORT=0,
    )
    runner = runner_factory(config, GatewayService, OrgService, CustomerService, SalesService)
    runner.start()
    sales_db = SessionScope(engine_for(uris["sales"]))

    def caught_up() -> bool:
        with sales_db.session() as session:
            return session.scalar(select(func.count()).select_from(CatchUp)) == len(SNAPSHOTS)

    eventually(caught_up, timeout=60, what="sales caught up from org's and customer's snapshots")
    return config, runner


@pytest.fixture
def api(suite):
    config, _ = suite
    return Api(f"http://{config['WEB_SERVER_ADDRESS']}")


def customer_of(config, owner_id):
    """The id of a demo customer of ``owner_id`` with contacts, and how many it has."""
    with SessionScope(engine_for(config["DB_URIS"]["customer"])).session() as session:
        found = session.execute(
            select(SourceCustomer.id, func.count(SourceContact.id))
            .join(SourceContact, SourceContact.customer_id == SourceCustomer.id)
            .where(SourceCustomer.owner_id == owner_id, SourceCustomer.status != "merged")
            .group_by(SourceCustomer.id)
            .order_by(SourceCustomer.code)
            .limit(1)
        ).one()
    return str(found[0]), found[1]


def documented(api):
    """A validator of the overview as the OpenAPI document describes it."""
    document = api.get("/api/openapi.json", auth=False).json()
    operation = document["paths"]["/api/customers/{customer_id}/overview"]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/gateway.CustomerOverview"}
    return Draft202012Validator({**schema, "components": document["components"]})


def open_opportunity(api, customer_id, name, amount):
    created = api.post(
        "/api/opportunities",
        json={"name": name, "customer_id": customer_id, "expected_amount": amount},
        token=SALES01,
    )
    assert created.status_code == 201, created.text
    return created.json()


def test_every_part_is_answered(api, suite):
    config, _ = suite
    customer_id, contacts = customer_of(config, "u-sales-01")
    first = open_opportunity(api, customer_id, "五轴加工中心", "120000.00")
    second = open_opportunity(api, customer_id, "数控车床改造", "35000.55")
    abandoned = open_opportunity(api, customer_id, "旧设备回收", "8000")
    gone = api.post(
        f"/api/opportunities/{abandoned['id']}/abandon",
        json={"reason": "客户取消预算", "version": abandoned["version"]},
        token=SALES01,
    )
    assert gone.status_code == 200, gone.text
    visit = api.post(
        "/api/activities",
        json={
            "type": "visit",
            "subject": "拜访设备部",
            "customer_id": customer_id,
            "opportunity_id": first["id"],
            "status": "done",
            "result": "确认需求",
        },
        token=SALES01,
    )
    assert visit.status_code == 201, visit.text

    response = api.get(f"/api/customers/{customer_id}/overview", token=SALES01)

    assert response.status_code == 200, response.text
    overview = response.json()
    assert overview["customer_id"] == customer_id and overview["complete"] is True
    assert overview["customer"]["available"] is True
    assert overview["customer"]["record"]["id"] == customer_id
    assert overview["contacts"]["available"] is True
    assert len(overview["contacts"]["items"]) == contacts
    opportunities = overview["opportunities"]
    assert opportunities["available"] is True
    assert {item["id"] for item in opportunities["items"]} == {first["id"], second["id"]}
    weighted = sum(Decimal(item["weighted_amount"]) for item in opportunities["items"])
    assert opportunities["totals"] == [
        {"currency": "CNY", "count": 2, "amount": "155000.55", "weighted": str(weighted)}
    ]
    assert weighted == Decimal("15500.06")  # 10 % of each, each to the fen
    assert overview["activities"]["available"] is True
    assert [item["id"] for item in overview["activities"]["items"]] == [visit.json()["id"]]
    documented(api).validate(overview)


def test_sales_parts_the_caller_may_not_read_are_marked_forbidden(api, suite):
    config, _ = suite
    customer_id, _ = customer_of(config, "u-sales-01")

    overview = api.get(f"/api/customers/{customer_id}/overview", token=CUSTOMERS_ONLY).json()

    assert overview["customer"]["available"] is True and overview["complete"] is False
    for part in ("opportunities", "activities"):
        assert overview[part] == {"available": False, "reason": "forbidden", "service": "sales"}


def test_a_customer_out_of_scope_is_a_404(api, suite):
    config, _ = suite
    customer_id, _ = customer_of(config, "u-sales-01")

    own = api.get(f"/api/customers/{customer_id}", token=SALES03)
    overview = api.get(f"/api/customers/{customer_id}/overview", token=SALES03)

    assert problem_of(own, 404)["code"] == problem_of(overview, 404)["code"] == "not_found"
    assert problem_of(api.get("/api/customers/missing/overview", token=SALES01), 404)


def test_without_sales_the_customer_is_still_answered(api, suite):
    config, runner = suite
    customer_id, contacts = customer_of(config, "u-sales-01")
    schema = documented(api)
    get_container(runner, SalesService).stop()

    stopped = api.get(f"/api/customers/{customer_id}/overview", token=SALES01)

    assert stopped.status_code == 200, stopped.text
    overview = stopped.json()
    assert overview["complete"] is False
    assert overview["customer"]["record"]["id"] == customer_id
    assert len(overview["contacts"]["items"]) == contacts
    # its queue is still there: the requests wait in it until the request's deadline
    for part in ("opportunities", "activities"):
        assert overview[part] == {"available": False, "reason": "timeout", "service": "sales"}
    schema.validate(overview)

    with Connection(config["AMQP_URI"]) as connection:
        connection.default_channel.queue_delete("rpc-sales")
    gone = api.get(f"/api/customers/{customer_id}/overview", token=SALES01).json()

    assert gone["customer"]["available"] is True
    for part in ("opportunities", "activities"):
        assert gone[part] == {"available": False, "reason": "unavailable", "service": "sales"}
