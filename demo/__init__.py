"""Demo data sets, one module per service (``python -m demo.customer``); not part of any
service's package or image."""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Mapping
from typing import Protocol

from sqlalchemy.engine import make_url


class EnsureDemo(Protocol):
    def __call__(self, uri: str, *, with_events: bool) -> Mapping[str, int]:
        """Load the data set into the database at ``uri`` unless it holds one; the number of
        records loaded per kind (empty when none were)."""
        ...


def load_once(
    service: str, ensure_demo: EnsureDemo, argv: list[str] | None, *, loaded: str, already: str
) -> None:
    """The command line of a demo module: ``--uri`` (default ``$DB_URI``) and ``--no-events``.
    ``loaded`` ends the line saying the data set was loaded, ``already`` says what the database
    held instead."""
    default_uri = f"sqlite:///var/{service}.db"
    parser = argparse.ArgumentParser(description=f"Load the {service} demo data set once.")
    parser.add_argument(
        "--uri",
        default=os.environ.get("DB_URI", default_uri),
        help=f"database URI (default: $DB_URI or {default_uri})",
    )
    parser.add_argument("--no-events", action="store_true", help="do not fill the outbox")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    counts = ensure_demo(args.uri, with_events=not args.no_events)
    where = make_url(args.uri).render_as_string(hide_password=True)
    if counts:
        summary = ", ".join(f"{n} {kind}" for kind, n in counts.items())
        print(
            f"{service} demo data loaded into {where} in {time.perf_counter() - started:.1f}s: "
            f"{summary}; {loaded}"
        )
    else:
        print(f"{service} database {where} {already}; demo data not loaded")
