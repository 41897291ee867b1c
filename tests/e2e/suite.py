"""Starts the suite as real processes (one per service, as in production) for e2e tests and bench.

Each suite gets its own RabbitMQ vhost and its own databases, so several can run side by side
with a developer's `make run`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests
import yaml

from gateway.tokens import TokenSettings, mint

DEMO_PASSWORD = "Crm-demo-2026"

AMQP_HOST = os.environ.get("AMQP_HOST", "localhost:5672")
MANAGEMENT_URI = os.environ.get("RABBIT_MANAGEMENT_URI", "http://guest:guest@localhost:15672")
BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]
TOKEN_SECRET = "e2e-" + uuid.uuid4().hex


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Suite:
    """``with Suite(workdir) as suite:`` — the org and customer services and the gateway, each a
    process. The demo org chart and its users are always loaded (nobody could sign in
    otherwise); ``demo=True`` adds the demo customers."""

    services = ("org.service", "customer.service", "gateway.service")
    ready_path = "/ready"

    def __init__(self, workdir: Path, *, demo: bool = False, db_uri: str | None = None) -> None:
        self.workdir = Path(workdir)
        self.demo = demo
        self.vhost = "crm_e2e_" + uuid.uuid4().hex[:10]
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.db_uri = db_uri or f"sqlite:///{self.workdir / 'customer.db'}"
        self.org_db_uri = f"sqlite:///{self.workdir / 'org.db'}"
        self.token_settings = TokenSettings(secret=TOKEN_SECRET, issuer="crm", audience="crm-api")
        self.processes: list[subprocess.Popen] = []

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
        self.prepare()
        config = self.workdir / "config.yml"
        config.write_text(yaml.safe_dump(self.config(), allow_unicode=True), encoding="utf-8")
        for service in self.services:
            log = open(self.workdir / f"{service.split('.')[0]}.log", "wb")  # noqa: SIM115
            self.processes.append(
                subprocess.Popen(
                    [str(BIN / "nameko"), "run", "--config", str(config), service],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.workdir,
                    env={
                        **os.environ,
                        "PYTHONPATH": str(ROOT),
                        "PYTHONWARNINGS": "ignore::DeprecationWarning",
                    },
                )
            )
        self.wait_ready()

    def prepare(self) -> None:
        """Bring the databases to the newest schema, and load the demo data if asked."""
        self._python("-m", "crm_common.migrations", "org", "--uri", self.org_db_uri)
        self._python("-m", "org.demo", env={"DB_URI": self.org_db_uri})
        self._python("-m", "crm_common.migrations", "customer", "--uri", self.db_uri)
        if self.demo:
            self._python("-m", "customer.demo", env={"DB_URI": self.db_uri})

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()
        self._management("delete", f"/api/vhosts/{self.vhost}", check=False)

    def config(self) -> dict:
        return {
            "AMQP_URI": f"amqp://guest:guest@{AMQP_HOST}/{self.vhost}",
            "WEB_SERVER_ADDRESS": f"127.0.0.1:{self.port}",
            "DB_URIS": {"customer": self.db_uri, "org": self.org_db_uri},
            "OUTBOX_POLL_SECONDS": 0.5,
            "TOKEN_SECRET": TOKEN_SECRET,
            "TOKEN_ISSUER": "crm",
            "TOKEN_AUDIENCE": "crm-api",
            "RPC_TIMEOUT": 10,
            "READY_TIMEOUT": 2,
            "BACKEND_SERVICES": "customer,org",
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
        last = None
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

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}"
            for path in sorted(self.workdir.glob("*.log"))
        )

    # --- calling it ------------------------------------------------------------------------

    def token(self, user_id: str = "u-sales-01", **kwargs) -> str:
        """A token signed with the suite's secret but not issued by signing in (for tests of
        what the gateway refuses)."""
        return mint(self.token_settings, user_id, **kwargs)

    def sign_in(self, username: str, password: str = DEMO_PASSWORD) -> dict:
        response = requests.post(
            self.url("/api/auth/token"),
            json={"username": username, "password": password},
            timeout=30,
        )
        response.raise_for_status()
        return response.json()

    def client(self, username: str = "sales01") -> requests.Session:
        """An HTTP session signed in as a demo user."""
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.sign_in(username)['access_token']}"
        return session

    def url(self, path: str) -> str:
        return self.base_url + path

    # --- helpers ---------------------------------------------------------------------------

    def _python(self, *args: str, env: dict | None = None) -> None:
        subprocess.run(
            [sys.executable, *args],
            check=True,
            cwd=self.workdir,
            env={**os.environ, **(env or {})},
            capture_output=True,
        )

    def _management(self, method: str, path: str, check: bool = True, **kwargs) -> None:
        response = requests.request(method, MANAGEMENT_URI.rstrip("/") + path, timeout=10, **kwargs)
        if check:
            response.raise_for_status()
