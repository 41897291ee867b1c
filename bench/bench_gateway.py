"""Gateway read throughput and latency, against a bare Nameko @http + one RPC in the same run.

    .venv/bin/python -m bench.bench_gateway [--seconds 10] [--clients 16]

Starts the customer service and the gateway as separate processes on a private vhost with the
demo data set, and the baseline (bench/baseline.py) beside them, then prints one row each.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import requests

from bench import load
from devstack.stack import Suite


class Baseline(Suite):
    services = ("bench.baseline",)
    ready_path = "/echo/ping"

    def prepare(self) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory() as tmp,
        Suite(Path(tmp) / "suite", demo=True) as suite,
        Baseline(Path(tmp) / "base") as base,
    ):
        headers = {"Authorization": f"Bearer {suite.token('u-manager-01')}"}
        listed = requests.get(
            suite.url("/api/customers?limit=200"), headers=headers, timeout=10
        ).json()
        ids = [item["id"] for item in listed["items"]]
        region = listed["items"][0]["region"]
        print(f"# {len(ids)} customers sampled; {args.clients} clients, {args.seconds}s each")
        print(f"# python {sys.version.split()[0]}, {os.cpu_count()} cores, broker on localhost")

        bare = load.run(
            "bare @http + 1 RPC (baseline)",
            lambda n: f"{base.base_url}/echo/{n}",
            clients=args.clients,
            seconds=args.seconds,
        )
        get_one = load.run(
            "GET /api/customers/{id}",
            lambda n: suite.url(f"/api/customers/{ids[n % len(ids)]}"),
            headers=headers,
            clients=args.clients,
            seconds=args.seconds,
        )
        filtered = load.run(
            "GET /api/customers?region&status",
            lambda n: suite.url(f"/api/customers?region={region}&status=formal&limit=20"),
            headers=headers,
            clients=args.clients,
            seconds=args.seconds,
        )
        print(bare.row())
        print(get_one.row(bare))
        print(filtered.row(bare))


if __name__ == "__main__":
    main()
