"""The gateway's RPC plumbing against a real broker and the stand-ins: context propagation,
deadlines, missing services, health and readiness, request ids in log lines, HTTP metrics; and
the stand-ins themselves checked against the real services they stand in for.
"""

from __future__ import annotations

import inspect
import time
import uuid

import eventlet
import pytest
from jsonschema import Draft202012Validator

from crm_common.context import Principal, bind
from crm_common.entrypoints import public, rpc
from crm_common.schemas import json_schemas
from customer import schemas as customer_schemas
from customer.service import CustomerService
from gateway import openapi, routes
from gateway.table import Const
from org import schemas as org_schemas
from org.service import OrgService
from tests.integration.standins import (
    CUSTOMER_ID,
    SLOW_SECONDS,
    USER,
    StandInCustomer,
    StandInOrg,
    gateway_config,
    problem_of,
    start_gateway,
)


def test_health_needs_no_token_and_says_ok(api):
    response = api.get("/health", auth=False)

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_principal_and_request_id_reach_the_service(api):
    response = api.get(f"/api/customers/{CUSTOMER_ID}", headers={"X-Request-ID": "req-abc.1"})

    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "req-abc.1"
    [call] = StandInCustomer.calls
    assert call == {
        "method": "get_customer",
        "principal": USER,
        "request_id": "req-abc.1",
        "customer_id": CUSTOMER_ID,
    }


def test_a_request_without_an_id_gets_a_fresh_one_that_the_service_sees(api):
    first = api.get(f"/api/customers/{CUSTOMER_ID}")
    second = api.get(
        f"/api/customers/{CUSTOMER_ID}", headers={"X-Request-ID": "bad id\twith space"}
    )

    generated = [first.headers["X-Request-ID"], second.headers["X-Request-ID"]]
    assert all(uuid.UUID(value) for value in generated)
    assert generated[0] != generated[1]
    assert [call["request_id"] for call in StandInCustomer.calls] == generated


def test_a_slow_service_gives_504_within_the_deadline_and_the_gateway_goes_on(api):
    started = time.monotonic()
    response = api.get("/api/customers/slow")
    elapsed = time.monotonic() - started

    problem = problem_of(response, 504)
    assert problem["code"] == "upstream_timeout"
    assert problem["service"] == "customer"
    assert 0.9 <= elapsed < SLOW_SECONDS - 0.5
    assert api.get(f"/api/customers/{CUSTOMER_ID}").json()["id"] == CUSTOMER_ID


def test_a_service_without_a_queue_gives_503(lonely_api):
    started = time.monotonic()
    response = lonely_api.get(f"/api/customers/{CUSTOMER_ID}")

    problem = problem_of(response, 503)
    assert problem["code"] == "unavailable"
    assert problem["service"] == "customer"
    assert "customer" in problem["detail"]
    assert response.headers["Retry-After"]
    assert time.monotonic() - started < 1.0


def test_ready_when_broker_and_services_answer(rabbit_config, runner_factory):
    api = start_gateway(runner_factory, gateway_config(rabbit_config), StandInCustomer, StandInOrg)

    response = api.get("/ready", auth=False)

    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"broker": "ok", "customer": "ok", "revocations": "ok"},
    }


class StandInSales:
    """Only answers the readiness ping."""

    name = "sales"

    @rpc
    @public
    def ping(self) -> str:
        return "pong"


class StandInNotify:
    """Only answers the readiness ping."""

    name = "notify"

    @rpc
    @public
    def ping(self) -> str:
        return "pong"


def test_by_default_ready_asks_every_backend_service(rabbit_config, runner_factory):
    config = gateway_config(rabbit_config)
    del config["BACKEND_SERVICES"]
    api = start_gateway(
        runner_factory, config, StandInCustomer, StandInOrg, StandInSales, StandInNotify
    )

    response = api.get("/ready", auth=False)

    assert response.json() == {
        "status": "ready",
        "checks": {
            "broker": "ok",
            "customer": "ok",
            "org": "ok",
            "sales": "ok",
            "notify": "ok",
            "revocations": "ok",
        },
    }


def test_not_ready_names_the_missing_service(lonely_api):
    response = lonely_api.get("/ready", auth=False)

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {"broker": "ok", "customer": "unavailable", "revocations": "loading"},
    }


def test_the_request_id_is_on_the_gateways_and_the_services_log_lines(api, log_records):
    crashed = api.get("/api/customers/crash", headers={"X-Request-ID": "req-crash-1"})
    refused = api.get("/api/customers/x", auth=False, headers={"X-Request-ID": "req-refused-1"})

    assert crashed.status_code == 500
    assert refused.status_code == 401
    gateway_error = [r for r in log_records if r.name == "gateway.problems"]
    service_error = [r for r in log_records if "secret-internal-detail" in r.getMessage()]
    refusal = [r for r in log_records if r.name == "gateway.web" and "refused" in r.getMessage()]
    assert gateway_error and {r.request_id for r in gateway_error} == {"req-crash-1"}
    assert service_error and {r.request_id for r in service_error} == {"req-crash-1"}
    assert refusal and {r.request_id for r in refusal} == {"req-refused-1"}


def test_a_request_that_timed_out_in_the_queue_is_not_carried_out_later(
    rabbit_config, runner_factory, container_factory
):
    config = gateway_config(rabbit_config)
    service = container_factory(StandInCustomer, config)
    service.start()
    service.stop()
    api = start_gateway(runner_factory, config)

    problem = problem_of(api.get("/api/customers/queued-too-long"), 504)
    assert problem["code"] == "upstream_timeout"
    eventlet.sleep(0.2)  # past the request's expiry in the queue
    revived = container_factory(StandInCustomer, config)
    revived.start()

    assert api.get(f"/api/customers/{CUSTOMER_ID}").status_code == 200
    assert [call["customer_id"] for call in StandInCustomer.calls] == [CUSTOMER_ID]


# --- HTTP metrics ----------------------------------------------------------------------


def test_each_request_is_counted_by_its_route_template_and_status(api):
    from prometheus_client import REGISTRY

    def counted(route, status):
        labels = {"method": "GET", "route": route, "status": status}
        return REGISTRY.get_sample_value("crm_http_requests_total", labels) or 0.0

    before = counted("/api/customers/<customer_id>", "404"), counted("unmatched", "404")

    api.get("/api/customers/missing")
    api.get("/api/no-such-route/x1")

    after = counted("/api/customers/<customer_id>", "404"), counted("unmatched", "404")
    assert after == (before[0] + 1, before[1] + 1)


# --- the stand-ins answer as the real services do ----------------------------------------

STAND_INS = {"customer": (StandInCustomer, CustomerService), "org": (StandInOrg, OrgService)}
PUBLISHED = {
    "customer": json_schemas("customer", customer_schemas.PUBLIC_SCHEMAS),
    "org": json_schemas("org", org_schemas.PUBLIC_SCHEMAS),
}
OWN_ENTRYPOINTS = {"ping", "api_schemas"}


def stand_in_methods(stand_in):
    return sorted(
        name
        for name, member in vars(stand_in).items()
        if getattr(member, "nameko_entrypoints", None) and name not in OWN_ENTRYPOINTS
    )


def signature_of(fn):
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize("service", sorted(STAND_INS))
def test_each_stand_in_rpc_has_the_real_services_signature(service):
    stand_in, real = STAND_INS[service]

    for name in stand_in_methods(stand_in):
        assert hasattr(real, name), f"{service} has no RPC {name}"
        assert signature_of(getattr(stand_in, name)) == signature_of(getattr(real, name)), name


ORG_INPUT = {"users": {"username": "sales02", "password": "long-enough-1"}}
SAMPLE_CALLS = {
    "customer": {
        "get_customer": (CUSTOMER_ID,),
        "create_customer": ({"name": "华南五金"},),
        "update_customer": (CUSTOMER_ID, {"region": "华南"}, 3),
        "list_customers": ({"kind": "individual"},),
        "count_customers": ({},),
        "summarize_customers": ({},),
        "list_contacts": (CUSTOMER_ID,),
        "create_contact": (CUSTOMER_ID, {"name": "李娜"}),
        "get_contact": ("ct-1",),
        "update_contact": ("ct-1", {"title": "经理"}, 7),
        "list_relationships": (CUSTOMER_ID,),
        "add_relationship": (CUSTOMER_ID, {"kind": "parent"}),
        "remove_relationship": (CUSTOMER_ID, "rel-1"),
        "list_care_records": (CUSTOMER_ID,),
        "add_care_record": (CUSTOMER_ID, {"kind": "gift", "date": "2026-09-10"}),
        "customer_history": (CUSTOMER_ID,),
        "merge_customers": (CUSTOMER_ID, "c-2"),
        "import_customers": ("name\r\n华东机电\r\n",),
        "export_customers": ({},),
    },
    "org": {
        **{
            f"{rpc}:{kind}": args
            for kind in ("departments", "regions", "people", "users", "roles", "grants")
            for rpc, args in (
                ("list_records", (kind, {})),
                ("get_record", (kind, "r-1")),
                ("create_record", (kind, ORG_INPUT.get(kind, {"name": "x"}))),
                ("update_record", (kind, "r-1", {}, 2)),
                ("set_disabled", (kind, "r-1", True)),
            )
        },
        "unlock_user": ("u-1",),
        "reset_password": ("u-1", "long-enough-1"),
        "list_permissions": (),
        "audit_log": ({},),
        "describe_me": (),
        "sign_in": ("sales01", "Crm-demo-2026"),
        "refresh": ("unknown-refresh-token",),
        "sign_out": ("unknown-refresh-token",),
        "revocation_state": (),
        "change_password": ("Crm-demo-2026", "a-much-longer-password-1"),
    },
}
HANDWRITTEN_RESULTS = {("org", "describe_me", None): ("org.Me", "object")}
"""Results of RPCs whose routes the gateway writes itself (the rest follow the route tables)."""


def documented_results():
    """``(service, rpc, kind) -> (schema, shape)`` of every RPC a route answers with; ``kind``
    is the fixed first argument of the org record routes, else None."""
    found = dict(HANDWRITTEN_RESULTS)
    for table in routes.tables():
        for row in table.rows:
            kind = row.args[0].value if row.args and isinstance(row.args[0], Const) else None
            if row.response:
                found[table.service, row.rpc, kind] = (table.qualified(row.response), row.shape)
    return found


def schema_for(shape, name):
    ref = {"$ref": f"#/components/schemas/{name}"}
    if shape == "items":
        return {"type": "array", "items": ref}
    if shape == "page":
        return {
            "type": "object",
            "properties": {"items": {"type": "array", "items": ref}},
            "required": ["items", "next_cursor"],
        }
    return ref


@pytest.mark.parametrize("service", sorted(STAND_INS))
def test_stand_in_results_are_valid_by_the_real_services_schemas(service):
    stand_in = STAND_INS[service][0]
    samples = SAMPLE_CALLS[service]
    components = openapi.namespaced(PUBLISHED)
    results = documented_results()
    StandInOrg.reset()
    permissions = ("customer:read", "customer:write", "org:admin")
    bind(Principal(USER, department_id="d-east-sh", permissions=permissions))
    checked = set()
    try:
        for sample, args in samples.items():
            rpc, _, kind = sample.partition(":")
            try:
                result = getattr(stand_in(), rpc)(*args)
            except Exception as exc:  # an error is an answer too, as long as it is typed
                assert getattr(exc, "code", None), f"{sample} raised {exc!r}"
                continue
            checked.add((service, rpc, kind or None))
            if (service, rpc, kind or None) in results:
                name, shape = results[service, rpc, kind or None]
                schema = {**schema_for(shape, name), "components": {"schemas": components}}
                Draft202012Validator(schema).validate(result)
    finally:
        bind(None)
    assert {name.split(":")[0] for name in samples} == set(stand_in_methods(stand_in))
    assert {key for key in results if key[0] == service} <= checked
