"""Errors as ``application/problem+json`` (RFC 9457) responses.

Every failure the gateway answers goes through :func:`response_for`: errors raised by the
gateway itself (:class:`HttpProblem`), the typed errors of ``crm_common`` that services raise
over RPC, werkzeug's routing errors, and anything unexpected (500, nothing of it leaked).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from typing import Any

from nameko.exceptions import RemoteError, UnknownService
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wrappers import Response

from crm_common.errors import CrmError, flat_field_errors

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:crm:problem:"
BEARER_CHALLENGE = 'Bearer realm="crm"'
RESERVED_MEMBERS = frozenset(
    {"type", "title", "status", "detail", "instance", "code", "request_id"}
)

_log = logging.getLogger(__name__)


class HttpProblem(Exception):
    """An error the gateway answers itself, with the status, code and extra members to send."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        title: str | None = None,
        errors: Mapping[str, list[str]] | None = None,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title or HTTP_STATUS_CODES.get(status, "Error")
        self.errors = dict(errors) if errors else None
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})


def bad_request(detail: str, code: str = "bad_request") -> HttpProblem:
    return HttpProblem(400, code, detail)


def invalid(field: str, reason: str) -> HttpProblem:
    return HttpProblem(
        422,
        "validation_failed",
        f"{field}: {reason}",
        title="Validation failed",
        errors={field: [reason]},
    )


def unauthenticated(detail: str, *, error: str | None = "invalid_token") -> HttpProblem:
    challenge = BEARER_CHALLENGE
    if error:
        quoted = detail.replace("\\", "\\\\").replace('"', '\\"')
        challenge += f', error="{error}", error_description="{quoted}"'
    return HttpProblem(
        401,
        "unauthenticated",
        detail,
        title="Unauthenticated",
        headers={"WWW-Authenticate": challenge},
    )


def too_many_requests(detail: str, retry_after: int) -> HttpProblem:
    return HttpProblem(
        429,
        "too_many_requests",
        detail,
        extra={"retry_after": retry_after},
        headers={"Retry-After": str(retry_after)},
    )


class UpstreamTimeout(HttpProblem):
    def __init__(self, service: str, method: str, seconds: float) -> None:
        super().__init__(
            504,
            "upstream_timeout",
            f"the {service} service did not answer within {seconds:g} seconds",
            title="Gateway timeout",
            extra={"service": service},
        )
        self.method = method


def problem_body(
    status: int,
    code: str,
    title: str,
    detail: str,
    request_id: str | None,
    *,
    errors: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": request_id,
    }
    if errors:
        body["errors"] = flat_field_errors(dict(errors))
    body.update(
        (key, item)
        for key, item in (extra or {}).items()
        if key not in RESERVED_MEMBERS and key != "errors"
    )
    return body


def problem_response(
    status: int,
    body: Mapping[str, Any],
    headers: Mapping[str, str] | None = None,
) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False, default=str),
        status=status,
        headers=dict(headers or {}),
        content_type=PROBLEM_JSON,
    )


def response_for(exc: BaseException, request_id: str | None) -> Response:
    """The problem response for ``exc``; unexpected errors are logged here, not sent."""
    if isinstance(exc, HttpProblem):
        body = problem_body(
            exc.status,
            exc.code,
            exc.title,
            exc.detail,
            request_id,
            errors=exc.errors,
            extra=exc.extra,
        )
        return problem_response(exc.status, body, exc.headers)

    if isinstance(exc, CrmError):
        return _crm_error_response(exc, request_id)

    if isinstance(exc, UnknownService):
        service = exc.args[0] if exc.args else "backend"
        problem = HttpProblem(
            503,
            "unavailable",
            f"the {service} service is not running",
            title="Service unavailable",
            extra={"service": service},
            headers={"Retry-After": "5"},
        )
        return response_for(problem, request_id)

    if isinstance(exc, HTTPException) and exc.code is not None:
        return _http_exception_response(exc, request_id)

    if isinstance(exc, RemoteError):
        _log.error("a service answered with an untyped error: %s", exc)
    else:
        _log.error("unexpected error while handling the request", exc_info=exc)
    body = problem_body(
        500,
        "internal_error",
        "Internal server error",
        "the request could not be completed; quote the request id when reporting it",
        request_id,
    )
    return problem_response(500, body)


def _crm_error_response(exc: CrmError, request_id: str | None) -> Response:
    details = dict(exc.details)
    errors = details.pop("errors", None) if isinstance(details.get("errors"), dict) else None
    status = int(exc.status)
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = BEARER_CHALLENGE
    if status == 503:
        headers["Retry-After"] = "5"
    if status == 429:
        headers["Retry-After"] = str(_whole_seconds(details.get("retry_after"), 1))
    if status >= 500:
        _log.warning("a service reported %s: %s", exc.code, exc.message)
    body = problem_body(
        status, exc.code, exc.title, exc.message, request_id, errors=errors, extra=details
    )
    return problem_response(status, body, headers)


def _whole_seconds(value: Any, default: int) -> int:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 1:
        return math.ceil(value)
    return default


def _http_exception_response(exc: HTTPException, request_id: str | None) -> Response:
    status = int(exc.code or 500)
    name = HTTP_STATUS_CODES.get(status, "Error")
    code = name.lower().replace(" ", "_").replace("-", "_")
    headers: dict[str, str] = {}
    detail = exc.description or name
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        allowed = ", ".join(sorted({*exc.valid_methods, "OPTIONS"}))
        headers["Allow"] = allowed
        detail = f"use one of {allowed} on this resource"
    if status == 404:
        detail = "no resource at this address"
    body = problem_body(status, code, name, detail, request_id)
    return problem_response(status, body, headers)
