"""The ERP integration's broker topology on the real RabbitMQ: what ``make topology`` and the
definitions file declare, that declaring again changes nothing, that ERP events published
before any service ran wait for it, and that sales' handlers find their queues as
``crm_common.consumer`` would have declared them."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import amqp
import pika
import pytest
import requests
from kombu import Connection
from sqlalchemy import select

from crm_common.consumer import DEFAULT_RETRY_DELAYS, ReceivedEvent, event_handler
from crm_common.db import Database, SessionScope, engine_for
from crm_common.events import EnvelopeSchema
from crm_common.kit import ServiceKit
from crm_common.retries import retried_exchange, retry_queue, retry_queue_arguments
from devstack import registry, topology
from devstack.stack import Suite
from sales.schemas.erp import ItemUpdatedSchema
from tests.support.polling import eventually
from tests.unit.common.models import Base, InboxEvent, Note

DEFINITIONS = registry.ROOT / "deploy" / "rabbitmq" / "definitions.json"


@pytest.fixture
def management(pytestconfig):
    base = pytestconfig.getoption("RABBIT_API_URI").rstrip("/")

    def call(method: str, path: str, **kwargs: Any) -> Any:
        response = requests.request(method, f"{base}/api{path}", timeout=10, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    return call


def apply_topology(amqp_uri: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devstack.topology", "--amqp-uri", amqp_uri],
        cwd=registry.ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def snapshot(management, vhost: str) -> dict[str, Any]:
    """What the vhost holds: exchanges, queues with their type and arguments, bindings."""
    v = quote(vhost, safe="")
    return {
        "exchanges": {
            e["name"]: (e["type"], e["durable"], e["auto_delete"], e["internal"], e["arguments"])
            for e in management("get", f"/exchanges/{v}")
            if e["name"] and not e["name"].startswith("amq.")
        },
        "queues": {
            q["name"]: (q.get("type"), q["durable"], q["auto_delete"], q["arguments"])
            for q in management("get", f"/queues/{v}")
        },
        "bindings": sorted(
            (b["source"], b["destination"], b["routing_key"])
            for b in management("get", f"/bindings/{v}")
            if b["source"]
        ),
    }


def expected_snapshot() -> dict[str, Any]:
    wanted = topology.topology()
    return {
        "exchanges": {e.name: (e.type, True, False, False, {}) for e in wanted.exchanges},
        "queues": {q.name: ("quorum", True, False, q.arguments) for q in wanted.queues},
        "bindings": sorted((b.exchange, b.queue, b.routing_key) for b in wanted.bindings),
    }


def message_count(amqp_uri: str, queue: str) -> int:
    with Connection(amqp_uri) as connection:
        return int(connection.channel().queue_declare(queue, passive=True).message_count)


def publish_as_erp(amqp_uri: str, events: list[dict[str, Any]]) -> None:
    """Publish as the ERP does (pika, persistent, confirmed, mandatory)."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for envelope in events:
            channel.basic_publish(
                exchange=topology.ERP_EXCHANGE,
                routing_key=envelope["type"],
                body=json.dumps(envelope).encode(),
                properties=pika.BasicProperties(
                    content_type="application/json",
                    delivery_mode=pika.DeliveryMode.Persistent,
                    message_id=envelope["event_id"],
                ),
                mandatory=True,
            )
    finally:
        connection.close()


def erp_event(event_type: str) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": event_type,
        "version": 1,
        "occurred_at": datetime.now(UTC).isoformat(),
        "source": "erp",
        "data": {},
    }


def test_make_topology_declares_the_erp_exchanges_queues_and_bindings(rabbit_config, management):
    result = apply_topology(rabbit_config["AMQP_URI"])

    assert result.returncode == 0, result.stderr
    assert snapshot(management, rabbit_config["vhost"]) == expected_snapshot()


def test_the_handler_queues_agree_with_what_the_consumer_declares():
    delays = tuple(float(part) for part in DEFAULT_RETRY_DELAYS.split(","))
    assert delays == topology.RETRY_DELAYS
    queues = {queue.name: queue.arguments for queue in topology.topology().queues}
    handler = "sales.on_erp_invoice_issued"
    assert queues[handler] == {"x-queue-type": "quorum"}
    assert queues["sales.dead-letters"] == {"x-queue-type": "quorum"}
    assert queues["sales.retry.10000ms"] == {
        "x-queue-type": "quorum",
        **retry_queue_arguments("sales", 10.0),
    }
    declared = retry_queue("sales", 10.0)
    assert declared.queue_arguments == queues[declared.name]
    exchanges = {exchange.name: exchange.type for exchange in topology.topology().exchanges}
    assert exchanges["sales.retried"] == retried_exchange("sales").type == "direct"
    assert exchanges["sales.retry.10000ms"] == "fanout"
    bindings = {(b.exchange, b.queue, b.routing_key) for b in topology.topology().bindings}
    assert ("sales.retried", handler, handler) in bindings
    assert ("sales.retry.10000ms", "sales.retry.10000ms", "") in bindings


def test_applying_again_changes_nothing(rabbit_config, management):
    assert apply_topology(rabbit_config["AMQP_URI"]).returncode == 0
    publish_as_erp(rabbit_config["AMQP_URI"], [erp_event("item_updated")])
    before = snapshot(management, rabbit_config["vhost"])

    again = apply_topology(rabbit_config["AMQP_URI"])

    assert again.returncode == 0, again.stderr
    assert snapshot(management, rabbit_config["vhost"]) == before
    assert message_count(rabbit_config["AMQP_URI"], "sales.on_erp_item_updated") == 1


def test_a_queue_declared_otherwise_is_reported_and_kept(rabbit_config, management):
    """A classic queue of the same name (made by an older deployment, say) is not replaced:
    that would lose its messages."""
    uri = rabbit_config["AMQP_URI"]
    with Connection(uri) as connection:
        channel = connection.channel()
        channel.queue_declare("sales.on_erp_order_created", durable=True, auto_delete=False)
        channel.basic_publish(
            amqp.Message(b"kept"), exchange="", routing_key="sales.on_erp_order_created"
        )

    result = apply_topology(uri)

    assert result.returncode == 1
    assert "queue sales.on_erp_order_created exists with other arguments" in result.stderr
    queues = snapshot(management, rabbit_config["vhost"])["queues"]
    assert queues["sales.on_erp_order_created"][0] == "classic"
    assert message_count(uri, "sales.on_erp_order_created") == 1


def test_the_definitions_file_gives_a_booting_broker_the_same_topology(rabbit_config, management):
    """The broker imports the generated file's exchanges, queues and bindings (moved to this
    test's vhost) into exactly what ``make topology`` declares."""
    definitions = json.loads(DEFINITIONS.read_text(encoding="utf-8"))
    assert {k: definitions[k] for k in ("exchanges", "queues", "bindings")} == (
        topology.definitions(registry.BROKER_VHOST)
    )
    vhost = rabbit_config["vhost"]
    imported = {}
    for kind in ("exchanges", "queues", "bindings"):
        imported[kind] = [{**entry, "vhost": vhost} for entry in copy.deepcopy(definitions[kind])]

    management("post", f"/definitions/{quote(vhost, safe='')}", json=imported)

    assert snapshot(management, vhost) == expected_snapshot()


def test_an_order_request_the_erp_rejects_goes_to_its_dead_letters(rabbit_config):
    uri = rabbit_config["AMQP_URI"]
    assert apply_topology(uri).returncode == 0
    with Connection(uri) as connection:
        producer = connection.Producer()
        for event_type in ("order_confirmed", "order_cancel_requested", "opportunity_won"):
            producer.publish({"type": event_type}, exchange="sales.events", routing_key=event_type)
    assert message_count(uri, topology.ERP_QUEUE) == 2

    connection = pika.BlockingConnection(pika.URLParameters(uri))
    try:
        channel = connection.channel()
        method, _, body = channel.basic_get(topology.ERP_QUEUE)
        channel.basic_nack(method.delivery_tag, requeue=False)
    finally:
        connection.close()

    assert json.loads(body) == {"type": "order_confirmed"}
    eventually(
        lambda: message_count(uri, topology.ERP_DEAD_LETTERS) == 1, what="a dead-lettered request"
    )
    assert message_count(uri, topology.ERP_QUEUE) == 1


# -- a service that starts after the ERP has published -------------------------------------
class ErpStandIn(ServiceKit):
    """Sales as far as ERP events go: a handler per ERP event type, under the names the
    topology gives sales' queues, recording what it applied."""

    name = "sales"
    db = Database(Base)
    inbox_model = InboxEvent


def recorder(event_type: str) -> Any:
    def handle(self: ErpStandIn, event: ReceivedEvent) -> None:
        with self.db.session() as session:
            if event.first_delivery(session):
                session.add(Note(title=f"{event.type}:{event.event_id}"))

    handle.__name__ = f"on_erp_{event_type}"
    return event_handler("erp", event_type)(handle)


for _event_type in topology.ERP_EVENT_TYPES:
    setattr(ErpStandIn, f"on_erp_{_event_type}", recorder(_event_type))


def test_events_published_before_sales_ever_ran_are_all_handled_when_it_starts(
    rabbit_config, management, container_factory, tmp_path
):
    uri = rabbit_config["AMQP_URI"]
    assert apply_topology(uri).returncode == 0
    events = [erp_event(t) for t in topology.ERP_EVENT_TYPES for _ in range(3)]
    publish_as_erp(uri, events)
    for event_type in topology.ERP_EVENT_TYPES:
        assert message_count(uri, topology.handler_queue("sales", event_type)) == 3
    declared = snapshot(management, rabbit_config["vhost"])

    db_uri = f"sqlite:///{tmp_path / 'sales.db'}"
    Base.metadata.create_all(engine_for(db_uri))
    container_factory(ErpStandIn, {**rabbit_config, "DB_URIS": {"sales": db_uri}}).start()

    def applied() -> list[str]:
        with SessionScope(engine_for(db_uri)).session() as session:
            return sorted(session.scalars(select(Note.title)))

    expected = sorted(f"{e['type']}:{e['event_id']}" for e in events)
    eventually(lambda: applied() == expected, timeout=30, what="every waiting event applied")
    after = snapshot(management, rabbit_config["vhost"])
    for kind in ("exchanges", "queues"):
        kept = {k: v for k, v in after[kind].items() if k in declared[kind]}
        assert kept == declared[kind], kind
    topology_queues = {queue.name for queue in topology.topology().queues}
    started = {name for name in after["queues"] if name.startswith("sales.")} - topology_queues
    assert started == set(), "the consumer declared queues the topology does not have"
    assert all(message_count(uri, q) == 0 for q in topology_queues if q.startswith("sales."))


def test_the_readme_publisher_reaches_sales(rabbit_config):
    """The minimal publisher the README shows an ERP team works as written."""
    readme = (registry.ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## ERP integration", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    uri = rabbit_config["AMQP_URI"]
    assert apply_topology(uri).returncode == 0

    subprocess.run([sys.executable, "-c", code], env={"AMQP_URI": uri}, check=True, timeout=60)

    with Connection(uri) as connection:
        message = connection.channel().basic_get("sales.on_erp_item_updated", no_ack=True)
    envelope = json.loads(message.body)
    EnvelopeSchema().load(envelope)
    assert ItemUpdatedSchema().load(envelope["data"])["list_price"] == Decimal("18.50")
    assert message.properties["message_id"] == envelope["event_id"]


# -- the ERP's own broker user -------------------------------------------------------------
@pytest.fixture
def erp_user(rabbit_config, management):
    """The definitions file's ERP user, with a password of this test, on the test's vhost."""
    definitions = json.loads(DEFINITIONS.read_text(encoding="utf-8"))
    [rights] = [g for g in definitions["permissions"] if g["user"] == registry.ERP_USER]
    user, password = f"erp-test-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    vhost = quote(rabbit_config["vhost"], safe="")
    management("put", f"/users/{user}", json={"password": password, "tags": ""})
    try:
        grant = {key: rights[key] for key in ("configure", "write", "read")}
        management("put", f"/permissions/{vhost}/{user}", json=grant)
        base = rabbit_config["AMQP_URI"].split("@", 1)[1]
        yield f"amqp://{user}:{password}@{base}"
    finally:
        management("delete", f"/users/{user}")


def refused(action) -> bool:
    """Whether the broker closes the channel with 403 ACCESS_REFUSED on ``action``."""
    try:
        action()
    except pika.exceptions.ChannelClosedByBroker as exc:
        return exc.reply_code == 403
    return False


def test_the_erp_user_publishes_events_and_reads_order_requests_and_nothing_else(
    rabbit_config, erp_user
):
    uri = rabbit_config["AMQP_URI"]
    assert apply_topology(uri).returncode == 0
    with Connection(uri) as connection:
        connection.Producer().publish(
            {"type": "order_confirmed"}, exchange="sales.events", routing_key="order_confirmed"
        )
    event = erp_event("item_updated")

    publish_as_erp(erp_user, [event])  # confirmed and routed, as the ERP user

    assert message_count(uri, "sales.on_erp_item_updated") == 1
    connection = pika.BlockingConnection(pika.URLParameters(erp_user))
    try:
        method, _, body = connection.channel().basic_get(topology.ERP_QUEUE, auto_ack=True)
        assert json.loads(body) == {"type": "order_confirmed"}
        attempts = {
            "publish to sales.events": lambda channel: channel.basic_publish(
                "sales.events", "order_confirmed", b"{}"
            ),
            "read a sales queue": lambda channel: channel.basic_get("sales.on_erp_item_updated"),
            "read the dead letters": lambda channel: channel.basic_get("sales.dead-letters"),
            "declare a queue": lambda channel: channel.queue_declare("erp.own", durable=True),
            "declare an exchange": lambda channel: channel.exchange_declare("erp.x", "topic"),
        }
        for what, attempt in attempts.items():
            channel = connection.channel()

            def act(channel=channel, attempt=attempt):
                attempt(channel)
                channel.basic_qos(prefetch_count=1)  # a round trip: a refusal has arrived

            assert refused(act), what
    finally:
        connection.close()
    assert message_count(uri, "sales.on_erp_item_updated") == 1


class NoProcesses(Suite):
    """The e2e suite's start on a vhost of its own, a sleeping process standing in for its
    services."""

    services = ("sales.service",)

    def _start_process(self, module: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(["sleep", "60"])

    def prepare(self) -> None:
        """No databases."""

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Nothing to wait for."""


def test_the_e2e_suite_declares_the_erp_topology_before_its_services_start(tmp_path, management):
    suite = NoProcesses(tmp_path)
    with suite:
        declared = snapshot(management, suite.vhost)
    assert declared == expected_snapshot()
