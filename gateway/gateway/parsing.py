"""Reading what a request carries: JSON bodies, query strings, versions, CSV uploads.

Each helper raises :class:`~gateway.problems.HttpProblem` with the right status, so route
handlers only say what they need.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from marshmallow import Schema, ValidationError
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Request

from crm_common.errors import ValidationFailed
from crm_common.schemas import unstorable_text
from gateway.problems import HttpProblem, bad_request, invalid

_IF_MATCH = re.compile(r'^\s*(?:W/)?"(\d{1,18})"\s*$')
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


MAX_JSON_DEPTH = 32
"""How deeply objects and arrays may nest in a request body; no API shape comes close."""
_UTF8_CHARSETS = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})


def _body_bytes(request: Request) -> bytes:
    try:
        return request.get_data(cache=True)
    except RequestEntityTooLarge:
        raise HttpProblem(
            413, "payload_too_large", "the request body is larger than this gateway accepts"
        ) from None


def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object; 415 for another media type or a charset other than UTF-8,
    400 for anything but a JSON object or one nested too deeply, 422 for text no database can
    hold (NUL characters, lone surrogates)."""
    mimetype = request.mimetype or ""
    if mimetype and mimetype != "application/json" and not mimetype.endswith("+json"):
        raise HttpProblem(415, "unsupported_media_type", "send the body as application/json")
    charset = request.mimetype_params.get("charset")
    if charset and charset.strip().lower() not in _UTF8_CHARSETS:
        raise HttpProblem(
            415, "unsupported_media_type", "JSON is UTF-8: send charset=utf-8 or no charset"
        )
    raw = _body_bytes(request)
    if not raw.strip():
        raise bad_request("the request needs a JSON object as its body", "invalid_json")
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except RecursionError:
        raise _too_deep() from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad_request(f"the body is not valid JSON: {_reason(exc)}", "invalid_json") from None
    if not isinstance(data, dict):
        raise bad_request("the body must be a JSON object", "invalid_json")
    check_json_text(data)
    return data


def _too_deep() -> HttpProblem:
    return bad_request(
        f"the body nests objects and arrays more than {MAX_JSON_DEPTH} deep", "invalid_json"
    )


def check_json_text(data: Any) -> None:
    """400 when ``data`` nests deeper than :data:`MAX_JSON_DEPTH`; 422 naming the member whose
    text (or name) holds a NUL character or a lone UTF-16 surrogate."""
    pending: list[tuple[Any, str, int]] = [(data, "", 0)]
    while pending:
        item, path, depth = pending.pop()
        if isinstance(item, str):
            reason = unstorable_text(item)
            if reason:
                raise invalid(path or "_schema", reason)
            continue
        if not isinstance(item, dict | list):
            continue
        if depth >= MAX_JSON_DEPTH:
            raise _too_deep()
        members = item.items() if isinstance(item, dict) else enumerate(item)
        for key, value in members:
            name = f"{path}.{key}" if path else str(key)
            reason = unstorable_text(key) if isinstance(key, str) else None
            if reason:
                raise invalid(name, f"the member's name {reason}")
            pending.append((value, name, depth + 1))


def validated(schema: Schema, request: Request) -> dict[str, Any]:
    """The request's JSON object loaded by ``schema``; 422 with reasons per field (the
    reasons never quote the values sent, so a password cannot leak through them)."""
    try:
        return dict(schema.load(json_body(request)))
    except ValidationError as exc:
        raise ValidationFailed.from_marshmallow(exc) from None


def _reason(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return "it is not UTF-8"


def flag(args: Mapping[str, str], name: str, default: bool = False) -> bool:
    raw = args.get(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise invalid(name, "must be true or false")


def integer(args: Mapping[str, str], name: str, *, minimum: int = 1) -> int | None:
    raw = args.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        number = int(raw.strip())
    except ValueError:
        raise invalid(name, "must be a whole number") from None
    if number < minimum:
        raise invalid(name, f"must be at least {minimum}")
    return number


def text(args: Mapping[str, str], name: str) -> str | None:
    raw = args.get(name)
    if raw is None:
        return None
    stripped = _storable(name, raw.strip())
    return stripped or None


def _storable(name: str, value: str) -> str:
    """``value`` of the query parameter ``name``; 422 when no database could compare it."""
    reason = unstorable_text(value) or unstorable_text(name)
    if reason:
        raise invalid(name, reason)
    return value


def query_dict(args: MultiDict[str, str]) -> dict[str, Any]:
    """The query string as a dict for a service's query schema: a repeated parameter becomes
    a list, and a blank one counts as absent (an empty filter box filters nothing)."""
    query: dict[str, Any] = {}
    for name in args:
        values = [_storable(name, value) for value in args.getlist(name) if value.strip()]
        if values:
            query[name] = values if len(values) > 1 else values[0]
    return query


def page_params(args: Mapping[str, str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    cursor = text(args, "cursor")
    if cursor is not None:
        params["cursor"] = cursor
    limit = integer(args, "limit")
    if limit is not None:
        params["limit"] = limit
    return params


def if_match_version(header: str | None) -> int | None:
    """The version in an ``If-Match`` header (``"3"`` or ``W/"3"``); None when absent."""
    if header is None or not header.strip():
        return None
    match = _IF_MATCH.match(header)
    if match is None:
        raise bad_request(
            'If-Match must carry the version the change is based on, e.g. If-Match: "3"',
            "invalid_if_match",
        )
    return int(match.group(1))


def split_version(request: Request, body: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    """The changes of a PATCH body and the version they apply to (If-Match or body "version")."""
    changes = {key: item for key, item in body.items() if key != "version"}
    header_version = if_match_version(request.headers.get("If-Match"))
    body_version = _body_version(body)
    if header_version is not None and body_version is not None and header_version != body_version:
        raise invalid("version", "differs from the version in If-Match")
    version = header_version if header_version is not None else body_version
    if version is None:
        raise HttpProblem(
            428,
            "precondition_required",
            'say which version you are changing: send If-Match: "<version>" '
            'or "version" in the body',
            title="Precondition required",
        )
    return changes, version


def _body_version(body: Mapping[str, Any]) -> int | None:
    if "version" not in body or body["version"] is None:
        return None
    raw = body["version"]
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise invalid("version", "must be a whole number")
    try:
        version = int(raw)
    except ValueError:
        raise invalid("version", "must be a whole number") from None
    if version < 1:
        raise invalid("version", "must be at least 1")
    return version


def csv_text(request: Request, file_fields: Iterable[str] = ("file",)) -> str:
    """The CSV a request carries: a ``text/csv`` body or a multipart file upload.

    UTF-8 with or without a byte-order mark; a ``charset`` parameter on the media type is
    honoured, and text that is not UTF-8 is read as GB18030, which is what spreadsheet
    programs on Chinese Windows save.
    """
    mimetype = request.mimetype or ""
    charset = request.mimetype_params.get("charset")
    if mimetype == "multipart/form-data":
        raw, charset = _uploaded(request, file_fields)
    elif mimetype in ("text/csv", "application/csv", "text/plain", ""):
        raw = _body_bytes(request)
    else:
        raise HttpProblem(
            415,
            "unsupported_media_type",
            "send the CSV as a text/csv body or as a multipart/form-data file named 'file'",
        )
    if not raw.strip():
        raise bad_request("the CSV is empty", "empty_csv")
    return decode_text(raw, charset)


def _uploaded(request: Request, file_fields: Iterable[str]) -> tuple[bytes, str | None]:
    try:
        files = request.files
    except RequestEntityTooLarge:
        raise HttpProblem(
            413, "payload_too_large", "the upload is larger than this gateway accepts"
        ) from None
    for field in file_fields:
        upload = files.get(field)
        if upload is not None:
            return upload.read(), upload.mimetype_params.get("charset")
    raise bad_request("the form has no file field named 'file'", "missing_file")


def decode_text(raw: bytes, charset: str | None = None) -> str:
    """``raw`` as text: UTF-8 (with or without a byte-order mark) whenever it is valid UTF-8,
    whatever ``charset`` claims (text in another charset is hardly ever valid UTF-8, and
    reading UTF-8 as latin-1 would store mojibake); otherwise the declared charset, or
    GB18030 when none is declared."""
    if charset:
        try:
            codecs.lookup(charset)
        except LookupError:
            raise bad_request(f"unknown charset {charset!r}", "unknown_charset") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    if charset and charset.lower().replace("_", "-") not in ("utf-8", "utf8"):
        try:
            return raw.decode(charset)
        except UnicodeDecodeError:
            raise bad_request(f"the text is not valid {charset}", "invalid_encoding") from None
    try:
        return raw.decode("gb18030")
    except UnicodeDecodeError:
        raise bad_request("the text is neither UTF-8 nor GB18030", "invalid_encoding") from None
