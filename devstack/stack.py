"""The suite started as real processes (one per service, as in production), for the e2e tests
and the benchmarks.

The services come from the registry (``services.toml``). Each stack gets its own RabbitMQ
virtual host, its own SQLite databases (or the customer database it is given), its own HTTP
port and one free metrics port per process, so several run side by side with a developer's
``make run``.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

import requests
import yaml
from amqp.exceptions import NotFound
from kombu import Connection

from crm_common.identity import Trust, ensure_keys, mint
from devstack import registry, topology

DEMO_PASSWORD = "Crm-demo-2026"

AMQP_HOST = os.environ.get("AMQP_HOST", "localhost:5672")
MANAGEMENT_URI = os.environ.get("RABBIT_MANAGEMENT_URI", "http://guest:guest@localhost:15672")
BIN = Path(sys.executable).parent
ROOT = registry.ROOT
# Demo data loaded whatever ``demo`` says: nobody could sign in without org's users.
ALWAYS_LOADED_DEMOS = ("org",)


_PREPARED: dict[tuple[str, bool], Path] = {}
"""Per service and with or without demo data: a copy of a database some stack of this process
prepared, migrated to the newest schema."""
_PREPARED_DIR: Path | None = None


def sqlite_file(uri: str) -> Path | None:
    """The file of a SQLite ``uri``; None for another database."""
    prefix = "sqlite:///"
    return Path(uri[len(prefix) :]) if uri.startswith(prefix) else None


def copy_database(source: Path, target: Path) -> None:
    """Copy a SQLite database through SQLite's backup API, which reads what the source's
    write-ahead log holds too."""
    with closing(sqlite3.connect(source)) as reading, closing(sqlite3.connect(target)) as writing:
        reading.backup(writing)


def _keep(database: Path) -> Path:
    """A copy of a prepared database, in a directory removed when the process exits."""
    global _PREPARED_DIR
    if _PREPARED_DIR is None:
        _PREPARED_DIR = Path(tempfile.mkdtemp(prefix="crm-prepared-"))
        atexit.register(shutil.rmtree, _PREPARED_DIR, True)
    kept = _PREPARED_DIR / f"{uuid.uuid4().hex}.db"
    copy_database(database, kept)
    return kept


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_name(module: str) -> str:
    """``customer.service`` runs as ``customer``; ``package.module:ServiceClass`` (one service
    of a module with several) as ``serviceclass``."""
    package, _, service_class = module.partition(":")
    return service_class.lower() or package.split(".")[0]


class Suite:
    """``with Suite(workdir) as suite:`` — every registry service and the gateway, each a
    process. The demo org chart and its users are always loaded; ``demo=True`` adds the other
    services' demo data. ``db_uri`` puts the customer database elsewhere (e.g. PostgreSQL);
    ``amqp_host`` (``host:port``) routes every process's AMQP connections elsewhere, e.g.
    through a proxy that can cut them (the management API stays on the real broker)."""

    services: tuple[str, ...] = tuple(registry.process_modules(registry.load()))
    ready_path = "/ready"

    def __init__(
        self,
        workdir: Path,
        *,
        demo: bool = False,
        db_uri: str | None = None,
        amqp_host: str | None = None,
        amqp_users: dict[str, str] | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        # ``{"customer": "user:password", ...}``: a process named here connects as that user.
        self.amqp_users = dict(amqp_users or {})
        self.demo = demo
        self.amqp_host = amqp_host or AMQP_HOST
        self.registry = registry.load()
        self.vhost = "crm_e2e_" + uuid.uuid4().hex[:10]
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.db_uris = {
            service.name: f"sqlite:///{self.workdir / f'{service.name}.db'}"
            for service in registry.databases(self.registry)
        }
        if db_uri:
            self.db_uris["customer"] = db_uri
        self.metrics_ports = {process_name(module): free_port() for module in self.services}
        # A key pair per process, made for this stack alone (org's signs the access tokens).
        self.keys = (self.workdir / "keys").resolve()
        ensure_keys(self.keys, [process_name(module) for module in self.services], "e2e")
        self.trust = Trust.from_config(self.key_config(), signs=True)
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def db_uri(self) -> str:
        return self.db_uris["customer"]

    @property
    def org_db_uri(self) -> str:
        return self.db_uris["org"]

    # --- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> Suite:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._management("put", f"/api/vhosts/{self.vhost}")
        self._management(
            "put",
            f"/api/permissions/{self.vhost}/guest",
            json={"configure": ".*", "write": ".*", "read": ".*"},
        )
        try:
            # The ERP integration's queues exist before any service runs, as deployment
            # declares them (definitions.json, make topology).
            topology.apply(f"amqp://guest:guest@{AMQP_HOST}/{self.vhost}")
            self.prepare()
            for module in self.services:
                self.processes.append(self._start_process(module))
            self.wait_ready()
        except BaseException:
            self.stop()
            raise

    def _start_process(self, module: str) -> subprocess.Popen[bytes]:
        name = process_name(module)
        config = self.workdir / f"config-{name}.yml"
        values = {**self.config(), "METRICS_PORT": self.metrics_ports[name]}
        if name in self.amqp_users:
            values["AMQP_URI"] = f"amqp://{self.amqp_users[name]}@{self.amqp_host}/{self.vhost}"
        config.write_text(yaml.safe_dump(values, allow_unicode=True), encoding="utf-8")
        with open(self.workdir / f"{name}.log", "ab") as log:
            return subprocess.Popen(
                [str(BIN / "nameko"), "run", "--config", str(config), module],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env={
                    **os.environ,
                    "PYTHONPATH": str(ROOT),
                    "PYTHONWARNINGS": "ignore::DeprecationWarning",
                },
            )

    def kill(self, name: str, signum: int = signal.SIGKILL) -> None:
        """Send ``signum`` to one process (``customer``, ``gateway``…) and wait for it to end."""
        process = self.processes[self._index(name)]
        process.send_signal(signum)
        process.wait(timeout=30)

    def restart(self, name: str) -> None:
        """Start a process again after ``kill``, and wait until the stack is ready."""
        index = self._index(name)
        self.processes[index] = self._start_process(self.services[index])
        self.wait_ready()

    def exited(self) -> list[str]:
        """The processes that have ended: crashed, or killed and not restarted."""
        return [
            process_name(module)
            for module, process in zip(self.services, self.processes, strict=True)
            if process.poll() is not None
        ]

    def _index(self, name: str) -> int:
        return [process_name(module) for module in self.services].index(name)

    def prepare(self) -> None:
        """Bring every database to the newest schema, and load the demo data: on SQLite once
        per process, after which each stack starts from a copy of the file (migrating and
        loading the demo data takes seconds per service, a copy a millisecond). The services'
        databases are prepared side by side: none reads another's."""
        services = registry.databases(self.registry)
        with ThreadPoolExecutor(max_workers=len(services) or 1) as pool:
            list(pool.map(self._prepare_database, services))

    def _prepare_database(self, service: registry.Service) -> None:
        with_demo = self.demo or service.name in ALWAYS_LOADED_DEMOS
        database = sqlite_file(self.db_uris[service.name])
        prepared = _PREPARED.get((service.name, with_demo))
        if database is not None and prepared is not None:
            copy_database(prepared, database)
            return
        self.migrate(service.name)
        if with_demo:
            self.load_demo(service.name)
        if database is not None:
            _PREPARED[service.name, with_demo] = _keep(database)

    def migrate(self, name: str) -> None:
        package = next(service.package for service in self.registry if service.name == name)
        self._python("-m", "crm_common.migrations", package, "--uri", self.db_uris[name])

    def load_demo(self, name: str) -> None:
        service = next(service for service in self.registry if service.name == name)
        module = registry.demo_module(service)
        if module:
            self._python("-m", module, env={"DB_URI": self.db_uris[name]})

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
        self._management("delete", f"/api/vhosts/{self.vhost}", check=False)

    def config(self) -> dict[str, Any]:
        return {
            "AMQP_URI": f"amqp://guest:guest@{self.amqp_host}/{self.vhost}",
            "WEB_SERVER_ADDRESS": f"127.0.0.1:{self.port}",
            "DB_URIS": dict(self.db_uris),
            "OUTBOX_POLL_SECONDS": 0.5,
            **self.key_config(),
            "TOKEN_ISSUER": "crm",
            "TOKEN_AUDIENCE": "crm-api",
            "RPC_TIMEOUT": 10,
            "READY_TIMEOUT": 2,
            "BACKEND_SERVICES": registry.backend_list(self.registry),
            "LOGGING": {
                "version": 1,
                "disable_existing_loggers": False,
                "filters": {"request_id": {"()": "crm_common.logs.RequestIdFilter"}},
                "formatters": {"json": {"()": "crm_common.logs.JsonFormatter"}},
                "handlers": {
                    "console": {
                        "class": "logging.StreamHandler",
                        "stream": "ext://sys.stdout",
                        "formatter": "json",
                        "filters": ["request_id"],
                    }
                },
                "root": {"level": "INFO", "handlers": ["console"]},
            },
        }

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(f"a service process exited early:\n{self.logs()}")
            try:
                last = requests.get(self.base_url + self.ready_path, timeout=3)
                if last.status_code == 200:
                    return
            except requests.RequestException as exc:
                last = exc
            time.sleep(0.2)
        raise RuntimeError(f"the suite did not become ready ({last}):\n{self.logs()}")

    def wait_consuming(self, queue: str, timeout: float = 60.0) -> None:
        """Until a process of the stack consumes ``queue``: for a process without HTTP. The
        queue itself is asked (a passive declare), as the management API's consumer counts
        lag by its statistics interval (five seconds by default)."""
        deadline = time.monotonic() + timeout
        with Connection(str(self.config()["AMQP_URI"]), connect_timeout=30) as connection:
            while time.monotonic() < deadline:
                if any(process.poll() is not None for process in self.processes):
                    raise RuntimeError(f"a process exited early:\n{self.logs()}")
                with connection.channel() as channel:
                    try:
                        if channel.queue_declare(queue=queue, passive=True).consumer_count:
                            return
                    except NotFound:  # not declared yet
                        pass
                time.sleep(0.05)
        raise RuntimeError(f"no process consumed {queue}:\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}"
            for path in sorted(self.workdir.glob("*.log"))
        )

    # --- calling it ------------------------------------------------------------------------

    def key_config(self) -> dict[str, str]:
        return {
            "PUBLIC_KEYS": str(self.keys / "public.jwks"),
            "PRIVATE_KEYS": str(self.keys / "private.jwks"),
        }

    def token(self, user_id: str = "u-sales-01", **kwargs: Any) -> str:
        """A token signed with the stack's org key but not issued by signing in (for tests of
        what the gateway refuses)."""
        return mint(self.trust, "org", user_id, **kwargs)

    def sign_in(self, username: str, password: str = DEMO_PASSWORD) -> dict[str, Any]:
        response = requests.post(
            self.url("/api/auth/token"),
            json={"username": username, "password": password},
            timeout=30,
        )
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def client(self, username: str = "sales01") -> requests.Session:
        """An HTTP session signed in as a demo user."""
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.sign_in(username)['access_token']}"
        return session

    def url(self, path: str) -> str:
        return self.base_url + path

    def metrics_url(self, process: str) -> str:
        """Where the process (``org``, ``customer``, ``gateway``…) serves its metrics."""
        return f"http://127.0.0.1:{self.metrics_ports[process]}/metrics"

    # --- helpers ---------------------------------------------------------------------------

    def _python(self, *args: str, env: dict[str, str] | None = None) -> None:
        result = subprocess.run(
            [sys.executable, *args],
            cwd=self.workdir,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout}{result.stderr}")

    def _management(self, method: str, path: str, check: bool = True, **kwargs: Any) -> None:
        response = requests.request(method, MANAGEMENT_URI.rstrip("/") + path, timeout=60, **kwargs)
        if check:
            response.raise_for_status()
