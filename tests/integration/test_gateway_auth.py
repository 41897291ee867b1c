"""Sign-in, refresh, sign-out and the freshness of access tokens, against a stand-in org.

Events travel over the real broker: the stand-in publishes them as the org service's outbox
would, or a test publishes them itself on the ``org.events`` exchange.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest
from nameko.standalone.events import event_dispatcher

from crm_common.events import make_envelope
from tests.integration.standins import (
    CUSTOMER_ID,
    DEMO_PASSWORD,
    USER,
    QuietOrg,
    StandInCustomer,
    StandInOrg,
    gateway_config,
    problem_of,
    start_gateway,
)
from tests.support.polling import eventually

TOKEN_FIELDS = {"access_token", "token_type", "expires_in", "refresh_token", "refresh_expires_at"}


def org_config(rabbit_config, **overrides):
    return gateway_config(rabbit_config, BACKEND_SERVICES="customer,org", **overrides)


@pytest.fixture
def api(rabbit_config, runner_factory):
    return start_gateway(runner_factory, org_config(rabbit_config), StandInCustomer, StandInOrg)


@pytest.fixture
def quiet_api(rabbit_config, runner_factory):
    """A gateway whose org publishes no events: only what the gateway does itself counts."""
    return start_gateway(runner_factory, org_config(rabbit_config), StandInCustomer, QuietOrg)


@pytest.fixture
def publish(rabbit_config):
    """Publish an org event as the org service's outbox relay does."""
    dispatch = event_dispatcher(rabbit_config)

    def publish(event_type: str, data: dict[str, Any]) -> None:
        envelope = make_envelope(event_type, data, source="org", actor_id="u-admin")
        dispatch("org", event_type, envelope)

    return publish


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def sign_in(api, username="sales01", password=DEMO_PASSWORD) -> dict[str, Any]:
    response = api.post(
        "/api/auth/token", auth=False, json={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    return response.json()


def customer_with(api, token):
    return api.get(f"/api/customers/{CUSTOMER_ID}", token=token)


def eventually_refused(api, token, timeout=5.0):
    """The 401 problem ``token`` gets once the gateway has heard the event that refuses it."""

    def refused():
        response = customer_with(api, token)
        if response.status_code == 401:
            return problem_of(response, 401)
        assert response.status_code == 200, response.text
        return None

    return eventually(refused, timeout=timeout, what="the token's refusal")


def calls_to(method):
    return [call for call in StandInOrg.calls if call["method"] == method]


# --- sign-in -------------------------------------------------------------------------------


def test_sign_in_answers_an_access_and_a_refresh_token_not_to_be_cached(api):
    response = api.post(
        "/api/auth/token", auth=False, json={"username": "sales01", "password": DEMO_PASSWORD}
    )

    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    body = response.json()
    assert set(body) == TOKEN_FIELDS
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["refresh_token"].startswith("rt-")
    assert body["refresh_expires_at"] == "2026-03-01T08:00:00+00:00"
    claims = claims_of(body["access_token"])
    assert claims["exp"] - claims["iat"] == 900
    assert {key: claims[key] for key in ("sub", "username", "department_id", "ver")} == {
        "sub": USER,
        "username": "sales01",
        "department_id": "d-east-sh",
        "ver": 1,
    }
    assert claims["roles"] == ["sales_rep"]
    assert claims["permissions"] == ["customer:read", "customer:write", "customer:export"]
    assert claims["grants"] == [{"owner": "self"}]
    assert claims["sid"].startswith("s-")
    assert DEMO_PASSWORD not in response.text
    [call] = calls_to("sign_in")
    assert (call["username"], call["password"], call["principal"]) == (
        "sales01",
        DEMO_PASSWORD,
        None,
    )


def test_the_signed_in_principal_reaches_every_service(api):
    tokens = sign_in(api)

    assert customer_with(api, tokens["access_token"]).status_code == 200

    [principal] = StandInCustomer.principals
    assert principal.user_id == USER
    assert principal.permissions == ("customer:read", "customer:write", "customer:export")
    assert [grant.owner_self for grant in principal.grants] == [True]


@pytest.mark.parametrize(
    ("username", "password"), [("sales01", "Not-the-password-1"), ("nobody", DEMO_PASSWORD)]
)
def test_wrong_credentials_are_one_and_the_same_401(api, username, password):
    response = api.post(
        "/api/auth/token", auth=False, json={"username": username, "password": password}
    )

    problem = problem_of(response, 401)
    assert problem["code"] == "unauthenticated"
    assert problem["detail"] == "the username or password is not correct"
    assert password not in response.text


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"username", "password"}),
        ({"username": "sales01"}, {"password"}),
        ({"password": "Sent-alone-4711"}, {"username"}),
        ({"username": "", "password": "Sent-with-blank-4711"}, {"username"}),
        ({"username": "sales01", "password": 4711}, {"password"}),
    ],
)
def test_missing_or_malformed_credentials_are_field_errors_without_the_password(api, body, fields):
    response = api.post("/api/auth/token", auth=False, json=body)

    problem = problem_of(response, 422)
    assert set(problem["errors"]) == fields
    # the answer says nothing of the password (its request id is random hex, left out)
    answered = json.dumps({k: v for k, v in problem.items() if k != "request_id"})
    assert "password" not in body or str(body["password"]) not in answered
    assert calls_to("sign_in") == []


def test_sign_in_without_the_org_service_is_503(rabbit_config, runner_factory):
    api = start_gateway(runner_factory, org_config(rabbit_config), StandInCustomer)

    response = api.post(
        "/api/auth/token", auth=False, json={"username": "sales01", "password": DEMO_PASSWORD}
    )

    assert problem_of(response, 503)["service"] == "org"


# --- refresh and sign-out ------------------------------------------------------------------


def test_refresh_rotates_the_refresh_token_and_keeps_the_session(api):
    first = sign_in(api)

    response = api.post(
        "/api/auth/refresh", auth=False, json={"refresh_token": first["refresh_token"]}
    )

    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    second = response.json()
    assert set(second) == TOKEN_FIELDS
    assert second["refresh_token"] != first["refresh_token"]
    assert claims_of(second["access_token"])["sid"] == claims_of(first["access_token"])["sid"]
    assert customer_with(api, second["access_token"]).status_code == 200
    assert [call["refresh_token"] for call in calls_to("refresh")] == [first["refresh_token"]]


def test_a_reused_refresh_token_ends_the_whole_session(api):
    first = sign_in(api)
    second = api.post(
        "/api/auth/refresh", auth=False, json={"refresh_token": first["refresh_token"]}
    ).json()

    reused = api.post(
        "/api/auth/refresh", auth=False, json={"refresh_token": first["refresh_token"]}
    )
    after = api.post(
        "/api/auth/refresh", auth=False, json={"refresh_token": second["refresh_token"]}
    )

    assert problem_of(reused, 401)["code"] == "unauthenticated"
    assert problem_of(after, 401)["code"] == "unauthenticated"
    assert "sign in again" in eventually_refused(api, second["access_token"])["detail"]


def test_refresh_needs_a_refresh_token(api):
    response = api.post("/api/auth/refresh", auth=False, json={"token": "x"})

    assert problem_of(response, 422)["errors"] == {
        "refresh_token": ["Missing data for required field."]
    }


def test_logout_refuses_the_access_token_at_once_even_without_events(quiet_api):
    tokens = sign_in(quiet_api)
    other = sign_in(quiet_api)
    assert customer_with(quiet_api, tokens["access_token"]).status_code == 200

    response = quiet_api.post(
        "/api/auth/logout",
        token=tokens["access_token"],
        json={"refresh_token": tokens["refresh_token"]},
    )

    assert response.status_code == 204 and response.content == b""
    refused = customer_with(quiet_api, tokens["access_token"])
    assert "sign in again" in problem_of(refused, 401)["detail"]
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    again = quiet_api.post(
        "/api/auth/refresh", auth=False, json={"refresh_token": tokens["refresh_token"]}
    )
    assert problem_of(again, 401)["code"] == "unauthenticated"
    assert customer_with(quiet_api, other["access_token"]).status_code == 200
    assert [call["refresh_token"] for call in calls_to("sign_out")] == [tokens["refresh_token"]]


def test_logout_works_without_a_bearer_token_and_then_the_event_refuses_it(api):
    tokens = sign_in(api)

    response = api.post(
        "/api/auth/logout", auth=False, json={"refresh_token": tokens["refresh_token"]}
    )

    assert response.status_code == 204
    assert "sign in again" in eventually_refused(api, tokens["access_token"])["detail"]


def test_logout_with_an_expired_or_foreign_bearer_still_signs_out(quiet_api):
    tokens = sign_in(quiet_api)

    response = quiet_api.post(
        "/api/auth/logout", token="not.a.jwt", json={"refresh_token": tokens["refresh_token"]}
    )

    assert response.status_code == 204
    assert len(calls_to("sign_out")) == 1


# --- events that outdate tokens ------------------------------------------------------------


def test_a_change_of_grants_refuses_older_tokens_until_they_are_refreshed(api):
    sales = sign_in(api)
    admin = sign_in(api, "admin")
    assert customer_with(api, sales["access_token"]).status_code == 200

    changed = api.patch(
        "/api/org/roles/r-sales-rep",
        token=admin["access_token"],
        json={"permissions": ["customer:read"]},
        headers={"If-Match": '"2"'},
    )

    assert changed.status_code == 200, changed.text
    refused = eventually_refused(api, sales["access_token"])
    assert "refresh" in refused["detail"]
    renewed = api.post(
        "/api/auth/refresh", auth=False, json={"refresh_token": sales["refresh_token"]}
    ).json()
    assert claims_of(renewed["access_token"])["ver"] == 2
    assert customer_with(api, renewed["access_token"]).status_code == 200
    assert customer_with(api, admin["access_token"]).status_code == 200


def test_every_gateway_process_hears_grants_changed(rabbit_config, runner_factory, publish):
    first = start_gateway(runner_factory, org_config(rabbit_config), StandInCustomer, StandInOrg)
    second = start_gateway(runner_factory, org_config(rabbit_config))
    tokens = sign_in(first)
    for api in (first, second):
        assert customer_with(api, tokens["access_token"]).status_code == 200

    publish("grants_changed", {"users": [{"user_id": USER, "authz_version": 2}]})

    for api in (first, second):
        assert "refresh" in eventually_refused(api, tokens["access_token"])["detail"]


def test_session_revoked_refuses_that_session_only(api, publish):
    revoked = sign_in(api)
    kept = sign_in(api)

    publish(
        "session_revoked",
        {"session_id": claims_of(revoked["access_token"])["sid"], "user_id": USER},
    )

    assert "sign in again" in eventually_refused(api, revoked["access_token"])["detail"]
    assert customer_with(api, kept["access_token"]).status_code == 200


def test_a_disabled_user_is_refused(api, publish):
    tokens = sign_in(api)

    publish(
        "user_changed",
        {"user_id": USER, "username": "sales01", "disabled": True, "authz_version": 1},
    )

    assert "disabled" in eventually_refused(api, tokens["access_token"])["detail"]


def test_events_about_other_users_or_newer_tokens_change_nothing(api, publish):
    tokens = sign_in(api)
    marker = sign_in(api)

    publish("grants_changed", {"users": [{"user_id": "u-sales-02", "authz_version": 9}]})
    publish("grants_changed", {"users": [{"user_id": USER, "authz_version": 1}]})
    publish("department_changed", {"department": {"id": "d-east"}})
    publish("session_revoked", {"session_id": "s-someone-else", "user_id": USER})
    # heard after the events above: once it takes effect, they have been heard too
    publish(
        "session_revoked", {"session_id": claims_of(marker["access_token"])["sid"], "user_id": USER}
    )
    eventually_refused(api, marker["access_token"])

    assert customer_with(api, tokens["access_token"]).status_code == 200


# --- the caller ----------------------------------------------------------------------------


def test_me_describes_the_caller_from_the_org_service(api):
    tokens = sign_in(api)

    response = api.get("/api/me", token=tokens["access_token"])

    assert response.status_code == 200, response.text
    me = response.json()
    assert me["user"]["id"] == USER
    assert me["permissions"] == ["customer:read", "customer:write", "customer:export"]
    assert me["scope"] == [{"owner": "self"}]
    assert calls_to("describe_me")[0]["principal"] == USER


def test_me_needs_a_token(api):
    assert problem_of(api.get("/api/me", auth=False), 401)["code"] == "unauthenticated"


def test_a_password_change_passes_both_passwords_and_answers_204(api):
    tokens = sign_in(api)
    change = {"current_password": DEMO_PASSWORD, "new_password": "Brand-new-pass-2026"}

    response = api.post("/api/me/password", token=tokens["access_token"], json=change)

    assert response.status_code == 204 and response.content == b""
    [call] = calls_to("change_password")
    assert (call["current_password"], call["new_password"]) == (
        DEMO_PASSWORD,
        change["new_password"],
    )
    assert call["principal"] == USER
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert call["session_id"] == claims["sid"], "the caller's own session stays signed in"
    assert sign_in(api, password="Brand-new-pass-2026")["token_type"] == "Bearer"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            {"current_password": "Wrong-current-5150", "new_password": "Brand-new-5150"},
            "current_password",
        ),
        ({"current_password": DEMO_PASSWORD, "new_password": "sh-5150"}, "new_password"),
        ({"current_password": DEMO_PASSWORD}, "new_password"),
        ({"new_password": "Brand-new-5150"}, "current_password"),
    ],
)
def test_a_refused_password_change_names_the_field_but_not_the_password(api, change, field):
    tokens = sign_in(api)

    response = api.post("/api/me/password", token=tokens["access_token"], json=change)

    problem = problem_of(response, 422)
    assert list(problem["errors"]) == [field]
    answered = json.dumps({k: v for k, v in problem.items() if k != "request_id"})
    assert "5150" not in answered  # (the request id, random hex, left out)
    assert DEMO_PASSWORD not in response.text


# --- passwords in log lines ----------------------------------------------------------------


def test_no_password_reaches_a_log_line_or_a_response(api, log_records):
    wrong, new, short, reset = "Wrong-pass-7731", "New-Secret-7731", "Shrt-7731", "Reset-to-7731"
    admin = sign_in(api, "admin")["access_token"]
    sales = sign_in(api)["access_token"]
    answers = [
        api.post("/api/auth/token", auth=False, json={"username": "sales01", "password": wrong}),
        api.post("/api/auth/token", auth=False, json={"password": wrong}),
        api.post("/api/auth/token", auth=False, json={"username": "sales01", "password": [wrong]}),
        api.post(
            "/api/me/password", token=sales, json={"current_password": wrong, "new_password": new}
        ),
        api.post("/api/me/password", token=sales, json={"current_password": DEMO_PASSWORD}),
        api.post(
            "/api/me/password",
            token=sales,
            json={"current_password": DEMO_PASSWORD, "new_password": new},
        ),
        api.post("/api/auth/token", auth=False, json={"username": "sales01", "password": new}),
        api.post("/api/org/users/u-sales-02/password", token=admin, json={"new_password": short}),
        api.post("/api/org/users/u-sales-02/password", token=admin, json={"new_password": reset}),
        api.post("/api/org/users", token=admin, json={"username": "x", "password": short}),
        api.post("/api/org/users", token=admin, json={"username": "x", "password": reset}),
    ]

    assert [answer.status_code for answer in answers] == [
        401,
        422,
        422,
        422,
        422,
        204,
        200,
        422,
        204,
        422,
        201,
    ]
    assert {"nameko.web.server", "nameko.containers", "amqp"} <= {r.name for r in log_records}
    secrets = (wrong, new, short, reset, DEMO_PASSWORD)
    for answer in answers:
        for secret in secrets:
            assert secret not in answer.text, answer.request.url
            assert secret not in str(answer.headers)
    for record in log_records:
        line = record.getMessage() + repr(record.__dict__)
        for secret in secrets:
            assert secret not in line, (record.name, record.getMessage())


def test_too_many_refused_sign_ins_from_one_address_answer_429(rabbit_config, runner_factory):
    config = org_config(rabbit_config, SIGN_IN_FAILURE_LIMIT=3, SIGN_IN_FAILURE_WINDOW=60)
    api = start_gateway(runner_factory, config, StandInCustomer, StandInOrg)
    sign_in(api)
    for username in ("sales01", "sales02", "admin"):
        refused = api.post(
            "/api/auth/token", auth=False, json={"username": username, "password": "Spray-2026"}
        )
        assert problem_of(refused, 401)["code"] == "unauthenticated"
    throttled = api.post(
        "/api/auth/token", auth=False, json={"username": "sales01", "password": DEMO_PASSWORD}
    )
    problem = problem_of(throttled, 429)
    assert problem["code"] == "too_many_requests"
    assert 0 < int(throttled.headers["Retry-After"]) <= 60
    assert problem["retry_after"] == int(throttled.headers["Retry-After"])
