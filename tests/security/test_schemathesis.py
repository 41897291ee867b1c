"""Schemathesis over every operation of the running stack's OpenAPI document.

Each operation is a test of its own, run as the administrator (every phase, the coverage
phase's invalid and boundary values included) and as a salesperson whose grants reach only
their own customers (examples and fuzzing), both signed in through the API. The checks: no server
error (a 503 or 504 counts only while the stack is genuinely not ready), every status code
documented for its operation, every response body conforming to its documented schema.

A failure names the operation in the test id and prints, per failing check, a curl command
that reproduces it (the bearer token is filtered out of it: sign in and put yours back).

The generated cases never touch the identities the run signs in as: no write names the
signed-in users, their people, departments or roles, no password change gives the current
password, and no sign-in attempt names one of them (so the run neither disables, renames,
demotes nor locks out the users it is signed in as). ``SCHEMATHESIS_MAX_EXAMPLES`` raises the
number of examples per operation above CI's bounded default.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import requests
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import ServerError
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from devstack.stack import DEMO_PASSWORD, Suite

pytestmark = pytest.mark.timeout(900)
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "3"))
SEED = int(os.environ.get("SCHEMATHESIS_SEED", "20260"))
CALLERS = ("admin", "sales01")
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
READ_METHODS = {"GET", "HEAD", "OPTIONS"}
UNAVAILABLE = {503, 504}


class Caller:
    """A demo user signed in through the API. ``protected`` holds the ids that no generated
    write may name: the user, their person, department and roles."""

    def __init__(self, suite: Suite, username: str) -> None:
        self.suite = suite
        self.username = username
        self._take(suite.sign_in(username))
        me = self.http.get(suite.url("/api/me"), timeout=30)
        me.raise_for_status()
        body = me.json()
        self.protected = {
            body["user"]["id"],
            *(item["id"] for item in (body.get("person"), body.get("department")) if item),
            *(role["id"] for role in body["roles"]),
        }

    def _take(self, tokens: dict[str, Any]) -> None:
        self.refresh_token = tokens["refresh_token"]
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {tokens['access_token']}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": self.http.headers["Authorization"]}

    def renew(self) -> None:
        """A new access token: administration changes grants, which retires older tokens."""
        response = requests.post(
            self.suite.url("/api/auth/refresh"),
            json={"refresh_token": self.refresh_token},
            timeout=30,
        )
        self._take(response.json() if response.ok else self.suite.sign_in(self.username))


@pytest.fixture(scope="module")
def fuzzed_suite(tmp_path_factory):
    """A stack of its own: the run creates, changes and disables records others rely on."""
    with Suite(tmp_path_factory.mktemp("schemathesis"), demo=True) as running:
        yield running


@pytest.fixture(scope="module")
def callers(fuzzed_suite):
    return {username: Caller(fuzzed_suite, username) for username in CALLERS}


@pytest.fixture(scope="module")
def administrator(callers):
    return callers["admin"]


@pytest.fixture(scope="module")
def salesperson(callers):
    """sales01: customer read, write and export over their own customers only."""
    return callers["sales01"]


@pytest.fixture(scope="module")
def api_schema(fuzzed_suite, callers):
    """Every phase: the documented examples, the coverage phase's boundary and invalid values
    of every parameter and body field, and fuzzing."""
    return fuzzed_schema(fuzzed_suite, callers, coverage=True)


@pytest.fixture(scope="module")
def scoped_api_schema(fuzzed_suite, callers):
    """Examples and fuzzing: what a scoped caller may reach is the point here; the invalid
    values the coverage phase sends are refused alike whoever sends them."""
    return fuzzed_schema(fuzzed_suite, callers, coverage=False)


def fuzzed_schema(suite: Suite, callers: dict[str, Caller], *, coverage: bool) -> Any:
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
            "phases": {"stateful": {"enabled": False}, "coverage": {"enabled": coverage}},
        }
    )
    schema = schemathesis.openapi.from_url(suite.url("/api/openapi.json"), config=config)
    schema.base_url = suite.base_url
    protected = set().union(*(caller.protected for caller in callers.values()))

    @schema.hook
    def filter_case(context: schemathesis.HookContext, case: schemathesis.Case) -> bool:
        return not touches_signed_in_identity(case, protected)

    @schema.hook
    def filter_failure(context, failure, case, response) -> bool:
        if isinstance(failure, ServerError) and failure.status_code in UNAVAILABLE:
            return stack_is_ready(suite)
        return True

    return schema


def touches_signed_in_identity(case: schemathesis.Case, protected: set[str]) -> bool:
    method = case.method.upper()
    path = case.operation.path
    body = case.body if isinstance(case.body, dict) else {}
    if path == "/api/auth/token":
        return body.get("username") in CALLERS
    if path == "/api/me/password":
        return body.get("current_password") == DEMO_PASSWORD
    if method in READ_METHODS:
        return False
    return any(value in protected for value in (case.path_parameters or {}).values())


def stack_is_ready(suite: Suite) -> bool:
    try:
        return requests.get(suite.url(suite.ready_path), timeout=5).status_code == 200
    except requests.RequestException:
        return False


schema = schemathesis.pytest.from_fixture("api_schema")
scoped_schema = schemathesis.pytest.from_fixture("scoped_api_schema")


@schema.parametrize()
def test_every_operation_as_the_administrator(case, administrator):
    call_and_check(case, administrator)


@scoped_schema.parametrize()
def test_every_operation_as_a_scoped_salesperson(case, salesperson):
    call_and_check(case, salesperson)


def call_and_check(case: schemathesis.Case, caller: Caller) -> None:
    response = case.call(session=caller.http, timeout=30)
    if response.status_code == 401 and "Authorization" not in (case.headers or {}):
        caller.renew()
        response = case.call(session=caller.http, timeout=30)
    case.validate_response(response, checks=CHECKS, headers=caller.headers)
