"""HTTP plumbing around Nameko's ``@http``: request ids, bearer auth, problem+json everywhere.

``@route(method, url, auth=True, **doc)`` declares a JSON route. Before a worker is spawned
the request gets its id (``X-Request-ID`` or a new uuid) and, unless ``auth=False``, its
caller from the bearer access token (``gateway.auth``); the request id and the token itself
travel in Nameko context data (``request_id`` and ``access_token``) into every RPC the handler
makes, and each service verifies the token again. Whatever a handler raises
becomes a problem response; unknown routes and wrong methods are answered the same way. The
keyword arguments in ``doc`` describe the route for the OpenAPI document.

Concurrency (``gateway.limits``): a request's deadline (``RPC_TIMEOUT``) starts when it
arrives; it waits for one of ``REQUEST_WORKERS`` workers no longer than that (then 503), and its
RPCs share what is left. A route declared ``pooled=False`` (``/health``, ``/ready``) runs in the
web server's own green thread, so it answers even when every request worker is busy.
"""

from __future__ import annotations

import functools
import logging
import re
import time
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any, cast

from eventlet.event import Event
from nameko.containers import WorkerContext
from nameko.exceptions import ContainerBeingKilled
from nameko.extensions import register_entrypoint
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer
from werkzeug.routing import Map, RequestRedirect
from werkzeug.wrappers import Request, Response

from crm_common.context import REQUEST_ID_KEY, bind
from crm_common.identity import ACCESS_TOKEN_KEY
from crm_common.metrics import observe_http
from gateway import problems, settings
from gateway.auth import TokenAuthority
from gateway.http_policy import HttpPolicy, ProblemProtocol, accept_chunked_body, url_map
from gateway.limits import RequestWorkers, bind_arrival

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_ENVIRON = "crm.request_id"
ARRIVED_ENVIRON = "crm.arrived"
"""When the request arrived (``time.monotonic()``): its deadline counts from there."""
CALLER_ENVIRON = "crm.caller"
"""Where an authenticated route's request keeps its :class:`~gateway.auth.Caller`."""
UNMATCHED = "unmatched"
"""The route label of a request no route matched, so that scanners do not grow the metrics."""
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$")

_log = logging.getLogger(__name__)


def request_id_from(header: str | None) -> str:
    """The caller's request id when it is a sane token, otherwise a fresh one."""
    if header and _VALID_REQUEST_ID.match(header.strip()):
        return header.strip()
    return str(uuid.uuid4())


def request_id_of(request: Request) -> str:
    found = request.environ.get(REQUEST_ID_ENVIRON)
    if not found:
        found = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        request.environ[REQUEST_ID_ENVIRON] = found
    return found


class ApiServer(WebServer):
    """The web server shared by every ``@route``; it answers unrouted requests as problems.

    It sizes the container's worker pool for I/O-bound requests: ``REQUEST_WORKERS`` request
    workers on top of Nameko's ``max_workers``, which stay for the gateway's event handlers.
    """

    max_body_bytes: int
    policy: HttpPolicy
    request_timeout: float
    workers: RequestWorkers

    def setup(self) -> None:
        super().setup()
        config = self.container.config
        self.max_body_bytes = settings.integer(config, "MAX_BODY_BYTES")
        self.policy = HttpPolicy.from_config(config)
        self.request_timeout = settings.rpc_timeout(config)
        size = settings.request_workers(config)
        self.workers = RequestWorkers(size, settings.busy_retry_after(config))
        # nameko keeps its worker pool private; its size is max_workers, read at construction
        self.container._worker_pool.resize(self.container.max_workers + size)

    def get_wsgi_app(self) -> ApiWsgiApp:
        return ApiWsgiApp(self)

    def get_wsgi_server(self, sock: Any, wsgi_app: Any, **kwargs: Any) -> Any:
        return super().get_wsgi_server(sock, wsgi_app, protocol=ProblemProtocol)

    def make_url_map(self) -> Map:
        rules = []
        for provider in self._providers:
            rule = provider.get_url_rule()
            rule.endpoint = provider
            rules.append(rule)
        return url_map(rules)


class ApiWsgiApp:
    def __init__(self, server: ApiServer) -> None:
        self.server = server
        self.url_map = server.make_url_map()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        started = time.perf_counter()
        environ[ARRIVED_ENVIRON] = time.monotonic()
        request_id = request_id_from(environ.get("HTTP_X_REQUEST_ID"))
        environ[REQUEST_ID_ENVIRON] = request_id
        bind(None, request_id)
        accept_chunked_body(environ)
        request = Request(environ, shallow=True)
        adapter = self.url_map.bind_to_environ(environ)
        template = UNMATCHED
        try:
            if request.method == "OPTIONS" and adapter.allowed_methods():
                response = self.server.policy.options_response(request, adapter.allowed_methods())
            else:
                rule, values = adapter.match(return_rule=True)
                template = rule.rule
                request.path_values = values  # type: ignore[attr-defined]  # nameko reads it
                response = rule.endpoint.handle_request(request)
        except RequestRedirect as redirect:
            response = redirect.get_response(environ)
        except Exception as exc:
            response = problems.response_for(exc, request_id)
        response.headers[REQUEST_ID_HEADER] = request_id
        self.server.policy.finish(request, response)
        observe_http(request.method, template, response.status_code, time.perf_counter() - started)
        return response(environ, start_response)


class ApiRoute(HttpRequestHandler):
    server = ApiServer()
    authority = TokenAuthority()

    def __init__(
        self,
        method: str,
        url: str,
        *,
        auth: bool = True,
        pooled: bool = True,
        doc: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(method, url, **kwargs)
        self.auth = auth
        self.pooled = pooled
        self.doc = dict(doc or {})
        self.signature_checked = False

    def handle_request(self, request: Request) -> Response:
        request.shallow = False
        request.max_content_length = self.server.max_body_bytes
        request_id = request_id_of(request)
        try:
            context_data: dict[str, Any] = {REQUEST_ID_KEY: request_id}
            if self.auth:
                caller = self.authority.authenticate(request)
                request.environ[CALLER_ENVIRON] = caller
                context_data[ACCESS_TOKEN_KEY] = caller.token  # each service verifies it
            args, kwargs = self.get_entrypoint_parameters(request)
            if not self.signature_checked:
                # every request of the route brings the same names: its URL's variables
                self.check_signature(args, kwargs)
                self.signature_checked = True
            if self.pooled:
                deadline = request.environ[ARRIVED_ENVIRON] + self.server.request_timeout
                with self.server.workers.held(deadline):
                    response = self.run_in_pool(args, kwargs, context_data)
            else:
                response = self.run_here(args, kwargs, context_data)
        except ContainerBeingKilled:
            response = problems.response_for(
                problems.HttpProblem(
                    503, "unavailable", "the gateway is shutting down", headers={"Retry-After": "5"}
                ),
                request_id,
            )
        except problems.HttpProblem as exc:
            if exc.status == 401:
                _log.info("refused %s %s: %s", request.method, request.path, exc.detail)
            response = problems.response_for(exc, request_id)
        except Exception as exc:
            response = problems.response_for(exc, request_id)
        return response

    def run_in_pool(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], context_data: dict[str, Any]
    ) -> Response:
        done = Event()
        self.container.spawn_worker(
            self,
            args,
            kwargs,
            context_data=context_data,
            handle_result=partial(self.handle_result, done),
        )
        return cast(Response, self.response_from_result(done.wait()))

    def run_here(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], context_data: dict[str, Any]
    ) -> Response:
        """Run the worker in the web server's green thread: no pool to wait for."""
        if self.container._being_killed:
            raise ContainerBeingKilled()
        done = Event()
        service = self.container.service_cls()
        worker_ctx = WorkerContext(self.container, service, self, args, kwargs, data=context_data)
        self.container._run_worker(worker_ctx, partial(self.handle_result, done))
        return cast(Response, self.response_from_result(done.wait()))


def route(
    method: str, url: str, *, auth: bool = True, pooled: bool = True, **doc: Any
) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """Declare ``fn(self, request, **path_values)`` as the handler of ``method url``.

    ``pooled=False`` is for the few cheap routes that must answer even when every request
    worker is busy (health and readiness): they run in the web server's green thread.
    """

    def decorate(fn: Callable[..., Response]) -> Callable[..., Response]:
        # the instance is "self": a URL may well have a value named "service"
        @functools.wraps(fn)
        def handler(self: Any, request: Request, **path_values: Any) -> Response:
            bind_arrival(request.environ.get(ARRIVED_ENVIRON))
            try:
                return fn(self, request, **path_values)
            except Exception as exc:
                return problems.response_for(exc, request_id_of(request))
            finally:
                bind_arrival(None)

        entrypoint = ApiRoute(method, url, auth=auth, pooled=pooled, doc=doc)
        register_entrypoint(handler, entrypoint)
        return handler

    return decorate


def api_routes(service_cls: type) -> list[tuple[str, ApiRoute]]:
    """``(handler name, route)`` for each route declared on ``service_cls``, in a stable order."""
    found: list[tuple[str, ApiRoute]] = []
    for name in dir(service_cls):
        member = getattr(service_cls, name, None)
        for entrypoint in getattr(member, "nameko_entrypoints", None) or ():
            if isinstance(entrypoint, ApiRoute):
                found.append((name, entrypoint))
    return sorted(found, key=lambda item: (item[1].url, item[1].method))
