"""The timed RPC proxy against a broker address where nothing listens."""

import time
from types import SimpleNamespace

import pytest
from nameko.testing.utils import find_free_port

from crm_common.errors import Unavailable
from gateway.limits import Bulkheads
from gateway.rpc import RpcCalls, TimedServiceProxy


def proxy_to_nowhere(timeout):
    calls = RpcCalls(f"amqp://guest:guest@127.0.0.1:{find_free_port()}/")
    worker_ctx = SimpleNamespace(context_data={})
    bulkheads = Bulkheads(default_limit=4, retry_after=1)
    return TimedServiceProxy(worker_ctx, "customer", calls, timeout, bulkheads), calls


@pytest.mark.parametrize("timeout", [0.5, 30])
def test_no_broker_is_unavailable_and_never_a_hang(timeout):
    proxy, calls = proxy_to_nowhere(timeout)

    started = time.monotonic()
    with pytest.raises(Unavailable) as caught:
        proxy.get_customer("c1")

    assert time.monotonic() - started < min(timeout + 0.2, 2.5)
    assert caught.value.details == {"service": "customer"}
    assert caught.value.status == 503
    assert calls.pending == {}
    assert not calls.link.connected


def test_with_timeout_and_for_service_keep_the_rest():
    proxy, _ = proxy_to_nowhere(10)

    other = proxy.for_service("sales").with_timeout(2)

    assert (other.service_name, other.timeout) == ("sales", 2)
    assert (proxy.service_name, proxy.timeout) == ("customer", 10)
    assert other.calls is proxy.calls
