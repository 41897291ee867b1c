"""Sign-in abuse against the real stack, with the gateway behind a trusted proxy (the tests'
own address): one client's refused sign-ins never hold back another client, and wrong
passwords on a user's name from elsewhere make the owner wait seconds, never lock them out."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from devstack.stack import DEMO_PASSWORD, Suite
from tests.support.polling import eventually

PROBLEM = "application/problem+json"
ADDRESS_LIMIT = 20


class BehindProxySuite(Suite):
    """The suite with the loopback address as its trusted proxy."""

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "TRUSTED_PROXIES": "127.0.0.1/32, ::1",
            "SIGN_IN_FAILURE_LIMIT": ADDRESS_LIMIT,
        }


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    with BehindProxySuite(tmp_path_factory.mktemp("abuse")) as running:
        yield running


def sign_in(suite: Suite, username: str, password: str, client: str) -> requests.Response:
    return requests.post(
        suite.url("/api/auth/token"),
        json={"username": username, "password": password},
        headers={"X-Forwarded-For": f"{client}, 127.0.0.1"},
        timeout=30,
    )


def throttled(response: requests.Response) -> int:
    assert response.status_code == 429, response.text
    assert response.headers["Content-Type"].startswith(PROBLEM)
    return int(response.headers["Retry-After"])


def test_one_client_behind_the_proxy_does_not_hold_back_the_others(suite):
    for attempt in range(ADDRESS_LIMIT):
        refused = sign_in(suite, f"nobody{attempt}", "wrong", client="198.51.100.1")
        assert refused.status_code == 401, refused.text
    throttled(sign_in(suite, "nobody-else", "wrong", client="198.51.100.1"))

    other = sign_in(suite, "sales03", DEMO_PASSWORD, client="198.51.100.2")
    assert other.status_code == 200, other.text


def test_a_forwarded_header_names_the_client_as_rfc_7239_writes_it(suite):
    response = requests.post(
        suite.url("/api/auth/token"),
        json={"username": "sales03", "password": DEMO_PASSWORD},
        headers={"Forwarded": 'for="[2001:db8::7]:4711";proto=https'},
        timeout=30,
    )
    assert response.status_code == 200, response.text


def test_wrong_passwords_from_elsewhere_hold_the_owner_back_briefly_not_for_minutes(suite):
    for attacker in range(5):
        refused = sign_in(suite, "sales02", "not-the-password", client=f"203.0.113.{attacker}")
        assert refused.status_code == 401, refused.text

    wait = throttled(sign_in(suite, "sales02", DEMO_PASSWORD, client="192.0.2.50"))
    assert wait <= 2, "the first wait of a username is a second or two, not a quarter hour"

    def owner_signs_in() -> bool:
        response = sign_in(suite, "sales02", DEMO_PASSWORD, client="192.0.2.50")
        assert response.status_code in (200, 429), response.text
        return response.status_code == 200

    eventually(owner_signs_in, timeout=wait + 5, interval=0.5, what="the owner signing in")


def test_one_client_guessing_one_password_waits_longer_each_time(suite):
    client = "198.51.100.77"
    for _ in range(4):
        assert sign_in(suite, "branch.east", "guess", client=client).status_code == 401
    first = throttled(sign_in(suite, "branch.east", DEMO_PASSWORD, client=client))
    assert first == 2, "the pair waits from its fourth refusal"

    def guessed_again() -> bool:
        response = sign_in(suite, "branch.east", "guess", client=client)
        assert response.status_code in (401, 429), response.text
        return response.status_code == 401

    eventually(guessed_again, timeout=first + 5, interval=0.5, what="the next guess")
    assert throttled(sign_in(suite, "branch.east", DEMO_PASSWORD, client=client)) == 4

    other_user = sign_in(suite, "sales01", DEMO_PASSWORD, client=client)
    assert other_user.status_code == 200, "the client's other usernames are not held back"
