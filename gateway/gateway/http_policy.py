"""What the gateway says and trusts at the HTTP level, whatever the route.

- CORS for the front ends' origins (``CORS_ORIGINS``): preflights answered with the methods of
  the address and the headers the API reads, answers exposing the headers it sets.
- Headers on every answer: ``Cache-Control: no-store`` (unless a route chose its own) and
  ``X-Content-Type-Options: nosniff``.
- The client's address: ``X-Forwarded-For`` / ``Forwarded`` are believed only from the
  proxies in ``TRUSTED_PROXIES`` (addresses or CIDR networks).
- The URL map: a path variable never takes a word that a sibling route spells out, so
  ``PATCH /api/customers/count`` is a 405, not an update of a customer called "count".
- Chunked request bodies are read, and the web server's own refusals (a request line too long,
  malformed headers) are problem+json like every other error.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from nameko.web.server import HttpOnlyProtocol
from werkzeug.routing import BaseConverter, Map, Rule
from werkzeug.wrappers import Request, Response

from gateway.problems import PROBLEM_JSON, TYPE_PREFIX

ALLOWED_REQUEST_HEADERS = (
    "Authorization",
    "Content-Type",
    "If-Match",
    "Idempotency-Key",
    "X-Request-ID",
)
EXPOSED_HEADERS = ("ETag", "Location", "X-Request-ID", "Retry-After")
PREFLIGHT_MAX_AGE = 600
ANY_ORIGIN = "*"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _listed(raw: Any) -> tuple[str, ...]:
    items = raw.split(",") if isinstance(raw, str) else list(raw or ())
    return tuple(str(item).strip() for item in items if item and str(item).strip())


@dataclass(frozen=True)
class HttpPolicy:
    cors_origins: tuple[str, ...] = ()
    trusted_proxies: tuple[Network, ...] = ()

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> HttpPolicy:
        origins = tuple(origin.rstrip("/") for origin in _listed(config.get("CORS_ORIGINS")))
        return cls(origins, trusted_networks(config.get("TRUSTED_PROXIES")))

    def allows_origin(self, origin: str | None) -> bool:
        return bool(origin) and (ANY_ORIGIN in self.cors_origins or origin in self.cors_origins)

    def options_response(self, request: Request, methods: Iterable[str]) -> Response:
        """The answer to ``OPTIONS``: the methods of the address, and for a CORS preflight
        from an allowed origin what the browser may send."""
        allowed = ", ".join(sorted({*methods, "OPTIONS"}))
        response = Response(status=204, headers={"Allow": allowed})
        origin = request.headers.get("Origin")
        preflight = request.headers.get("Access-Control-Request-Method")
        if preflight and self.allows_origin(origin):
            response.headers["Access-Control-Allow-Methods"] = allowed
            response.headers["Access-Control-Allow-Headers"] = ", ".join(ALLOWED_REQUEST_HEADERS)
            response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE)
        return response

    def finish(self, request: Request, response: Response) -> None:
        """The headers every answer carries, and CORS for an allowed origin."""
        headers = response.headers
        headers.setdefault("Cache-Control", "no-store")
        headers["X-Content-Type-Options"] = "nosniff"
        if not self.cors_origins:
            return
        headers.add("Vary", "Origin")
        origin = request.headers.get("Origin")
        if self.allows_origin(origin):
            headers["Access-Control-Allow-Origin"] = (
                ANY_ORIGIN if ANY_ORIGIN in self.cors_origins else str(origin)
            )
            headers["Access-Control-Expose-Headers"] = ", ".join(EXPOSED_HEADERS)


# --- the client's address ------------------------------------------------------------------


def trusted_networks(raw: Any) -> tuple[Network, ...]:
    """``TRUSTED_PROXIES`` as networks: addresses or CIDRs, comma-separated or a list."""
    return _networks(_listed(raw))


@lru_cache(maxsize=16)
def _networks(items: tuple[str, ...]) -> tuple[Network, ...]:
    networks = []
    for item in items:
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"TRUSTED_PROXIES: {item!r} is not an address or network") from None
    return tuple(networks)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address as ``X-Forwarded-For`` or ``Forwarded`` write it (port, brackets, quotes)."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else text[1:]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


_FORWARDED_FOR = re.compile(r'(?:^|[;,\s])for=("[^"]*"|[^;,\s]*)', re.IGNORECASE)


def forwarded_hops(request: Request) -> list[str]:
    """The addresses the proxies recorded, nearest last: ``Forwarded`` when sent, else
    ``X-Forwarded-For``."""
    forwarded = request.headers.getlist("Forwarded")
    if forwarded:
        return _FORWARDED_FOR.findall(",".join(forwarded))
    return [hop for value in request.headers.getlist("X-Forwarded-For") for hop in value.split(",")]


def client_address(request: Request, trusted: Iterable[Network]) -> str:
    """The address of the client, as the trusted proxies in front of the gateway saw it.

    Walking the forwarded hops from the nearest, each one a trusted proxy reports is believed;
    the first address that is not a trusted proxy is the client. A request that does not come
    from a trusted proxy is its own client, whatever headers it sends.
    """
    networks = tuple(trusted)
    peer = _address(request.remote_addr or "")
    if peer is None:
        return request.remote_addr or "unknown"
    client = peer
    for hop in reversed(forwarded_hops(request)):
        if not any(client in network for network in networks):
            break
        found = _address(hop)
        if found is None:
            break
        client = found
    return str(client)


# --- the URL map ---------------------------------------------------------------------------


def colliding_words(rules: Iterable[str]) -> frozenset[str]:
    """The words a route spells out where another route of the same prefix has a variable
    (``count`` of ``/api/customers/count`` against ``/api/customers/<customer_id>``)."""
    paths = [rule.strip("/").split("/") for rule in rules]
    words: set[str] = set()
    for spelled in paths:
        for other in paths:
            for mine, theirs in zip(spelled, other, strict=False):
                if not _variable(mine) and _variable(theirs):
                    words.add(mine)
                if not (_variable(mine) or _variable(theirs)) and mine != theirs:
                    break
    return frozenset(words)


def _variable(segment: str) -> bool:
    return segment.startswith("<") and segment.endswith(">")


def url_map(rules: Iterable[Rule]) -> Map:
    """A map of ``rules`` whose path variables refuse the words sibling routes spell out (and
    NUL characters), so a route never answers for its sibling."""
    found = list(rules)
    reserved = colliding_words(rule.rule for rule in found)

    class PathValue(BaseConverter):
        regex = (
            f"(?!(?:{'|'.join(re.escape(word) for word in sorted(reserved))})$)[^/\\x00]+"
            if reserved
            else "[^/\\x00]+"
        )

    mapped = Map(converters={"default": PathValue, "string": PathValue})
    for rule in found:
        mapped.add(rule)
    return mapped


# --- the request body and the web server's own errors --------------------------------------


def accept_chunked_body(environ: dict[str, Any]) -> None:
    """Let a chunked body (no Content-Length) be read: eventlet ends the stream at the last
    chunk, and werkzeug still stops at the request's ``max_content_length``."""
    if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        environ["wsgi.input_terminated"] = True


def raw_problem(status: int, reason: str, detail: str) -> bytes:
    """A whole HTTP/1.0 problem+json answer, for refusals made before there is a request."""
    code = reason.lower().replace(" ", "_").replace("-", "_")
    body = json.dumps(
        {
            "type": TYPE_PREFIX + code,
            "title": reason,
            "status": status,
            "detail": detail,
            "code": code,
            "request_id": None,
        }
    ).encode()
    head = (
        f"HTTP/1.0 {status} {reason}\r\nConnection: close\r\nContent-Type: {PROBLEM_JSON}\r\n"
        f"Content-Length: {len(body)}\r\nX-Content-Type-Options: nosniff\r\n\r\n"
    )
    return head.encode("latin-1") + body


_CANNED = re.compile(rb"^HTTP/1\.[01] (4\d\d) ([^\r\n]*)\r\n")
_DETAILS = {
    414: "the request line (method and address) is too long",
    400: "the request is malformed",
}


class _ProblemWriter:
    """The connection's output, turning eventlet's canned plain-text refusals into problems."""

    def __init__(self, wfile: Any) -> None:
        self._wfile = wfile

    def write(self, data: bytes) -> Any:
        canned = _CANNED.match(data) if isinstance(data, bytes | bytearray) else None
        if canned and b"\r\nConnection: close\r\n" in data:
            status = int(canned.group(1))
            reason = canned.group(2).decode("latin-1").strip() or "Bad Request"
            data = raw_problem(status, reason, _DETAILS.get(status, reason.lower()))
        return self._wfile.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wfile, name)


class ProblemProtocol(HttpOnlyProtocol):
    """Eventlet's HTTP protocol, answering its own refusals as problem+json."""

    wfile: Any

    def setup(self) -> None:
        super().setup()
        self.wfile = _ProblemWriter(self.wfile)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        reason = self.responses.get(code, ("Error",))[0]
        self.log_error("code %d, message %s", code, message)
        self.close_connection = True
        self.wfile.write(raw_problem(code, reason, message or reason))
