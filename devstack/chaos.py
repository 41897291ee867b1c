"""Chaos scenarios against the whole stack: writes under broker and database faults.

``python -m devstack.chaos`` (or ``make chaos``) runs each scenario on a stack of its own
(``devstack.stack.Suite``: its own RabbitMQ virtual host, a fresh PostgreSQL database for
customers), with every process's AMQP connection going through a TCP proxy that the scenario
can cut. A salesperson creates customers through the gateway from several client threads while
the fault happens; afterwards the stack is given time to recover and the script counts:

- writes sent, answered with success, answered with an error (or not answered at all);
- writes committed, counted in the database;
- committed writes whose client got an error, and how many of those the client can learn
  about by retrying with the same ``Idempotency-Key`` (answered with the record it created)
  or by reading back;
- ``customer.events`` deliveries counted by event id against the outbox: lost (in the outbox,
  never delivered) and duplicated (delivered more than once).

Expected: 0 lost, 0 duplicated (at most the one outbox row a SIGKILL or a cut connection can
catch between the broker routing it and the relay recording its confirm, which consumers drop
through their inbox), and every committed
write learnable by its client's retry.

Scenarios: ``broker-cut`` (the proxy refuses and cuts every connection, then comes back),
``black-hole`` (the proxy accepts and silently drops every byte, then resets its connections),
``sigkill`` (``kill -9`` of the customer process, started again after the pause) and
``db-lock`` (an ACCESS EXCLUSIVE lock on the customers table held for the pause).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import requests
from kombu import Connection, Exchange, Queue
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from devstack.stack import AMQP_HOST, Suite

PG_ADMIN_URI = os.environ.get(
    "PG_ADMIN_URI", "postgresql+psycopg2://postgres@localhost:5432/postgres"
)
WRITER = "sales01"
CLIENT_TIMEOUT = 30.0


# --- the broker proxy ----------------------------------------------------------------------


class BrokerProxy:
    """A TCP forwarder in front of RabbitMQ that can refuse, cut or black-hole connections."""

    def __init__(self, target: str = AMQP_HOST) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.port = 0
        self.black_holed = False
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> BrokerProxy:
        self.listen()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cut()

    def listen(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))
        listener.settimeout(0.2)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Refuse new connections and close the open ones (the broker "goes away")."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        self.reset()

    def black_hole(self) -> None:
        """Accept connections but deliver nothing, in either direction, until ``heal``."""
        self.black_holed = True

    def heal(self) -> None:
        """Forward again; connections whose bytes were dropped are reset, as a firewall would."""
        self.black_holed = False
        self.reset()
        if self._listener is None:
            self.listen()

    def reset(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:  # the pipe reading each socket sees its end and closes it
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            for source, destination in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, destination), daemon=True).start()

    def _pipe(self, source: socket.socket, destination: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if not self.black_holed:
                    destination.sendall(data)
        except (OSError, EOFError):  # EOFError: eventlet's answer on a socket closed under it
            pass
        finally:
            # Shutting both down wakes the pipe reading the other socket; each closes its own.
            for sock in (source, destination):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            source.close()
            with self._lock:
                if source in self._sockets:
                    self._sockets.remove(source)


# --- counting events -----------------------------------------------------------------------


class EventCounter:
    """Counts ``customer.events`` deliveries by event id, from a queue of its own bound to every
    routing key before the load starts, connected to the broker directly (not through the
    proxy)."""

    def __init__(self, amqp_uri: str, source: str = "customer") -> None:
        self.amqp_uri = amqp_uri
        self.exchange = Exchange(f"{source}.events", type="topic", durable=True)
        self.queue = Queue(f"chaos.{source}-events", self.exchange, routing_key="#")
        self.deliveries: Counter[str] = Counter()
        self._running = False
        self._ready = threading.Event()

    def __enter__(self) -> EventCounter:
        self._running = True
        self._thread = threading.Thread(target=self._consume, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=30):
            raise RuntimeError("the event counter could not bind its queue")
        return self

    def __exit__(self, *exc: object) -> None:
        self._running = False
        self._thread.join(timeout=10)

    def _consume(self) -> None:
        with (
            Connection(self.amqp_uri) as connection,
            connection.Consumer(self.queue, callbacks=[self._count], accept=["json"]),
        ):
            self._ready.set()
            while self._running:
                with contextlib.suppress(TimeoutError):
                    connection.drain_events(timeout=0.5)

    def _count(self, body: dict[str, Any], message: Any) -> None:
        self.deliveries[str(body.get("event_id"))] += 1
        message.ack()


# --- the load ------------------------------------------------------------------------------


@dataclass
class Write:
    key: str
    body: dict[str, Any]
    status: int | None = None
    """The HTTP status, or None when no answer came (connection refused, reset, timed out)."""
    record_id: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Load:
    """Client threads creating customers through the gateway, each request with an
    ``Idempotency-Key``, until ``stop``."""

    def __init__(self, suite: Suite, token: str, concurrency: int, pause: float) -> None:
        self.suite = suite
        self.headers = {"Authorization": f"Bearer {token}"}
        self.concurrency = concurrency
        self.pause = pause
        self.writes: list[Write] = []
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for _ in range(self.concurrency):
            thread = threading.Thread(target=self._run, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=CLIENT_TIMEOUT + 5)

    def _run(self) -> None:
        http = requests.Session()
        while not self._stopping.is_set():
            write = Write(
                key=str(uuid.uuid4()),
                body={"name": f"{uuid.uuid4().hex}机电有限公司"},
            )
            self.writes.append(write)
            send(http, self.suite, self.headers, write)
            self._stopping.wait(self.pause)


def send(http: requests.Session, suite: Suite, headers: dict[str, str], write: Write) -> None:
    """POST the write's customer with its Idempotency-Key; record the answer in ``write``."""
    try:
        response = http.post(
            suite.url("/api/customers"),
            json=write.body,
            headers={**headers, "Idempotency-Key": write.key},
            timeout=CLIENT_TIMEOUT,
        )
    except requests.RequestException:
        write.status = None
        return
    write.status = response.status_code
    if write.succeeded:
        write.record_id = response.json().get("id")


# --- scenarios -----------------------------------------------------------------------------


@dataclass
class Stage:
    """What a fault acts on."""

    suite: Suite
    proxy: BrokerProxy
    seconds: float


def broker_cut(stage: Stage) -> None:
    stage.proxy.cut()
    time.sleep(stage.seconds)
    stage.proxy.heal()


def black_hole(stage: Stage) -> None:
    stage.proxy.black_hole()
    time.sleep(stage.seconds)
    stage.proxy.heal()


def sigkill(stage: Stage) -> None:
    stage.suite.kill("customer")
    time.sleep(stage.seconds)
    stage.suite.restart("customer")


def db_lock(stage: Stage) -> None:
    engine = create_engine(stage.suite.db_uri)
    try:
        with engine.connect() as connection:
            connection.execute(text("LOCK TABLE customers IN ACCESS EXCLUSIVE MODE"))
            time.sleep(stage.seconds)
            connection.commit()
    finally:
        engine.dispose()


SCENARIOS: dict[str, Callable[[Stage], None]] = {
    "broker-cut": broker_cut,
    "black-hole": black_hole,
    "sigkill": sigkill,
    "db-lock": db_lock,
}


@dataclass
class Settings:
    fault_seconds: float = 12.0
    lead_seconds: float = 2.0
    tail_seconds: float = 3.0
    concurrency: int = 4
    pause: float = 0.05
    recovery_seconds: float = 90.0
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="crm-chaos-")))
    pg_admin_uri: str = PG_ADMIN_URI


@dataclass
class Outcome:
    scenario: str
    sent: int = 0
    succeeded: int = 0
    failed: int = 0
    committed: int = 0
    committed_but_failed: int = 0
    learnable_by_retry: int = 0
    learnable_by_reading: int = 0
    duplicated_by_retry: int = 0
    events_in_outbox: int = 0
    events_lost: int = 0
    events_duplicated: int = 0
    crashed: list[str] = field(default_factory=list)
    """Processes that died during the scenario (other than the one it killed on purpose)."""
    failures: Counter[str] = field(default_factory=Counter)
    retry_answers: Counter[str] = field(default_factory=Counter)

    @property
    def crashed_processes(self) -> str:
        return ",".join(self.crashed) or "-"

    @property
    def duplicates_allowed(self) -> int:
        """The one outbox row in flight when the fault hits may go out twice: a process killed,
        or a connection cut, after the broker routed the row and before its confirm was
        recorded publishes that row again (consumers drop it through their inbox). The
        database lock scenario never touches the broker, so it may double nothing."""
        return 0 if self.scenario == "db-lock" else 1

    @property
    def sound(self) -> bool:
        """What every scenario must show: nothing lost, doubled beyond the one row in flight,
        unlearnable or crashed."""
        return not (
            self.events_lost
            or self.events_duplicated > self.duplicates_allowed
            or self.unlearnable
            or self.crashed
        )

    @property
    def unlearnable(self) -> int:
        return self.committed_but_failed - self.learnable_by_retry


def run_scenario(name: str, settings: Settings) -> Outcome:
    fault = SCENARIOS[name]
    with (
        postgres_database(settings.pg_admin_uri) as db_uri,
        BrokerProxy() as proxy,
        Suite(settings.workdir / name, db_uri=db_uri, amqp_host=proxy.address) as suite,
        EventCounter(f"amqp://guest:guest@{AMQP_HOST}/{suite.vhost}") as counter,
    ):
        token = suite.sign_in(WRITER)["access_token"]
        load = Load(suite, token, settings.concurrency, settings.pause)
        load.start()
        time.sleep(settings.lead_seconds)
        fault(Stage(suite, proxy, settings.fault_seconds))
        time.sleep(settings.tail_seconds)
        load.stop()
        crashed = suite.exited()
        for process in crashed:
            suite.restart(process)
        suite.wait_ready(timeout=settings.recovery_seconds)
        outcome = measure(name, suite, load, counter, settings)
        outcome.crashed = crashed
    return outcome


def measure(
    name: str, suite: Suite, load: Load, counter: EventCounter, settings: Settings
) -> Outcome:
    writes = list(load.writes)
    outcome = Outcome(scenario=name, sent=len(writes))
    rows = committed_rows(suite.db_uri)
    for write in writes:
        if write.succeeded:
            outcome.succeeded += 1
        else:
            outcome.failed += 1
            outcome.failures[str(write.status or "no answer")] += 1
    committed = {
        write.key: rows[write.body["name"]] for write in writes if write.body["name"] in rows
    }
    outcome.committed = len(committed)
    http = requests.Session()
    token = suite.sign_in(WRITER)["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    for write in writes:
        if write.succeeded:
            continue
        was_committed = write.key in committed
        retry = Write(key=write.key, body=write.body)
        send(http, suite, headers, retry)
        if was_committed:
            outcome.committed_but_failed += 1
            outcome.retry_answers[str(retry.status or "no answer")] += 1
            if retry.succeeded and retry.record_id == committed[write.key][0]:
                outcome.learnable_by_retry += 1
            if read_back(http, suite, headers, write.body["name"]):
                outcome.learnable_by_reading += 1
    after = committed_rows(suite.db_uri)
    outcome.duplicated_by_retry = sum(len(ids) - 1 for ids in after.values())
    outbox = wait_for_outbox(suite.db_uri, counter, settings.recovery_seconds)
    outcome.events_in_outbox = len(outbox)
    outcome.events_lost = len(outbox - set(counter.deliveries))
    outcome.events_duplicated = sum(count - 1 for count in counter.deliveries.values())
    return outcome


def committed_rows(db_uri: str) -> dict[str, list[str]]:
    """The ids of every customer in the database, by name."""
    engine = create_engine(db_uri)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT name, id FROM customers ORDER BY created_at"))
            found: dict[str, list[str]] = {}
            for customer_name, record_id in rows:
                found.setdefault(customer_name, []).append(str(record_id))
            return found
    finally:
        engine.dispose()


def read_back(http: requests.Session, suite: Suite, headers: dict[str, str], name: str) -> bool:
    response = http.get(
        suite.url("/api/customers"),
        params={"q": name},
        headers=headers,
        timeout=CLIENT_TIMEOUT,
    )
    return response.ok and any(item["name"] == name for item in response.json()["items"])


def wait_for_outbox(db_uri: str, counter: EventCounter, timeout: float) -> set[str]:
    """The outbox's event ids, once every row is sent and delivered (or ``timeout`` passes)."""
    engine = create_engine(db_uri)
    deadline = time.monotonic() + timeout
    try:
        while True:
            with engine.connect() as connection:
                rows = connection.execute(text("SELECT event_id, sent_at FROM outbox")).all()
            ids = {str(event_id) for event_id, _ in rows}
            pending = any(sent_at is None for _, sent_at in rows)
            if (not pending and ids <= set(counter.deliveries)) or time.monotonic() > deadline:
                return ids
            time.sleep(0.2)
    finally:
        engine.dispose()


@contextlib.contextmanager
def postgres_database(admin_uri: str) -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards."""
    name = f"crm_chaos_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_uri, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(admin_uri).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# --- the report ----------------------------------------------------------------------------

COLUMNS = (
    ("scenario", "scenario"),
    ("sent", "sent"),
    ("ok", "succeeded"),
    ("error", "failed"),
    ("committed", "committed"),
    ("committed+error", "committed_but_failed"),
    ("learn:retry", "learnable_by_retry"),
    ("learn:read", "learnable_by_reading"),
    ("unlearnable", "unlearnable"),
    ("dup:retry", "duplicated_by_retry"),
    ("events", "events_in_outbox"),
    ("lost", "events_lost"),
    ("dup events", "events_duplicated"),
    ("crashed", "crashed_processes"),
)


def table(outcomes: list[Outcome]) -> str:
    header = [title for title, _ in COLUMNS]
    rows = [[str(getattr(outcome, attr)) for _, attr in COLUMNS] for outcome in outcomes]
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [
        "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    for outcome in outcomes:
        if outcome.failures:
            lines.append(
                f"{outcome.scenario}: errors {dict(outcome.failures)}; "
                f"retries of committed writes answered {dict(outcome.retry_answers)}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.chaos", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("scenarios", nargs="*", help=f"any of {', '.join(SCENARIOS)} (all)")
    parser.add_argument("--fault-seconds", type=float, default=Settings.fault_seconds)
    parser.add_argument("--lead-seconds", type=float, default=Settings.lead_seconds)
    parser.add_argument("--tail-seconds", type=float, default=Settings.tail_seconds)
    parser.add_argument("--concurrency", type=int, default=Settings.concurrency)
    parser.add_argument("--pg-admin-uri", default=PG_ADMIN_URI)
    parser.add_argument("--workdir", type=Path, help="where the stacks keep files and logs")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(
            f"no scenario {', '.join(sorted(unknown))}; choose from {', '.join(SCENARIOS)}"
        )
    settings = Settings(
        fault_seconds=args.fault_seconds,
        lead_seconds=args.lead_seconds,
        tail_seconds=args.tail_seconds,
        concurrency=args.concurrency,
        pg_admin_uri=args.pg_admin_uri,
    )
    if args.workdir:
        settings.workdir = args.workdir
    outcomes = []
    for name in args.scenarios or SCENARIOS:
        print(
            f"== {name}: {settings.fault_seconds:g}s fault, {settings.concurrency} clients",
            flush=True,
        )
        outcomes.append(run_scenario(name, settings))
    print(table(outcomes))
    if args.json:
        figures = [
            {
                **{f.name: getattr(outcome, f.name) for f in fields(outcome)},
                "unlearnable": outcome.unlearnable,
            }
            for outcome in outcomes
        ]
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    sound = all(outcome.sound for outcome in outcomes)
    print(
        "expected 0 lost, at most 1 duplicated (the row in flight), 0 unlearnable, no crash:",
        "met" if sound else "NOT met",
    )
    return 0 if sound else 1


if __name__ == "__main__":
    sys.exit(main())
