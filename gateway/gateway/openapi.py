"""The OpenAPI 3.1 document of the HTTP API.

Paths come from the routes' own metadata (``@route(..., summary=..., body=..., response=...)``,
most of them generated from the services' route tables); the component schemas come from each
service's ``api_schemas()`` RPC, which the services generate from their marshmallow schemas,
each in the service's namespace (``customer.Customer``, ``org.User``); the gateway's own shapes
(problem, health, sign-in and password bodies, dead letters) are generated here from
``gateway.schemas`` in the ``gateway`` namespace. A route's ``query_schema`` names the published
query schema whose fields are its query parameters; ``params`` names the gateway's own query
parameters; ``headers`` names extra response headers.
"""

from __future__ import annotations

import copy
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from nameko.extensions import DependencyProvider

from gateway import aggregates, settings
from gateway.schemas import (
    DeadLetterDetailSchema,
    DeadLetterReplaySchema,
    DeadLetterSchema,
    HealthSchema,
    PasswordChangeSchema,
    PasswordResetSchema,
    ProblemSchema,
    ReadinessSchema,
    RefreshRequestSchema,
    TokenRequestSchema,
    TokenResponseSchema,
)
from gateway.web import ApiRoute

_log = logging.getLogger(__name__)

TITLE = "CRM API"
VERSION = "1.0.0"
PROBLEM_MEDIA = "application/problem+json"
SECURITY_SCHEME = "bearerAuth"
GATEWAY = "gateway"
"""The namespace of the gateway's own component schemas."""
GATEWAY_SCHEMAS = {
    f"{GATEWAY}.{name}": schema
    for name, schema in {
        "Problem": ProblemSchema,
        "Health": HealthSchema,
        "Readiness": ReadinessSchema,
        "TokenRequest": TokenRequestSchema,
        "RefreshRequest": RefreshRequestSchema,
        "TokenResponse": TokenResponseSchema,
        "PasswordChange": PasswordChangeSchema,
        "PasswordReset": PasswordResetSchema,
        "DeadLetter": DeadLetterSchema,
        "DeadLetterDetail": DeadLetterDetailSchema,
        "DeadLetterReplay": DeadLetterReplaySchema,
    }.items()
}
PROBLEM = f"{GATEWAY}.Problem"
COMPONENT_NAME = re.compile(r"^[a-zA-Z0-9._-]+$")

GATEWAY_PARAMETERS: dict[str, dict[str, Any]] = {
    "cursor": {
        "description": "next_cursor of the previous page",
        "schema": {"type": "string"},
    },
    "limit": {
        "description": "page size (at most 200, default 50)",
        "schema": {"type": "integer", "minimum": 1, "maximum": 200},
    },
    "allow_duplicate": {
        "description": "create even when likely duplicates exist",
        "schema": {"type": "boolean", "default": False},
    },
    "service": {
        "description": "only the dead letters of this service (default: every service)",
        "schema": {"type": "string"},
    },
    "handler": {
        "description": "only those of this handler, e.g. sales.on_customer_created",
        "schema": {"type": "string"},
    },
    "event_type": {
        "description": "only those of this event type, e.g. customer_created",
        "schema": {"type": "string"},
    },
}
"""The query parameters the gateway reads itself (the services' come from their schemas)."""

PROBLEM_RESPONSES: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "The request is malformed (e.g. the body is not JSON)"),
    401: ("Unauthenticated", "No valid bearer token"),
    403: ("Forbidden", "The caller may not do this"),
    404: ("NotFound", "No such record (or not visible to the caller)"),
    409: (
        "Conflict",
        "Stale version, likely duplicates (listed in `candidates`), or a request with the same "
        "Idempotency-Key still running (`reason: idempotency_key_in_use`; retry shortly)",
    ),
    413: ("PayloadTooLarge", "The body is too large"),
    415: ("UnsupportedMediaType", "The body has the wrong media type"),
    422: (
        "ValidationFailed",
        "The input is not valid; `errors` has reasons per field (an Idempotency-Key already "
        "used for another request: `reason: idempotency_key_reused`)",
    ),
    428: ("PreconditionRequired", "The version to change is missing (If-Match or body version)"),
    429: ("TooManyRequests", "Too many refused sign-ins from this address; see Retry-After"),
    500: ("InternalError", "Unexpected error; quote the request id"),
    503: ("Unavailable", "A service or the message broker is not available"),
    504: ("GatewayTimeout", "A service did not answer in time"),
}

_PATH_PARAMETER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def openapi_path(rule: str) -> str:
    """``/api/customers/<customer_id>`` -> ``/api/customers/{customer_id}``."""
    return _PATH_PARAMETER.sub(r"{\1}", rule)


def path_parameter_names(rule: str) -> list[str]:
    return _PATH_PARAMETER.findall(rule)


def build_document(
    routes: Iterable[tuple[str, ApiRoute]],
    service_schemas: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """The OpenAPI document for ``routes``, with the schemas each service published."""
    spec = APISpec(
        title=TITLE,
        version=VERSION,
        openapi_version="3.1.0",
        plugins=[MarshmallowPlugin()],
        info={
            "description": (
                "HTTP/JSON API of the CRM suite. Sign in with POST /api/auth/token; every "
                "other /api route except the token routes and this document needs "
                "'Authorization: Bearer <access_token>'. An access token lives a few minutes: "
                "renew it with POST /api/auth/refresh, also when a 401 says the user's "
                "permissions have changed. Errors are application/problem+json (RFC 9457) "
                "with a stable `code` and the `request_id` of the request."
            )
        },
        security=[{SECURITY_SCHEME: []}],
    )
    for name, schema in GATEWAY_SCHEMAS.items():
        spec.components.schema(name, schema=schema)
    for name, component in namespaced(service_schemas).items():
        spec.components.schema(name, component=component)
    spec.components.security_scheme(
        SECURITY_SCHEME, {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    routes = list(routes)
    _add_parameters(spec, routes)
    for name, description in PROBLEM_RESPONSES.values():
        spec.components.response(
            name,
            {
                "description": description,
                "headers": {"X-Request-ID": _request_id_header()},
                "content": {PROBLEM_MEDIA: {"schema": _ref(PROBLEM)}},
            },
        )
    _add_patch_schemas(spec, routes)
    for name, component in aggregates.components(spec.components.schemas).items():
        spec.components.schema(name, component=component)
    known = dict(spec.components.schemas)
    by_path: dict[str, dict[str, Any]] = {}
    for handler_name, route in routes:
        path = openapi_path(route.url)
        for method in route.method.split(","):
            by_path.setdefault(path, {})[method.strip().lower()] = _operation(
                handler_name, route, known
            )
    for path, operations in sorted(by_path.items()):
        spec.path(path=path, operations=operations)
    return spec.to_dict()


def namespaced(service_schemas: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Each service's published schemas as components named ``<service>.<name>``, their
    references between each other following; a name that is taken (or not a valid component
    name) is an error, never a silent drop."""
    components: dict[str, Any] = {}
    for service, schemas in sorted(service_schemas.items()):
        if service == GATEWAY:
            raise ValueError(f"the namespace {GATEWAY!r} is the gateway's own")
        for name, schema in sorted(schemas.items()):
            qualified = f"{service}.{name}"
            if not COMPONENT_NAME.match(qualified):
                raise ValueError(f"{qualified!r} is not a valid component name")
            if qualified in components:
                raise ValueError(f"the schema {qualified} is published twice")
            components[qualified] = _refs_into(service, to_openapi_31(schema))
    return components


def _refs_into(service: str, node: Any) -> Any:
    """``node`` with its references to ``#/components/schemas/X`` pointing into ``service``."""
    if isinstance(node, list):
        return [_refs_into(service, item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _refs_into(service, value) for key, value in node.items()}
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith(SCHEMA_REF):
        converted["$ref"] = f"{SCHEMA_REF}{service}.{ref.removeprefix(SCHEMA_REF)}"
    return converted


def query_parameters(query_schema: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """One query parameter per property of a published query schema, by property name (a
    query parameter is never null: leaving it out is how to say nothing)."""
    parameters: dict[str, dict[str, Any]] = {}
    for name, prop in query_schema.get("properties", {}).items():
        schema = {
            key: value for key, value in prop.items() if key not in ("description", "example")
        }
        kind = schema.get("type")
        if isinstance(kind, list):
            kinds = [item for item in kind if item != "null"]
            schema["type"] = kinds[0] if len(kinds) == 1 else kinds
        if isinstance(schema.get("enum"), list):
            schema["enum"] = [value for value in schema["enum"] if value is not None]
        parameter: dict[str, Any] = {"name": name, "schema": schema}
        if prop.get("description"):
            parameter["description"] = prop["description"]
        if schema.get("type") == "array":
            parameter.update(style="form", explode=True)
        parameters[name] = parameter
    return parameters


def to_openapi_31(schema: Any) -> Any:
    """An OpenAPI 3.0 schema (``nullable: true``) as the JSON Schema 2020-12 of OpenAPI 3.1."""
    if isinstance(schema, list):
        return [to_openapi_31(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {key: to_openapi_31(value) for key, value in schema.items() if key != "nullable"}
    if schema.get("nullable") is not True:
        return converted
    kind = converted.get("type")
    if isinstance(kind, str):
        converted["type"] = [kind, "null"]
        return converted
    if isinstance(kind, list):
        converted["type"] = kind if "null" in kind else [*kind, "null"]
        return converted
    return {"anyOf": [converted, {"type": "null"}]}


CREATE_ONLY = "x-create-only"
"""A property a service marks as taken on create only: left out of the derived patch schema."""


def patch_schema_name(input_name: str) -> str:
    """``CustomerInput`` -> ``CustomerPatch``."""
    return input_name.removesuffix("Input") + "Patch"


def _add_patch_schemas(spec: APISpec, routes: list[tuple[str, ApiRoute]]) -> None:
    """For each PATCH body: its input schema with every field optional (less those taken on
    create only), plus ``version``."""
    published = spec.components.schemas
    for _, route in routes:
        body = route.doc.get("body")
        if not (route.doc.get("if_match") and isinstance(body, str) and body in published):
            continue
        name = patch_schema_name(body)
        if name in published:
            continue
        patch = copy.deepcopy(published[body])
        patch.pop("required", None)
        properties = patch.get("properties", {})
        for field in [f for f, spec_ in properties.items() if spec_.get(CREATE_ONLY)]:
            del properties[field]
        patch.setdefault("properties", {})["version"] = {
            "type": "integer",
            "minimum": 1,
            "description": "the version being changed, unless If-Match says it",
        }
        patch["description"] = f"Fields of {body} to change; only those sent are changed."
        spec.components.schema(name, component=patch)


def _add_parameters(spec: APISpec, routes: list[tuple[str, ApiRoute]]) -> None:
    """The gateway's own query parameters, and those of each query schema a route names that
    its service publishes (as ``<schema>.<field>``)."""
    for name, parameter in GATEWAY_PARAMETERS.items():
        spec.components.parameter(name, "query", dict(parameter))
    published = spec.components.schemas
    for query_schema in sorted({str(route.doc.get("query_schema")) for _, route in routes}):
        for name, parameter in query_parameters(published.get(query_schema, {})).items():
            spec.components.parameter(f"{query_schema}.{name}", "query", parameter)
    spec.components.parameter(
        "RequestId",
        "header",
        {
            "name": "X-Request-ID",
            "description": "correlation id; echoed back, generated when absent",
            "schema": {"type": "string", "maxLength": 128},
        },
    )
    spec.components.parameter(
        "IdempotencyKey",
        "header",
        {
            "name": "Idempotency-Key",
            "description": "a key you make for this write (e.g. a UUID) and send again, unchanged, "
            "when you retry it: the first answer is stored for you for 24 hours and a retry "
            "gets it back (with `Idempotent-Replayed: true`) instead of writing twice. The "
            "same key with another request is a 422; while the first is still running, a 409",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
        },
    )
    spec.components.parameter(
        "IfMatch",
        "header",
        {
            "name": "If-Match",
            "description": 'the version being changed, as its ETag (e.g. "3"); '
            'or send "version" in the body',
            "schema": {"type": "string"},
        },
    )


SCHEMA_REF = "#/components/schemas/"


def _ref(name: str, section: str = "schemas") -> dict[str, str]:
    return {"$ref": f"#/components/{section}/{name}"}


def _request_id_header() -> dict[str, Any]:
    return {"description": "the request's correlation id", "schema": {"type": "string"}}


def _schema(name: str | None, known: Mapping[str, Any]) -> dict[str, Any]:
    """A reference to a published schema; a plain object when no service publishes it."""
    if name is not None and name in known:
        return _ref(name)
    if name:
        _log.info("no service publishes schema %s; describing it as an object", name)
    return {"type": "object"}


def _operation(handler_name: str, route: ApiRoute, known: Mapping[str, Any]) -> dict[str, Any]:
    doc = route.doc
    # component parameters and responses are named by string; apispec turns names into $refs
    parameters: list[Any] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in path_parameter_names(route.url)
    ]
    parameters += list(doc.get("params", ()))
    query_schema = doc.get("query_schema")
    if isinstance(query_schema, str) and query_schema in known:
        parameters += [f"{query_schema}.{name}" for name in query_parameters(known[query_schema])]
    parameters.append("RequestId")
    if doc.get("if_match"):
        parameters.append("IfMatch")
    if doc.get("idempotent"):
        parameters.append("IdempotencyKey")

    operation: dict[str, Any] = {
        "operationId": handler_name,
        "summary": doc.get("summary", handler_name.replace("_", " ")),
        "tags": list(doc.get("tags", ["customers"])),
        "parameters": parameters,
        "responses": _responses(route, known),
    }
    if doc.get("description"):
        operation["description"] = doc["description"]
    if not route.auth:
        operation["security"] = []
    body = _request_body(doc, known)
    if body:
        operation["requestBody"] = body
    return operation


def _request_body(doc: Mapping[str, Any], known: Mapping[str, Any]) -> dict[str, Any] | None:
    body = doc.get("body")
    if body is None:
        return None
    if body == "csv":
        return {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "contentMediaType": "text/csv"}},
                        "required": ["file"],
                    }
                },
            },
        }
    if doc.get("if_match"):
        schema = _schema(patch_schema_name(body), known)
    else:
        schema = _schema(body, known)
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _responses(route: ApiRoute, known: Mapping[str, Any]) -> dict[str, Any]:
    doc = route.doc
    status = int(doc.get("status", 200))
    shape = doc.get("shape", "record")
    headers: dict[str, Any] = {"X-Request-ID": _request_id_header()}
    for name, description in doc.get("headers", {}).items():
        headers[name] = {"description": description, "schema": {"type": "string"}}
    if doc.get("idempotent"):
        headers["Idempotent-Replayed"] = {
            "description": "`true` when this is the stored answer of an earlier request with "
            "the same Idempotency-Key",
            "schema": {"type": "string", "enum": ["true"]},
        }
    success: dict[str, Any] = {"description": doc.get("returns", "Success"), "headers": headers}
    if shape == "record":
        headers["ETag"] = {
            "description": "the record's version, for If-Match",
            "schema": {"type": "string"},
        }
        if status == 201:
            headers["Location"] = {"description": "the new record", "schema": {"type": "string"}}
        success["content"] = {"application/json": {"schema": _schema(doc.get("response"), known)}}
    elif shape in ("page", "items"):
        item = _schema(doc.get("response"), known)
        properties: dict[str, Any] = {"items": {"type": "array", "items": item}}
        if shape == "page":
            properties["next_cursor"] = {
                "type": ["string", "null"],
                "description": "pass as `cursor` for the next page; null on the last page",
            }
        success["content"] = {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": properties,
                    "required": sorted(properties),
                }
            }
        }
    elif shape == "object":
        success["content"] = {"application/json": {"schema": _schema(doc.get("response"), known)}}
    elif shape == "csv":
        headers["Content-Disposition"] = {
            "description": "attachment; filename=...",
            "schema": {"type": "string"},
        }
        success["content"] = {"text/csv": {"schema": {"type": "string"}}}
    elif shape == "html":
        success["content"] = {"text/html": {"schema": {"type": "string"}}}
    elif shape == "pdf":
        headers["Content-Disposition"] = {
            "description": "inline; filename=...",
            "schema": {"type": "string"},
        }
        success["content"] = {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}
    responses: dict[str, Any] = {str(status): success}
    for code in _error_statuses(route):
        responses[str(code)] = PROBLEM_RESPONSES[code][0]
    return responses


def _error_statuses(route: ApiRoute) -> list[int]:
    doc = route.doc
    codes = {500}
    if route.auth:
        codes |= {401, 403, 503, 504}
    if path_parameter_names(route.url):
        codes.add(404)
    if doc.get("body") is not None:
        codes |= {400, 413, 415, 422}
    if doc.get("params") or doc.get("query_schema"):
        codes.add(422)
    if doc.get("if_match"):
        # the version may come in a JSON body instead of If-Match
        codes |= {400, 409, 415, 428}
    if doc.get("idempotent"):
        codes |= {409, 422}
    codes |= set(doc.get("errors", ()))
    return sorted(codes)


class SchemaCache(DependencyProvider):
    """Keeps each service's published schemas for ``OPENAPI_CACHE_SECONDS``.

    A service that cannot be asked while its schemas are stale is served from the stale copy.
    """

    def setup(self) -> None:
        self.ttl = settings.seconds(self.container.config, "OPENAPI_CACHE_SECONDS")
        self._entries: dict[str, tuple[float, dict[str, Any]]] = {}

    def get_dependency(self, worker_ctx: Any) -> SchemaCache:
        return self

    def schemas_of(self, service: str, fetch: Callable[[], Any]) -> dict[str, Any]:
        entry = self._entries.get(service)
        if entry is not None and time.monotonic() - entry[0] < self.ttl:
            return entry[1]
        try:
            fetched = fetch()
        except Exception:
            if entry is None:
                raise
            _log.warning("serving the cached schemas of %s: it cannot be asked now", service)
            return entry[1]
        if not isinstance(fetched, dict):
            raise TypeError(f"api_schemas() of {service} returned {type(fetched).__name__}")
        self._entries[service] = (time.monotonic(), fetched)
        return fetched
