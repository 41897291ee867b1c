"""Gateway read throughput and latency, against a bare Nameko @http + one RPC in the same run.

    .venv/bin/python -m bench.bench_gateway [--seconds 10] [--connections 16] [--python-load]

Starts the suite as processes (devstack.stack.Suite, demo data) on a vhost of its own, and the
baseline (bench/baseline.py: an @http route making one RPC to an echo service) on another,
signs in as demo users through POST /api/auth/token, and drives each route with wrk (or, when
wrk is not installed or --python-load is given, a small Python load generator). Prints, per
route, requests/s, p50/p95/p99, non-2xx answers, the ratio to the baseline's requests/s and
the CPU time the load generator itself used.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

from bench import load
from devstack.stack import Suite

SEARCH = "机电"


class Baseline(Suite):
    """Only the two baseline services; no databases to prepare."""

    services = ("bench.baseline",)
    ready_path = "/echo/ping"

    def prepare(self) -> None:
        pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per route (default 10)")
    parser.add_argument("--connections", type=int, default=16, help="in flight (default 16)")
    parser.add_argument(
        "--python-load", action="store_true", help="use the Python generator even if wrk is here"
    )
    args = parser.parse_args(argv)
    tool = load.generator(prefer_wrk=not args.python_load)

    with (
        tempfile.TemporaryDirectory() as tmp,
        Suite(Path(tmp) / "suite", demo=True) as suite,
        Baseline(Path(tmp) / "base") as base,
    ):
        sales = suite.client("sales01")
        as_sales = {"Authorization": str(sales.headers["Authorization"])}
        as_admin = {"Authorization": str(suite.client("admin").headers["Authorization"])}
        listed = sales.get(suite.url("/api/customers?limit=100"), timeout=30)
        listed.raise_for_status()
        ids = [item["id"] for item in listed.json()["items"]]
        if not ids:
            raise SystemExit("sales01 sees no customers: is the demo data loaded?")
        search = f"/api/customers?q={quote(SEARCH)}&limit=20"
        matches = {
            user: len(session.get(suite.url(search), timeout=30).json()["items"])
            for user, session in (("sales01", sales), ("admin", suite.client("admin")))
        }

        print(f"# load generator: {_describe(tool)}")
        print(
            f"# {args.connections} connections, {args.seconds:g} s per route; "
            f"{len(ids)} of sales01's customers rotated; "
            f"python {platform.python_version()}, {os.cpu_count()} cores, "
            f"suite, baseline and generator on this machine"
        )
        print(
            f"# q={SEARCH}&limit=20 answers {matches['sales01']} items to sales01, "
            f"{matches['admin']} to admin"
        )
        print("# gen CPU: the generator's own CPU time over the run's wall time")
        print(load.HEADER)

        def measure(
            name: str, base_url: str, paths: list[str], headers: dict[str, str]
        ) -> load.Result:
            return load.run(
                name,
                base_url,
                paths,
                headers=headers,
                connections=args.connections,
                seconds=args.seconds,
                tool=tool,
            )

        bare = measure("bare @http + 1 RPC (baseline)", base.base_url, ["/echo/1", "/echo/2"], {})
        print(bare.row(), flush=True)
        rows = [
            ("GET /api/customers/{id} (sales01)", [f"/api/customers/{i}" for i in ids], as_sales),
            (f"GET /api/customers?q={SEARCH}&limit=20 (sales01)", [search], as_sales),
            (f"GET /api/customers?q={SEARCH}&limit=20 (admin)", [search], as_admin),
        ]
        for name, paths, session in rows:
            print(measure(name, suite.base_url, paths, session).row(bare), flush=True)
        if crashed := suite.exited() + base.exited():
            raise SystemExit(f"processes ended during the run: {crashed}")


def _describe(tool: str) -> str:
    if tool == "wrk":
        return "wrk (C, event loop; one thread per core)"
    return (
        "Python threads (fallback: wrk is not installed or --python-load); it can saturate "
        "before the services do, so compare ratios, not absolute figures"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
