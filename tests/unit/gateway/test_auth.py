"""Access tokens as callers: claims to principal, revocation, token responses from org."""

import time
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from crm_common.identity import mint, verify
from crm_common.scope import Grant, RegionRule
from gateway.auth import TokenAuthority
from gateway.problems import HttpProblem
from gateway.revocation import DISABLED, ENDED, OUTDATED
from gateway.tokens import InvalidToken, caller_from_claims
from org.application.sessions import access_token
from tests.support.tokens import KEYS, TRUST, TestKeys

CLAIMS = {
    "sub": "u-marketing-01",
    "username": "marketing01",
    "department_id": "d-marketing",
    "roles": ["marketing"],
    "permissions": ["customer:read", "customer:export"],
    "grants": [{"regions": [{"path": "华东", "subtree": True}]}],
    "ver": 3,
    "sid": "s-1",
    "iat": 1767225600,
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


def org_session(principal=None, now=None):
    """Org's answer to a sign-in, signed with the test key of org."""
    principal = principal or SESSION["principal"]
    signed = access_token(TRUST, principal, SESSION["session_id"], now or datetime.now(UTC))
    return {**SESSION, "principal": principal, **signed}


@pytest.fixture
def authority():
    found = TokenAuthority()
    found.container = SimpleNamespace(config=KEYS.config(), service_name="gateway")
    found.setup()
    found.started_at = int(time.time())
    found.synced = True
    return found


def bearer(token):
    return Request(EnvironBuilder(headers={"Authorization": f"Bearer {token}"}).get_environ())


def refusal_of(authority, token):
    with pytest.raises(HttpProblem) as caught:
        authority.authenticate(bearer(token))
    assert caught.value.status == 401
    assert caught.value.headers["WWW-Authenticate"].startswith('Bearer realm="crm", error=')
    return caught.value.detail


def test_orgs_answer_becomes_the_token_response_and_authenticates_as_its_principal(authority):
    issued = authority.issue(org_session())

    assert issued == {
        "access_token": issued["access_token"],
        "token_type": "Bearer",
        "expires_in": 900,
        "refresh_token": "rt-1",
        "refresh_expires_at": "2026-03-01T08:00:00+00:00",
    }
    claims = verify(authority.trust, issued["access_token"])
    assert claims["exp"] - claims["iat"] == 900
    assert (claims["ver"], claims["sid"], claims["username"]) == (2, "s-branch", "branch.east")
    caller = authority.authenticate(bearer(issued["access_token"]))
    assert caller.principal.user_id == "u-branch-east"
    assert caller.principal.grants == (
        Grant(departments=frozenset({"d-east", "d-east-js", "d-east-sh"})),
    )
    assert caller.principal.permissions == ("customer:read", "customer:import")
    assert caller.token == issued["access_token"]


def test_an_answer_whose_token_does_not_verify_is_not_passed_on(authority):
    stranger = TestKeys(("org",), "stranger").trust()
    forged = {**org_session(), "access_token": mint(stranger, "org", "u-branch-east")}

    with pytest.raises(InvalidToken):
        authority.issue(forged)


def test_a_token_older_than_the_gateway_waits_for_the_revocation_state(authority):
    older = user_token(iat_offset=-120)
    newer = user_token()
    authority.synced = False

    with pytest.raises(HttpProblem) as caught:
        authority.authenticate(bearer(older))
    assert (caught.value.status, caught.value.headers["Retry-After"]) == (503, "2")
    assert authority.authenticate(bearer(newer)).principal.user_id == "u-marketing-01"
    authority.synced = True
    assert authority.authenticate(bearer(older)).principal.user_id == "u-marketing-01"


def own_claims(**changes):
    reserved = ("sub", "iat")
    return {key: value for key, value in {**CLAIMS, **changes}.items() if key not in reserved}


def user_token(user="u-marketing-01", iat_offset=0, **changes):
    return mint(TRUST, "org", user, claims=own_claims(**changes), now=time.time() + iat_offset)


def test_an_outdated_version_is_refused_with_advice_to_refresh(authority):
    authority.revocations.raise_version("u-marketing-01", 4)

    old = user_token("u-marketing-01", **dict(ver=3))
    new = user_token("u-marketing-01", **dict(ver=4))
    other = user_token("u-other", **dict(ver=3))

    assert refusal_of(authority, old) == OUTDATED
    assert "refresh" in OUTDATED
    assert authority.authenticate(bearer(new)).version == 4
    assert authority.authenticate(bearer(other)).principal.user_id == "u-other"


def test_an_ended_session_and_a_disabled_user_are_refused(authority):
    first = user_token("u-marketing-01", **dict(sid="s-1"))
    second = user_token("u-marketing-01", **dict(sid="s-2"))

    authority.revocations.end_session("s-1")
    assert refusal_of(authority, first) == ENDED
    assert authority.authenticate(bearer(second)).session_id == "s-2"
    authority.revocations.set_disabled("u-marketing-01", True)
    assert refusal_of(authority, second) == DISABLED


def test_the_presented_session_ends_at_sign_out_but_only_for_a_valid_token(authority):
    valid = user_token("u-marketing-01", **dict(sid="s-9"))
    forged = mint(
        TestKeys(("org",), "stranger").trust(), "org", "u-x", claims=own_claims(sid="s-victim")
    )

    authority.end_presented_session(bearer(forged))
    authority.end_presented_session(Request(EnvironBuilder().get_environ()))
    assert len(authority.revocations) == 0
    authority.end_presented_session(bearer(valid))
    assert refusal_of(authority, valid) == ENDED


def test_revocation_entries_last_a_token_lifetime_plus_leeway(authority):
    assert authority.revocations.retention == 900 + 30
