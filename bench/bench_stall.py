"""The gateway under a stalled backend: the customers table locked in PostgreSQL.

    .venv/bin/python -m bench.bench_stall [--lock-seconds 30] [--baseline-seconds 5]
                                          [--connections 16] [--seconds N: both phases]

Starts the suite as processes (devstack.stack.Suite) on a vhost of its own, with the customer
database in a PostgreSQL database of its own (created here, dropped at the end; admin URI from
PG_ADMIN_URI). Two phases, each with ``--clients`` threads sending customer requests
(``GET /api/customers/{id}``) back to back while one probe thread per route measures
``/health``, ``/api/me`` (org) and ``GET /api/org/departments`` (an org admin route):

* ``no lock``: the normal latency of every route;
* ``lock``: a transaction holds ``LOCK TABLE customers IN ACCESS EXCLUSIVE MODE`` for
  ``--lock-seconds``, so every customer call waits on the database.

It prints p50/p95/max latency and the statuses per route and phase, and the largest overshoot
of any request beyond its deadline (the suite's RPC_TIMEOUT). The load comes from Python
threads in this process: enough to saturate a stalled backend, not a throughput benchmark.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests
from sqlalchemy import create_engine, make_url, text

from devstack.stack import Suite

PG_ADMIN_URI = os.environ.get(
    "PG_ADMIN_URI", "postgresql+psycopg2://postgres@localhost:5432/postgres"
)
CUSTOMER_ROUTE = "GET /api/customers/{id}"
PROBES = {
    "GET /health": ("/health", None),
    "GET /api/me": ("/api/me", "manager01"),
    "GET /api/org/departments": ("/api/org/departments?limit=20", "admin"),
}
PROBE_INTERVAL = 0.1


@dataclass
class Samples:
    """Latencies and statuses by route, for one phase."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    lock = threading.Lock()

    def add(self, route: str, seconds: float, status: int) -> None:
        with self.lock:
            self.latencies[route].append(seconds)
            self.statuses[route][status] += 1

    def rows(self, phase: str, deadline: float) -> Iterator[str]:
        for route in [CUSTOMER_ROUTE, *PROBES]:
            found = sorted(self.latencies.get(route, []))
            if not found:
                continue
            p95 = found[min(len(found) - 1, int(len(found) * 0.95))]
            statuses = " ".join(
                f"{status}x{count}" for status, count in sorted(self.statuses[route].items())
            )
            overshoot = max(found[-1] - deadline, 0.0)
            yield (
                f"{phase:<8} {route:<26} {len(found):>5} {statistics.median(found):>8.3f} "
                f"{p95:>8.3f} {found[-1]:>8.3f} {overshoot:>9.3f}  {statuses}"
            )


@contextmanager
def postgres_database() -> Iterator[str]:
    name = f"crm_bench_stall_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URI, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_ADMIN_URI).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def customers_locked(db_uri: str, seconds: float) -> Iterator[threading.Thread]:
    """A thread holding the customers table in ACCESS EXCLUSIVE mode for ``seconds``."""
    engine = create_engine(db_uri)
    taken = threading.Event()

    def hold() -> None:
        with engine.begin() as connection:
            connection.execute(text("LOCK TABLE customers IN ACCESS EXCLUSIVE MODE"))
            taken.set()
            time.sleep(seconds)

    holder = threading.Thread(target=hold, name="customers-lock")
    holder.start()
    taken.wait(10)
    try:
        yield holder
    finally:
        holder.join()
        engine.dispose()


def timed(samples: Samples, route: str, session: requests.Session, url: str) -> None:
    started = time.monotonic()
    try:
        status = session.get(url, timeout=60).status_code
    except requests.RequestException:
        status = 0
    samples.add(route, time.monotonic() - started, status)


def phase(
    suite: Suite,
    sessions: dict[str, requests.Session],
    customer_ids: list[str],
    *,
    clients: int,
    seconds: float,
) -> Samples:
    samples = Samples()
    stop_at = time.monotonic() + seconds

    def customers(client: int) -> None:
        session = requests.Session()
        session.headers.update(sessions["manager01"].headers)
        number = client
        while time.monotonic() < stop_at:
            url = suite.url(f"/api/customers/{customer_ids[number % len(customer_ids)]}")
            timed(samples, CUSTOMER_ROUTE, session, url)
            number += clients

    def probe(route: str) -> None:
        path, user = PROBES[route]
        session = requests.Session()
        if user:
            session.headers.update(sessions[user].headers)
        while time.monotonic() < stop_at:
            timed(samples, route, session, suite.url(path))
            time.sleep(PROBE_INTERVAL)

    with ThreadPoolExecutor(clients + len(PROBES)) as pool:
        waiting = [pool.submit(customers, client) for client in range(clients)]
        waiting += [pool.submit(probe, route) for route in PROBES]
        for future in waiting:
            future.result()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lock-seconds", type=float, default=30.0)
    parser.add_argument("--baseline-seconds", type=float, default=5.0)
    parser.add_argument("--connections", "--clients", dest="clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, help="both phases this long (as make bench)")
    args = parser.parse_args()
    # Stopped from outside (a timeout, a CI job ending): stop the stacks on the way out.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(f"stopped by signal {signum}"))
    if args.seconds:
        args.lock_seconds = args.baseline_seconds = args.seconds

    with (
        tempfile.TemporaryDirectory() as tmp,
        postgres_database() as db_uri,
        Suite(Path(tmp) / "suite", demo=True, db_uri=db_uri) as suite,
    ):
        deadline = float(suite.config()["RPC_TIMEOUT"])
        sessions = {user: suite.client(user) for user in ("manager01", "admin")}
        listed = sessions["manager01"].get(suite.url("/api/customers?limit=200"), timeout=30)
        listed.raise_for_status()
        customer_ids = [item["id"] for item in listed.json()["items"]]
        print(
            f"# {len(customer_ids)} customers; {args.clients} customer clients; probes every "
            f"{PROBE_INTERVAL}s; deadline (RPC_TIMEOUT) {deadline:g}s; "
            f"{os.cpu_count()} cores, broker and PostgreSQL on localhost"
        )
        quiet = phase(
            suite, sessions, customer_ids, clients=args.clients, seconds=args.baseline_seconds
        )
        with customers_locked(db_uri, args.lock_seconds):
            locked = phase(
                suite, sessions, customer_ids, clients=args.clients, seconds=args.lock_seconds
            )

    print(
        f"{'phase':<8} {'route':<26} {'n':>5} {'p50 s':>8} {'p95 s':>8} {'max s':>8} "
        f"{'overshoot':>9}  statuses"
    )
    for name, samples in (("no lock", quiet), ("lock", locked)):
        for row in samples.rows(name, deadline):
            print(row)
    worst = max(
        max(found) - deadline for samples in (quiet, locked) for found in samples.latencies.values()
    )
    print(f"# largest overshoot beyond the {deadline:g}s deadline: {max(worst, 0.0):.3f}s")


if __name__ == "__main__":
    main()
