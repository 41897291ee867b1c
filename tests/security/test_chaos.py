"""The chaos scenarios of ``devstack.chaos``, short: a broker cut and a SIGKILL of the customer
process under a salesperson's writes must lose no event, double none, crash no process, and
leave no committed write its client cannot learn about by retrying with its Idempotency-Key.
``make chaos`` runs every scenario at full length; the proxy itself is checked first.

The scenarios run as ``python -m devstack.chaos`` in a process of their own: they start,
kill and restart processes and cut sockets with plain threads, which this eventlet-patched
test process would share with its hub; it is waited for with the unpatched ``subprocess``, whose
pipes the hub never sees."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time

import eventlet.patcher
import pytest

from devstack.chaos import BrokerProxy
from devstack.stack import ROOT

SHORT = ["--fault-seconds", "3", "--lead-seconds", "1.5", "--tail-seconds", "2"]
SCENARIO_TIMEOUT = 150
subprocess = eventlet.patcher.original("subprocess")


@pytest.fixture
def echo_server():
    """A TCP server on loopback that answers every chunk it reads with the same bytes. Its
    threads poll with timeouts, so none is left blocked on a socket once the test ends."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    serving = threading.Event()
    serving.set()

    def serve():
        while serving.is_set():
            with contextlib.suppress(TimeoutError):
                connection, _ = server.accept()
                connection.settimeout(0.1)
                threading.Thread(target=echo, args=(connection,), daemon=True).start()
        server.close()

    def echo(connection):
        with connection:
            while serving.is_set():
                try:
                    data = connection.recv(4096)
                except TimeoutError:
                    continue
                except (OSError, EOFError):
                    return
                if not data:
                    return
                connection.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.getsockname()[1]}"
    serving.clear()
    thread.join()
    time.sleep(0.3)


def round_trip(address: str, payload: bytes = b"ping") -> bytes:
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=1) as connection:
        connection.sendall(payload)
        return connection.recv(4096)


def test_the_proxy_forwards_refuses_when_cut_drops_when_black_holed_and_heals(echo_server):
    with BrokerProxy(echo_server) as proxy:
        assert round_trip(proxy.address) == b"ping"

        proxy.cut()
        with pytest.raises(ConnectionRefusedError):
            round_trip(proxy.address)

        proxy.heal()
        assert round_trip(proxy.address) == b"ping"

        proxy.black_hole()
        with pytest.raises(TimeoutError):
            round_trip(proxy.address)

        proxy.heal()
        assert round_trip(proxy.address) == b"ping"


@pytest.mark.postgres
@pytest.mark.timeout(SCENARIO_TIMEOUT + 30)
@pytest.mark.parametrize("scenario", ["broker-cut", "sigkill"])
def test_no_event_lost_or_doubled_and_every_committed_write_learnable(scenario, tmp_path):
    figures_file = tmp_path / "figures.json"
    run = subprocess.run(
        [sys.executable, "-m", "devstack.chaos", scenario, *SHORT]
        + ["--workdir", str(tmp_path / "stacks"), "--json", str(figures_file)],
        cwd=ROOT,
        env={**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"},
        capture_output=True,
        text=True,
        timeout=SCENARIO_TIMEOUT,
    )
    report = run.stdout[run.stdout.find("  scenario") :] or run.stdout + run.stderr[-3000:]
    print(report)
    assert figures_file.exists(), f"the scenario did not finish:\n{report}"
    [figures] = json.loads(figures_file.read_text(encoding="utf-8"))
    assert figures["committed"] > 0, f"no write was committed: nothing was tested\n{report}"
    assert figures["events_in_outbox"] >= figures["committed"], report
    assert figures["events_lost"] == 0, f"events lost:\n{report}"
    # The outbox marks a row sent in its own transaction once the broker confirms it: a kill or
    # a cut connection in between republishes that one row, never more.
    duplicates_allowed = 1
    assert figures["events_duplicated"] <= duplicates_allowed, f"events delivered twice:\n{report}"
    assert figures["unlearnable"] == 0, f"committed writes answered with an error:\n{report}"
    assert figures["crashed"] == [], f"processes died during the fault:\n{report}"
