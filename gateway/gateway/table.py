"""Route tables: a service's HTTP API declared as rows, each one route calling one RPC.

A row says the method and URL, the RPC to call, where each of its arguments comes from
(:class:`Path`, :class:`Query`, :class:`Body` ...), the shape of the answer and how the route
is documented. ``RouteTable.handlers()`` turns the rows into ``@route`` handlers; the gateway
service class serves every table found in ``gateway.routes`` (see :func:`install`).

Schema names in a row (``body``, ``response``, ``query``) are the names the service publishes
through ``api_schemas``; the table qualifies them with the service's name, which is also the
OpenAPI namespace of its components (``customer.Customer``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import Any, Literal, Protocol

from werkzeug.wrappers import Request, Response

from crm_common import idempotency
from gateway import parsing, settings
from gateway.problems import invalid
from gateway.responses import (
    csv_response,
    html_response,
    items_response,
    json_response,
    no_content,
    pdf_response,
    record_response,
)
from gateway.web import route

IDEMPOTENT_METHODS = frozenset({"POST", "PATCH"})
REPLAYED_HEADER = "Idempotent-Replayed"
"""Set to ``true`` on the stored answer of a repeated write."""

Shape = Literal["record", "page", "items", "object", "none", "csv", "html", "pdf"]


class Incoming:
    """What one request carries, read once and only when a row asks for it."""

    def __init__(self, request: Request, path: Mapping[str, str]) -> None:
        self.request = request
        self.path = path

    @cached_property
    def body(self) -> dict[str, Any]:
        return parsing.json_body(self.request)

    @cached_property
    def versioned(self) -> tuple[dict[str, Any], int]:
        return parsing.split_version(self.request, self.body)


class Source(Protocol):
    """Where one RPC argument comes from."""

    def __call__(self, incoming: Incoming) -> Any: ...


@dataclass(frozen=True)
class Path:
    """A value of the URL, e.g. ``Path("customer_id")`` for ``/api/customers/<customer_id>``."""

    name: str

    def __call__(self, incoming: Incoming) -> Any:
        return incoming.path[self.name]


@dataclass(frozen=True)
class Const:
    """A fixed value, e.g. the record kind of an org route."""

    value: Any

    def __call__(self, incoming: Incoming) -> Any:
        return self.value


@dataclass(frozen=True)
class Query:
    """The whole query string as a dict, for the service's query schema to validate."""

    def __call__(self, incoming: Incoming) -> Any:
        return parsing.query_dict(incoming.request.args)


@dataclass(frozen=True)
class Flag:
    """One true/false query parameter the gateway reads itself."""

    name: str

    def __call__(self, incoming: Incoming) -> Any:
        return parsing.flag(incoming.request.args, self.name)


@dataclass(frozen=True)
class Page:
    """``cursor`` or ``limit`` of the query string, for RPCs that take them as arguments."""

    name: Literal["cursor", "limit"]

    def __call__(self, incoming: Incoming) -> Any:
        return parsing.page_params(incoming.request.args).get(self.name)


@dataclass(frozen=True)
class Body:
    """The JSON object of the body; with ``field``, one required member of it."""

    field: str | None = None

    def __call__(self, incoming: Incoming) -> Any:
        if self.field is None:
            return incoming.body
        if incoming.body.get(self.field) in (None, ""):
            raise invalid(self.field, "Missing data for required field.")
        return incoming.body[self.field]


@dataclass(frozen=True)
class Changes:
    """The changes of a PATCH body (without its ``version``)."""

    def __call__(self, incoming: Incoming) -> Any:
        return incoming.versioned[0]


@dataclass(frozen=True)
class Version:
    """The version a change applies to: ``If-Match`` or the body's ``version`` (428 if none)."""

    def __call__(self, incoming: Incoming) -> Any:
        return incoming.versioned[1]


@dataclass(frozen=True)
class CsvBody:
    """The CSV text of a ``text/csv`` body or a multipart upload."""

    def __call__(self, incoming: Incoming) -> Any:
        return parsing.csv_text(incoming.request)


@dataclass(frozen=True)
class Row:
    """One route: ``method url`` answers with what ``rpc(*args, **kwargs)`` returns.

    The route's handler (and OpenAPI operationId) is named ``name``, by default the RPC's name.
    ``shape`` is the answer: a ``record`` (ETag from its version; Location from ``location``,
    formatted with the record, when created), a ``page`` or an ``object`` as returned, ``items``
    (a list wrapped as ``{"items": [...]}``), ``none`` (204), ``csv`` (an attachment named by
    ``filename``, formatted with today's date), ``html`` (a page to show or print) or ``pdf``
    (``{"filename", "content_base64"}`` from the service, sent as the document). ``query``
    names the published query schema the service validates the query string with; ``params``
    names query parameters the gateway reads itself. ``bulk`` calls get the longer deadline of
    CSV import and export.
    """

    method: str
    url: str
    rpc: str
    args: tuple[Source, ...] = ()
    kwargs: Mapping[str, Source] = field(default_factory=dict)
    summary: str = ""
    description: str = ""
    shape: Shape = "record"
    response: str | None = None
    body: str | None = None
    query: str | None = None
    params: tuple[str, ...] = ()
    status: int = 200
    location: str | None = None
    filename: str = ""
    bulk: bool = False
    tags: tuple[str, ...] = ()
    errors: tuple[int, ...] = ()
    name: str = ""
    auth: bool = True
    """False for the few routes callers reach without a user's token (a provider's
    callback, which the service checks by its own means)."""

    @property
    def operation(self) -> str:
        """The handler's name and OpenAPI operationId: ``name``, or else the RPC's."""
        return self.name or self.rpc

    @property
    def if_match(self) -> bool:
        return any(isinstance(source, Version) for source in (*self.args, *self.kwargs.values()))


@dataclass(frozen=True)
class RouteTable:
    """The HTTP API of one backend service."""

    service: str
    rows: tuple[Row, ...]
    tags: tuple[str, ...] = ()

    def qualified(self, name: str | None) -> str | None:
        """A schema name the service publishes, in the service's OpenAPI namespace."""
        if name is None or name == "csv":
            return name
        return f"{self.service}.{name}"

    def doc_of(self, row: Row) -> dict[str, Any]:
        """What the OpenAPI document says of ``row``."""
        doc: dict[str, Any] = {
            "summary": row.summary,
            "tags": list(row.tags or self.tags),
            "shape": row.shape,
            "status": row.status,
            "params": row.params,
            "errors": row.errors,
            "if_match": row.if_match,
            "idempotent": row.method in IDEMPOTENT_METHODS,
        }
        optional = {
            "description": row.description,
            "response": self.qualified(row.response),
            "body": self.qualified(row.body),
            "query_schema": self.qualified(row.query),
        }
        doc.update((key, value) for key, value in optional.items() if value)
        return doc

    def handlers(self) -> dict[str, Callable[..., Response]]:
        """The ``@route`` handler of each row, by its name."""
        return {
            row.operation: route(row.method, row.url, auth=row.auth, **self.doc_of(row))(
                self._handler(row)
            )
            for row in self.rows
        }

    def _handler(self, row: Row) -> Callable[..., Response]:
        service_name = self.service

        def handle(gateway: Any, request: Request, **path: str) -> Response:
            incoming = Incoming(request, path)
            args = [source(incoming) for source in row.args]
            kwargs = {name: source(incoming) for name, source in row.kwargs.items()}
            proxy = gateway.backends.for_service(service_name)
            if row.bulk:
                proxy = proxy.with_timeout(settings.bulk_rpc_timeout(gateway.config))
            key = idempotency_key(row, request)
            if key is None:
                return respond(row, getattr(proxy, row.rpc)(*args, **kwargs))
            # the key travels with this worker's one RPC, in its context data
            proxy.worker_ctx.data[idempotency.IDEMPOTENCY_KEY] = key
            answer = getattr(proxy, row.rpc)(*args, **kwargs)
            result, replayed = idempotency.unwrap(answer, key) or (answer, False)
            response = respond(row, result)
            if replayed:
                response.headers[REPLAYED_HEADER] = "true"
            return response

        handle.__name__ = handle.__qualname__ = row.operation
        return handle


def idempotency_key(row: Row, request: Request) -> str | None:
    """The ``Idempotency-Key`` of a POST or PATCH, checked; other methods ignore it."""
    key = request.headers.get(idempotency.HEADER)
    if key is None or row.method not in IDEMPOTENT_METHODS:
        return None
    if not idempotency.VALID_KEY.match(key):
        raise invalid(idempotency.HEADER, "must be 1 to 255 visible ASCII characters")
    return key


def respond(row: Row, result: Any) -> Response:
    """The HTTP answer of ``row`` for the RPC's ``result``."""
    if row.shape == "record":
        location = row.location.format(**result) if row.location else None
        return record_response(result, row.status, location=location)
    if row.shape == "items":
        return items_response(result)
    if row.shape == "none":
        return no_content()
    if row.shape == "csv":
        return csv_response(result, row.filename.format(today=date.today()))
    if row.shape == "html":
        return html_response(result)
    if row.shape == "pdf":
        return pdf_response(result["content_base64"], result["filename"])
    return json_response(result, row.status)


def install(service_cls: type, tables: tuple[RouteTable, ...]) -> None:
    """Make every row of ``tables`` a route of ``service_cls``; a name used twice is an error."""
    for table in tables:
        for name, handler in table.handlers().items():
            if hasattr(service_cls, name):
                raise ValueError(f"route {name} of {table.service} is already defined")
            setattr(service_cls, name, handler)
