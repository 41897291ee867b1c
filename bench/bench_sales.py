"""The sales service at scale: the forecast and the scoped opportunity list on PostgreSQL, and
how fast its read model applies customer events from the broker.

    .venv/bin/python -m bench.bench_sales [--opportunities 200000] [--customers 20000]
                                          [--repeat 200] [--events 10000]
                                          [--skip-consumer] [--seconds N] [--connections N]

Both parts run on a PostgreSQL database of their own on the server of ``$PG_ADMIN_URI``
(``postgresql+psycopg2://postgres@localhost:5432/postgres``), dropped at the end.

1. **Queries.** The database gets sales' copies of the demo org chart and customer book plus
   ``--customers`` generated customers (offices, owners and categories spread as the demo
   spreads them), the standard process and ``--opportunities`` opportunities over those
   customers (open, won, lost, abandoned) with their stage history, loaded in bulk with COPY
   into the models' tables. The sales service's RPC methods are then called in process (no broker):
   p50/p95/p99 of list pages, a search, a get, the weighted pipeline by each grouping, the
   funnel, the stage durations and the win rates, for ``admin`` (one unrestricted grant) and
   ``manager01`` (own opportunities, OR the East branch with its offices crossed with
   categories A and VIP), with the crossed principal's ratio to the unrestricted one.
2. **Consumer throughput.** The sales service runs as its own process (``nameko run``, as in
   production) on a vhost of its own over the same database. ``--events`` ``customer_created``
   events wait in its queue and, copied by the same publish, in a second quorum queue; a bare
   kombu consumer that only acknowledges drains the second (same prefetch as Nameko's), then
   the sales service is started and applies the first (its real handler: envelope check,
   inbox, upsert of the customer copy, one transaction each). Each rate is taken from the first
   event handled to the last.

``--seconds`` and ``--connections`` are accepted as every benchmark takes them (no HTTP here).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg2.extensions
from kombu import Connection, Consumer, Exchange, Producer
from nameko.testing.services import worker_factory
from sqlalchemy import Table, func, select

from bench.bench_scope import (
    PG_ADMIN_URI,
    customer_rows,
    drop_postgres_database,
    own_postgres_database,
    percentile,
    spread,
    timings_ms,
)
from crm_common.context import Principal, bind
from crm_common.db import SessionScope, engine_for
from crm_common.dead_letters import quorum_queue
from crm_common.events import make_envelope
from crm_common.migrations import upgrade
from crm_common.outbox import OutboxWriter
from customer.schemas import CustomerSchema
from demo.sales import ensure_masters, fill_read_models
from devstack.stack import Suite
from sales.application.catch_up import SNAPSHOTS
from sales.domain.processes import Process
from sales.models import CatchUp, Customer, InboxEvent, Opportunity, OutboxMessage, StageHistory
from sales.service import SalesService

SALES_PERMISSIONS = ("opportunity:read", "activity:read", "expense:read", "forecast:read")
UNRESTRICTED = Principal("u-admin", "d-hq", ("admin",), SALES_PERMISSIONS, ({},))
CROSSED = Principal(
    "u-manager-01",
    "d-east",
    ("sales_manager",),
    SALES_PERMISSIONS,
    (
        {"owner": "self"},
        {"departments": ["d-east", "d-east-js", "d-east-sh"], "categories": ["A", "VIP"]},
    ),
)
NOW = datetime.now(UTC).replace(microsecond=0)
STATUSES = (("open", 55), ("won", 20), ("lost", 18), ("abandoned", 7))
PROJECTS = ("加工中心采购", "产线改造", "备件年度框架", "设备升级", "自动化改造", "检测设备")
BATCH = 5000
HANDLER = "sales.on_customer_created"
BARE_QUEUE = "bench.bare-consumer"
PREFETCH = 10
"""Nameko's prefetch: its default ``max_workers``, which the suite's config keeps."""


# -- filling the database ------------------------------------------------------------------------
def customer_copies(count: int) -> list[dict[str, Any]]:
    """Sales' copies of ``count`` generated customers, as the customer events would leave them."""
    return [
        {
            "id": row["id"],
            "code": row["code"],
            "name": row["name"],
            "short_name": None,
            "status": row["status"],
            "category": row["category"],
            "region": row["region"],
            "owner_id": row["owner_id"],
            "department_id": row["department_id"],
            "source_version": 1,
            "source_updated_at": row["updated_at"],
            "updated_at": row["updated_at"],
        }
        for row in customer_rows(count)
    ]


@dataclass(frozen=True)
class Deal:
    """One generated opportunity and its stays in the stages."""

    row: dict[str, Any]
    visits: list[dict[str, Any]]


def deals(
    count: int, customers: list[dict[str, Any]], process: Process, loss_reasons: tuple[str, ...]
) -> Iterator[Deal]:
    """``count`` opportunities over ``customers``, owned like them, each moved through the
    process from its first stage: open somewhere along it, won, lost or abandoned."""
    rng = random.Random(11)
    statuses, weights = zip(*STATUSES, strict=True)
    open_stages, won, lost = process.open_stages, process.won_stage, process.lost_stages[0]
    process_id = uuid.UUID(process.id)
    for index in range(count):
        customer = customers[rng.randrange(len(customers))]
        status = rng.choices(statuses, weights)[0]
        furthest = len(open_stages) - 1 if status == "won" else rng.randrange(len(open_stages))
        stays = [timedelta(days=rng.uniform(1, 35)) for _ in range(furthest + 1)]
        created = NOW - sum(stays, timedelta()) - timedelta(days=rng.uniform(0, 330))
        opportunity_id = uuid.UUID(int=rng.getrandbits(128))
        visits, entered = [], created
        for stage, stay in zip(open_stages, stays, strict=False):
            visits.append(
                _visit(rng, opportunity_id, process_id, stage.code, entered, entered + stay)
            )
            entered += stay
        closed_at = None
        stage = open_stages[furthest]
        if status in ("won", "lost"):
            stage = won if status == "won" else lost
            visits.append(_visit(rng, opportunity_id, process_id, stage.code, entered, None))
            closed_at = entered
        else:
            visits[-1]["left_at"] = None
            closed_at = entered if status == "abandoned" else None
        amount = Decimal(rng.randrange(500_000, 200_000_000)) / 100
        has_amount = stage.code != open_stages[0].code or rng.random() < 0.7
        yield Deal(
            {
                "id": opportunity_id,
                "code": f"OPP-{2025 + index // 900_000}-{index % 900_000 + 1:06d}",
                "name": f"{customer['name'][:12]}{rng.choice(PROJECTS)}",
                "customer_id": customer["id"],
                "owner_id": customer["owner_id"],
                "department_id": customer["department_id"],
                "region": customer["region"],
                "category": customer["category"],
                "process_id": process_id,
                "stage_code": stage.code,
                "probability": stage.probability,
                "status": status,
                "expected_amount": amount if has_amount else None,
                "currency": "CNY",
                "expected_close_date": _close_date(rng, status, closed_at),
                "tags": [],
                "loss_reason": rng.choice(loss_reasons) if status == "lost" else None,
                "closed_at": closed_at,
                "created_by": customer["owner_id"],
                "created_at": created,
                "updated_at": entered,
                "version": len(visits),
            },
            visits,
        )


def _visit(
    rng: random.Random,
    opportunity_id: uuid.UUID,
    process_id: uuid.UUID,
    stage_code: str,
    entered: datetime,
    left: datetime | None,
) -> dict[str, Any]:
    return {
        "id": uuid.UUID(int=rng.getrandbits(128)),
        "opportunity_id": opportunity_id,
        "process_id": process_id,
        "stage_code": stage_code,
        "entered_at": entered,
        "left_at": left,
        "moved_by": None,
        "reason": None,
    }


def _close_date(rng: random.Random, status: str, closed_at: datetime | None) -> date:
    if closed_at is not None:
        return closed_at.date()
    return NOW.date() + timedelta(days=rng.randrange(-20, 240))


@contextmanager
def without_green_waits() -> Iterator[None]:
    """psycopg2 without the eventlet wait callback ``crm_common.db`` installs, which COPY
    refuses to run under; nothing else runs in this process while the database is filled."""
    callback = psycopg2.extensions.get_wait_callback()
    psycopg2.extensions.set_wait_callback(None)
    try:
        yield
    finally:
        psycopg2.extensions.set_wait_callback(callback)


def copy_rows(connection: Any, table: Table, rows: list[dict[str, Any]]) -> None:
    """``rows`` into ``table`` with one COPY (CSV: an empty field is NULL, a list is JSON)."""
    columns = [column.name for column in table.columns if column.name in rows[0]]
    text = io.StringIO()
    writer = csv.writer(text)
    for row in rows:
        writer.writerow([_csv_value(row[column]) for column in columns])
    text.seek(0)
    cursor = connection.connection.dbapi_connection.cursor()
    cursor.copy_expert(
        f"COPY {table.name} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)", text
    )


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list):
        return json.dumps(value, ensure_ascii=False)
    return value


def fill(uri: str, opportunities: int, customers: int) -> tuple[float, int]:
    """Migrate ``uri`` and fill it; the seconds it took and the stage history rows."""
    began = time.perf_counter()
    upgrade("sales", uri)
    engine = engine_for(uri)
    with SessionScope(engine).session() as session:
        fill_read_models(session, NOW)
        masters = ensure_masters(session, NOW)
        # Sales would read org's and customer's snapshots first: they are read here.
        session.add_all(CatchUp(source=s.source, rows=0, finished_at=NOW) for s in SNAPSHOTS)
    copies = customer_copies(customers)
    visits = 0
    with without_green_waits(), engine.begin() as connection:
        copy_rows(connection, Customer.__table__, copies)
        generated = deals(opportunities, copies, masters.process, masters.loss_reasons)
        while batch := [deal for _, deal in zip(range(BATCH), generated, strict=False)]:
            copy_rows(connection, Opportunity.__table__, [deal.row for deal in batch])
            history = [visit for deal in batch for visit in deal.visits]
            copy_rows(connection, StageHistory.__table__, history)
            visits += len(history)
    # What autovacuum does within a minute of a bulk load.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE customers, opportunities, stage_history")
    return time.perf_counter() - began, visits


# -- part 1: the queries -----------------------------------------------------------------------
def operations(service: Any) -> dict[str, Callable[[int], Any]]:
    """The reads to time, for the principal bound at the time of the call."""
    visible = [item["id"] for item in service.list_opportunities({"limit": 200})["items"]]
    first_page = service.list_opportunities({"limit": "20", "status": "open"})
    second_page = {"limit": "20", "status": "open", "cursor": first_page["next_cursor"]}
    year_ago = (NOW.date() - timedelta(days=365)).isoformat()
    today = NOW.date().isoformat()
    quarter = (NOW.date() + timedelta(days=92)).isoformat()
    return {
        "list, 20 newest": lambda n: service.list_opportunities({"limit": "20"}),
        "list open, next page": lambda n: service.list_opportunities(second_page),
        "list open in 2 stages, by close": lambda n: service.list_opportunities(
            {
                "limit": "20",
                "status": "open",
                "stage_code": "proposal,negotiation",
                "close_from": today,
                "close_to": quarter,
            }
        ),
        "search q=产线改造": lambda n: service.list_opportunities({"limit": "20", "q": "产线改造"}),
        "get by id": lambda n: service.get_opportunity(visible[n % len(visible)]),
        "forecast by owner": lambda n: service.forecast_pipeline({"group_by": "owner"}),
        "forecast by department": lambda n: service.forecast_pipeline({"group_by": "department"}),
        "forecast by month, next 92 days": lambda n: service.forecast_pipeline(
            {"group_by": "month", "from": today, "to": quarter}
        ),
        "forecast by stage": lambda n: service.forecast_pipeline({"group_by": "stage"}),
        "funnel, created in a year": lambda n: service.forecast_funnel(
            {"from": year_ago, "to": today}
        ),
        "stage durations, a year": lambda n: service.forecast_stage_durations(
            {"from": year_ago, "to": today}
        ),
        "win rates by owner, a year": lambda n: service.forecast_win_rates(
            {"by": "owner", "from": year_ago, "to": today}
        ),
    }


def rows_seen(result: Any) -> int:
    """How many rows an answer covers: the opportunities a figure counts (the stays, for stage
    durations), or a page's items; 1 for one record."""
    if "totals" in result:
        return sum(int(total["count"]) for total in result["totals"])
    if "steps" in result:
        return int(result["opportunities"])
    if "by" in result:
        return sum(int(i["won"]) + int(i["lost"]) + int(i["abandoned"]) for i in result["items"])
    if "process_code" in result:
        return sum(int(item["opportunities"]) for item in result["items"])
    if "items" in result:
        return len(result["items"])
    return 1


def queries(uri: str, repeat: int, what: str) -> None:
    service = worker_factory(
        SalesService, db=SessionScope(engine_for(uri)), outbox=OutboxWriter(OutboxMessage, "sales")
    )
    print(f"\n# in process on {what}: p50 / p95 / p99 of {repeat} calls (ms)")
    print(
        f"{'operation':<34} {'unrestricted':>22} {'crossed':>22} {'p50 x':>6} {'p95 x':>6}"
        "  rows seen"
    )
    figures: dict[str, list[tuple[list[float], int]]] = {}
    for principal in (UNRESTRICTED, CROSSED):
        bind(principal, "bench")
        for name, operation in operations(service).items():
            seen = rows_seen(operation(0))
            figures.setdefault(name, []).append((timings_ms(operation, repeat), seen))
        bind(None, None)
    for name, ((free, free_rows), (crossed, crossed_rows)) in figures.items():
        p50 = percentile(crossed, 0.5) / percentile(free, 0.5)
        p95 = percentile(crossed, 0.95) / percentile(free, 0.95)
        print(
            f"{name:<34} {spread(free):>22} {spread(crossed):>22} {p50:>5.2f}x {p95:>5.2f}x"
            f"  {free_rows} / {crossed_rows}"
        )


# -- part 2: consumer throughput ----------------------------------------------------------------
class SalesAlone(Suite):
    """The sales service alone, as its own process, over a database filled beforehand."""

    services = ("sales.service",)

    def __init__(self, workdir: Path, db_uri: str) -> None:
        super().__init__(workdir)
        self.db_uris = {"sales": db_uri}

    def prepare(self) -> None:
        """The database is migrated and filled already."""

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until the sales process consumes its customer_created queue."""
        self.wait_consuming(HANDLER, timeout)


def customer_events(count: int) -> list[dict[str, Any]]:
    """``customer_created`` envelopes of new customers, as the customer service's outbox
    publishes them."""
    schema = CustomerSchema()
    return [
        make_envelope(
            "customer_created",
            {"customer": schema.dump({**row, "id": uuid.uuid4(), "tags": []})},
            source="customer",
            actor_id=row["owner_id"],
        )
        for row in customer_rows(count, seed=23)
    ]


def waiting(connection: Connection, queue: str) -> int:
    _, count, _ = connection.default_channel.queue_declare(queue, passive=True)
    return int(count)


def bare_consumer_rate(connection: Connection, count: int) -> float:
    """Events per second a kombu consumer that only acknowledges takes off the queue."""
    seen: list[float] = []

    def acknowledge(body: Any, message: Any) -> None:
        message.ack()
        seen.append(time.perf_counter())

    queue = quorum_queue(BARE_QUEUE)
    with Consumer(
        connection,
        queues=[queue],
        callbacks=[acknowledge],
        accept=["json"],
        prefetch_count=PREFETCH,
    ):
        while len(seen) < count:
            connection.drain_events(timeout=30)
    return (count - 1) / (seen[-1] - seen[0]) if count > 1 else float("nan")


def applied_count(engine: Any) -> int:
    with engine.connect() as connection:
        return int(
            connection.scalar(
                select(func.count()).select_from(InboxEvent).where(InboxEvent.handler == HANDLER)
            )
        )


def sales_rate(suite: SalesAlone, engine: Any, count: int) -> float:
    """Events per second the sales process applies, from the first applied to the last."""
    samples: list[tuple[float, int]] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            applied = applied_count(engine)
            samples.append((time.perf_counter(), applied))
            if applied >= count:
                return
            time.sleep(0.01)

    watcher = threading.Thread(target=watch, daemon=True)
    started = time.perf_counter()
    watcher.start()
    try:
        suite.restart("sales")
        watcher.join(timeout=max(60.0, count / 20))
    finally:
        done.set()
    first = next(((at, n) for at, n in samples if n > 0), None)
    last_at, last = samples[-1]
    if last < count:
        raise RuntimeError(f"sales applied {last} of {count} events:\n{suite.logs()}")
    if first is None or last_at <= first[0]:
        return count / (last_at - started)
    return (count - first[1]) / (last_at - first[0])


def consumer_throughput(uri: str, count: int) -> None:
    engine = engine_for(uri)
    events = customer_events(count)
    with tempfile.TemporaryDirectory() as tmp, SalesAlone(Path(tmp), uri) as suite:
        amqp_uri = suite.config()["AMQP_URI"]
        exchange = Exchange("customer.events", type="topic", durable=True)
        with Connection(amqp_uri) as connection:
            quorum_queue(BARE_QUEUE, exchange=exchange, routing_key="customer_created")(
                connection.default_channel
            ).declare()
            suite.kill("sales", signal.SIGTERM)
            began = time.perf_counter()
            producer = Producer(connection.default_channel, exchange=exchange)
            for envelope in events:
                producer.publish(
                    envelope, routing_key="customer_created", serializer="json", delivery_mode=2
                )
            while min(waiting(connection, HANDLER), waiting(connection, BARE_QUEUE)) < count:
                time.sleep(0.05)
            published = time.perf_counter() - began
            bare = bare_consumer_rate(connection, count)
        applied = sales_rate(suite, engine, count)
    print(
        f"\n# consumer throughput: {count} customer_created events (published in {published:.1f}s)"
    )
    print(f"{'consumer':<52} {'events/s':>10}")
    print(f"{'bare kombu consumer, acknowledge only':<52} {bare:>10.0f}")
    print(f"{'sales read model (real handler, PostgreSQL)':<52} {applied:>10.0f}")
    print(f"sales / bare: {applied / bare:.3f} ({bare / applied:.1f}x slower)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opportunities", type=int, default=200_000)
    parser.add_argument("--customers", type=int, default=20_000, help="generated customers")
    parser.add_argument("--repeat", type=int, default=200, help="calls per operation")
    parser.add_argument("--events", type=int, default=10_000, help="customer events to apply")
    parser.add_argument("--skip-consumer", action="store_true")
    parser.add_argument("--seconds", type=float, default=None, help="accepted; unused")
    parser.add_argument("--connections", type=int, default=None, help="accepted; unused")
    args = parser.parse_args()
    # Stopped from outside (a timeout, a CI job ending): drop the database and the vhost.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(f"stopped by signal {signum}"))

    try:
        uri = own_postgres_database()
    except Exception as exc:  # noqa: BLE001 (any reason the server is not there)
        print(f"# PostgreSQL skipped: no server at {PG_ADMIN_URI} ({exc.__class__.__name__})")
        return
    try:
        took, visits = fill(uri, args.opportunities, args.customers)
        print(
            f"# {args.opportunities} opportunities ({visits} stage stays) over "
            f"{args.customers} customers in postgresql (filled in {took:.1f}s)"
        )
        print(f"# python {sys.version.split()[0]}, {os.cpu_count()} cores")
        queries(uri, args.repeat, f"postgresql, {args.opportunities} opportunities")
        if not args.skip_consumer:
            consumer_throughput(uri, args.events)
    finally:
        drop_postgres_database(uri)


if __name__ == "__main__":
    main()
