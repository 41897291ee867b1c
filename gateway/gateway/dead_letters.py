"""Dead letters of every backend service behind one list.

Each service keeps its own dead letters and pages through them with its own cursor. Listing
all services at once asks each for a page and answers one cursor that carries the cursors of
the services that have more (``limit`` applies per service).
"""

from __future__ import annotations

import base64
import binascii
import contextvars
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import eventlet

from gateway.problems import HttpProblem, invalid

ListPage = Callable[[str, dict[str, Any]], dict[str, Any]]
"""``(service, query) -> {"items": [...], "next_cursor": ...}``: one service's page."""


def encode_cursor(cursors: Mapping[str, str]) -> str:
    raw = json.dumps(dict(sorted(cursors.items())), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        cursors = json.loads(raw)
    except (binascii.Error, ValueError):
        raise invalid("cursor", "is not a cursor this list answered") from None
    if not isinstance(cursors, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in cursors.items()
    ):
        raise invalid("cursor", "is not a cursor this list answered")
    return cursors


def chosen_service(service: str, backends: Iterable[str]) -> str:
    """``service`` when it is one of the backends; 404 otherwise."""
    if service not in tuple(backends):
        raise HttpProblem(
            404, "not_found", f"no service named {service!r}", extra={"resource": "service"}
        )
    return service


def list_all(query: dict[str, Any], backends: Iterable[str], list_page: ListPage) -> dict[str, Any]:
    """One page of dead letters of ``query["service"]`` (or of every backend), side by side."""
    query = dict(query)
    cursor = query.pop("cursor", None)
    service = query.pop("service", None)
    if isinstance(service, list) or isinstance(cursor, list):
        raise invalid("service" if isinstance(service, list) else "cursor", "give it once")
    services = (chosen_service(service, backends),) if service else tuple(backends)
    if cursor:
        cursors = decode_cursor(cursor)
        services = tuple(name for name in services if name in cursors)
    else:
        cursors = {}
    pool = eventlet.GreenPool(max(len(services), 1))
    pending = {
        name: pool.spawn(
            contextvars.copy_context().run,
            list_page,
            name,
            {**query, **({"cursor": cursors[name]} if name in cursors else {})},
        )
        for name in services
    }
    items: list[dict[str, Any]] = []
    more: dict[str, str] = {}
    for name, thread in pending.items():
        page = thread.wait()
        items.extend({**item, "service": name} for item in page.get("items") or ())
        if page.get("next_cursor"):
            more[name] = str(page["next_cursor"])
    return {"items": items, "next_cursor": encode_cursor(more) if more else None}
