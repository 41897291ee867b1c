"""The broker users of deploy/rabbitmq/definitions.json, on the real broker.

A fresh vhost gets the generated users and permissions through the management API; every
service of the registry and the gateway then run as those users. The suite works (sign-in, a
customer read, an org event reaching customer's consumer) and a service cannot reach what is
not its own.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import amqp
import pytest
import requests
from kombu import Connection

from devstack import registry
from devstack.stack import AMQP_HOST, MANAGEMENT_URI, Suite
from tests.support.polling import eventually

DEFINITIONS = registry.ROOT / "deploy" / "rabbitmq" / "definitions.json"
PROCESSES = [*(service.name for service in registry.load()), "gateway"]


def management(method: str, path: str, **kwargs: object) -> requests.Response:
    response = requests.request(method, MANAGEMENT_URI.rstrip("/") + path, timeout=10, **kwargs)
    response.raise_for_status()
    return response


@pytest.fixture(scope="module")
def users() -> dict[str, str]:
    """``{process: user}``: a user of this test run per process, with a random password."""
    run = uuid.uuid4().hex[:8]
    return {process: f"crm-test-{run}-{process}" for process in PROCESSES}


@pytest.fixture(scope="module")
def passwords() -> dict[str, str]:
    return {process: uuid.uuid4().hex for process in PROCESSES}


@pytest.fixture(scope="module")
def suite(tmp_path_factory, users, passwords):
    definitions = json.loads(DEFINITIONS.read_text(encoding="utf-8"))
    rights = {grant["user"]: grant for grant in definitions["permissions"]}
    topics = {grant["user"]: grant for grant in definitions["topic_permissions"]}
    stack = Suite(
        tmp_path_factory.mktemp("broker-users"),
        amqp_users={p: f"{users[p]}:{passwords[p]}" for p in PROCESSES},
    )
    vhost = quote(stack.vhost, safe="")
    management("put", f"/api/vhosts/{vhost}")
    try:
        for process, user in users.items():
            management(
                "put", f"/api/users/{user}", json={"password": passwords[process], "tags": ""}
            )
            grant = {key: rights[process][key] for key in ("configure", "write", "read")}
            management("put", f"/api/permissions/{vhost}/{user}", json=grant)
            topic = {key: topics[process][key] for key in ("exchange", "write", "read")}
            management("put", f"/api/topic-permissions/{vhost}/{user}", json=topic)
        with stack:
            yield stack
    finally:
        for user in users.values():
            requests.delete(f"{MANAGEMENT_URI.rstrip('/')}/api/users/{user}", timeout=10)
        requests.delete(f"{MANAGEMENT_URI.rstrip('/')}/api/vhosts/{vhost}", timeout=10)


@pytest.fixture
def as_customer(suite, users, passwords):
    """A connection to the suite's vhost as the customer service's user."""
    with connect(users["customer"], passwords["customer"], suite.vhost) as connection:
        yield connection


def connect(user: str, password: str, vhost: str) -> Connection:
    return Connection(f"amqp://{user}:{password}@{AMQP_HOST}/{quote(vhost, safe='')}")


def test_every_process_connects_as_its_own_user(suite, users):
    def users_seen() -> set[str]:
        connections = management("get", "/api/connections").json()
        return {c["user"] for c in connections if c.get("vhost") == suite.vhost}

    eventually(
        lambda: set(users.values()) <= users_seen(), timeout=30, what="every process connected"
    )
    assert "guest" not in users_seen()


def test_sign_in_and_a_customer_read_work_through_the_gateway(suite):
    sales = suite.client("sales01")
    assert sales.get(suite.url("/api/me")).status_code == 200
    response = sales.get(suite.url("/api/customers"))
    assert response.status_code == 200, response.text
    assert "items" in response.json()


def test_an_org_event_reaches_the_customer_consumer(suite):
    admin = suite.client("admin")
    code = "t" + uuid.uuid4().hex[:8]
    response = admin.post(
        suite.url("/api/org/departments"),
        json={"code": code, "name": f"测试部{code}", "type": "sales", "parent_id": "d-east"},
    )
    assert response.status_code == 201, response.text
    department = response.json()["id"]
    manager = suite.client("branch.east")

    def placed() -> bool:
        answer = manager.post(
            suite.url("/api/customers"),
            json={"name": f"新部门客户{code}", "department_id": department},
        )
        assert answer.status_code in (201, 422), answer.text
        return answer.status_code == 201

    eventually(placed, timeout=30, interval=0.5, what="the new department known to customer")


def refused(attempt: Callable[[Any], object], connection: Connection) -> None:
    """``attempt(channel)`` ends in ACCESS_REFUSED; a publish is refused asynchronously, so a
    synchronous call on the same channel follows it to bring the refusal back."""
    channel = connection.channel()
    with pytest.raises(amqp.exceptions.AccessRefused, match="ACCESS_REFUSED"):
        attempt(channel)
        channel.basic_qos(0, 1, False)


def test_customer_cannot_consume_org_rpc_queue(as_customer):
    refused(lambda channel: channel.basic_get("rpc-org"), as_customer)
    refused(lambda channel: channel.basic_consume("rpc-org", callback=print), as_customer)


def test_customer_cannot_publish_to_org_events(as_customer):
    forged = amqp.Message(b'{"forged": true}', content_type="application/json")
    refused(
        lambda channel: channel.basic_publish(
            forged, exchange="org.events", routing_key="grants_changed"
        ),
        as_customer,
    )


def test_customer_cannot_listen_to_org_calls_from_a_queue_of_its_own(as_customer):
    channel = as_customer.channel()
    snoop = f"customer.snoop-{uuid.uuid4().hex[:8]}"
    channel.queue_declare(snoop, auto_delete=True)
    refused(lambda channel: channel.queue_bind(snoop, "nameko-rpc", "org.*"), as_customer)
    refused(lambda channel: channel.queue_bind(snoop, "nameko-rpc", "#"), as_customer)


def test_customer_still_reaches_its_own_queues(as_customer):
    channel = as_customer.channel()
    assert channel.basic_get("rpc-customer") is None
    assert channel.basic_get("customer.dead-letters") is None


def test_no_process_was_refused_anything_it_does(suite):
    """Run last: every process's own work (start, calls, events, the gateway's revocation
    sync) stayed within its permissions."""
    logs = suite.logs()
    assert "ACCESS_REFUSED" not in logs, logs


def test_the_broker_imports_the_definitions_and_their_passwords_work():
    """The generated file as the broker loads it (users renamed for this run, on a vhost of
    its own): every user logs in with its documented local password."""
    run = uuid.uuid4().hex[:8]
    vhost = f"crm_definitions_{run}"
    definitions = json.loads(DEFINITIONS.read_text(encoding="utf-8"))
    processes = [u["name"] for u in definitions["users"] if u["name"] != registry.BROKER_ADMIN]
    renamed = {name: f"crm-test-{run}-{name}" for name in processes}

    def ours(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {**entry, "user": renamed[entry["user"]], "vhost": vhost}
            for entry in entries
            if entry["user"] in renamed
        ]

    imported = {
        "vhosts": [{"name": vhost}],
        "users": [
            {**u, "name": renamed[u["name"]]} for u in definitions["users"] if u["name"] in renamed
        ],
        "permissions": ours(definitions["permissions"]),
        "topic_permissions": ours(definitions["topic_permissions"]),
    }
    try:
        management("post", "/api/definitions", json=imported)
        for name, user in renamed.items():
            if name == registry.ERP_USER:
                continue  # not a Nameko process: its own test checks what it may do
            with connect(user, name, vhost) as connection:
                channel = connection.channel()
                channel.queue_declare(f"rpc.reply-{name}-{run}", auto_delete=True)
            topics = management("get", f"/api/topic-permissions/{quote(vhost)}/{user}").json()
            assert [t["exchange"] for t in topics] == ["nameko-rpc"], user
    finally:
        for user in renamed.values():
            requests.delete(f"{MANAGEMENT_URI.rstrip('/')}/api/users/{user}", timeout=10)
        requests.delete(f"{MANAGEMENT_URI.rstrip('/')}/api/vhosts/{vhost}", timeout=10)
