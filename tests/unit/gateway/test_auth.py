"""Access tokens as callers: claims to principal, revocation, minting from a session."""

import time
from types import SimpleNamespace

import jwt
import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from crm_common.scope import Grant, RegionRule
from gateway.auth import TokenAuthority, caller_from_claims
from gateway.problems import HttpProblem
from gateway.revocation import DISABLED, ENDED, OUTDATED
from gateway.tokens import InvalidToken, mint, verify

SECRET = "unit-test-secret-0123456789abcdef0123"
CLAIMS = {
    "sub": "u-marketing-01",
    "username": "marketing01",
    "department_id": "d-marketing",
    "roles": ["marketing"],
    "permissions": ["customer:read", "customer:export"],
    "grants": [{"regions": [{"path": "华东", "subtree": True}]}],
    "ver": 3,
    "sid": "s-1",
}
SESSION = {
    "principal": {
        "user_id": "u-branch-east",
        "username": "branch.east",
        "department_id": "d-east",
        "roles": ["branch_manager"],
        "permissions": ["customer:read", "customer:import"],
        "grants": [{"departments": ["d-east", "d-east-js", "d-east-sh"]}],
        "authz_version": 2,
    },
    "session_id": "s-branch",
    "refresh_token": "rt-1",
    "refresh_expires_at": "2026-03-01T08:00:00+00:00",
}


def test_claims_become_the_full_principal_with_parsed_grants():
    caller = caller_from_claims(CLAIMS)

    principal = caller.principal
    assert principal.user_id == "u-marketing-01"
    assert principal.department_id == "d-marketing"
    assert principal.roles == ("marketing",)
    assert principal.permissions == ("customer:read", "customer:export")
    assert principal.grants == (Grant(regions=(RegionRule("华东", True),)),)
    assert (caller.username, caller.version, caller.session_id) == ("marketing01", 3, "s-1")


def test_no_department_and_no_grants_are_allowed_and_see_nothing():
    caller = caller_from_claims({**CLAIMS, "department_id": None, "grants": []})

    assert caller.principal.department_id is None
    assert caller.principal.grants == ()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"grants": [{"owner": "someone"}]}, "malformed grant"),
        ({"grants": [{"colour": ["red"]}]}, "malformed grant"),
        ({"grants": [{"departments": "d-east"}]}, "malformed grant"),
        ({"grants": {"owner": "self"}}, "grants claim is malformed"),
        ({"grants": ["owner=self"]}, "malformed grant"),
        ({"permissions": "customer:read"}, "permissions claim is malformed"),
        ({"roles": [1, 2]}, "roles claim is malformed"),
        ({"department_id": 7}, "department_id"),
        ({"username": ["x"]}, "username"),
        ({"ver": "3"}, "ver claim"),
        ({"ver": True}, "ver claim"),
        ({"ver": -1}, "ver claim"),
        ({"sid": ""}, "sid claim"),
        ({"sid": 5}, "sid claim"),
    ],
)
def test_malformed_claims_are_refused(change, reason):
    with pytest.raises(InvalidToken) as caught:
        caller_from_claims({**CLAIMS, **change})
    assert reason in caught.value.reason


@pytest.mark.parametrize("missing", ["roles", "permissions", "grants", "ver", "sid"])
def test_a_token_without_a_principal_claim_is_refused(missing):
    claims = {key: value for key, value in CLAIMS.items() if key != missing}

    with pytest.raises(InvalidToken) as caught:
        caller_from_claims(claims)
    assert repr(missing) in caught.value.reason


@pytest.fixture
def authority():
    found = TokenAuthority()
    config = {"TOKEN_SECRET": SECRET, "TOKEN_ISSUER": "crm", "TOKEN_AUDIENCE": "crm-api"}
    found.container = SimpleNamespace(config=config)
    found.setup()
    return found


def bearer(token):
    return Request(EnvironBuilder(headers={"Authorization": f"Bearer {token}"}).get_environ())


def refusal_of(authority, token):
    with pytest.raises(HttpProblem) as caught:
        authority.authenticate(bearer(token))
    assert caught.value.status == 401
    assert caught.value.headers["WWW-Authenticate"].startswith('Bearer realm="crm", error=')
    return caught.value.detail


def test_a_token_issued_for_a_session_authenticates_as_its_principal(authority):
    issued = authority.issue(SESSION)

    assert issued == {
        "access_token": issued["access_token"],
        "token_type": "Bearer",
        "expires_in": 900,
        "refresh_token": "rt-1",
        "refresh_expires_at": "2026-03-01T08:00:00+00:00",
    }
    claims = verify(authority.token_settings, issued["access_token"])
    assert claims["exp"] - claims["iat"] == 900
    assert (claims["ver"], claims["sid"], claims["username"]) == (2, "s-branch", "branch.east")
    caller = authority.authenticate(bearer(issued["access_token"]))
    assert caller.principal.user_id == "u-branch-east"
    assert caller.principal.grants == (
        Grant(departments=frozenset({"d-east", "d-east-js", "d-east-sh"})),
    )
    assert caller.principal.permissions == ("customer:read", "customer:import")


def test_a_session_with_a_malformed_grant_is_not_turned_into_a_token(authority):
    broken = {**SESSION, "principal": {**SESSION["principal"], "grants": [{"owner": "x"}]}}

    with pytest.raises(InvalidToken):
        authority.issue(broken)


def own_claims(**changes):
    return {key: value for key, value in {**CLAIMS, **changes}.items() if key != "sub"}


def test_an_outdated_version_is_refused_with_advice_to_refresh(authority):
    authority.revocations.raise_version("u-marketing-01", 4)

    old = mint(authority.token_settings, "u-marketing-01", claims=own_claims(ver=3))
    new = mint(authority.token_settings, "u-marketing-01", claims=own_claims(ver=4))
    other = mint(authority.token_settings, "u-other", claims=own_claims(ver=3))

    assert refusal_of(authority, old) == OUTDATED
    assert "refresh" in OUTDATED
    assert authority.authenticate(bearer(new)).version == 4
    assert authority.authenticate(bearer(other)).principal.user_id == "u-other"


def test_an_ended_session_and_a_disabled_user_are_refused(authority):
    first = mint(authority.token_settings, "u-marketing-01", claims=own_claims(sid="s-1"))
    second = mint(authority.token_settings, "u-marketing-01", claims=own_claims(sid="s-2"))

    authority.revocations.end_session("s-1")
    assert refusal_of(authority, first) == ENDED
    assert authority.authenticate(bearer(second)).session_id == "s-2"
    authority.revocations.set_disabled("u-marketing-01", True)
    assert refusal_of(authority, second) == DISABLED


def test_the_presented_session_ends_at_sign_out_but_only_for_a_valid_token(authority):
    valid = mint(authority.token_settings, "u-marketing-01", claims=own_claims(sid="s-9"))
    forged = jwt.encode(
        {
            **CLAIMS,
            "sid": "s-victim",
            "iss": "crm",
            "aud": "crm-api",
            "iat": int(time.time()),
            "exp": int(time.time()) + 60,
        },
        "another-secret-0123456789abcdef0123",
        algorithm="HS256",
    )

    authority.end_presented_session(bearer(forged))
    authority.end_presented_session(Request(EnvironBuilder().get_environ()))
    assert len(authority.revocations) == 0
    authority.end_presented_session(bearer(valid))
    assert refusal_of(authority, valid) == ENDED


def test_revocation_entries_last_a_token_lifetime_plus_leeway(authority):
    assert authority.revocations.retention == 900 + 30
