"""The kept broker connection RPC messages travel on, against the real broker."""

from __future__ import annotations

import time
import uuid

import pytest
from amqp import Message

from crm_common.broker_link import BrokerLink, LinkDown
from tests.support.polling import eventually

from .tcp_proxy import TcpProxy


class Inbox:
    """A queue of the test's own, consumed by the link without acknowledgements."""

    def __init__(self) -> None:
        self.name = f"link-test-{uuid.uuid4().hex[:8]}"
        self.bodies: list[bytes] = []
        self.returned: list[Message] = []
        self.connects = 0

    def declare(self, channel) -> None:
        self.connects += 1
        channel.queue_declare(self.name, auto_delete=True)
        channel.basic_consume(self.name, callback=self.received, no_ack=True)

    def received(self, message: Message) -> None:
        self.bodies.append(bytes(message.body))


def soon() -> float:
    return time.monotonic() + 5


@pytest.fixture
def inbox():
    return Inbox()


def test_messages_go_out_and_come_back_on_the_one_connection(rabbit_config, inbox):
    link = BrokerLink(rabbit_config["AMQP_URI"], on_connect=inbox.declare)
    try:
        for number in range(3):
            link.publish(Message(f"m{number}".encode()), "", inbox.name, deadline=soon())

        eventually(lambda: inbox.bodies == [b"m0", b"m1", b"m2"], what="the three messages")
        assert inbox.connects == 1
    finally:
        link.close()


def test_a_mandatory_message_no_queue_takes_is_handed_back(rabbit_config, inbox):
    link = BrokerLink(rabbit_config["AMQP_URI"], on_return=inbox.returned.append)
    try:
        message = Message(b"for nobody", correlation_id="c-1")
        link.publish(message, "", "no-such-queue", mandatory=True, deadline=soon())

        (returned,) = eventually(lambda: inbox.returned, what="the message handed back")
        assert returned.properties["correlation_id"] == "c-1"
        assert link.connected
    finally:
        link.close()


def test_after_the_connection_is_cut_the_next_publish_opens_another(rabbit_config, inbox):
    proxy = TcpProxy(5672)
    proxy.start()
    link = BrokerLink(proxy.uri + rabbit_config["vhost"], on_connect=inbox.declare)
    try:
        link.publish(Message(b"before"), "", inbox.name, deadline=soon())
        eventually(lambda: inbox.bodies == [b"before"], what="the first message")

        proxy.stop()
        eventually(lambda: not link.connected, what="the link to notice the cut")
        with pytest.raises(LinkDown, match="cannot be reached"):
            link.publish(Message(b"lost"), "", inbox.name, deadline=soon())

        proxy.start()
        link.publish(Message(b"after"), "", inbox.name, deadline=soon())
        eventually(lambda: inbox.bodies == [b"before", b"after"], what="the message after")
        assert inbox.connects == 2
    finally:
        link.close()
        proxy.stop()
