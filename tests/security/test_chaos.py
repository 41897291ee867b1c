"""The chaos scenarios of ``devstack.chaos``, short: a broker cut and a SIGKILL of the customer
process under a salesperson's writes must lose no event, double none, crash no process, and
leave no committed write its client cannot learn about by retrying with its Idempotency-Key.
``make chaos`` runs every scenario at full length; the proxy itself is checked first."""

from __future__ import annotations

import contextlib
import socket
import threading

import pytest

from devstack.chaos import BrokerProxy, Settings, run_scenario, table

SHORT = {"fault_seconds": 3.0, "lead_seconds": 1.5, "tail_seconds": 2.0, "concurrency": 3}


@pytest.fixture
def echo_server():
    """A TCP server on loopback that answers every chunk it reads with the same bytes."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve():
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=echo, args=(connection,), daemon=True).start()

    def echo(connection):
        with connection, contextlib.suppress(OSError, EOFError):
            while data := connection.recv(4096):
                connection.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    yield f"127.0.0.1:{server.getsockname()[1]}"
    server.close()


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
@pytest.mark.parametrize("scenario", ["broker-cut", "sigkill"])
def test_no_event_lost_or_doubled_and_every_committed_write_learnable(scenario, tmp_path):
    outcome = run_scenario(scenario, Settings(workdir=tmp_path, **SHORT))
    report = table([outcome])
    print(report)
    assert outcome.committed > 0, f"no write was committed: the scenario tested nothing\n{report}"
    assert outcome.events_in_outbox >= outcome.committed, report
    assert outcome.sound, f"lost, doubled or unlearnable writes, or a crash:\n{report}"
