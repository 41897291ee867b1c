"""The suite's one service registry (``services.toml``) and everything derived from it.

Standard library only: the Makefile reads it with the system Python before any virtual
environment exists. ``python -m devstack.registry`` prints what the Makefile needs, writes the
generated files (``write``) or tells which of them disagree with the registry (``check``).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import sys
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from devstack import topology

ROOT = Path(__file__).resolve().parents[1]
REGISTRY_FILE = "services.toml"
GATEWAY = "gateway"
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Service:
    """One entry of the registry: a Nameko service with its own folder under ``services/``."""

    name: str
    package: str
    database: bool
    routes: str | None = None
    consumes: tuple[str, ...] = ()

    @property
    def module(self) -> str:
        """What ``nameko run`` is given."""
        return f"{self.package}.service"

    @property
    def folder(self) -> str:
        return f"services/{self.name}"

    @property
    def rpc_queue(self) -> str:
        return f"rpc-{self.name}"

    @property
    def db_env(self) -> str:
        """The dev config's environment variable for this service's database."""
        return f"{self.name.upper()}_DB_URI"

    @property
    def dev_db_uri(self) -> str:
        return f"sqlite:///var/{self.name}.db"


class RegistryError(ValueError):
    pass


def load(root: Path = ROOT) -> tuple[Service, ...]:
    path = Path(root) / REGISTRY_FILE
    with path.open("rb") as stream:
        entries = tomllib.load(stream).get("service", [])
    services = tuple(_service(entry, path) for entry in entries)
    names = [service.name for service in services]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise RegistryError(f"{path}: services listed twice: {', '.join(duplicated)}")
    return services


def _service(entry: dict[str, object], path: Path) -> Service:
    unknown = set(entry) - {"name", "package", "database", "routes", "consumes"}
    if unknown:
        raise RegistryError(f"{path}: unknown keys {sorted(unknown)} in {entry}")
    name = entry.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.match(name) or name == GATEWAY:
        raise RegistryError(f"{path}: {name!r} is not a valid service name (a-z, 0-9, _)")
    package = entry.get("package", name)
    database = entry.get("database", False)
    routes = entry.get("routes")
    if not isinstance(package, str) or not NAME_PATTERN.match(package):
        raise RegistryError(f"{path}: service {name}: package {package!r} is not a module name")
    if not isinstance(database, bool):
        raise RegistryError(f"{path}: service {name}: database must be true or false")
    if routes is not None and not isinstance(routes, str):
        raise RegistryError(f"{path}: service {name}: routes must be a module name")
    consumes = entry.get("consumes", [])
    if not isinstance(consumes, list) or not all(
        isinstance(source, str) and NAME_PATTERN.match(source) for source in consumes
    ):
        raise RegistryError(f"{path}: service {name}: consumes must list service names")
    return Service(
        name=name, package=package, database=database, routes=routes, consumes=tuple(consumes)
    )


def databases(services: Iterable[Service]) -> list[Service]:
    return [service for service in services if service.database]


def process_modules(services: Iterable[Service]) -> list[str]:
    """Every module of the development process: the services, then the gateway."""
    return [service.module for service in services] + [f"{GATEWAY}.service"]


def backend_list(services: Iterable[Service]) -> str:
    return ",".join(service.name for service in services)


def demo_module(service: Service, root: Path = ROOT) -> str | None:
    """The module loading the service's demo data (``demo/<name>.py``), if it has one."""
    if (Path(root) / "demo" / f"{service.name}.py").is_file():
        return f"demo.{service.name}"
    return None


# --- generated files -----------------------------------------------------------------------

GENERATED_NOTE = "generated from services.toml by `make registry`"


def render_dev_config(text: str, services: tuple[Service, ...]) -> str:
    """The root config.yml with its DB_URIS block and BACKEND_SERVICES line from the registry."""
    block = "".join(f"  {s.name}: ${{{s.db_env}:{s.dev_db_uri}}}\n" for s in databases(services))
    text = _replace(text, r"^DB_URIS:\n(?:  .*\n)*", f"DB_URIS:\n{block}", "config.yml DB_URIS")
    return render_backend_line(text, services, "config.yml")


def render_backend_line(text: str, services: tuple[Service, ...], where: str) -> str:
    line = f"BACKEND_SERVICES: ${{BACKEND_SERVICES:{backend_list(services)}}}"
    return _replace(text, r"^BACKEND_SERVICES: .*$", line, f"{where} BACKEND_SERVICES")


def _replace(text: str, pattern: str, replacement: str, what: str) -> str:
    new, count = re.subn(pattern, lambda _: replacement, text, count=1, flags=re.MULTILINE)
    if count != 1:
        raise RegistryError(f"{what} not found: it is where the registry's values go")
    return new


POSTGRES_HEAD = """\
-- One database per service, each owned by its own role; a service never reads another's.
-- Generated from services.toml by `make registry`.
-- Runs once, when the PostgreSQL volume is first initialised (docker-entrypoint-initdb.d).
-- The passwords are for a local compose stack only; real deployments set their own.
"""


def render_postgres_script(services: tuple[Service, ...]) -> str:
    lines = POSTGRES_HEAD.splitlines()
    for service in databases(services):
        name = service.name
        lines += [
            "",
            f"CREATE ROLE {name} LOGIN PASSWORD '{name}';",
            f"CREATE DATABASE {name} OWNER {name} ENCODING 'UTF8' TEMPLATE template0;",
        ]
    return "\n".join(lines) + "\n"


COMPOSE_HEAD = """\
# The whole suite on one Docker host: `docker compose -f deploy/docker-compose.yml up --build`.
# {note}: one migration job and one service per registry
# entry, built from the one deploy/Dockerfile with the service as build argument (context: the
# repository root, so the image can copy libs/crm_common). Secrets below are defaults for a
# local stack; override them through the environment. Keys: run
# `python -m crm_common.identity deploy/keys {names}` first (see README, "Tokens and keys").
x-public-keys: &public-keys /run/secrets/crm-public-keys

services:
  rabbitmq:
    image: rabbitmq:3.13-management
    hostname: rabbitmq
    # Users, vhost, permissions and the ERP integration's exchanges and queues come from
    # definitions.json (one user per process, see README, "Broker users" and "ERP
    # integration"); rabbitmq.conf loads it at boot.
    ports:
      - "5672:5672"
      # The management UI and API answer on this host only.
      - "127.0.0.1:15672:15672"
    volumes:
      - ./rabbitmq/rabbitmq.conf:/etc/rabbitmq/conf.d/20-crm.conf:ro
      - ./rabbitmq/definitions.json:/etc/rabbitmq/definitions.json:ro
      - rabbitmq-data:/var/lib/rabbitmq
    healthcheck:
      test: ["CMD", "rabbitmq-diagnostics", "-q", "check_port_connectivity"]
      interval: 10s
      timeout: 10s
      retries: 12
      start_period: 30s
    restart: unless-stopped

  postgres:
    image: postgres:16
    environment:
      POSTGRES_USER: postgres
      POSTGRES_PASSWORD: ${{POSTGRES_PASSWORD:-postgres}}
    volumes:
      - ./postgres:/docker-entrypoint-initdb.d:ro
      - postgres-data:/var/lib/postgresql/data
    healthcheck:
      # Over TCP: during initialisation the server listens on its socket only, so this
      # answers once the init scripts have run and the real server is up.
      test: ["CMD", "pg_isready", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres"]
      interval: 5s
      timeout: 5s
      retries: 20
      start_period: 10s
    restart: unless-stopped

  # For a local try: notify's email goes here (SMTP on 1025 inside the stack); read it at
  # http://localhost:8025/. Point notify's SMTP_HOST at a real server for anything else.
  mailcatcher:
    image: axllent/mailpit:v1.21
    ports:
      - "127.0.0.1:8025:8025"
    healthcheck:
      test: ["CMD", "/mailpit", "readyz"]
      interval: 15s
      timeout: 5s
      retries: 5
    restart: unless-stopped

  # For a local try: notify's SMS go here (tools/sms_catcher, standard library only, mounted
  # into a plain Python image); read them at http://localhost:8026/. It reports each SMS back
  # to notify's receipt route through the gateway. Point notify's SMS_PROVIDER and
  # SMS_ENDPOINT at a real provider for anything else.
  sms-catcher:
    image: python:3.11-slim
    working_dir: /catcher
    command: [python, -m, tools.sms_catcher, --host, 0.0.0.0, --port, "8026", --directory, /tmp/sms]
    environment:
      SMS_CATCHER_RECEIPT_URL: http://gateway:8000/api/alerts/sms-receipts
      SMS_RECEIPT_TOKEN: &sms-receipt-token ${{SMS_RECEIPT_TOKEN:-local-sms-receipt-token}}
    volumes:
      - ../tools/sms_catcher:/catcher/tools/sms_catcher:ro
    ports:
      - "127.0.0.1:8026:8026"
    healthcheck:
      test:
        - CMD
        - python
        - -c
        - "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8026/', timeout=3)"
      interval: 15s
      timeout: 5s
      retries: 5
    restart: unless-stopped
"""

# What a service's container is told beyond what every one gets.
COMPOSE_SERVICE_ENV: dict[str, dict[str, str]] = {
    "notify": {
        "SMTP_HOST": "mailcatcher",
        "SMTP_PORT": '"1025"',
        "SMS_PROVIDER": "webhook",
        "SMS_ENDPOINT": "http://sms-catcher:8026/webhook",
        "SMS_RECEIPT_TOKEN": "*sms-receipt-token",
    },
}

COMPOSE_BUILD = """\
    build:
      context: ..
      dockerfile: deploy/Dockerfile
      args:
        SERVICE: {name}
{package_arg}    image: crm/{name}:dev
"""

COMPOSE_MIGRATE = """
  {name}-migrate:
{build}\
    command: ["python", "-m", "crm_common.migrations", "{package}"]
    environment:
      DB_URI: &{name}-db-uri postgresql+psycopg2://{name}:{name}@postgres:5432/{name}
    depends_on:
      postgres:
        condition: service_healthy
    restart: "no"
"""

COMPOSE_SERVICE = """
  {name}:
{build}\
    environment:
      AMQP_URI: {amqp_uri}
      CRM_ENV: ${{CRM_ENV:-development}}
      PUBLIC_KEYS: *public-keys
      PRIVATE_KEYS: /run/secrets/crm-private-keys
{db_env}\
{extra_env}\
      METRICS_PORT: "9100"
      LOG_LEVEL: ${{LOG_LEVEL:-INFO}}
    depends_on:
      rabbitmq:
        condition: service_healthy
{db_depends}\
    healthcheck:
      # Healthy once the service answers an RPC over the broker.
      test:
        - CMD
        - python
        - -W
        - ignore
        - -c
        - >-
          import os; from nameko.standalone.rpc import ClusterRpcProxy;
          proxy = ClusterRpcProxy({{'AMQP_URI': os.environ['AMQP_URI']}}, timeout=5);
          assert proxy.start().{name}.ping() == 'pong'; proxy.stop()
      interval: 15s
      timeout: 10s
      retries: 8
      start_period: 20s
    secrets: [crm-public-keys, crm-private-keys]
    restart: unless-stopped
"""

COMPOSE_DB_DEPENDS = """\
      postgres:
        condition: service_healthy
      {name}-migrate:
        condition: service_completed_successfully
"""

COMPOSE_GATEWAY = """
  gateway:
{build}\
    environment:
      AMQP_URI: {amqp_uri}
      WEB_SERVER_ADDRESS: 0.0.0.0:8000
      CRM_ENV: ${{CRM_ENV:-development}}
      PUBLIC_KEYS: *public-keys
      PRIVATE_KEYS: /run/secrets/crm-private-keys
      TOKEN_ISSUER: crm
      TOKEN_AUDIENCE: crm-api
      RPC_TIMEOUT: "10"
      BACKEND_SERVICES: {backends}
      METRICS_PORT: "9100"
      LOG_LEVEL: ${{LOG_LEVEL:-INFO}}
    ports:
      - "8000:8000"
    depends_on:
      rabbitmq:
        condition: service_healthy
{backend_depends}\
    healthcheck:
      test:
        - CMD
        - python
        - -c
        - "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=3)"
      interval: 10s
      timeout: 5s
      retries: 6
      start_period: 10s
    secrets: [crm-public-keys, crm-private-keys]
    restart: unless-stopped

secrets:
  crm-public-keys:
    file: ./keys/public.jwks
  crm-private-keys:
    file: ./keys/private.jwks

volumes:
  rabbitmq-data:
  postgres-data:
"""


def _build(name: str, package: str) -> str:
    package_arg = f"        PACKAGE: {package}\n" if package != name else ""
    return COMPOSE_BUILD.format(name=name, package_arg=package_arg)


def render_compose(services: tuple[Service, ...]) -> str:
    names = " ".join([*(service.name for service in services), "gateway"])
    parts = [COMPOSE_HEAD.format(note=f"The services are {GENERATED_NOTE}", names=names)]
    for service in services:
        build = _build(service.name, service.package)
        if service.database:
            parts.append(
                COMPOSE_MIGRATE.format(name=service.name, package=service.package, build=build)
            )
        parts.append(
            COMPOSE_SERVICE.format(
                name=service.name,
                build=build,
                amqp_uri=broker_uri(service.name),
                db_env=f"      DB_URI: *{service.name}-db-uri\n" if service.database else "",
                extra_env="".join(
                    f"      {key}: {value}\n"
                    for key, value in COMPOSE_SERVICE_ENV.get(service.name, {}).items()
                ),
                db_depends=COMPOSE_DB_DEPENDS.format(name=service.name) if service.database else "",
            )
        )
    parts.append(
        COMPOSE_GATEWAY.format(
            build=_build(GATEWAY, GATEWAY),
            amqp_uri=broker_uri(GATEWAY),
            backends=backend_list(services),
            backend_depends="".join(
                f"      {s.name}:\n        condition: service_healthy\n" for s in services
            ),
        )
    )
    return "".join(parts)


# --- the broker's users and permissions -----------------------------------------------------

BROKER_VHOST = "crm"
BROKER_ADMIN = "crm-admin"
RPC_EXCHANGE = "nameko-rpc"
# The event sources of the gateway (not a registry entry): it hears them on broadcast queues.
GATEWAY_CONSUMES = ("org",)
# The reply queues of nameko's standalone proxies: a service calling another as itself
# (crm_common.identity's ``rpc``), the gateway loading org's revocation state at start, and
# the compose healthcheck's ping.
STANDALONE_REPLIES = r"rpc\.reply-standalone_rpc_proxy-.*"
# Retry queues dead-letter back through the default exchange, and the consumer moves messages
# to its retry and dead-letter queues through it.
DEFAULT_EXCHANGE = r"amq\.default"


def _any_of(patterns: Iterable[str]) -> str:
    """One anchored regex: RabbitMQ matches permissions against any part of a name otherwise."""
    return "^(" + "|".join(patterns) + ")$"


def broker_permissions(name: str, consumes: Iterable[str]) -> dict[str, str]:
    """What a service's broker user may declare (configure), publish to or bind to a queue
    (write) and consume or bind from (read): its RPC queue, its reply queues, its own
    ``<name>.*`` queues and ``<name>.events`` exchange, the shared RPC exchange, and the event
    exchanges it consumes from, which it may declare and bind from but never publish to."""
    sources = [rf"{source}\.events" for source in consumes]
    own = [f"rpc-{name}", rf"rpc\.reply-{name}-.*", rf"{name}\..*", STANDALONE_REPLIES]
    return {
        "configure": _any_of([*own, RPC_EXCHANGE, *sources]),
        "write": _any_of([*own, RPC_EXCHANGE, DEFAULT_EXCHANGE]),
        "read": _any_of([*own, RPC_EXCHANGE, *sources]),
    }


def gateway_broker_permissions(consumes: Iterable[str] = GATEWAY_CONSUMES) -> dict[str, str]:
    """The gateway calls every service and hears events on nameko's broadcast queues
    ``evt-<source>-<event>--gateway.<handler>-<uuid>``; it owns no exchange."""
    sources = list(consumes)
    own = [rf"rpc\.reply-{GATEWAY}-.*", STANDALONE_REPLIES]
    own += [rf"evt-{source}-[a-z0-9_]+--{GATEWAY}\..*" for source in sources]
    exchanges = [rf"{source}\.events" for source in sources]
    return {
        "configure": _any_of([*own, RPC_EXCHANGE, *exchanges]),
        "write": _any_of([*own, RPC_EXCHANGE]),
        "read": _any_of([*own, RPC_EXCHANGE, *exchanges]),
    }


# Reply queues bind to the RPC exchange with their own uuid (no braces: RabbitMQ expands
# `{username}`-style variables in topic permissions).
REPLY_BINDING = "[0-9a-f-]+"


def rpc_binding_keys(name: str | None) -> dict[str, str]:
    """Topic permissions on the RPC exchange: read permission there would let a user bind a
    queue of its own to another service's calls, so its binding keys are limited to its own
    calls (``<name>.*``, none for the gateway) and its reply queues' uuids."""
    keys = [REPLY_BINDING] if name is None else [rf"{name}\.\*", REPLY_BINDING]
    return {"exchange": RPC_EXCHANGE, "write": ".*", "read": _any_of(keys)}


def broker_password_hash(password: str, user: str) -> str:
    """RabbitMQ's ``rabbit_password_hashing_sha256`` hash, salted from the user name so that the
    generated file is stable (a real deployment replaces it, see README)."""
    salt = hashlib.sha256(user.encode()).digest()[:4]
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


ERP_USER = "erp"
"""The ERP's own broker user: not a process of the suite, an integrator's client."""
NOTHING = "^$"


def erp_broker_permissions() -> dict[str, str]:
    """The ERP publishes its events to ``erp.events`` and reads the CRM's order requests from
    ``erp.order-requests``; it declares nothing (deployment topology does) and reaches no
    other exchange or queue."""
    return {
        "configure": NOTHING,
        "write": _any_of([re.escape(topology.ERP_EXCHANGE)]),
        "read": _any_of([re.escape(topology.ERP_QUEUE)]),
    }


def broker_users(services: tuple[Service, ...]) -> dict[str, dict[str, str]]:
    """Each process's broker user and its permissions on the suite's vhost."""
    users = {
        service.name: broker_permissions(service.name, service.consumes) for service in services
    }
    users[GATEWAY] = gateway_broker_permissions()
    return users


def broker_uri(user: str, host: str = "rabbitmq:5672") -> str:
    """A process's AMQP_URI in the compose stack: its own user on the suite's vhost."""
    return f"amqp://{user}:{user}@{host}/{BROKER_VHOST}"


def render_broker_definitions(services: tuple[Service, ...]) -> str:
    users = broker_users(services)
    every = _any_of([".*"])
    definitions = {
        "vhosts": [{"name": BROKER_VHOST}],
        "users": [
            {
                "name": user,
                "password_hash": broker_password_hash(user, user),
                "hashing_algorithm": "rabbit_password_hashing_sha256",
                "tags": ["administrator"] if user == BROKER_ADMIN else [],
            }
            for user in [BROKER_ADMIN, *users, ERP_USER]
        ],
        "permissions": [
            {"user": BROKER_ADMIN, "vhost": BROKER_VHOST}
            | {"configure": every, "write": every, "read": every},
            *({"user": user, "vhost": BROKER_VHOST} | rights for user, rights in users.items()),
            {"user": ERP_USER, "vhost": BROKER_VHOST} | erp_broker_permissions(),
        ],
        "topic_permissions": [
            {"user": user, "vhost": BROKER_VHOST}
            | rpc_binding_keys(None if user == GATEWAY else user)
            for user in users
        ],
        # The ERP integration's exchanges, queues and bindings (devstack/topology.py).
        **topology.definitions(BROKER_VHOST),
    }
    return json.dumps(definitions, indent=2) + "\n"


@dataclass(frozen=True)
class Generated:
    path: str
    render: Callable[[str, tuple[Service, ...]], str]


GENERATED_FILES = (
    Generated("config.yml", render_dev_config),
    Generated(
        "gateway/config.yml",
        lambda text, services: render_backend_line(text, services, "gateway/config.yml"),
    ),
    Generated(
        "deploy/postgres/01-databases.sql", lambda _, services: render_postgres_script(services)
    ),
    Generated("deploy/docker-compose.yml", lambda _, services: render_compose(services)),
    Generated(
        "deploy/rabbitmq/definitions.json",
        lambda _, services: render_broker_definitions(services),
    ),
)


def outdated(root: Path = ROOT) -> list[str]:
    """The generated files whose content differs from what the registry gives."""
    services = load(root)
    stale = []
    for generated in GENERATED_FILES:
        path = Path(root) / generated.path
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if generated.render(current, services) != current:
            stale.append(generated.path)
    return stale


def write(root: Path = ROOT) -> list[str]:
    """Rewrite the generated files from the registry; returns those that changed."""
    services = load(root)
    changed = []
    for generated in GENERATED_FILES:
        path = Path(root) / generated.path
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        new = generated.render(current, services)
        if new != current:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(new, encoding="utf-8")
            changed.append(generated.path)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository root")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("modules", help="the modules `nameko run` serves in development")
    commands.add_parser("names", help="the registry's service names")
    commands.add_parser("databases", help="the names of the services that own a database")
    commands.add_parser("demos", help="name=module of each database service's demo loader")
    commands.add_parser("write", help="rewrite the files generated from the registry")
    commands.add_parser("check", help="fail if a generated file disagrees with the registry")
    args = parser.parse_args(argv)
    try:
        services = load(args.root)
        if args.command == "modules":
            print(" ".join(process_modules(services)))
        elif args.command == "names":
            print(" ".join(service.name for service in services))
        elif args.command == "databases":
            print(" ".join(service.name for service in databases(services)))
        elif args.command == "demos":
            found = ((s.name, demo_module(s, args.root)) for s in databases(services))
            print(" ".join(f"{name}={module}" for name, module in found if module))
        elif args.command == "write":
            changed = write(args.root)
            print("rewritten: " + ", ".join(changed) if changed else "every generated file agrees")
        else:
            stale = outdated(args.root)
            if stale:
                print(f"out of date with {REGISTRY_FILE}: {', '.join(stale)}; run `make registry`")
                return 1
    except (OSError, RegistryError, tomllib.TOMLDecodeError) as problem:
        print(f"The service registry cannot be read: {problem}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
