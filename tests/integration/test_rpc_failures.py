"""What a caller sees when the service it calls is not there, or the broker goes silent."""

import time
from urllib.parse import urlparse

import eventlet
import pytest
import requests
from nameko.exceptions import RpcTimeout, UnknownService
from nameko.rpc import rpc
from nameko.standalone.rpc import ServiceRpcProxy

from crm_common.errors import EXPECTED_ERRORS, NotFound
from tests.integration.standins import (
    CUSTOMER_ID,
    StandInCustomer,
    StandInOrg,
    gateway_config,
    start_gateway,
)
from tests.integration.tcp_proxy import TcpProxy
from tests.support.polling import eventually


class EchoService:
    name = "echo"

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def echo(self, value):
        if value is None:
            raise NotFound.of("value", "none")
        return value


def test_service_that_never_ran_is_an_unknown_service(rabbit_config):
    with (
        ServiceRpcProxy("nobody", rabbit_config, timeout=2) as nobody,
        pytest.raises(UnknownService) as caught,
    ):
        nobody.anything()
    assert "nobody" in str(caught.value)


def test_stopped_service_times_out_instead_of_hanging(container_factory, rabbit_config):
    container = container_factory(EchoService, rabbit_config)
    container.start()
    with ServiceRpcProxy("echo", rabbit_config, timeout=2) as echo:
        assert echo.echo("你好") == "你好"
        with pytest.raises(NotFound) as caught:
            echo.echo(None)
        assert caught.value.details["resource"] == "value"
        container.stop()
        with pytest.raises(RpcTimeout):
            echo.echo("anyone there?")


class BlackHole(TcpProxy):
    """Forwards to the broker until ``silent``: then it keeps every connection, old and new,
    and the bytes sent on it, and answers nothing (a broker behind a dead network path)."""

    silent = False

    def _pipe(self, source, destination) -> None:
        try:
            while data := source.recv(65536):
                while self.silent:
                    eventlet.sleep(0.05)
                destination.sendall(data)
        except OSError:
            pass


@pytest.fixture
def black_hole(rabbit_config):
    """A black hole in front of the test's broker; it lets traffic flow again, and is cut, only
    after the containers of the test have stopped."""
    proxy = BlackHole(urlparse(rabbit_config["AMQP_URI"]).port or 5672)
    proxy.start()
    yield proxy
    proxy.stop()


def test_a_black_holed_broker_never_holds_a_request_past_its_deadline(
    black_hole, rabbit_config, runner_factory, container_factory
):
    broker = urlparse(rabbit_config["AMQP_URI"])
    through_it = broker._replace(netloc=f"guest:guest@127.0.0.1:{black_hole.port}").geturl()
    timeout = 2.0
    container_factory(StandInCustomer, gateway_config(rabbit_config)).start()
    api = start_gateway(
        runner_factory, gateway_config(rabbit_config, AMQP_URI=through_it, RPC_TIMEOUT=timeout)
    )
    assert api.get(f"/api/customers/{CUSTOMER_ID}").status_code == 200
    try:
        black_hole.silent = True
        pool = eventlet.GreenPool(32)

        def timed_get(number):
            started = time.monotonic()
            response = requests.get(
                f"{api.base_url}/api/customers/c-{number}",
                headers={"Authorization": f"Bearer {api.token()}"},
                timeout=4 * timeout,
            )
            return time.monotonic() - started, response.status_code

        # more than kombu's pool of connections, so some wait to get one
        answers = list(pool.imap(timed_get, range(24)))
        health = requests.get(f"{api.base_url}/health", timeout=1)
        started = time.monotonic()
        ready = requests.get(f"{api.base_url}/ready", timeout=4 * timeout)
        ready_elapsed = time.monotonic() - started

        assert max(elapsed for elapsed, _ in answers) < timeout + 1.0
        assert {status for _, status in answers} <= {503, 504}
        assert health.status_code == 200
        # READY_TIMEOUT is 0.5 s: the broker check gives up, and its connection is dropped
        assert ready.status_code == 503 and ready.json()["checks"]["broker"] == "timeout"
        assert ready_elapsed < 0.5 + 1.0
    finally:
        black_hole.silent = False


def test_a_gateway_is_not_ready_until_it_has_loaded_the_revocation_state_from_org(
    rabbit_config, runner_factory, container_factory
):
    config = gateway_config(rabbit_config)
    api = start_gateway(runner_factory, config, StandInCustomer)

    loading = api.get("/ready", auth=False)

    assert loading.status_code == 503
    assert loading.json()["checks"] == {"broker": "ok", "customer": "ok", "revocations": "loading"}

    container_factory(StandInOrg, config).start()

    ready = eventually(
        lambda: (response := api.get("/ready", auth=False)).status_code == 200 and response,
        timeout=15,
        what="the gateway to load the revocation state and become ready",
    )
    assert ready.json()["checks"]["revocations"] == "ok"
