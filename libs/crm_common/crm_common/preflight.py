"""Checks that the message broker answers before anything starts, in plain words if it doesn't."""

from __future__ import annotations

import os
import sys

from kombu import Connection

HINT = (
    "RabbitMQ is not reachable at {where}: start it (for example `rabbitmq-server -detached`, "
    "or `docker run -d -p 5672:5672 -p 15672:15672 rabbitmq:3-management`) or set AMQP_URI."
)


def broker_reachable(amqp_uri: str, timeout: float = 5.0) -> bool:
    try:
        with Connection(amqp_uri, connect_timeout=timeout) as connection:
            connection.ensure_connection(max_retries=1, timeout=timeout)
        return True
    except Exception:
        return False


def main() -> None:
    amqp_uri = os.environ.get("AMQP_URI", "amqp://guest:guest@localhost:5672/")
    if not broker_reachable(amqp_uri):
        where = Connection(amqp_uri).as_uri()
        print(HINT.format(where=where), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
