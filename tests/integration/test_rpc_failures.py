"""What a caller sees when the service it calls is not there."""

import pytest
from nameko.exceptions import RpcTimeout, UnknownService
from nameko.rpc import rpc
from nameko.standalone.rpc import ServiceRpcProxy

from crm_common.errors import EXPECTED_ERRORS, NotFound


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
