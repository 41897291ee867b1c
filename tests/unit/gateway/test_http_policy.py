import pytest
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.routing import Rule
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from gateway.http_policy import (
    HttpPolicy,
    client_address,
    colliding_words,
    raw_problem,
    trusted_networks,
    url_map,
)


def request(remote="10.0.0.1", **kwargs):
    return Request(EnvironBuilder(environ_base={"REMOTE_ADDR": remote}, **kwargs).get_environ())


PROXIES = trusted_networks("10.0.0.0/8, 192.168.1.1")


def test_forwarded_addresses_are_believed_only_from_trusted_proxies():
    spoofed = {"X-Forwarded-For": "1.2.3.4"}
    assert client_address(request("203.0.113.9", headers=spoofed), PROXIES) == "203.0.113.9"
    assert client_address(request("10.0.0.1", headers=spoofed), PROXIES) == "1.2.3.4"
    assert client_address(request("10.0.0.1", headers=spoofed), ()) == "10.0.0.1"


def test_the_client_is_the_nearest_address_that_is_not_a_trusted_proxy():
    chain = {"X-Forwarded-For": "6.6.6.6, 198.51.100.7, 10.1.2.3"}
    assert client_address(request("192.168.1.1", headers=chain), PROXIES) == "198.51.100.7"


def test_the_forwarded_header_with_ports_and_ipv6():
    headers = {"Forwarded": 'for=6.6.6.6, for="[2001:db8::1]:4711";proto=https, for=10.0.0.5'}
    assert client_address(request("10.0.0.1", headers=headers), PROXIES) == "2001:db8::1"
    assert client_address(request("10.0.0.1", headers={"Forwarded": "for=unknown"}), PROXIES) == (
        "10.0.0.1"
    )


def test_a_bad_trusted_proxy_setting_is_refused():
    with pytest.raises(ValueError):
        trusted_networks("10.0.0.0/8, proxy.example")


RULES = [
    ("/api/customers", "GET"),
    ("/api/customers/count", "GET"),
    ("/api/customers/merge", "POST"),
    ("/api/customers/<customer_id>", "GET"),
    ("/api/customers/<customer_id>", "PATCH"),
    ("/api/customers/<customer_id>/contacts", "GET"),
]


def adapter(method="GET"):
    mapped = url_map(Rule(url, methods=[method_], endpoint=url) for url, method_ in RULES)
    return mapped.bind("localhost", "/", url_scheme="http")


def test_words_spelled_where_a_sibling_has_a_variable_collide():
    assert colliding_words(url for url, _ in RULES) == {"count", "merge"}


def test_a_variable_never_takes_a_word_its_siblings_spell_out():
    assert adapter().match("/api/customers/count") == ("/api/customers/count", {})
    with pytest.raises(MethodNotAllowed) as caught:
        adapter().match("/api/customers/count", method="PATCH")
    assert set(caught.value.valid_methods) == {"GET", "HEAD"}
    assert adapter().allowed_methods("/api/customers/merge") == ["POST"]
    assert adapter().match("/api/customers/c-1", method="PATCH")[1] == {"customer_id": "c-1"}
    assert adapter().match("/api/customers/counting")[1] == {"customer_id": "counting"}


def test_cors_answers_allowed_origins_only():
    policy = HttpPolicy.from_config({"CORS_ORIGINS": "https://crm.example.com/, https://x.test"})
    preflight = request(
        method="OPTIONS",
        headers={"Origin": "https://crm.example.com", "Access-Control-Request-Method": "PATCH"},
    )
    answer = policy.options_response(preflight, ["GET", "PATCH"])
    policy.finish(preflight, answer)
    assert answer.status_code == 204
    assert answer.headers["Access-Control-Allow-Origin"] == "https://crm.example.com"
    assert answer.headers["Access-Control-Allow-Methods"] == "GET, OPTIONS, PATCH"
    allowed = {h.strip() for h in answer.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"Authorization", "Content-Type", "If-Match", "Idempotency-Key"} <= allowed

    stranger = request(method="GET", headers={"Origin": "https://evil.test"})
    response = Response("{}")
    policy.finish(stranger, response)
    assert "Access-Control-Allow-Origin" not in response.headers
    assert response.headers["Vary"] == "Origin"


def test_every_answer_is_not_stored_and_not_sniffed():
    response = Response("{}")
    HttpPolicy().finish(request(), response)
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    chosen = Response("{}", headers={"Cache-Control": "max-age=60"})
    HttpPolicy().finish(request(), chosen)
    assert chosen.headers["Cache-Control"] == "max-age=60"


def test_a_raw_refusal_is_a_problem():
    raw = raw_problem(414, "Request URI Too Long", "too long")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 414 ")
    assert b"Content-Type: application/problem+json" in head
    assert b'"status": 414' in body
