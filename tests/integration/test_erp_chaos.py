"""10,000 ERP events through one broker restart and one SIGKILL of the sales process.

The pika simulator publishes a stream of 10,000 distinct events (items, price lists, credit
limits, orders, shipments, invoices and their corrections, payments), some delivered twice
and some before what they depend on, to a RabbitMQ node of this test's own (started with
``rabbitmq-server`` on free ports in a temporary directory, so the shared broker is never
restarted). Sales runs as a real process (``nameko run``) on SQLite. The stream goes out in
three parts: after the first, the broker node is stopped and started again while sales is
applying; after the second, the sales process is killed with SIGKILL mid-batch and started
again. Afterwards every invoice's amount and outstanding amount, every customer's
receivable total, credit limit and every order's status equal what the stream implies (0
lost, 0 double-applied), the inbox holds each event once, and no queue holds a message,
ready or unacknowledged (``rabbitmqctl list_queues``), nothing dead-lettered.

Set ``ERP_CHAOS_EVENTS`` to run it smaller.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import eventlet.patcher
import pytest
import yaml
from kombu import Connection

from crm_common.identity import ensure_keys
from devstack import registry, topology
from tests.support.polling import eventually
from tools.erp_simulator import broker as erp_broker
from tools.erp_simulator.delivery import plan
from tools.erp_simulator.world import Stream, customers_from

from .test_erp_ingest import (
    expected_invoices,
    expected_orders,
    expected_totals,
    invoices_in,
    orders_in,
    prepare_database,
    receivable_totals,
)

subprocess = eventlet.patcher.original("subprocess")

EVENTS = int(os.environ.get("ERP_CHAOS_EVENTS", "10000"))
SEED = 2026
RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
pytestmark = [
    pytest.mark.timeout(900),
    pytest.mark.skipif(
        not (RABBITMQ_BIN / "rabbitmq-server").exists(), reason="rabbitmq-server not installed"
    ),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateBroker:
    """A RabbitMQ node of its own: its own name, ports, data and logs, no plugins."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.name = f"erpchaos{os.getpid()}x{free_port()}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        (workdir / "enabled_plugins").write_text("[].\n")
        (workdir / "rabbitmq.conf").write_text("loopback_users = none\n")
        self.env = {
            **os.environ,
            "HOME": str(workdir),  # its own Erlang cookie
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(workdir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(workdir / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(workdir / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(workdir / "rabbitmq"),
            "RABBITMQ_PID_FILE": str(workdir / "rabbitmq.pid"),
        }
        self.process: Any = None

    @property
    def uri(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def start(self) -> None:
        log = open(self.workdir / "server.log", "ab")  # noqa: SIM115 - the node's whole life
        self.process = subprocess.Popen(
            [str(RABBITMQ_BIN / "rabbitmq-server")],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the node exited: {self.log_tail()}")
            try:
                with Connection(self.uri, connect_timeout=1) as connection:
                    connection.connect()
                    return
            except Exception:  # noqa: BLE001 - not listening yet
                time.sleep(0.3)
        raise RuntimeError(f"the node did not start: {self.log_tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.ctl("stop")
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def ctl(self, *args: str) -> str:
        result = subprocess.run(
            [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.name, "-q", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {result.stderr}")
        return result.stdout

    def queues(self) -> dict[str, tuple[int, int]]:
        """Each queue's ready and unacknowledged messages."""
        listed = self.ctl("list_queues", "name", "messages_ready", "messages_unacknowledged")
        counts = {}
        for line in listed.splitlines():
            parts = line.split("\t")
            if len(parts) == 3 and parts[1].isdigit():
                counts[parts[0]] = (int(parts[1]), int(parts[2]))
        return counts

    def log_tail(self) -> str:
        path = self.workdir / "server.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


class SalesProcess:
    """The sales service as production runs it: ``nameko run sales.service``."""

    def __init__(self, workdir: Path, amqp_uri: str, db_uri: str) -> None:
        self.workdir = workdir
        self.config = workdir / "sales.yml"
        keys = workdir / "keys"
        ensure_keys(keys, ["sales"], "erp-chaos")
        values = {
            "PUBLIC_KEYS": str(keys / "public.jwks"),
            "PRIVATE_KEYS": str(keys / "private.jwks"),
            "AMQP_URI": amqp_uri,
            "DB_URIS": {"sales": db_uri},
            "EVENT_RETRY_DELAYS": "0.2,0.5,1",
            "OUTBOX_POLL_SECONDS": 0.5,
            "LOGGING": {
                "version": 1,
                "handlers": {"console": {"class": "logging.StreamHandler"}},
                "root": {"level": "WARNING", "handlers": ["console"]},
            },
        }
        self.config.write_text(yaml.safe_dump(values), encoding="utf-8")
        self.process: Any = None

    def start(self) -> None:
        log = open(self.workdir / "sales.log", "ab")  # noqa: SIM115 - the process's whole life
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "nameko"), "run", "--config", str(self.config),
             "sales.service"],
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={
                **os.environ,
                "PYTHONPATH": str(registry.ROOT),
                "PYTHONWARNINGS": "ignore::DeprecationWarning",
            },
        )  # fmt: skip

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self) -> str:
        return (self.workdir / "sales.log").read_text(errors="replace")[-4000:]


def consumers(amqp_uri: str, queue: str) -> int:
    with Connection(amqp_uri) as connection:
        return int(connection.channel().queue_declare(queue, passive=True).consumer_count)


def handled(db_uri: str) -> int:
    """Inbox rows, read with a plain read-only connection: the engine's connections analyse
    the tables on check-in, a write that would wait on the sales process."""
    path = db_uri.removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
        return int(db.execute("select count(*) from inbox").fetchone()[0])


@pytest.fixture
def node(tmp_path):
    workdir = tmp_path / "rabbitmq"
    workdir.mkdir()
    broker = PrivateBroker(workdir)
    broker.start()
    yield broker
    broker.stop()
    shutil.rmtree(workdir, ignore_errors=True)


def test_ten_thousand_erp_events_through_a_broker_restart_and_a_sigkill(node, tmp_path):
    started = time.monotonic()
    topology.apply(node.uri)
    db_uri = f"sqlite:///{tmp_path / 'sales.db'}"
    records = prepare_database(db_uri, count=20, seed=SEED)
    rng = __import__("random").Random(SEED)
    stream = Stream(SEED, customers_from(rng, records))
    events = stream.events(EVENTS)
    delivery = plan(events, rng, duplicates=0.03, out_of_order=0.05)
    expected = stream.expected()
    messages = [event.envelope for event in delivery.messages]
    thirds = [messages[: len(messages) // 3], messages[len(messages) // 3 : 2 * len(messages) // 3]]
    thirds.append(messages[2 * len(messages) // 3 :])
    sales = SalesProcess(tmp_path, node.uri, db_uri)
    sales.start()
    try:
        eventually(
            lambda: consumers(node.uri, "sales.on_erp_invoice_issued") == 1,
            timeout=60,
            what="sales consuming",
        )

        erp_broker.publish_all(node.uri, thirds[0])
        eventually(lambda: handled(db_uri) >= 300, timeout=120, what="sales applying")
        node.restart()  # while sales is applying the first part
        restarted_at = handled(db_uri)

        erp_broker.publish_all(node.uri, thirds[1])
        eventually(
            lambda: handled(db_uri) >= restarted_at + 300, timeout=180, what="applying again"
        )
        sales.kill()  # mid-batch: its unacknowledged messages go back to their queues
        killed_at = handled(db_uri)
        sales.start()

        erp_broker.publish_all(node.uri, thirds[2])

        def settled() -> bool:
            queues = node.queues()
            return handled(db_uri) >= len(events) and all(
                counts == (0, 0) for name, counts in queues.items() if name.startswith("sales.")
            )

        eventually(settled, timeout=600, interval=2, what="every event applied")
    except BaseException:
        print(sales.log_tail(), file=sys.stderr)
        raise
    finally:
        sales.stop()

    assert invoices_in(db_uri) == expected_invoices(expected)
    assert receivable_totals(db_uri, records) == expected_totals(expected)
    assert orders_in(db_uri) == expected_orders(expected)
    assert handled(db_uri) == len(events)  # each distinct event applied once
    queues = node.queues()
    assert queues["sales.dead-letters"] == (0, 0)
    assert all(counts == (0, 0) for name, counts in queues.items() if name.startswith("sales."))
    print(
        f"{len(messages)} messages ({len(delivery.duplicates)} duplicates, "
        f"{len(delivery.out_of_order)} out of order) applied in {time.monotonic() - started:.0f} s;"
        f" broker restarted at {restarted_at} applied, sales killed at {killed_at}",
        file=sys.stderr,
    )
