"""Gateway read throughput and latency, against two references measured in the same run.

    .venv/bin/python -m bench.bench_gateway [--seconds 10] [--rounds 2] [--connections 16]
                                            [--python-load]

Three stacks, each on a RabbitMQ virtual host of its own:

* the suite as processes (devstack.stack.Suite, demo data), signed in through
  ``POST /api/auth/token`` as the demo users ``sales01`` (grants: own customers) and ``admin``;
* the bare echo (bench/baseline.py): an ``@http`` route making one RPC to an echo service;
* the product read (bench/products.py), in the style of nameko-examples: an ``@http`` route
  making one RPC to a service that reads one JSON record from Redis and dumps it through a
  marshmallow schema (a few hundred products, seeded under a key prefix of its own).

Each round runs the echo and the product read, then every suite route, then the product read
and the echo again (the second round takes the suite routes in reverse order), so drift during
the run shows in the references' before and after rows and favours no route. Per route: requests
per second, p50/p95/p99, non-2xx answers, the ratio to the echo and to the product read of the
same round, the serving processes' CPU per request and the load generator's own CPU time (wrk,
or a Python generator when wrk is missing or --python-load is given). Then every route over all
rounds and the issue's goals, PASS or MISS.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import redis

from bench import load, products
from devstack.stack import Suite, process_name

# The filtered and searched list of the goals: a full page of 20 for sales01 (32 of the demo's
# customers sales01 owns are formal with 有限公司 in their name; admin sees 162).
SEARCH = "有限公司"
LIST_QUERY = f"status=formal&q={SEARCH}&limit=20"
REDIS_URI = os.environ.get("REDIS_URI", "redis://localhost:6379/0")
PRODUCTS = 300
ECHO = "echo (bare @http + 1 RPC)"
PRODUCT = "product (Redis + marshmallow)"
# The processes a suite read passes through; the others (org, sales...) are not counted.
SERVING = ("gateway", "customer")
GET = "GET /api/customers/{id} (sales01)"
LIST = f"GET /api/customers?{LIST_QUERY}"
COLUMNS = load.header("x echo", "x product")


class Baseline(Suite):
    """The bare echo: the @http route and the echo service, each a process (as the suite's
    gateway and services are); no databases to prepare."""

    services = ("bench.baseline:BareHttpService", "bench.baseline:EchoService")
    ready_path = "/echo/ping"

    def prepare(self) -> None:
        pass


class ProductStack(Suite):
    """The product read: the @http gateway and the products service, each a process, over
    products seeded in Redis under a key prefix of this stack's own, removed when it stops."""

    services = ("bench.products:ProductsGateway", "bench.products:ProductsService")

    def __init__(self, workdir: Path, count: int = PRODUCTS) -> None:
        super().__init__(workdir)
        self.prefix = f"bench:{self.vhost}:products:"
        self.ids = products.product_ids(count)
        self.ready_path = f"/products/{self.ids[0]}"

    def prepare(self) -> None:
        with closing(redis.Redis.from_url(REDIS_URI)) as client:
            products.seed(client, self.prefix, len(self.ids))

    def stop(self) -> None:
        super().stop()
        with closing(redis.Redis.from_url(REDIS_URI)) as client:
            products.remove(client, self.prefix)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "REDIS_URI": REDIS_URI, "PRODUCTS_KEY_PREFIX": self.prefix}


@dataclass
class Route:
    name: str
    base_url: str
    paths: list[str]
    headers: dict[str, str]
    pids: list[int]


@dataclass
class Goal:
    route: str
    text: str
    met: bool


def pids(stack: Suite, names: tuple[str, ...] | None = None) -> list[int]:
    """The stack's process ids, or those of the processes ``names``."""
    return [
        process.pid
        for module, process in zip(stack.services, stack.processes, strict=True)
        if names is None or process_name(module) in names
    ]


@contextmanager
def running(*stacks: Suite) -> Iterator[None]:
    """Start the stacks side by side, and stop them all whatever happens meanwhile."""
    try:
        with ThreadPoolExecutor(len(stacks)) as pool:
            for started in [pool.submit(stack.start) for stack in stacks]:
                started.result()
        yield
    finally:
        with ThreadPoolExecutor(len(stacks)) as pool:
            for stopped in [pool.submit(stack.stop) for stack in stacks]:
                stopped.result()


def suite_routes(suite: Suite) -> list[Route]:
    """The suite's reads, signed in as demo users."""
    sessions = {user: suite.client(user) for user in ("sales01", "admin")}
    headers = {
        user: {"Authorization": str(session.headers["Authorization"])}
        for user, session in sessions.items()
    }
    listed = sessions["sales01"].get(suite.url("/api/customers?limit=100"), timeout=30)
    listed.raise_for_status()
    ids = [item["id"] for item in listed.json()["items"]]
    if not ids:
        raise SystemExit("sales01 sees no customers: is the demo data loaded?")
    search = f"/api/customers?status=formal&q={quote(SEARCH)}&limit=20"
    for user, session in sessions.items():
        found = session.get(suite.url(search), timeout=30).json()["items"]
        full = "" if len(found) == 20 else " (not a full page: the demo data changed?)"
        print(f"# {LIST_QUERY} answers {len(found)} items to {user}{full}")
        session.close()
    print(f"# {GET} rotates through {len(ids)} customers sales01 sees")
    served = pids(suite, SERVING)
    return [
        Route(
            GET, suite.base_url, [f"/api/customers/{i}" for i in ids], headers["sales01"], served
        ),
        Route(f"{LIST} (sales01)", suite.base_url, [search], headers["sales01"], served),
        Route(f"{LIST} (admin)", suite.base_url, [search], headers["admin"], served),
        Route(
            "GET /api/customers/count (sales01)",
            suite.base_url,
            ["/api/customers/count"],
            headers["sales01"],
            served,
        ),
        Route(
            "GET /api/customers/summary (sales01)",
            suite.base_url,
            ["/api/customers/summary"],
            headers["sales01"],
            served,
        ),
    ]


def schedule(routes: list[Route], rounds: int) -> Iterator[tuple[int, list[tuple[str, Route]]]]:
    """Per round, the runs in order: references, routes, references in reverse; every second
    round takes the routes in reverse order."""
    echo, product, *others = routes
    for number in range(1, rounds + 1):
        middle = others if number % 2 else others[::-1]
        yield (
            number,
            [("before", echo), ("before", product)]
            + [("", route) for route in middle]
            + [("after", product), ("after", echo)],
        )


def goals(totals: dict[str, load.Result]) -> list[Goal]:
    """The issue's goals on requests/s; each ratio also by serving CPU per request, which
    other work on the machine disturbs less (the same ratio when CPU is the only limit)."""
    echo, product = totals[ECHO], totals[PRODUCT]

    def ratio(route: load.Result, reference: load.Result, least: float, title: str) -> Goal:
        by_cpu = _cpu_ratio(route, reference)
        return Goal(
            route.name,
            f"x{route.throughput / reference.throughput:.2f} {title} >= {least:.1f}{by_cpu}",
            route.throughput >= least * reference.throughput,
        )

    get = totals[GET]
    return [
        ratio(get, echo, 0.8, "echo"),
        ratio(get, product, 1.0, "product"),
        Goal(
            GET,
            f"p99 {get.p99_ms:.1f} ms <= 2x echo's {echo.p99_ms:.1f} ms",
            get.p99_ms <= 2 * echo.p99_ms,
        ),
        ratio(totals[f"{LIST} (sales01)"], echo, 0.6, "echo"),
        ratio(totals[f"{LIST} (admin)"], echo, 0.6, "echo"),
    ]


def _cpu_ratio(route: load.Result, reference: load.Result) -> str:
    mine, theirs = route.server_cpu_ms_per_request, reference.server_cpu_ms_per_request
    if not mine or not theirs:
        return ""
    return f" (by CPU per request: x{theirs / mine:.2f})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per run (default 10)")
    parser.add_argument("--rounds", type=int, default=2, help="default 2")
    parser.add_argument("--connections", type=int, default=16, help="in flight (default 16)")
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="unreported seconds per route first (default 1)"
    )
    parser.add_argument(
        "--python-load", action="store_true", help="use the Python generator even if wrk is here"
    )
    args = parser.parse_args(argv)
    # Stopped from outside (a timeout, a CI job ending): stop the stacks on the way out.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(f"stopped by signal {signum}"))
    tool = load.generator(prefer_wrk=not args.python_load)
    with closing(redis.Redis.from_url(REDIS_URI)) as client:
        try:
            client.ping()
        except redis.RedisError as error:
            raise SystemExit(
                f"Redis at {REDIS_URI} does not answer ({error}): the product read needs it "
                "(set REDIS_URI to use another server)"
            ) from error

    with tempfile.TemporaryDirectory() as tmp:
        suite = Suite(Path(tmp) / "suite", demo=True)
        echo = Baseline(Path(tmp) / "echo")
        product = ProductStack(Path(tmp) / "products")
        with running(suite, echo, product):
            print(f"# load generator: {_describe(tool)}")
            print(
                f"# {args.connections} connections, {args.seconds:g} s per run, {args.rounds} "
                f"round(s), {args.warmup:g} s of unreported warm-up per route first; "
                f"python {platform.python_version()}, {os.cpu_count()} cores ({_cpu_model()}); "
                "the three stacks, RabbitMQ, Redis and the generator share them"
            )
            print(f"# product: {len(product.ids)} products in Redis, rotated")
            routes = [
                Route(ECHO, echo.base_url, ["/echo/1", "/echo/2"], {}, pids(echo)),
                Route(
                    PRODUCT,
                    product.base_url,
                    [f"/products/{i}" for i in product.ids],
                    {},
                    pids(product),
                ),
                *suite_routes(suite),
            ]
            print(
                "# x echo, x product: requests/s over the echo's and the product read's in the "
                "same round (before and after runs together)"
            )
            print(
                "# srv ms/req: CPU per request of the processes serving the route (suite: "
                "gateway and customer; RabbitMQ and Redis not counted); gen CPU: the "
                "generator's CPU time"
            )
            results = measure(routes, args, tool)
            if crashed := suite.exited() + echo.exited() + product.exited():
                raise SystemExit(f"processes ended during the run: {crashed}")
    report(routes, results)


def measure(
    routes: list[Route], args: argparse.Namespace, tool: str
) -> dict[str, list[load.Result]]:
    """Warm every route up, then run the rounds, printing each round's table as it ends."""

    def run(route: Route, name: str, seconds: float) -> load.Result:
        return load.run(
            name,
            route.base_url,
            route.paths,
            headers=route.headers,
            connections=args.connections,
            seconds=seconds,
            tool=tool,
            server_pids=route.pids,
        )

    if args.warmup > 0:
        for route in routes:
            run(route, route.name, args.warmup)
    results: dict[str, list[load.Result]] = defaultdict(list)
    for number, runs in schedule(routes, args.rounds):
        ran = [
            (route.name, run(route, f"{route.name} ({when})" if when else route.name, args.seconds))
            for when, route in runs
        ]
        echo = load.combine([result for name, result in ran if name == ECHO])
        product = load.combine([result for name, result in ran if name == PRODUCT])
        print(f"\n# round {number}")
        print(COLUMNS)
        for name, result in ran:
            print(result.row(echo, product), flush=True)
            results[name].append(result)
    return results


def report(routes: list[Route], results: dict[str, list[load.Result]]) -> None:
    """Every route over all rounds, the references' drift, and the goals."""
    totals = {name: load.combine(runs, name) for name, runs in results.items()}
    rounds = len(results[ECHO]) // 2
    print(
        f"\n# all {rounds} round(s): each route's requests over its seconds; percentiles: "
        "the runs' own, weighted by their requests"
    )
    print(COLUMNS)
    for route in routes:
        print(totals[route.name].row(totals[ECHO], totals[PRODUCT]))
    print("\n# drift: the references' requests/s before -> after the suite's routes, per round")
    for name in (ECHO, PRODUCT):
        print(f"{name}: {_drift(results[name])}")
    print("\n# goals (issue 9), over all rounds")
    for goal in goals(totals):
        print(f"{'PASS' if goal.met else 'MISS'}  {goal.route}: {goal.text}")


def _drift(runs: list[load.Result]) -> str:
    pairs = zip(runs[::2], runs[1::2], strict=True)
    return "; ".join(
        f"{before.throughput:.1f} -> {after.throughput:.1f} "
        f"({(after.throughput / before.throughput - 1) * 100:+.0f}%)"
        for before, after in pairs
    )


def _cpu_model() -> str:
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown CPU"
    return next(
        (
            line.split(":", 1)[1].strip()
            for line in info.splitlines()
            if line.startswith("model name")
        ),
        "unknown CPU",
    )


def _describe(tool: str) -> str:
    if tool == "wrk":
        return "wrk (C, event loop; one thread per core)"
    return (
        "Python threads (fallback: wrk is not installed or --python-load); it can saturate "
        "before the services do, so compare ratios, not absolute figures"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
