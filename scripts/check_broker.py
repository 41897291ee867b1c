"""Tell in one sentence whether the RabbitMQ broker in AMQP_URI is usable.

Standard library only, so that it runs before the virtual environment exists.
It opens a real AMQP 0-9-1 connection (PLAIN login, virtual host) and closes it.
With --management it also asks the management API (which nameko's test fixtures use).
With --unserved it also makes sure that no other stack serves the named services on that
virtual host: their RPC queues (``rpc-<name>``, looked at with a passive declare) must not
have consumers, or two stacks would share the requests.
Exit status: 0 usable, 2 unreachable or not answering AMQP, 3 login or virtual host refused,
4 the services are already served on the virtual host.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import socket
import struct
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import unquote, urlsplit

DEFAULT_URI = "amqp://guest:guest@localhost:5672/"
FRAME_METHOD = 1
FRAME_END = 0xCE
CONNECTION_START = (10, 10)
CONNECTION_TUNE = (10, 30)
CONNECTION_OPEN_OK = (10, 41)
CONNECTION_CLOSE = (10, 50)
CONNECTION_CLOSE_OK = (10, 51)
CHANNEL_OPEN_OK = (20, 11)
CHANNEL_CLOSE = (20, 40)
QUEUE_DECLARE_OK = (50, 11)
NOT_FOUND = 404

HOW_TO_START = (
    "start one with `docker run -d --name rabbitmq -p 5672:5672 -p 15672:15672 "
    "rabbitmq:3-management` (or `rabbitmq-server -detached` where RabbitMQ is installed), "
    "or set AMQP_URI to a broker that is running"
)


ENABLE_MANAGEMENT = (
    "enable it with `rabbitmq-plugins enable rabbitmq_management` (the test fixtures create "
    "a virtual host per test through it)"
)


class BrokerProblem(Exception):
    def __init__(self, sentence: str, status: int) -> None:
        super().__init__(sentence)
        self.status = status


class Target:
    def __init__(self, uri: str) -> None:
        parts = urlsplit(uri)
        if parts.scheme not in ("amqp", "pyamqp"):
            raise BrokerProblem(
                f"AMQP_URI must start with amqp:// (got {uri!r}); "
                "TLS brokers are checked by the services themselves.",
                2,
            )
        self.host = parts.hostname or "localhost"
        self.port = parts.port or 5672
        self.user = unquote(parts.username or "guest")
        self.password = unquote(parts.password or "guest")
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        self.vhost = unquote(path) or "/"

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


def _shortstr(value: str) -> bytes:
    data = value.encode()
    return struct.pack("B", len(data)) + data


def _longstr(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


def _method_frame(class_id: int, method_id: int, args: bytes, channel: int = 0) -> bytes:
    payload = struct.pack(">HH", class_id, method_id) + args
    return struct.pack(">BHI", FRAME_METHOD, channel, len(payload)) + payload + bytes([FRAME_END])


def _read_exact(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = sock.recv(size)
        if not chunk:
            raise ConnectionError("connection closed by the broker")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _read_method(sock: socket.socket) -> tuple[tuple[int, int], bytes]:
    while True:
        frame_type, _channel, size = struct.unpack(">BHI", _read_exact(sock, 7))
        payload = _read_exact(sock, size)
        if _read_exact(sock, 1)[0] != FRAME_END:
            raise ConnectionError("malformed AMQP frame")
        if frame_type == FRAME_METHOD:
            class_id, method_id = struct.unpack(">HH", payload[:4])
            return (class_id, method_id), payload[4:]


def _close_reason(args: bytes) -> str:
    code = struct.unpack(">H", args[:2])[0]
    length = args[2]
    return f"{code} {args[3 : 3 + length].decode(errors='replace')}"


def _served_queues(sock: socket.socket, queues: list[str]) -> list[str]:
    """The queues that exist and have at least one consumer, one channel per question (a
    passive declare of a missing queue closes its channel with 404)."""
    served = []
    for channel, queue in enumerate(queues, start=1):
        sock.sendall(_method_frame(20, 10, _shortstr(""), channel))
        method, _ = _read_method(sock)
        if method != CHANNEL_OPEN_OK:
            raise ConnectionError("the broker did not open a channel")
        passive = 1
        declare = struct.pack(">H", 0) + _shortstr(queue) + bytes([passive]) + struct.pack(">I", 0)
        sock.sendall(_method_frame(50, 10, declare, channel))
        method, args = _read_method(sock)
        if method == QUEUE_DECLARE_OK:
            name_length = args[0]
            _messages, consumers = struct.unpack(">II", args[1 + name_length : 9 + name_length])
            if consumers:
                served.append(queue)
            sock.sendall(
                _method_frame(20, 40, struct.pack(">H", 200) + _shortstr("") + b"\0" * 4, channel)
            )
            _read_method(sock)
        elif method == CHANNEL_CLOSE and struct.unpack(">H", args[:2])[0] == NOT_FOUND:
            sock.sendall(_method_frame(20, 41, b"", channel))
        else:
            raise ConnectionError(f"unexpected answer to a queue declare: {method}")
    return served


def check(uri: str, timeout: float, unserved: list[str] | None = None) -> None:
    target = Target(uri)
    deadline = time.monotonic() + timeout
    try:
        sock = socket.create_connection((target.host, target.port), timeout=timeout)
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        raise BrokerProblem(
            f"RabbitMQ is not reachable at {target.where} ({reason}): {HOW_TO_START}.", 2
        ) from None
    try:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        sock.sendall(b"AMQP\x00\x00\x09\x01")
        try:
            method, _ = _read_method(sock)
        except TimeoutError:
            raise
        except (OSError, struct.error) as exc:
            raise BrokerProblem(
                f"Something listens at {target.where} but does not answer as an AMQP broker "
                f"({exc.__class__.__name__}): {HOW_TO_START}.",
                2,
            ) from None
        if method != CONNECTION_START:
            raise BrokerProblem(
                f"The server at {target.where} does not speak AMQP 0-9-1: {HOW_TO_START}.", 2
            )
        response = f"\0{target.user}\0{target.password}".encode()
        sock.sendall(
            _method_frame(
                10,
                11,
                struct.pack(">I", 0) + _shortstr("PLAIN") + _longstr(response) + _shortstr("en_US"),
            )
        )
        refused = BrokerProblem(
            f"RabbitMQ at {target.where} refused user {target.user!r}: check the user and "
            "password in AMQP_URI (the default is guest:guest, which RabbitMQ accepts only "
            "from localhost).",
            3,
        )
        try:
            method, args = _read_method(sock)
        except TimeoutError:
            raise
        except OSError:
            raise refused from None
        if method != CONNECTION_TUNE:
            raise refused
        channel_max, frame_max, _heartbeat = struct.unpack(">HIH", args[:8])
        sock.sendall(_method_frame(10, 31, struct.pack(">HIH", channel_max, frame_max, 0)))
        sock.sendall(_method_frame(10, 40, _shortstr(target.vhost) + _shortstr("") + b"\0"))
        method, args = _read_method(sock)
        if method == CONNECTION_CLOSE:
            raise BrokerProblem(
                f"RabbitMQ at {target.where} refused virtual host {target.vhost!r} for user "
                f"{target.user!r} ({_close_reason(args)}): create it with "
                f"`rabbitmqctl add_vhost {target.vhost}` and grant the user access, or fix "
                "AMQP_URI.",
                3,
            )
        if method != CONNECTION_OPEN_OK:
            raise BrokerProblem(f"RabbitMQ at {target.where} answered unexpectedly.", 2)
        served = _served_queues(sock, [f"rpc-{name}" for name in unserved or []])
        if served:
            raise BrokerProblem(
                f"RabbitMQ virtual host {target.vhost!r} at {target.where} is already served by "
                f"another stack (its queues {', '.join(served)} have consumers), so this one "
                "would share its requests: stop that stack, or give this one a virtual host "
                "of its own in AMQP_URI (e.g. amqp://guest:guest@localhost:5672/crm-dev after "
                "`rabbitmqctl add_vhost crm-dev` and `rabbitmqctl set_permissions -p crm-dev "
                "guest '.*' '.*' '.*'`).",
                4,
            )
        sock.sendall(_method_frame(10, 50, struct.pack(">H", 200) + _shortstr("") + b"\0" * 4))
        with contextlib.suppress(OSError):
            _read_method(sock)
    except TimeoutError:
        raise BrokerProblem(
            f"RabbitMQ at {target.where} did not answer within {timeout:g} seconds: "
            f"{HOW_TO_START}.",
            2,
        ) from None
    finally:
        sock.close()


def check_management(uri: str, timeout: float) -> None:
    parts = urlsplit(uri)
    where = f"{parts.hostname or 'localhost'}:{parts.port or 15672}"
    url = f"{parts.scheme}://{where}{parts.path.rstrip('/')}/api/overview"
    user = unquote(parts.username or "guest")
    password = unquote(parts.password or "guest")
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            raise BrokerProblem(
                f"The RabbitMQ management API at {where} refused user {user!r}: check the user "
                "and password in RABBIT_MANAGEMENT_URI (the user needs the administrator tag).",
                3,
            ) from None
        raise BrokerProblem(
            f"The RabbitMQ management API at {where} answered HTTP {exc.code}: "
            f"{ENABLE_MANAGEMENT}.",
            2,
        ) from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc.__class__.__name__
        raise BrokerProblem(
            f"The RabbitMQ management API does not answer at {where} ({reason}): "
            f"{ENABLE_MANAGEMENT}.",
            2,
        ) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", default=os.environ.get("AMQP_URI") or DEFAULT_URI)
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds (default 5)")
    parser.add_argument(
        "--management",
        metavar="URI",
        help="also check the management API, e.g. http://guest:guest@localhost:15672",
    )
    parser.add_argument(
        "--unserved",
        metavar="NAMES",
        default="",
        help="service names (space- or comma-separated) whose RPC queues must have no consumers",
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing when usable")
    args = parser.parse_args(argv)
    try:
        check(args.uri, args.timeout, args.unserved.replace(",", " ").split())
        if args.management:
            check_management(args.management, args.timeout)
    except BrokerProblem as problem:
        print(problem, file=sys.stderr)
        return problem.status
    if not args.quiet:
        extra = " with its management API" if args.management else ""
        print(f"RabbitMQ is up at {Target(args.uri).where}{extra}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
