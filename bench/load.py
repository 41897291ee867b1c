"""HTTP load for the benchmarks: wrk when it is installed, else a small Python fallback.

Both are closed loops (``connections`` requests in flight, back to back, for ``seconds``) and
give the same :class:`Result`: requests per second, p50/p95/p99, non-2xx answers, the CPU time
the generator itself used, so a reader can see whether it was the bottleneck, and (given their
process ids) the CPU time the serving processes used per request.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import tempfile
import threading
import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import requests

# wrk's per-thread Lua state: rotate through the paths, and print the summary as JSON at the end
# (wrk's own --latency table has no p95).
WRK_SCRIPT = """
local paths = {%(paths)s}
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, paths[(n %% #paths) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %%d, "duration_us": %%d, "failed": %%d, '
      .. '"p50": %%d, "p95": %%d, "p99": %%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


@dataclass
class Result:
    name: str
    requests: int
    failed: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    generator_cpu_seconds: float
    server_cpu_seconds: float | None = None

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    @property
    def server_cpu_ms_per_request(self) -> float | None:
        if self.server_cpu_seconds is None or not self.requests:
            return None
        return self.server_cpu_seconds * 1000 / self.requests

    def row(self, *references: Result) -> str:
        """The figures, with the ratio of requests/s to each reference (see :func:`header`)."""
        ratios = [f"x{self.throughput / ref.throughput:.2f}" for ref in references] or ["1 (base)"]
        cpu = self.server_cpu_ms_per_request
        return (
            f"{_pad(self.name, NAME_WIDTH)} {self.throughput:>9.1f} {self.p50_ms:>8.2f} "
            f"{self.p95_ms:>8.2f} {self.p99_ms:>8.2f} {self.failed:>6} "
            + "".join(f"{ratio:>10}" for ratio in ratios)
            + f" {'-' if cpu is None else f'{cpu:.2f}':>10}"
            f" {self.generator_cpu_seconds:>6.2f}s/{self.seconds:.0f}s"
        )


NAME_WIDTH = 44


def header(*references: str) -> str:
    """Column titles for :meth:`Result.row` given one ratio column per reference."""
    return (
        f"{'route':<{NAME_WIDTH}} {'req/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
        f"{'non2xx':>6} "
        + "".join(f"{title:>10}" for title in references or ("vs base",))
        + f" {'srv ms/req':>10} {'gen CPU':>9}"
    )


HEADER = header()


def combine(results: Sequence[Result], name: str | None = None) -> Result:
    """Several runs of one route as one row: requests and seconds add up; the percentiles are
    the runs' own, weighted by their requests (wrk reports percentiles, not samples)."""
    total = sum(r.requests for r in results) or 1
    cpu = [r.server_cpu_seconds for r in results]
    return Result(
        name or results[0].name,
        sum(r.requests for r in results),
        sum(r.failed for r in results),
        sum(r.seconds for r in results),
        sum(r.p50_ms * r.requests for r in results) / total,
        sum(r.p95_ms * r.requests for r in results) / total,
        sum(r.p99_ms * r.requests for r in results) / total,
        sum(r.generator_cpu_seconds for r in results),
        None if None in cpu else sum(c or 0.0 for c in cpu),
    )


def generator(prefer_wrk: bool = True) -> str:
    """``wrk`` when it is on the PATH (and wanted), else ``python``."""
    return "wrk" if prefer_wrk and shutil.which("wrk") else "python"


def run(
    name: str,
    base_url: str,
    paths: Sequence[str],
    *,
    headers: dict[str, str] | None = None,
    connections: int = 16,
    seconds: float = 10.0,
    tool: str = "wrk",
    server_pids: Iterable[int] = (),
) -> Result:
    """Request ``paths`` (in turn) on ``base_url`` with ``connections`` in flight; with
    ``server_pids``, also the CPU time those processes used meanwhile."""
    pids = list(server_pids)
    before = process_cpu_seconds(pids)
    if tool == "wrk":
        result = _run_wrk(name, base_url, paths, headers or {}, connections, seconds)
    else:
        result = _run_python(name, base_url, paths, headers or {}, connections, seconds)
    if pids:
        result.server_cpu_seconds = process_cpu_seconds(pids) - before
    return result


def process_cpu_seconds(pids: Iterable[int]) -> float:
    """User and system CPU time the processes have used so far (Linux /proc)."""
    ticks = 0
    for pid in pids:
        stat = Path(f"/proc/{pid}/stat").read_text()
        # Fields after the command name, which is in parentheses and may hold spaces.
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _run_wrk(
    name: str,
    base_url: str,
    paths: Sequence[str],
    headers: dict[str, str],
    connections: int,
    seconds: float,
) -> Result:
    threads = max(1, min(connections, os.cpu_count() or 1))
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "rotate.lua"
        script.write_text(
            WRK_SCRIPT % {"paths": ", ".join(json.dumps(path) for path in paths)},
            encoding="utf-8",
        )
        command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s"]
        command += ["--latency", "--timeout", "30s", "-s", str(script)]
        for key, value in headers.items():
            command += ["-H", f"{key}: {value}"]
        # Nothing else of ours ends meanwhile, so the children's CPU that grows is wrk's.
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(
            [*command, base_url], capture_output=True, text=True, check=False, timeout=seconds + 60
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    figures = json.loads(line.removeprefix("RESULT "))
    return Result(
        name=name,
        requests=figures["requests"],
        failed=figures["failed"],
        seconds=figures["duration_us"] / 1e6,
        p50_ms=figures["p50"] / 1000,
        p95_ms=figures["p95"] / 1000,
        p99_ms=figures["p99"] / 1000,
        generator_cpu_seconds=_cpu(after) - _cpu(before),
    )


def _run_python(
    name: str,
    base_url: str,
    paths: Sequence[str],
    headers: dict[str, str],
    connections: int,
    seconds: float,
) -> Result:
    """One thread per connection, each with its own keep-alive session."""
    latencies: list[float] = []
    failed = 0
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(index: int) -> None:
        nonlocal failed
        session = requests.Session()
        session.headers.update(headers)
        mine: list[float] = []
        refused = 0
        n = index
        while time.monotonic() < stop_at:
            began = time.monotonic()
            response = session.get(base_url + paths[n % len(paths)], timeout=30)
            mine.append((time.monotonic() - began) * 1000)
            refused += not response.ok
            n += connections
        session.close()
        with lock:
            latencies.extend(mine)
            failed += refused

    before = resource.getrusage(resource.RUSAGE_SELF)
    began = time.monotonic()
    workers = [threading.Thread(target=client, args=(i,)) for i in range(connections)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - began
    after = resource.getrusage(resource.RUSAGE_SELF)
    ordered = sorted(latencies) or [0.0]

    def percentile(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return Result(
        name=name,
        requests=len(latencies),
        failed=failed,
        seconds=elapsed,
        p50_ms=percentile(0.50),
        p95_ms=percentile(0.95),
        p99_ms=percentile(0.99),
        generator_cpu_seconds=_cpu(after) - _cpu(before),
    )


def _pad(text: str, width: int) -> str:
    """Left-justify to ``width`` terminal columns (CJK characters take two)."""
    columns = sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)
    return text + " " * max(0, width - columns)


def _cpu(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime
