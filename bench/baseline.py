"""The bare baseline: a Nameko ``@http`` route that makes one RPC to an echo service."""

import json

from nameko.rpc import RpcProxy, rpc
from nameko.web.handlers import http


class EchoService:
    name = "bench_echo"

    @rpc
    def echo(self, value):
        return {"id": value}


class BareHttpService:
    name = "bench_http"
    echo = RpcProxy("bench_echo")

    @http("GET", "/echo/<string:value>")
    def get(self, request, value):
        return 200, {"Content-Type": "application/json"}, json.dumps(self.echo.echo(value))
