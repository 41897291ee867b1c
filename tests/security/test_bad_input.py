"""Bad input against the real stack (every service a process, the customer database on
PostgreSQL): each case the audit answered with a 500, a wrong route or a plain-text error is
answered as a 4xx problem+json, or accepted where the input is fine."""

from __future__ import annotations

import base64
import json
import socket
import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from devstack.stack import Suite
from tests.fixtures import PG_ADMIN_URI

pytestmark = pytest.mark.postgres

PROBLEM = "application/problem+json"
FRONT_END = "https://crm.example.com"


class BadInputSuite(Suite):
    """The suite with a front end's origin allowed."""

    def config(self) -> dict[str, Any]:
        return {**super().config(), "CORS_ORIGINS": FRONT_END}


@pytest.fixture(scope="module")
def postgres_uri():
    name = f"crm_security_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URI, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(PG_ADMIN_URI).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="module")
def suite(tmp_path_factory, postgres_uri):
    with BadInputSuite(tmp_path_factory.mktemp("bad-input"), db_uri=postgres_uri) as running:
        yield running


@pytest.fixture(scope="module")
def api(suite):
    return suite.client("sales01")


@pytest.fixture(scope="module")
def admin(suite):
    return suite.client("admin")


@pytest.fixture(scope="module")
def customer(api, suite):
    response = api.post(suite.url("/api/customers"), json={"name": "安全测试机电有限公司"})
    assert response.status_code == 201, response.text
    return response.json()


def problem(response: requests.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith(PROBLEM), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


# --- blank optional text ---------------------------------------------------------------------


@pytest.mark.parametrize("blank", ["", "   ", "\t\n"])
def test_a_blank_optional_text_field_is_stored_as_null(api, admin, suite, blank):
    created = api.post(
        suite.url("/api/customers"),
        json={"name": f"空备注{uuid.uuid4().hex[:6]}有限公司", "remark": blank, "address": blank},
    )
    assert created.status_code == 201, created.text
    assert created.json()["remark"] is None and created.json()["address"] is None

    role = admin.post(
        suite.url("/api/org/roles"),
        json={"code": f"r{uuid.uuid4().hex[:8]}", "name": "空描述", "description": blank},
    )
    assert role.status_code == 201, role.text
    assert role.json()["description"] is None


def test_a_blank_required_text_field_is_a_422(api, suite):
    body = problem(api.post(suite.url("/api/customers"), json={"name": "  "}), 422)
    assert list(body["errors"]) == ["name"]


# --- JSON that no parser or database should swallow ------------------------------------------


def deep(depth: int) -> str:
    return '{"username": "a", "password": "b", "x": ' + "[" * depth + "]" * depth + "}"


@pytest.mark.parametrize("path", ["/api/auth/token", "/api/customers"])
def test_json_nested_a_thousand_deep_is_a_400(api, suite, path):
    body = problem(
        api.post(suite.url(path), data=deep(1000), headers={"Content-Type": "application/json"}),
        400,
    )
    assert body["code"] == "invalid_json"


def test_a_lone_surrogate_is_a_422_naming_the_field(api, suite):
    raw = '{"username": "\\ud800admin", "password": "x"}'
    sign_in = requests.post(
        suite.url("/api/auth/token"), data=raw, headers={"Content-Type": "application/json"}
    )
    assert list(problem(sign_in, 422)["errors"]) == ["username"]
    create = api.post(
        suite.url("/api/customers"),
        data='{"name": "华东\\udc00机电"}',
        headers={"Content-Type": "application/json"},
    )
    assert list(problem(create, 422)["errors"]) == ["name"]


def test_nul_characters_on_postgresql_are_a_422(api, suite, customer):
    assert list(
        problem(api.get(suite.url("/api/customers"), params={"q": "华\x00东"}), 422)["errors"]
    ) == ["q"]
    created = api.post(suite.url("/api/customers"), json={"name": "华东\x00机电"})
    assert list(problem(created, 422)["errors"]) == ["name"]
    changed = api.patch(
        suite.url(f"/api/customers/{customer['id']}"),
        json={"remark": "a\x00b", "version": customer["version"]},
    )
    assert list(problem(changed, 422)["errors"]) == ["remark"]
    problem(api.get(suite.url("/api/customers/%00")), 404)


def cursor_of(raw: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(raw).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        "%%%",
        cursor_of([1, 2]),
        cursor_of({"t": "v", "v": ["x"], "id": str(uuid.uuid4())}),
        cursor_of({"t": "v", "v": {"a": 1}, "id": str(uuid.uuid4())}),
        cursor_of({"t": "v", "v": "yesterday", "id": str(uuid.uuid4())}),
        cursor_of({"t": "dt", "v": 12, "id": str(uuid.uuid4())}),
        cursor_of({"t": "dt", "v": "2026-01-01T00:00:00+00:00", "id": 7}),
        cursor_of({"t": "dt", "v": "2026-01-01T00:00:00+00:00", "id": "not-a-uuid"}),
        cursor_of({"t": "dt", "v": "2026-01-01T00:00:00+00:00", "id": "a\x00"}),
    ],
)
def test_tampered_or_wrongly_typed_cursors_are_a_422(api, suite, customer, cursor):
    body = problem(api.get(suite.url("/api/customers"), params={"cursor": cursor}), 422)
    assert list(body["errors"]) == ["cursor"]


def test_a_cursor_the_list_gave_out_still_works(api, suite, customer):
    api.post(suite.url("/api/customers"), json={"name": "翻页测试二有限公司"})
    first = api.get(suite.url("/api/customers"), params={"limit": 1})
    assert first.status_code == 200 and first.json()["next_cursor"]
    second = api.get(
        suite.url("/api/customers"), params={"limit": 1, "cursor": first.json()["next_cursor"]}
    )
    assert second.status_code == 200, second.text


# --- field errors have one documented shape ----------------------------------------------------


def test_field_errors_of_list_items_are_flat_lists_of_strings(api, suite):
    body = problem(api.get(suite.url("/api/customers/count"), params={"status": "ok"}), 422)
    assert set(body["errors"]) == {"status.0"}
    for reasons in body["errors"].values():
        assert isinstance(reasons, list) and all(isinstance(reason, str) for reason in reasons)


# --- the web server's own refusals -------------------------------------------------------------


def raw_exchange(suite: Suite, request: bytes) -> tuple[bytes, bytes]:
    address = urlsplit(suite.base_url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    return head, body


def test_a_request_line_too_long_is_a_414_problem(suite):
    response = requests.get(suite.url("/api/customers?q=" + "a" * 20_000))
    assert problem(response, 414)["code"] == "request_uri_too_long"


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /health HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 10_000 + b"\r\n\r\n",
        b"POST /api/auth/token HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        b"GET /health HTTP/1.1 extra words\r\n\r\n",
    ],
    ids=["header-line-too-long", "negative-content-length", "bad-request-line"],
)
def test_malformed_requests_are_a_400_problem(suite, request_bytes):
    head, body = raw_exchange(suite, request_bytes)
    status = int(head.split(b" ")[1])
    assert 400 <= status < 500, head
    assert b"content-type: application/problem+json" in head.lower(), head
    assert json.loads(body)["status"] == status


# --- route collisions --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/customers/count", "/api/customers/summary"])
def test_a_spelled_out_route_is_not_taken_for_a_record(api, suite, path):
    body = problem(api.patch(suite.url(path), json={"name": "x", "version": 1}), 405)
    allowed = api.options(suite.url(path)).headers["Allow"]
    assert "PATCH" not in allowed and "GET" in allowed
    assert body["code"] == "method_not_allowed"


def test_export_allows_what_it_answers(api, suite):
    response = api.options(suite.url("/api/customers/export"))
    assert response.status_code == 204
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
    assert problem(api.delete(suite.url("/api/customers/export")), 405)


# --- what browsers and front ends meet ---------------------------------------------------------


def test_a_preflight_from_the_front_end_is_answered(suite):
    response = requests.options(
        suite.url("/api/customers/00000000-0000-0000-0000-000000000000"),
        headers={
            "Origin": FRONT_END,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization, content-type, if-match",
        },
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == FRONT_END
    assert "PATCH" in response.headers["Access-Control-Allow-Methods"]
    allowed = {
        name.strip().lower() for name in response.headers["Access-Control-Allow-Headers"].split(",")
    }
    assert {
        "authorization",
        "content-type",
        "if-match",
        "idempotency-key",
        "x-request-id",
    } <= allowed


def test_answers_expose_their_headers_to_the_front_end_only(api, suite, customer):
    mine = api.get(suite.url(f"/api/customers/{customer['id']}"), headers={"Origin": FRONT_END})
    assert mine.headers["Access-Control-Allow-Origin"] == FRONT_END
    exposed = {name.strip() for name in mine.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"ETag", "Location", "X-Request-ID", "Retry-After"} <= exposed
    stranger = api.get(suite.url("/api/customers"), headers={"Origin": "https://evil.test"})
    assert "Access-Control-Allow-Origin" not in stranger.headers


@pytest.mark.parametrize("path", ["/api/customers", "/api/me", "/api/nowhere", "/health"])
def test_every_answer_is_not_stored_and_not_sniffed(api, suite, path):
    response = api.get(suite.url(path))
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_json_declared_latin1_is_a_415_and_nothing_is_stored(api, suite):
    name = f"拉丁{uuid.uuid4().hex[:6]}有限公司"
    response = api.post(
        suite.url("/api/customers"),
        data=json.dumps({"name": name}, ensure_ascii=False).encode(),
        headers={"Content-Type": "application/json; charset=iso-8859-1"},
    )
    problem(response, 415)
    found = api.get(suite.url("/api/customers"), params={"q": name[:2]}).json()["items"]
    assert not [item for item in found if item["name"].startswith("æ") or item["name"] == name]


def test_a_chunked_body_is_read(api, suite):
    name = f"分块{uuid.uuid4().hex[:6]}有限公司"
    payload = json.dumps({"name": name}, ensure_ascii=False).encode()
    response = api.post(
        suite.url("/api/customers"),
        data=iter([payload[:5], payload[5:]]),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["name"] == name
