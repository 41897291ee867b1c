"""Building the gateway's successful responses."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from werkzeug.wrappers import Response

JSON = "application/json"


def etag(version: Any) -> str | None:
    if isinstance(version, int) and not isinstance(version, bool):
        return f'"{version}"'
    return None


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        json.dumps(data, ensure_ascii=False, default=str),
        status=status,
        headers=dict(headers or {}),
        content_type=JSON,
    )


def record_response(record: Any, status: int = 200, *, location: str | None = None) -> Response:
    """One record, with its version as ETag (and its address as Location when created)."""
    headers: dict[str, str] = {}
    if isinstance(record, Mapping):
        tag = etag(record.get("version"))
        if tag:
            headers["ETag"] = tag
    if location:
        headers["Location"] = location
    return json_response(record, status, headers)


def items_response(items: Any) -> Response:
    """A whole collection, wrapped so it can grow a cursor later without breaking clients."""
    return json_response({"items": list(items or [])})


def no_content() -> Response:
    return Response(status=204)


def html_response(text: str) -> Response:
    """A page to show or print (a printable quotation)."""
    return Response(text.encode("utf-8"), status=200, content_type="text/html; charset=utf-8")


def pdf_response(content_base64: str, filename: str) -> Response:
    """A PDF the service sent base64-encoded (RPC answers are JSON), shown inline."""
    disposition = f"inline; filename=\"{filename}\"; filename*=UTF-8''{quote(filename)}"
    return Response(
        base64.b64decode(content_base64),
        status=200,
        headers={"Content-Disposition": disposition},
        content_type="application/pdf",
    )


def csv_response(text: str, filename: str) -> Response:
    disposition = f"attachment; filename=\"{filename}\"; filename*=UTF-8''{quote(filename)}"
    return Response(
        text.encode("utf-8"),
        status=200,
        headers={"Content-Disposition": disposition},
        content_type="text/csv; charset=utf-8",
    )
