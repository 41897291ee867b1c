"""Create a new service in the suite's standard layout and add it to the registry.

``python -m devstack.scaffold NAME [--root DIR]`` (or ``make new-service NAME=...``) writes
``services/NAME/`` — pyproject, config.yml, Alembic with the outbox and inbox tables, the
service class on ``crm_common.kit.ServiceKit``, ``application/``, ``repository.py``,
``domain/``, models, schemas and events — and ``tests/unit/NAME/``, then appends the service to
``services.toml``, to ``requirements-dev.txt`` and to ruff's first-party packages. The new
service migrates, starts, answers ``ping`` and publishes its schemas before it has any domain
code. ``make registry`` then rewrites what follows from the registry (the Makefile reads it).
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

from devstack.registry import NAME_PATTERN, REGISTRY_FILE, ROOT, RegistryError, load

RESERVED = {"gateway", "demo", "devstack", "tests", "bench", "crm_common", "scripts", "deploy"}

PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "crm-@NAME@"
version = "0.1.0"
description = "The @NAME@ bounded context of the CRM"
requires-python = ">=3.11,<3.12"
dependencies = [
  "crm-common",
  "nameko==2.14.1",
  "SQLAlchemy>=2.0,<2.2",
  "marshmallow>=4,<5",
  "alembic>=1.13",
]

[tool.setuptools.packages.find]
include = ["@NAME@*"]

[tool.setuptools.package-data]
@NAME@ = ["migrations/*.py", "migrations/*.mako", "migrations/versions/*.py"]
"""

CONFIG = """\
# Nameko config of the @NAME@ service when it runs on its own (container, pod).
# Every value can be overridden by the environment variable named in ${NAME:default}.
AMQP_URI: ${AMQP_URI:amqp://guest:guest@localhost:5672/}
DB_URIS:
  @NAME@: ${DB_URI:sqlite:///var/@NAME@.db}
OUTBOX_POLL_SECONDS: ${OUTBOX_POLL_SECONDS:2}
max_workers: ${MAX_WORKERS:10}

# Keys (crm_common.identity): PUBLIC_KEYS is the JWK set of every service's public keys,
# PRIVATE_KEYS the private keys of the services this process runs; each a file path or the JSON
# itself. Outside CRM_ENV=development, development keys and shared private files are refused.
CRM_ENV: ${CRM_ENV:development}
PUBLIC_KEYS: ${PUBLIC_KEYS:}
PRIVATE_KEYS: ${PRIVATE_KEYS:}
TOKEN_ISSUER: ${TOKEN_ISSUER:crm}
TOKEN_AUDIENCE: ${TOKEN_AUDIENCE:crm-api}
TOKEN_LEEWAY: ${TOKEN_LEEWAY:30}

# Prometheus metrics at http://<host>:METRICS_PORT/metrics (0 turns the endpoint off).
METRICS_PORT: ${METRICS_PORT:9100}
# Seconds between the retries of an event handler that failed (comma-separated); after the
# last one the message goes to the service's dead-letter queue.
EVENT_RETRY_DELAYS: ${EVENT_RETRY_DELAYS:1,10,60}

LOGGING:
  version: 1
  disable_existing_loggers: false
  filters:
    request_id:
      "()": crm_common.logs.RequestIdFilter
  formatters:
    json:
      "()": crm_common.logs.JsonFormatter
  handlers:
    console:
      class: logging.StreamHandler
      stream: ext://sys.stdout
      formatter: json
      filters: [request_id]
  loggers:
    amqp:
      level: WARNING
    kombu:
      level: WARNING
  root:
    level: ${LOG_LEVEL:INFO}
    handlers: [console]
"""

ALEMBIC_INI = """\
# Alembic for the @NAME@ database. The database URI comes from $DB_URI, e.g.
#   DB_URI=postgresql+psycopg2://crm@db/@NAME@ alembic -c alembic.ini upgrade head
# (`python -m crm_common.migrations @NAME@ --uri ...` does the same from code).
[alembic]
script_location = @NAME@:migrations
file_template = %%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s
prepend_sys_path = .

[loggers]
keys = root,sqlalchemy,alembic

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console

[logger_sqlalchemy]
level = WARNING
handlers =
qualname = sqlalchemy.engine

[logger_alembic]
level = INFO
handlers =
qualname = alembic

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
"""

PACKAGE_INIT = '''\
"""The @NAME@ bounded context of the CRM."""
'''

SERVICE = '''\
"""The @NAME@ service: thin Nameko entrypoints over ``@NAME@.application``.

Each entrypoint is one line that runs a use case: a write in one transaction, a read in none::

    @rpc
    def update_thing(self, thing_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        with unit_of_work(self.db, self.outbox) as context:
            return Things(context).update(thing_id, changes)

    @rpc
    def get_thing(self, thing_id: str) -> dict[str, Any]:
        with read_only(self.db) as context:
            return Things(context).get(thing_id)

with ``rpc`` from ``crm_common.entrypoints``, ``unit_of_work`` and ``read_only`` from
``crm_common.application``: a read runs on ``db.read()``, which sends the database no BEGIN or
COMMIT and refuses writes. An RPC refuses callers without a verified token unless marked
``@public``. ``ping``, ``api_schemas`` and ``api_events`` come from the kit.
"""

from __future__ import annotations

from crm_common import kit
from crm_common.db import Database
from crm_common.outbox import Outbox
from @NAME@.events import EVENT_SCHEMAS
from @NAME@.models import Base, OutboxMessage
from @NAME@.schemas import PUBLIC_SCHEMAS


class @CAMEL@Service(kit.ServiceKit):
    name = "@NAME@"
    public_schemas = PUBLIC_SCHEMAS
    event_schemas = EVENT_SCHEMAS

    db = Database(Base)
    outbox = Outbox(OutboxMessage)
'''

APPLICATION_INIT = '''\
"""The @NAME@ service's use cases: one module per aggregate, each a
``crm_common.application.UseCases`` class built on the call's ``UseCaseContext``.

A read answers with the rows the repository selected, dumped by a
``crm_common.reads.RowDumper`` of the response schema (the dict ``schema.dump`` would give,
without building objects)::

    THING_ROWS = RowDumper(ThingSchema())

    class Things(UseCases):
        def get(self, thing_id: Any) -> dict[str, Any]:
            self.principal.require(READ)
            return THING_ROWS.dump(repository.thing_row(self.session, thing_id, self.principal))
"""
'''

REPOSITORY = '''\
"""The only module of the @NAME@ service that queries its database: lookups scoped by the
caller's grants (``crm_common.scope``), keyset pages, and the rows use cases save.

A read is one statement of table columns (not mapped entities), built once per shape of the
call (the caller's grants, the filters given) and run with the call's values as parameters::

    _things = cast(Table, Thing.__table__)
    THING_SCOPE = ScopeColumns(owner=_things.c.owner_id, department=_things.c.department_id)


    @lru_cache(maxsize=64)
    def _thing_statement(scope: ScopeShape) -> Select[Any]:
        return select(*_things.c).where(
            _things.c.id == bindparam("thing_id"), scope_condition(scope, THING_SCOPE)
        )


    def thing_row(session: Session, thing_id: uuid.UUID, principal: Principal) -> Row[Any]:
        parameters = {"thing_id": thing_id, **scope_parameters(principal)}
        row = session.execute(_thing_statement(scope_shape(principal)), parameters).first()
        if row is None:
            raise NotFound.of("thing", thing_id)
        return row

Pages take their statements from ``crm_common.pagination.keyset_select`` and their values from
``page_parameters``; a list hanging off a row (tags, lines) comes in the same statement through
``crm_common.reads.value_list``. Writes load mapped objects in ``db.session()``.
"""
'''

DOMAIN_INIT = '''\
"""The @NAME@ domain: rules and state machines in plain Python (no Nameko, SQLAlchemy or I/O),
called directly by unit tests."""
'''

MODELS = '''\
"""The @NAME@ context's tables (SQLAlchemy 2, typed)."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from crm_common.idempotency import IdempotencyRecordMixin
from crm_common.models import InboxMixin, OutboxMixin


class Base(DeclarativeBase):
    pass


class OutboxMessage(OutboxMixin, Base):
    pass


class InboxEvent(InboxMixin, Base):
    pass


class IdempotencyRecord(IdempotencyRecordMixin, Base):
    pass
'''

SCHEMAS = '''\
"""Marshmallow schemas of the @NAME@ service: what it accepts (``crm_common.schemas.
StrictSchema``) and returns. ``PUBLIC_SCHEMAS`` become the gateway's OpenAPI components."""

from __future__ import annotations

from marshmallow import Schema, fields

from crm_common.schemas import UtcDateTime


class RecordSchema(Schema):
    """What every record of the service carries (``crm_common.models.EntityMixin``)."""

    id = fields.UUID(dump_only=True)
    created_at = UtcDateTime(dump_only=True)
    updated_at = UtcDateTime(dump_only=True)
    version = fields.Integer(dump_only=True)


PUBLIC_SCHEMAS: dict[str, type[Schema]] = {
    "Record": RecordSchema,
}
'''

EVENTS = '''\
"""Events the @NAME@ service publishes on the ``@NAME@.events`` exchange: each name with the
schema of its envelope's ``data`` (published through ``api_events``)."""

from __future__ import annotations

from marshmallow import Schema

EVENT_SCHEMAS: dict[str, type[Schema]] = {}
'''

MIGRATIONS_ENV = '''\
"""Alembic environment of the @NAME@ database (URI from the caller or $DB_URI)."""

from crm_common.migrations import run_migrations
from @NAME@.models import Base

run_migrations(Base.metadata)
'''

SCRIPT_MAKO = '''\
"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}

revision: str = ${repr(up_revision)}
down_revision: str | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
'''

INITIAL_REVISION = '''\
"""The @NAME@ database: outbox, inbox and the stored answers of keyed writes.

Revision ID: 0001
Revises:
Create Date: @DATE@
"""

from collections.abc import Sequence

from alembic import op

from crm_common.migrations import (
    create_idempotency_table,
    create_inbox_table,
    create_outbox_table,
    drop_idempotency_table,
    drop_inbox_table,
    drop_outbox_table,
)

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_outbox_table(op)
    create_inbox_table(op)
    create_idempotency_table(op)


def downgrade() -> None:
    drop_idempotency_table(op)
    drop_inbox_table(op)
    drop_outbox_table(op)
'''

UNIT_TEST = '''\
"""The @NAME@ service as the scaffold made it: it migrates and answers the kit's entrypoints."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from nameko.testing.services import worker_factory
from sqlalchemy import create_engine

from crm_common.migrations import upgrade
from @NAME@.models import Base
from @NAME@.schemas import PUBLIC_SCHEMAS
from @NAME@.service import @CAMEL@Service


def test_migrations_build_exactly_the_models(tmp_path):
    uri = f"sqlite:///{tmp_path / '@NAME@.db'}"
    upgrade("@NAME@", uri)
    engine = create_engine(uri)
    try:
        with engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    finally:
        engine.dispose()


def test_answers_ping_and_publishes_its_schemas():
    service = worker_factory(@CAMEL@Service)
    assert service.ping() == "pong"
    assert set(PUBLIC_SCHEMAS) <= set(service.api_schemas())
    assert isinstance(service.api_events(), dict)
'''


def camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def files(name: str) -> dict[str, str]:
    """Every file of a new service, by path from the repository root."""
    package = f"services/{name}/{name}"
    templates = {
        f"services/{name}/pyproject.toml": PYPROJECT,
        f"services/{name}/config.yml": CONFIG,
        f"services/{name}/alembic.ini": ALEMBIC_INI,
        f"{package}/__init__.py": PACKAGE_INIT,
        f"{package}/service.py": SERVICE,
        f"{package}/application/__init__.py": APPLICATION_INIT,
        f"{package}/repository.py": REPOSITORY,
        f"{package}/domain/__init__.py": DOMAIN_INIT,
        f"{package}/models.py": MODELS,
        f"{package}/schemas.py": SCHEMAS,
        f"{package}/events.py": EVENTS,
        f"{package}/migrations/env.py": MIGRATIONS_ENV,
        f"{package}/migrations/script.py.mako": SCRIPT_MAKO,
        f"{package}/migrations/versions/0001_initial.py": INITIAL_REVISION,
        f"tests/unit/{name}/__init__.py": "",
        f"tests/unit/{name}/test_service.py": UNIT_TEST,
    }
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return {
        path: text.replace("@NAME@", name).replace("@CAMEL@", camel(name)).replace("@DATE@", date)
        for path, text in templates.items()
    }


class ScaffoldError(Exception):
    pass


def check_name(name: str, root: Path) -> None:
    if not NAME_PATTERN.match(name) or name in RESERVED:
        raise ScaffoldError(
            f"{name!r} cannot name a service: use lower-case letters, digits and _ "
            f"(not one of {', '.join(sorted(RESERVED))})"
        )
    if any(service.name == name or service.package == name for service in load(root)):
        raise ScaffoldError(f"{name} is already in {REGISTRY_FILE}")
    if (root / "services" / name).exists():
        raise ScaffoldError(f"services/{name} already exists")


def register(name: str, root: Path) -> None:
    """Append the service to the registry, the dev requirements and ruff's first-party list."""
    registry = root / REGISTRY_FILE
    text = registry.read_text(encoding="utf-8").rstrip("\n")
    registry.write_text(
        f'{text}\n\n[[service]]\nname = "{name}"\npackage = "{name}"\ndatabase = true\n',
        encoding="utf-8",
    )

    requirements = root / "requirements-dev.txt"
    if requirements.exists():
        lines = requirements.read_text(encoding="utf-8").splitlines(keepends=True)
        editable = [i for i, line in enumerate(lines) if line.startswith("-e services/")]
        at = editable[-1] + 1 if editable else len(lines)
        lines.insert(at, f"-e services/{name}\n")
        requirements.write_text("".join(lines), encoding="utf-8")

    pyproject = root / "pyproject.toml"
    if pyproject.exists():
        text = pyproject.read_text(encoding="utf-8")
        pattern = re.compile(r"^(known-first-party = \[)([^\]]*)(\])", re.MULTILINE)
        match = pattern.search(text)
        if match:
            names = [item.strip().strip('"') for item in match[2].split(",") if item.strip()]
            listed = ", ".join(f'"{item}"' for item in [*names, name])
            text = text[: match.start()] + f"{match[1]}{listed}{match[3]}" + text[match.end() :]
            pyproject.write_text(text, encoding="utf-8")


def scaffold(name: str, root: Path = ROOT) -> list[str]:
    """Write the new service and register it; returns the files written."""
    root = Path(root)
    check_name(name, root)
    written = []
    for path, text in files(name).items():
        target = root / path
        if target.exists():
            raise ScaffoldError(f"{path} already exists")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(path)
    register(name, root)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="the service name: lower-case letters, digits and _")
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository root")
    args = parser.parse_args(argv)
    try:
        written = scaffold(args.name, args.root)
    except (ScaffoldError, RegistryError, OSError) as problem:
        print(f"No service created: {problem}.", file=sys.stderr)
        return 1
    print(f"Created services/{args.name} ({len(written)} files) and added it to {REGISTRY_FILE}.")
    print(
        "Next: `make registry` (dev config, compose, PostgreSQL script; `make new-service` "
        "ran it), `make install`, then "
        f"give it a gateway route table and set `routes` in {REGISTRY_FILE}."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
