"""Trust between clients, the gateway and the services, tried against the running suite.

Each case of the audit: tokens signed with a guessed or once-public secret, a long-lived token
for a user who does not exist, direct AMQP calls with a principal made up by the caller, the
anonymous sign-in, a signed-out token after a gateway restart, and a key rotation.
"""

from __future__ import annotations

import json
import time

import jwt
import pytest
import requests
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ClusterRpcProxy

from crm_common.identity import ACCESS_TOKEN_KEY, mint, parse_key_set, private_jwk, public_jwk
from devstack.stack import DEMO_PASSWORD, Suite
from tests.support.polling import eventually
from tests.support.tokens import TestKeys

ONE_YEAR = 365 * 24 * 3600
OLD_PUBLIC_SECRETS = (
    "dev-only-token-secret-change-me-in-production",
    "compose-local-token-secret-change-me-please",
)
ADMIN_CLAIMS = {
    "username": "ghost",
    "department_id": None,
    "roles": ["admin"],
    "permissions": ["org:admin", "customer:read", "customer:export"],
    "grants": [{}],
    "ver": 1,
    "sid": "s-ghost",
}
SELF_MADE_PRINCIPAL = {
    "user_id": "u-ghost",
    "roles": ["admin"],
    "permissions": ["org:admin", "customer:read", "customer:export"],
    "grants": [{}],
}


def ghost_claims(lifetime: int = ONE_YEAR) -> dict:
    now = int(time.time())
    return {
        **ADMIN_CLAIMS,
        "sub": "u-ghost",
        "iss": "crm",
        "aud": "crm-api",
        "iat": now,
        "exp": now + lifetime,
    }


def export_with(suite: Suite, token: str) -> requests.Response:
    return requests.get(
        suite.url("/api/customers/export"),
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def rpc(suite: Suite, context_data: dict | None = None) -> ClusterRpcProxy:
    """A client straight on the suite's broker, as anyone with broker credentials."""
    config = {"AMQP_URI": suite.config()["AMQP_URI"]}
    return ClusterRpcProxy(config, context_data=context_data, timeout=30)


def error_of(call) -> str:
    """The name of the typed error a remote call answers with."""
    with pytest.raises(Exception) as caught:
        call()
    error = caught.value
    return error.exc_type if isinstance(error, RemoteError) else type(error).__name__


# --- forged tokens at the gateway ---------------------------------------------------------


@pytest.mark.parametrize("secret", OLD_PUBLIC_SECRETS)
def test_a_one_year_admin_token_signed_with_a_once_public_secret_is_401(security_suite, secret):
    token = jwt.encode(ghost_claims(), secret, algorithm="HS256")

    response = export_with(security_suite, token)

    assert response.status_code == 401, response.text[:300]
    assert "algorithm" in response.json()["detail"]


def test_a_one_year_token_for_a_nonexistent_user_signed_with_a_guessed_key_is_401(
    security_suite,
):
    guessed = TestKeys(("org",), "e2e").trust()  # the right kid, another key
    token = mint(guessed, "org", "u-ghost", claims=ADMIN_CLAIMS, ttl=ONE_YEAR)

    response = export_with(security_suite, token)

    assert response.status_code == 401, response.text[:300]
    assert "signature" in response.json()["detail"]


def test_hs256_keyed_with_the_published_public_key_is_401(security_suite):
    public = json.loads((security_suite.keys / "public.jwks").read_text())
    org_key = next(key for key in public["keys"] if key["kid"].startswith("org."))
    token = jwt.encode(
        ghost_claims(), org_key["x"], algorithm="HS256", headers={"kid": org_key["kid"]}
    )

    assert export_with(security_suite, token).status_code == 401


def test_a_service_key_cannot_sign_a_user_in(security_suite):
    private = json.loads((security_suite.keys / "private.jwks").read_text())
    customer_key = next(key for key in private["keys"] if key["kid"].startswith("customer."))
    token = jwt.encode(
        ghost_claims(900),
        _private_key(customer_key),
        algorithm="EdDSA",
        headers={"kid": customer_key["kid"]},
    )

    response = export_with(security_suite, token)

    assert response.status_code == 401
    assert "may not sign" in response.json()["detail"]


def _private_key(jwk: dict):
    return parse_key_set(json.dumps({"keys": [jwk]}), private=True)[jwk["kid"]]


# --- direct AMQP calls ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "context_data",
    [
        {"principal": SELF_MADE_PRINCIPAL},
        {},
        {ACCESS_TOKEN_KEY: "not.a.jwt"},
    ],
    ids=["self-made principal", "nothing", "garbage token"],
)
def test_direct_amqp_calls_without_a_verifiable_caller_are_refused(security_suite, context_data):
    with rpc(security_suite, context_data) as cluster:
        export = error_of(lambda: cluster.customer.export_customers({}))
        records = error_of(lambda: cluster.org.list_records("users", {}))
        dead_letters = error_of(lambda: cluster.customer.list_dead_letters({}))

    assert [export, records, dead_letters] == ["Unauthenticated"] * 3


def test_a_self_made_principal_beside_a_real_token_changes_nothing(security_suite):
    token = security_suite.sign_in("sales01")["access_token"]

    with rpc(
        security_suite, {ACCESS_TOKEN_KEY: token, "principal": SELF_MADE_PRINCIPAL}
    ) as cluster:
        error = error_of(lambda: cluster.org.list_records("users", {}))
        exported = cluster.customer.export_customers({})

    assert error == "Forbidden"  # sales01 is no administrator
    everyone = requests.get(
        security_suite.url("/api/customers/count"),
        headers={"Authorization": f"Bearer {security_suite.sign_in('admin')['access_token']}"},
        timeout=30,
    ).json()["count"]
    assert len(exported.strip().splitlines()) - 1 < everyone  # sales01's share only


def test_a_service_token_holds_only_the_permissions_declared_for_it(security_suite):
    private = json.loads((security_suite.keys / "private.jwks").read_text())
    customer_key = next(key for key in private["keys"] if key["kid"].startswith("customer."))
    now = int(time.time())
    claims = {
        "sub": "service:customer",
        "iss": "crm",
        "aud": "crm-api",
        "iat": now,
        "exp": now + 60,
        "permissions": ["org:admin"],
    }
    token = jwt.encode(
        claims, _private_key(customer_key), algorithm="EdDSA", headers={"kid": customer_key["kid"]}
    )

    with rpc(security_suite, {ACCESS_TOKEN_KEY: token}) as cluster:
        error = error_of(lambda: cluster.org.list_records("users", {}))
        sessions = error_of(lambda: cluster.org.revocation_state())

    assert (error, sessions) == ("Forbidden", "Forbidden")


def test_sign_in_is_public_over_amqp_and_answers_a_signed_token(security_suite):
    with rpc(security_suite) as cluster:
        session = cluster.org.sign_in("sales01", DEMO_PASSWORD)
        wrong = error_of(lambda: cluster.org.sign_in("nobody-here", "wrong-password"))
        assert cluster.customer.ping() == "pong"

    assert jwt.get_unverified_header(session["access_token"])["alg"] == "EdDSA"
    assert wrong == "Unauthenticated"
    me = requests.get(
        security_suite.url("/api/me"),
        headers={"Authorization": f"Bearer {session['access_token']}"},
        timeout=30,
    )
    assert me.status_code == 200 and me.json()["user"]["username"] == "sales01"


# --- a suite of their own: restarts and key rotation ----------------------------------------


@pytest.fixture(scope="module")
def own_suite(tmp_path_factory):
    with Suite(tmp_path_factory.mktemp("trust")) as running:
        yield running


def me_status(suite: Suite, token: str) -> int:
    response = requests.get(
        suite.url("/api/me"), headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    return response.status_code


def test_a_signed_out_token_stays_refused_after_the_gateway_restarts(own_suite):
    signed_out = own_suite.sign_in("sales01")
    kept = own_suite.sign_in("sales01")
    logout = requests.post(
        own_suite.url("/api/auth/logout"),
        json={"refresh_token": signed_out["refresh_token"]},
        headers={"Authorization": f"Bearer {signed_out['access_token']}"},
        timeout=30,
    )
    assert logout.status_code == 204
    assert me_status(own_suite, signed_out["access_token"]) == 401

    own_suite.kill("gateway")
    own_suite.restart("gateway")

    eventually(
        lambda: me_status(own_suite, kept["access_token"]) == 200,
        timeout=30,
        what="the gateway to load the revocation state",
    )
    assert me_status(own_suite, signed_out["access_token"]) == 401


def test_a_gateway_that_was_down_catches_up_with_sessions_ended_meanwhile(own_suite):
    first = own_suite.sign_in("manager01")
    second = own_suite.sign_in("manager01")
    own_suite.kill("gateway")
    with rpc(own_suite) as cluster:
        cluster.org.sign_out(first["refresh_token"])

    own_suite.restart("gateway")

    eventually(
        lambda: me_status(own_suite, second["access_token"]) == 200,
        timeout=30,
        what="the gateway to load the revocation state",
    )
    assert me_status(own_suite, first["access_token"]) == 401


def _restart_all(suite: Suite) -> None:
    for name in ("org", "customer", "gateway"):
        suite.kill(name)
        suite.restart(name)


def test_key_rotation_keeps_the_old_kid_valid_during_the_switch_and_refuses_it_after(own_suite):
    public_path, private_path = own_suite.keys / "public.jwks", own_suite.keys / "private.jwks"
    public, private = json.loads(public_path.read_text()), json.loads(private_path.read_text())
    old_kid = next(key["kid"] for key in public["keys"] if key["kid"].startswith("org."))
    before = own_suite.sign_in("sales01")["access_token"]
    new = TestKeys(("org",), "next").private["org.next"]

    # The switch: everyone knows both keys; org signs with the new one, listed first.
    next_public = public_jwk("org.next", new.public_key())
    public_path.write_text(json.dumps({"keys": [*public["keys"], next_public]}))
    private_path.write_text(json.dumps({"keys": [private_jwk("org.next", new), *private["keys"]]}))
    _restart_all(own_suite)
    during = own_suite.sign_in("sales01")["access_token"]

    assert jwt.get_unverified_header(during)["kid"] == "org.next"
    assert jwt.get_unverified_header(before)["kid"] == old_kid
    eventually(lambda: me_status(own_suite, before) == 200, timeout=30, what="the old kid")
    assert me_status(own_suite, during) == 200

    # The switch is over: the old kid leaves every key set.
    for path in (public_path, private_path):
        kept = [key for key in json.loads(path.read_text())["keys"] if key["kid"] != old_kid]
        path.write_text(json.dumps({"keys": kept}))
    _restart_all(own_suite)

    eventually(lambda: me_status(own_suite, during) == 200, timeout=30, what="the new kid")
    assert me_status(own_suite, before) == 401
    with rpc(own_suite, {ACCESS_TOKEN_KEY: before}) as cluster:
        assert error_of(cluster.org.describe_me) == "Unauthenticated"
