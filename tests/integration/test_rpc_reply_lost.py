"""A service whose broker goes away while it answers survives, and its caller gets the answer
once the broker is back (the unacknowledged request is delivered again)."""

from __future__ import annotations

import logging

import eventlet
from nameko.standalone.rpc import ClusterRpcProxy

from crm_common import kit
from crm_common.entrypoints import public, rpc
from tests.support.polling import eventually

from .tcp_proxy import TcpProxy

RUNS: list[str] = []
RELEASE = eventlet.event.Event()


class SlowService(kit.ServiceKit):
    name = "slow_answerer"

    @rpc
    @public
    def answer(self) -> str:
        RUNS.append("run")
        if len(RUNS) == 1:
            RELEASE.wait()
        return "answered"


def test_a_reply_lost_with_the_broker_neither_kills_the_service_nor_the_answer(
    rabbit_config, container_factory, caplog
):
    proxy = TcpProxy(5672)
    proxy.start()
    through_proxy = dict(rabbit_config, AMQP_URI=proxy.uri + rabbit_config["vhost"])
    container = container_factory(SlowService, through_proxy)
    container.start()
    caplog.set_level(logging.WARNING, logger="crm_common.entrypoints")
    try:
        with ClusterRpcProxy(rabbit_config, timeout=60) as cluster:
            pending = cluster.slow_answerer.answer.call_async()
            eventually(lambda: RUNS == ["run"], what="the first call running")
            proxy.stop()
            RELEASE.send()
            eventually(
                lambda: "could not answer" in caplog.text,
                timeout=30,
                what="the lost reply logged",
            )
            proxy.start()
            assert pending.result() == "answered"
            assert RUNS == ["run", "run"]
            assert cluster.slow_answerer.ping() == "pong"
        container.stop()
    finally:
        proxy.stop()
