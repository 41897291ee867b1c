"""A closed-loop HTTP load generator: N client threads, a fixed duration, latency percentiles."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests


@dataclass
class Result:
    name: str
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def row(self, baseline: Result | None = None) -> str:
        ratio = ""
        if baseline is not None:
            ratio = (
                f"  x{self.throughput / baseline.throughput:.2f} throughput"
                f"  x{self.percentile(0.5) / baseline.percentile(0.5):.2f} p50"
            )
        return (
            f"{self.name:<34} {self.requests:>7} req {self.throughput:>8.1f} req/s "
            f"p50 {self.percentile(0.5):6.2f} ms  p95 {self.percentile(0.95):6.2f} ms  "
            f"p99 {self.percentile(0.99):6.2f} ms  "
            f"mean {statistics.fmean(self.latencies_ms):6.2f} ms"
            f"  errors {self.errors}{ratio}"
        )


def run(
    name: str,
    make_url: Callable[[int], str],
    *,
    headers: dict[str, str] | None = None,
    clients: int = 16,
    seconds: float = 10.0,
    warmup: float = 1.0,
) -> Result:
    """Each client thread requests ``make_url(i)`` back to back; only 2xx answers count."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    start_at = time.monotonic() + warmup
    stop_at = start_at + seconds

    def client(index: int) -> None:
        nonlocal errors
        session = requests.Session()
        session.headers.update(headers or {})
        mine: list[float] = []
        failed = 0
        n = index
        while True:
            began = time.monotonic()
            if began >= stop_at:
                break
            response = session.get(make_url(n), timeout=30)
            ended = time.monotonic()
            n += clients
            if began < start_at:
                continue
            if response.ok:
                mine.append((ended - began) * 1000)
            else:
                failed += 1
        with lock:
            latencies.extend(mine)
            errors += failed

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Result(name, len(latencies), errors, seconds, latencies)
