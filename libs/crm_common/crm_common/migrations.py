"""Alembic, driven from code: each service keeps its revisions in ``<package>/migrations``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, create_engine, pool
from sqlalchemy.engine import make_url


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
