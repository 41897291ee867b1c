"""The gateway against a real broker and a small stand-in "customer" service.

This module holds the stand-in and the harness the other ``test_gateway_*`` modules use, and
tests the RPC plumbing itself: context propagation, deadlines, missing services, health and
readiness, and request ids in log lines.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import eventlet
import pytest
import requests
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema, fields
from nameko.rpc import rpc
from nameko.testing.utils import find_free_port

from crm_common.context import CallContext, current_principal, current_request_id
from crm_common.errors import (
    EXPECTED_ERRORS,
    Conflict,
    Forbidden,
    NotFound,
    Unauthenticated,
    Unavailable,
    ValidationFailed,
)
from crm_common.logs import RequestIdFilter
from gateway.service import GatewayService
from gateway.tokens import TokenSettings, mint

SECRET = "integration-test-secret-0123456789abcdef"
TOKENS = TokenSettings(secret=SECRET, issuer="crm-test", audience="crm-api-test")
USER = "u-sales-01"
SLOW_SECONDS = 3.0
CUSTOMER_ID = "8a1e3c52-0000-4000-8000-000000000001"


class ContactSchema(Schema):
    id = fields.String()
    name = fields.String(required=True)
    mobile = fields.String()
    version = fields.Integer()


class CustomerSchema(Schema):
    id = fields.String()
    code = fields.String()
    name = fields.String(required=True)
    region = fields.String()
    version = fields.Integer()
    contacts = fields.List(fields.Nested(ContactSchema))


class CustomerInputSchema(Schema):
    name = fields.String(required=True)
    region = fields.String()


def customer(**overrides: Any) -> dict[str, Any]:
    return {
        "id": CUSTOMER_ID,
        "code": "C2026000001",
        "name": "华东机电设备有限公司",
        "region": "华东",
        "version": 3,
        **overrides,
    }


class StandInCustomer:
    """Answers like the customer service would, from canned data; records who called."""

    name = "customer"
    context = CallContext()
    calls: list[dict[str, Any]] = []

    def _seen(self, method: str, **arguments: Any) -> None:
        principal = None
        try:
            principal = current_principal().user_id
        except Exception:
            principal = None
        StandInCustomer.calls.append(
            {
                "method": method,
                "principal": principal,
                "request_id": current_request_id(),
                **arguments,
            }
        )

    @rpc
    def ping(self) -> str:
        return "pong"

    @rpc
    def api_schemas(self) -> dict[str, Any]:
        spec = APISpec("customer", "1", "3.1.0", plugins=[MarshmallowPlugin()])
        spec.components.schema("Customer", schema=CustomerSchema)
        spec.components.schema("CustomerInput", schema=CustomerInputSchema)
        return spec.to_dict()["components"]["schemas"]

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def get_customer(self, customer_id: str) -> dict[str, Any]:
        self._seen("get_customer", customer_id=customer_id)
        if customer_id == "missing":
            raise NotFound.of("customer", customer_id)
        if customer_id == "hidden":
            raise Forbidden("this customer belongs to another department")
        if customer_id == "anonymous":
            raise Unauthenticated("the call carries no principal")
        if customer_id == "degraded":
            raise Unavailable("the customer database is not reachable", {"dependency": "db"})
        if customer_id == "slow":
            eventlet.sleep(SLOW_SECONDS)
        if customer_id == "crash":
            raise RuntimeError("secret-internal-detail")
        return customer(id=customer_id)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def create_customer(self, data: dict, allow_duplicate: bool = False) -> dict[str, Any]:
        self._seen("create_customer", data=data, allow_duplicate=allow_duplicate)
        if not data.get("name"):
            raise ValidationFailed(
                "the input is not valid",
                {"errors": {"name": ["Missing data for required field."]}},
            )
        if data["name"] == "华东机电" and not allow_duplicate:
            raise Conflict(
                "likely duplicates exist",
                {
                    "reason": "duplicate_customer",
                    "candidates": [
                        {
                            "id": CUSTOMER_ID,
                            "code": "C2026000001",
                            "name": "华东机电设备有限公司",
                            "score": 0.92,
                            "reasons": ["similar_name"],
                        }
                    ],
                },
            )
        return customer(id=str(uuid.uuid4()), name=data["name"], version=1)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def update_customer(
        self, customer_id: str, changes: dict, expected_version: int
    ) -> dict[str, Any]:
        self._seen(
            "update_customer",
            customer_id=customer_id,
            changes=changes,
            expected_version=expected_version,
        )
        if expected_version != 3:
            raise Conflict(
                "the customer was changed by someone else",
                {"reason": "stale_version", "current_version": 3},
            )
        return customer(id=customer_id, version=4, **changes)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_customers(self, query: dict) -> dict[str, Any]:
        self._seen("list_customers", query=query)
        return {"items": [customer()], "next_cursor": "next-page"}

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_contacts(self, customer_id: str) -> list[dict[str, Any]]:
        self._seen("list_contacts", customer_id=customer_id)
        return [{"id": "ct-1", "name": "张伟", "version": 1}]

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def create_contact(self, customer_id: str, data: dict) -> dict[str, Any]:
        self._seen("create_contact", customer_id=customer_id, data=data)
        if "mobile" in data and not str(data["mobile"]).startswith("1"):
            raise ValidationFailed(
                "the input is not valid", {"errors": {"mobile": ["not a mainland China mobile"]}}
            )
        return {"id": "ct-2", "customer_id": customer_id, "version": 1, **data}

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def get_contact(self, contact_id: str) -> dict[str, Any]:
        self._seen("get_contact", contact_id=contact_id)
        return {"id": contact_id, "name": "张伟", "version": 7}

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def update_contact(self, contact_id: str, changes: dict, expected_version: int) -> dict:
        self._seen(
            "update_contact",
            contact_id=contact_id,
            changes=changes,
            expected_version=expected_version,
        )
        return {"id": contact_id, "version": expected_version + 1, **changes}

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_relationships(self, customer_id: str) -> list[dict[str, Any]]:
        self._seen("list_relationships", customer_id=customer_id)
        return [{"id": "rel-1", "kind": "partner", "related_customer_id": "c-2"}]

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def add_relationship(self, customer_id: str, data: dict) -> dict[str, Any]:
        self._seen("add_relationship", customer_id=customer_id, data=data)
        return {"id": "rel-2", "version": 1, **data}

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def remove_relationship(self, customer_id: str, relationship_id: str) -> None:
        self._seen("remove_relationship", customer_id=customer_id, relationship_id=relationship_id)
        if relationship_id == "missing":
            raise NotFound.of("relationship", relationship_id)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_care_records(self, customer_id: str) -> list[dict[str, Any]]:
        self._seen("list_care_records", customer_id=customer_id)
        return [{"id": "care-1", "kind": "festival", "date": "2026-02-17"}]

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def add_care_record(self, customer_id: str, data: dict) -> dict[str, Any]:
        self._seen("add_care_record", customer_id=customer_id, data=data)
        return {"id": "care-2", "version": 1, **data}

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def customer_history(
        self, customer_id: str, cursor: str | None = None, limit: int | None = None
    ) -> dict[str, Any]:
        self._seen("customer_history", customer_id=customer_id, cursor=cursor, limit=limit)
        return {
            "items": [{"field": "region", "old": "华北", "new": "华东", "actor_id": USER}],
            "next_cursor": None,
        }

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def merge_customers(self, survivor_id: str, merged_id: str) -> dict[str, Any]:
        self._seen("merge_customers", survivor_id=survivor_id, merged_id=merged_id)
        return customer(id=survivor_id, version=5)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def import_customers(self, csv_text: str) -> dict[str, Any]:
        self._seen("import_customers", csv_text=csv_text)
        rows = [line for line in csv_text.splitlines()[1:] if line.strip()]
        errors = [
            {"row": number, "errors": {"name": ["required"]}}
            for number, line in enumerate(rows, start=2)
            if line.startswith(",")
        ]
        return {"created": len(rows) - len(errors), "updated": 0, "errors": errors}

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def export_customers(self, query: dict) -> str:
        self._seen("export_customers", query=query)
        return "\ufeffcode,name\r\nC2026000001,华东机电设备有限公司\r\n"


@dataclass
class Api:
    """A client of one running gateway."""

    base_url: str
    user: str = USER
    session: requests.Session = field(default_factory=requests.Session)

    def token(self, **kwargs: Any) -> str:
        return mint(TOKENS, self.user, **kwargs)

    def request(
        self, method: str, path: str, *, token: str | None = None, auth: bool = True, **kwargs: Any
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if auth:
            headers.setdefault("Authorization", f"Bearer {token or self.token()}")
        kwargs.setdefault("timeout", 15)
        return self.session.request(method, self.base_url + path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)


def gateway_config(rabbit_config: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    return {
        **rabbit_config,
        "WEB_SERVER_ADDRESS": f"127.0.0.1:{find_free_port()}",
        "TOKEN_SECRET": TOKENS.secret,
        "TOKEN_ISSUER": TOKENS.issuer,
        "TOKEN_AUDIENCE": TOKENS.audience,
        "RPC_TIMEOUT": 1,
        "READY_TIMEOUT": 0.5,
        "BACKEND_SERVICES": "customer",
        **overrides,
    }


def start_gateway(runner_factory: Any, config: dict[str, Any], *services: type) -> Api:
    """Run the gateway (and the given services) until the test ends; a client of it."""
    StandInCustomer.calls.clear()
    runner = runner_factory(config, GatewayService, *services)
    runner.start()
    return Api(f"http://{config['WEB_SERVER_ADDRESS']}")


def problem_of(response: requests.Response, status: int) -> dict[str, Any]:
    """The problem body of ``response``, after checking the status and media type."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert body["type"] == f"urn:crm:problem:{body['code']}"
    for member in ("title", "detail"):
        assert isinstance(body[member], str) and body[member]
    return body


@pytest.fixture
def api(rabbit_config, runner_factory):
    return start_gateway(runner_factory, gateway_config(rabbit_config), StandInCustomer)


@pytest.fixture
def lonely_api(rabbit_config, runner_factory):
    """A gateway with no customer service behind it."""
    return start_gateway(runner_factory, gateway_config(rabbit_config))


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.addFilter(RequestIdFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def log_records():
    handler = Collect()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler.records
    root.removeHandler(handler)
    root.setLevel(previous)


# --- the tests -----------------------------------------------------------------------------


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


def test_ready_when_broker_and_services_answer(api):
    response = api.get("/ready", auth=False)

    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"broker": "ok", "customer": "ok"}}


def test_not_ready_names_the_missing_service(lonely_api):
    response = lonely_api.get("/ready", auth=False)

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {"broker": "ok", "customer": "unavailable"},
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
    eventlet.sleep(0.2)
    revived = container_factory(StandInCustomer, config)
    revived.start()

    assert api.get(f"/api/customers/{CUSTOMER_ID}").status_code == 200
    assert [call["customer_id"] for call in StandInCustomer.calls] == [CUSTOMER_ID]
