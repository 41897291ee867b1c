"""A TCP forwarder that tests can cut and restore, to take the broker away from one client."""

from __future__ import annotations

import contextlib

import eventlet
from eventlet.green import socket


class TcpProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port: int | None = None
        self._server = None
        self._pool = eventlet.GreenPool()
        self._sockets: list = []

    def start(self) -> None:
        server = eventlet.listen(("127.0.0.1", self.port or 0))
        self.port = server.getsockname()[1]
        self._server = server
        self._pool.spawn_n(self._accept, server)

    def stop(self) -> None:
        """Refuse new connections and cut the open ones."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for thread in list(self._pool.coroutines_running):
            eventlet.greenthread.kill(thread)
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._sockets.clear()

    @property
    def uri(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _accept(self, server) -> None:
        while self._server is server:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._sockets += [client, upstream]
            self._pool.spawn_n(self._pipe, client, upstream)
            self._pool.spawn_n(self._pipe, upstream, client)

    @staticmethod
    def _pipe(source, destination) -> None:
        try:
            while data := source.recv(65536):
                destination.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, destination):
                with contextlib.suppress(OSError):
                    sock.close()
