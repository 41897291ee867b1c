"""ERP events applied per second by one sales process, against a bare kombu consumer that only
acknowledges, in the same run.

    .venv/bin/python -m bench.bench_erp [--events 10000] [--customers 20] [--skip-postgres]
                                        [--without-relay] [--seconds N] [--connections N]

The pika ERP simulator (``tools/erp_simulator``) makes a stream of ``--events`` ERP events
(items, a price list, credit limits, orders, shipments, invoices and corrections, payments)
for ``--customers`` customers the sales database knows. For each target the stream is
published, confirmed, to ``erp.events`` on a vhost of its own with the ERP topology
declared (``devstack.topology``), before the sales process starts; each event waits in its
``sales.on_erp_<type>`` queue and, copied by the same publish, in one more quorum queue that
a bare kombu consumer drains, acknowledging only (prefetch 400, as the batch handlers'). Then
the process (``nameko run``, as in production) starts and applies the waiting events with
its batch handlers (``crm_common.batch_consumer``: one worker, one inbox query and one
commit per batch of up to 200 events of a queue): schema, customer match, inbox and the
quote-to-cash use cases on the real database. The rate runs from the first event applied to
the last (inbox rows), and ``relayed/s`` on until the outbox holds no unsent row (the
events the ERP's events caused, published by the process's outbox relay, are out);
``batch`` is how many events a commit applied on average (the inbox's
growth between two of its samples, 20 ms apart, each batch taking longer than that), to see
that batches fill; ``cpu ms/ev`` is the CPU time the process used per event over the same
span (from ``/proc``), against the bare consumer's per message, a ratio that other work on
the machine disturbs less than the rates; ``+relay ms`` the same up to the outbox drained. Targets:

- ``sales, SQLite`` and ``sales, PostgreSQL`` (a database of its own on ``$PG_ADMIN_URI``,
  dropped at the end): the real handlers;
- ``kit only, SQLite``: the same batch handlers, schemas, customer match and inbox, with the
  use cases left out (``ErpKitOnly``): what the consumer side costs by itself;
- with ``--without-relay``, ``sales, … no outbox relay`` on each database: the real handlers
  with the outbox rows written but not relayed (``Sales``), to see what the relay, publishing
  in the same process, costs the consumer.

``--seconds`` and ``--connections`` are accepted as every benchmark takes them (no HTTP here).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from kombu import Connection, Consumer
from kombu.entity import Exchange
from nameko.extensions import DependencyProvider
from sqlalchemy import func, select

from bench.bench_scope import PG_ADMIN_URI, drop_postgres_database, own_postgres_database
from crm_common.batch_consumer import EventBatch, event_batch_handler
from crm_common.db import Database, SessionScope, engine_for
from crm_common.dead_letters import quorum_queue
from crm_common.kit import ServiceKit
from crm_common.migrations import upgrade
from crm_common.outbox import OutboxWriter
from devstack import topology
from devstack.stack import Suite
from sales.application.catch_up import SNAPSHOTS
from sales.application.erp_inbound import ErpInbound
from sales.application.read_models import ReadModels
from sales.models import Base, CatchUp, InboxEvent, OutboxMessage
from sales.service import SalesService
from tools.erp_simulator import broker
from tools.erp_simulator.delivery import plan
from tools.erp_simulator.world import Stream, customers_from, numbered_customer_records

BARE_QUEUE = "bench.bare-erp"
ERP_EXCHANGE = Exchange(topology.ERP_EXCHANGE, type="topic", durable=True)
PREFETCH = 400
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
"""A batch handler's prefetch (two batches of 200)."""
SEED = 5
WATCHED_QUEUE = topology.handler_queue("sales", "invoice_issued")


# -- the kit without the use cases ------------------------------------------------------------
def _nothing(*args: Any) -> None:
    return None


class ErpKitOnly(ServiceKit):
    """Sales' ERP handlers as they are, but applying nothing: envelope, batch, schema, customer
    match (unmatched ones kept), inbox, one commit per batch."""

    name = "sales"
    db = Database(Base)
    inbox_model = InboxEvent

    def apply_erp(self, batch: EventBatch) -> None:
        with self.db.session() as session:
            inbound = ErpInbound(session, _NoEvents(), appliers=NO_APPLIERS)
            batch.apply(session, inbound.apply)


class _NoEvents:
    def add(self, session: Any, event_type: str, data: Any, version: int = 1) -> None:
        return None


NO_APPLIERS = dict.fromkeys(topology.ERP_EVENT_TYPES, _nothing)


def _handler(event_type: str) -> Any:
    def handle(self: ErpKitOnly, batch: EventBatch) -> None:
        self.apply_erp(batch)

    handle.__name__ = f"on_erp_{event_type}"
    return event_batch_handler("erp", event_type)(handle)


for _event_type in topology.ERP_EVENT_TYPES:
    setattr(ErpKitOnly, f"on_erp_{_event_type}", _handler(_event_type))


# -- sales without its outbox relay -------------------------------------------------------------
class OutboxRowsOnly(DependencyProvider):
    """Workers write outbox rows as with ``crm_common.outbox.Outbox``; nothing relays them."""

    def get_dependency(self, worker_ctx: Any) -> OutboxWriter:
        return OutboxWriter(OutboxMessage, "sales")


class Sales(SalesService):
    """The sales service with its outbox rows left unrelayed (named so that it runs as the
    ``sales`` process, with that service's keys)."""

    outbox = OutboxRowsOnly()


# -- the stream ---------------------------------------------------------------------------------
def customer_records(count: int) -> list[dict[str, Any]]:
    return numbered_customer_records(random.Random(SEED), count, "基准客户")


def stream(records: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """The simulator's events with 2 % duplicates and 5 % delivered before what they follow."""
    rng = random.Random(SEED)
    events = Stream(SEED, customers_from(rng, records)).events(count)
    delivery = plan(events, rng, duplicates=0.02, out_of_order=0.05)
    return [event.envelope for event in delivery.messages]


def fill(db_uri: str, records: list[dict[str, Any]]) -> None:
    """Migrated, every snapshot read, the customers known with their ERP codes."""
    upgrade("sales", db_uri)
    with SessionScope(engine_for(db_uri)).session() as session:
        for snapshot in SNAPSHOTS:
            session.merge(CatchUp(source=snapshot.source, rows=0))
        for number, record in enumerate(records, start=1):
            ReadModels(session).keep_customer(
                {
                    "id": record["crm_customer_id"],
                    "code": f"C2026{number:06d}",
                    "name": record["name"],
                    "status": "formal",
                    "owner_id": "u-sales-01",
                    "department_id": "d-east-sh",
                    "category": "A",
                    "erp_code": record["erp_code"],
                    "version": 1,
                }
            )


# -- one sales process over a stream waiting for it ---------------------------------------------
class WaitingStream(Suite):
    """One process (``module``) on a vhost of its own, started once the stream waits in the
    topology's queues and, copied, in the bare consumer's queue."""

    def __init__(
        self,
        workdir: Path,
        module: str,
        db_uri: str,
        records: list[dict[str, Any]],
        events: list[dict[str, Any]],
    ) -> None:
        self.services = (module,)
        super().__init__(workdir)
        self.db_uris = {"sales": db_uri}
        self.records = records
        self.events = events
        self.published = 0.0

    @property
    def amqp_uri(self) -> str:
        return str(self.config()["AMQP_URI"])

    def prepare(self) -> None:
        fill(self.db_uris["sales"], self.records)
        with Connection(self.amqp_uri, connect_timeout=60) as connection:
            quorum_queue(BARE_QUEUE, exchange=ERP_EXCHANGE, routing_key="#")(
                connection.default_channel
            ).declare()
        began = time.perf_counter()
        broker.publish_all(self.amqp_uri, self.events)
        self.published = time.perf_counter() - began

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until the process consumes its ERP queues (the sales process has no HTTP)."""
        self.wait_consuming(WATCHED_QUEUE, timeout)


def progress(db_uri: str) -> tuple[int, int]:
    """Inbox rows (events applied) and outbox rows not yet relayed. SQLite is read through a
    plain read-only connection: the engine's connections analyse the tables on check-in, a
    write that would queue behind the sales process's transactions."""
    if db_uri.startswith("sqlite:///"):
        path = db_uri.removeprefix("sqlite:///")
        with contextlib.closing(
            sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        ) as db:
            row = db.execute(
                "select (select count(*) from inbox),"
                " (select count(*) from outbox where sent_at is null)"
            ).fetchone()
            return int(row[0]), int(row[1])
    applied = select(func.count()).select_from(InboxEvent).scalar_subquery()
    unsent = (
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.sent_at.is_(None))
        .scalar_subquery()
    )
    with engine_for(db_uri).connect() as connection:
        counts = connection.execute(select(applied, unsent)).one()
        return int(counts[0]), int(counts[1])


def distinct_events(events: list[dict[str, Any]]) -> int:
    return len({envelope["event_id"] for envelope in events})


def apply_rate(
    workdir: Path,
    module: str,
    db_uri: str,
    records: list[dict[str, Any]],
    events: list[dict[str, Any]],
    relays: bool = True,
) -> dict[str, float]:
    """Start the process over the waiting stream; its rate, and the bare consumer's (and
    until the outbox is drained, unless the process ``relays`` nothing)."""
    expected = distinct_events(events)
    samples: list[tuple[float, int, float, int]] = []
    done = threading.Event()
    suite = WaitingStream(workdir, module, db_uri, records, events)

    def watch() -> None:
        while not done.is_set():
            try:
                applied, unsent = progress(db_uri)
            except Exception:  # noqa: BLE001 - not migrated yet
                applied, unsent = (samples[-1][1], samples[-1][3]) if samples else (0, 0)
            cpu = cpu_seconds(suite.processes[0].pid) if suite.processes else 0.0
            samples.append((time.perf_counter(), applied, cpu, unsent))
            if applied >= expected and (unsent == 0 or not relays):
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    with suite:  # prepare (fill, publish), start, wait until consuming
        watcher.join(timeout=max(120.0, expected / 20))
        done.set()
        with Connection(suite.amqp_uri, connect_timeout=60) as connection:
            bare, bare_cpu = bare_consumer_rate(connection, len(events))
        logs = suite.logs()
    first = next((sample for sample in samples if sample[1] > 0), None)
    applied_at = next((sample for sample in samples if sample[1] >= expected), None)
    if applied_at is None or first is None or (relays and samples[-1][3]):
        raise RuntimeError(
            f"{module} applied {samples[-1][1] if samples else 0} of {expected}"
            f" events and left {samples[-1][3] if samples else '?'} unrelayed:"
            f"\n{logs}"
        )
    last_at, last, last_cpu, _ = applied_at
    drained_at, _, drained_cpu, _ = samples[-1]
    applied = last - first[1]
    growth = [after[1] - before[1] for before, after in zip(samples, samples[1:], strict=False)]
    commits = [grown for grown in growth if grown > 0]
    return {
        "rate": applied / (last_at - first[0]) if last_at > first[0] else float("nan"),
        "cpu_ms": 1000 * (last_cpu - first[2]) / applied if applied else 0.0,
        "relayed_rate": applied / (drained_at - first[0]) if drained_at > first[0] else 0.0,
        "relayed_cpu_ms": 1000 * (drained_cpu - first[2]) / applied if applied else 0.0,
        "bare": bare,
        "bare_cpu_ms": bare_cpu,
        "published": suite.published,
        "seconds": last_at - first[0],
        "batch": sum(commits) / len(commits) if commits else float("nan"),
    }


def cpu_seconds(pid: int) -> float:
    """The CPU time (user and system) a process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def bare_consumer_rate(connection: Connection, count: int) -> tuple[float, float]:
    """Messages per second a kombu consumer that only acknowledges takes off the queue, and its
    CPU milliseconds per message (this process's, which does nothing else meanwhile)."""
    seen: list[float] = []
    cpu: list[float] = []

    def acknowledge(body: Any, message: Any) -> None:
        message.ack()
        seen.append(time.perf_counter())
        if len(seen) in (1, count):
            cpu.append(time.process_time())

    with Consumer(
        connection,
        queues=[quorum_queue(BARE_QUEUE)],
        callbacks=[acknowledge],
        accept=["json"],
        prefetch_count=PREFETCH,
    ):
        while len(seen) < count:
            try:
                connection.drain_events(timeout=120)
            except Exception:
                print(f"# the bare consumer saw {len(seen)} of {count} messages", file=sys.stderr)
                raise
    if count < 2:
        return float("nan"), float("nan")
    return (count - 1) / (seen[-1] - seen[0]), 1000 * (cpu[-1] - cpu[0]) / (count - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000, help="distinct ERP events")
    parser.add_argument("--customers", type=int, default=20)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument(
        "--without-relay", action="store_true", help="also sales with its outbox not relayed"
    )
    parser.add_argument("--seconds", type=float, default=None, help="accepted; unused")
    parser.add_argument("--connections", type=int, default=None, help="accepted; unused")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(f"stopped by signal {signum}"))
    records = customer_records(args.customers)
    events = stream(records, args.events)
    print(
        f"# {distinct_events(events)} ERP events, {len(events)} messages (duplicates and "
        f"out-of-order pairs), {args.customers} customers; python {sys.version.split()[0]}, "
        f"{os.cpu_count()} cores"
    )
    targets = [
        ("kit only (no use cases), SQLite", "bench.bench_erp:ErpKitOnly", "sqlite"),
        ("sales, SQLite", "sales.service", "sqlite"),
    ]
    if args.without_relay:
        targets.append(("sales, SQLite, no outbox relay", "bench.bench_erp:Sales", "sqlite"))
    if not args.skip_postgres:
        targets.append(("sales, PostgreSQL", "sales.service", "postgresql"))
        if args.without_relay:
            targets.append(
                ("sales, PostgreSQL, no outbox relay", "bench.bench_erp:Sales", "postgresql")
            )
    rows = []
    for label, module, database in targets:
        relays = module != "bench.bench_erp:Sales"
        with tempfile.TemporaryDirectory() as tmp:
            if database == "sqlite":
                db_uri = f"sqlite:///{Path(tmp) / 'sales.db'}"
                rows.append((label, apply_rate(Path(tmp), module, db_uri, records, events, relays)))
                continue
            try:
                db_uri = own_postgres_database()
            except Exception as exc:  # noqa: BLE001 (any reason the server is not there)
                print(f"# PostgreSQL skipped: no server at {PG_ADMIN_URI} ({exc})")
                continue
            try:
                rows.append((label, apply_rate(Path(tmp), module, db_uri, records, events, relays)))
            finally:
                drop_postgres_database(db_uri)
    print("\n# ERP events applied per second by one process, each with a bare consumer")
    print(
        f"{'consumer':<40} {'events/s':>9} {'bare/s':>8} {'ratio':>6} {'batch':>5}"
        f" {'cpu ms/ev':>9} {'bare ms':>7} {'cpu ratio':>9} {'relayed/s':>9}"
        f" {'+relay ms':>9} {'goal':>5}"
    )
    for label, row in rows:
        ratio = row["rate"] / row["bare"]
        goal = "PASS" if row["rate"] >= 1000 and ratio >= 0.5 else "MISS"
        cpu_ratio = row["bare_cpu_ms"] / row["cpu_ms"] if row["cpu_ms"] else float("nan")
        print(
            f"{label:<40} {row['rate']:>9.0f} {row['bare']:>8.0f} {ratio:>6.3f}"
            f" {row['batch']:>5.0f} {row['cpu_ms']:>9.3f} {row['bare_cpu_ms']:>7.3f}"
            f" {cpu_ratio:>9.3f} {row['relayed_rate']:>9.0f} {row['relayed_cpu_ms']:>9.3f}"
            f" {goal:>5}"
        )
    print("# goal (issue 11): >= 1,000 events/s per sales process and >= 0.5 x the bare consumer")
    print(
        "# cpu ms/ev: the process's CPU per event applied (what other work on the machine"
        " disturbs least); cpu ratio: the bare consumer's CPU per message over it;"
        " relayed/s and +relay ms: the same until the last event it caused left the outbox"
    )


if __name__ == "__main__":
    main()
