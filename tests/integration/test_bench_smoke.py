"""Every benchmark runs end to end with tiny durations, so a change that breaks one fails here.

No figure is asserted: only that each completes and prints its table. The gateway benchmark
also runs on its Python load generator, so this passes on machines without wrk.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from devstack.stack import ROOT

SMOKES = {
    "gateway (wrk if installed)": (
        ["bench.bench_gateway", "--seconds", "1", "--connections", "2"],
        "bare @http + 1 RPC (baseline)",
    ),
    "gateway (python load)": (
        ["bench.bench_gateway", "--seconds", "1", "--connections", "2", "--python-load"],
        "# load generator: Python threads",
    ),
    "scope": (
        ["bench.bench_scope", "--customers", "500", "--repeat", "2"]
        + ["--seconds", "1", "--connections", "2"],
        "# crossed (manager01) against unrestricted (admin)",
    ),
    "stall": (
        ["bench.bench_stall", "--seconds", "1", "--connections", "2"],
        "# largest overshoot beyond the",
    ),
}


@pytest.mark.parametrize("name", SMOKES)
def test_benchmark_completes_and_prints_its_table(name: str) -> None:
    args, expected = SMOKES[name]
    done = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert expected in done.stdout, done.stdout
    assert "GET /api/customers" in done.stdout, done.stdout
