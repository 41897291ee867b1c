"""Alembic, driven from code: each service keeps its revisions in ``<package>/migrations``.

``create_outbox_table`` and ``create_inbox_table`` are the DDL of ``crm_common.models``'
``OutboxMixin`` and ``InboxMixin`` for a service's initial revision, and
``create_idempotency_table`` that of ``crm_common.idempotency.IdempotencyRecordMixin`` (tests keep
them equal).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, create_engine, pool
from sqlalchemy.engine import make_url

OUTBOX_TABLE = "outbox"
INBOX_TABLE = "inbox"
IDEMPOTENCY_TABLE = "idempotency_records"


def alembic_config(package: str, uri: str) -> Config:
    config = Config()
    config.set_main_option("script_location", f"{package}:migrations")
    config.attributes["uri"] = uri
    return config


def upgrade(package: str, uri: str, revision: str = "head") -> None:
    url = make_url(uri)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(package, uri), revision)


def create_outbox_table(op: Any) -> None:
    """The outbox of ``OutboxMixin``: events written with the business change, relayed later."""
    op.create_table(
        OUTBOX_TABLE,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("exchange", sa.String(length=100), nullable=False),
        sa.Column("routing_key", sa.String(length=100), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_index(op.f("ix_outbox_sent_at"), OUTBOX_TABLE, ["sent_at"], unique=False)


def create_inbox_table(op: Any) -> None:
    """The inbox of ``InboxMixin``: events each handler has applied, one row per pair."""
    op.create_table(
        INBOX_TABLE,
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("handler", sa.String(length=150), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", "handler"),
    )


def create_idempotency_table(op: Any) -> None:
    """The stored answers of writes sent with an ``Idempotency-Key``, one row per user and key."""
    op.create_table(
        IDEMPOTENCY_TABLE,
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("operation", sa.String(length=150), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "key"),
    )
    op.create_index(
        op.f("ix_idempotency_records_created_at"), IDEMPOTENCY_TABLE, ["created_at"], unique=False
    )


def drop_outbox_table(op: Any) -> None:
    op.drop_index(op.f("ix_outbox_sent_at"), table_name=OUTBOX_TABLE)
    op.drop_table(OUTBOX_TABLE)


def drop_inbox_table(op: Any) -> None:
    op.drop_table(INBOX_TABLE)


def drop_idempotency_table(op: Any) -> None:
    op.drop_index(op.f("ix_idempotency_records_created_at"), table_name=IDEMPOTENCY_TABLE)
    op.drop_table(IDEMPOTENCY_TABLE)


def run_migrations(metadata: MetaData) -> None:
    """Body of every service's ``migrations/env.py``."""
    from alembic import context

    uri = context.config.attributes.get("uri") or os.environ["DB_URI"]
    is_sqlite = make_url(uri).get_backend_name() == "sqlite"
    if context.is_offline_mode():
        context.configure(
            url=uri, target_metadata=metadata, literal_binds=True, render_as_batch=is_sqlite
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(uri, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection, target_metadata=metadata, render_as_batch=is_sqlite
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description="Bring a service's database to the newest schema.")
    parser.add_argument("package", help="the service package, e.g. customer")
    parser.add_argument(
        "--uri", help="database URI (default: $DB_URI or sqlite:///var/<package>.db)"
    )
    args = parser.parse_args()
    uri = args.uri or os.environ.get("DB_URI") or f"sqlite:///var/{args.package}.db"
    upgrade(args.package, uri)
    where = make_url(uri).render_as_string(hide_password=True)
    print(f"{args.package}: database at {where} is up to date")


if __name__ == "__main__":
    main()
