"""Every benchmark in bench/ runs end to end with tiny durations, so a change that breaks one
fails here instead of in the next `make bench`.

The benchmarks are found, not listed (``bench/bench_*.py``), and run two at a time, each as
``python -m bench.<name>`` with the arguments below (a new one gets ``--seconds 1
--connections 2``, which every benchmark takes). No figure is asserted: only that each exits
cleanly and prints its rows. The Python load generator, which replaces wrk where wrk is not
installed, is checked on its own against a small local server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench import load
from devstack.stack import ROOT

BENCHMARKS = sorted(path.stem for path in (ROOT / "bench").glob("bench_*.py"))
COMMON = ["--seconds", "1", "--connections", "2"]
# Arguments beyond COMMON that keep a benchmark to a few seconds, and lines of its output that
# show it printed its tables.
SMOKE: dict[str, tuple[list[str], tuple[str, ...]]] = {
    "bench_gateway": (
        ["--rounds", "1", "--warmup", "0"],
        ("GET /api/customers", "# goals (issue 9)"),
    ),
    "bench_scope": (
        ["--customers", "500", "--repeat", "2"],
        ("GET /api/customers", "# crossed (manager01) against unrestricted (admin)"),
    ),
    "bench_stall": ([], ("GET /api/customers", "# largest overshoot beyond the")),
    "bench_sales": (
        ["--opportunities", "2000", "--customers", "500", "--repeat", "2", "--events", "200"],
        ("# consumer throughput",),
    ),
    "bench_erp": (
        ["--events", "300", "--skip-postgres"],
        ("# ERP events applied per second by one process",),
    ),
}
TIMEOUT = 240
"""Seconds one benchmark may take."""
AT_ONCE = 2
pytestmark = pytest.mark.timeout(TIMEOUT * 4 + 150)


@pytest.fixture(scope="module")
def outputs() -> dict[str, subprocess.CompletedProcess[str]]:
    """Every benchmark run, ``AT_ONCE`` at a time (each starts stacks of its own: more at once
    starve each other of the machine's cores, and their stacks time out starting); one that
    overruns TIMEOUT is interrupted and reported with what it printed."""
    with ThreadPoolExecutor(max_workers=AT_ONCE) as pool:
        return dict(zip(BENCHMARKS, pool.map(run_benchmark, BENCHMARKS), strict=True))


def run_benchmark(name: str) -> subprocess.CompletedProcess[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", f"bench.{name}", *COMMON, *SMOKE.get(name, ([], ()))[0]],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        stdout, stderr = stop_with_its_stacks(process)
        stderr += f"\n(overran {TIMEOUT}s and was interrupted)"
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def stop_with_its_stacks(process: subprocess.Popen[str]) -> tuple[str, str]:
    """Terminate a benchmark, so that it stops its stacks (virtual hosts, Redis keys), then
    kill what is left of its process group; what it printed."""
    process.terminate()
    try:
        return process.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        return process.communicate()


@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmark_runs_and_prints_its_rows(
    name: str, outputs: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    done = outputs[name]
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip(), done.stderr
    for line in SMOKE.get(name, ([], ()))[1]:
        assert line in done.stdout, done.stdout


def test_the_gateway_benchmark_has_both_references_and_every_route(
    outputs: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    printed = outputs["bench_gateway"].stdout
    for row in ("echo (bare @http + 1 RPC)", "product (Redis + marshmallow)", "count", "summary"):
        assert row in printed, printed
    assert "PASS" in printed or "MISS" in printed, printed


class Answers(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        body = b"{}" if self.path != "/missing" else b""
        self.send_response(200 if body else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("tool", ["python", "wrk"])
def test_load_generator_counts_requests_and_refusals(tool: str) -> None:
    if tool == "wrk" and load.generator() != "wrk":
        pytest.skip("wrk is not installed")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Answers)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        result = load.run(
            "local",
            f"http://127.0.0.1:{server.server_address[1]}",
            ["/a", "/missing"],
            connections=2,
            seconds=1,
            tool=tool,
            server_pids=[],
        )
    finally:
        server.shutdown()
        server.server_close()
    assert result.requests > 0
    assert 0 < result.failed < result.requests
    assert "local" in result.row(result)
