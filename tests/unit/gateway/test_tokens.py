import base64
import json
import time

import jwt
import pytest

from gateway.tokens import InvalidToken, TokenSettings, mint, session_claims, verify

SETTINGS = TokenSettings(
    secret="unit-test-secret-0123456789abcdef0123", issuer="crm", audience="crm-api"
)


def claims_of(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_a_minted_token_verifies_and_names_the_user():
    token = mint(SETTINGS, "u-sales-01", ttl=120)

    claims = verify(SETTINGS, token)

    assert claims["sub"] == "u-sales-01"
    assert claims["iss"] == "crm" and claims["aud"] == "crm-api"
    assert claims["exp"] - claims["iat"] == 120
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_extra_claims_travel_but_cannot_override_the_registered_ones():
    token = mint(SETTINGS, "u1", claims={"department_id": "d-east"})

    assert verify(SETTINGS, token)["department_id"] == "d-east"
    with pytest.raises(ValueError):
        mint(SETTINGS, "u1", claims={"sub": "u-admin"})


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (lambda: mint(SETTINGS, "u1", ttl=10, now=time.time() - 600), "expired"),
        (
            lambda: mint(
                TokenSettings("another-secret-0123456789abcdef0123", "crm", "crm-api"), "u1"
            ),
            "signature",
        ),
        (lambda: mint(TokenSettings(SETTINGS.secret, "crm", "other-api"), "u1"), "audience"),
        (lambda: mint(TokenSettings(SETTINGS.secret, "evil", "crm-api"), "u1"), "issuer"),
        (lambda: mint(SETTINGS, "u1", now=time.time() + 3600), "not valid yet"),
        (lambda: "abc", "malformed"),
        (lambda: "", "empty"),
    ],
)
def test_tokens_that_must_not_be_trusted(token, reason):
    with pytest.raises(InvalidToken) as caught:
        verify(SETTINGS, token())
    assert reason in caught.value.reason


def test_leeway_forgives_a_little_clock_skew():
    token = mint(SETTINGS, "u1", ttl=10, now=time.time() - 20)

    assert verify(SETTINGS, token)["sub"] == "u1"


def test_the_none_algorithm_is_refused_even_with_valid_claims():
    now = int(time.time())
    claims = {"iss": "crm", "aud": "crm-api", "sub": "u1", "iat": now, "exp": now + 60}
    token = jwt.encode(claims, None, algorithm="none")

    with pytest.raises(InvalidToken) as caught:
        verify(SETTINGS, token)
    assert "algorithm" in caught.value.reason


def test_an_asymmetric_algorithm_header_is_refused_before_any_key_use():
    header = base64.urlsafe_b64encode(b'{"alg":"RS256","typ":"JWT"}').rstrip(b"=").decode()
    rest = mint(SETTINGS, "u1").split(".", 1)[1]

    with pytest.raises(InvalidToken) as caught:
        verify(SETTINGS, f"{header}.{rest}")
    assert "algorithm" in caught.value.reason


@pytest.mark.parametrize("missing", ["exp", "iat", "sub", "aud", "iss"])
def test_every_registered_claim_is_required(missing):
    now = int(time.time())
    claims = {"iss": "crm", "aud": "crm-api", "sub": "u1", "iat": now, "exp": now + 60}
    del claims[missing]
    token = jwt.encode(claims, SETTINGS.secret, algorithm="HS256")

    with pytest.raises(InvalidToken):
        verify(SETTINGS, token)


def test_settings_come_from_config_with_defaults():
    settings = TokenSettings.from_config({"TOKEN_SECRET": "s" * 40, "TOKEN_TTL": "600"})

    assert settings.secret == "s" * 40
    assert settings.ttl == 600
    assert settings.issuer == "crm" and settings.audience == "crm-api"
    with pytest.raises(ValueError):
        TokenSettings(secret="", issuer="i", audience="a")


SESSION = {
    "principal": {
        "user_id": "u-manager-01",
        "username": "manager01",
        "department_id": "d-east",
        "roles": ["sales_manager"],
        "permissions": ["customer:read", "customer:merge"],
        "grants": [
            {"owner": "self"},
            {"departments": ["d-east", "d-east-sh"], "categories": ["A"]},
        ],
        "authz_version": 7,
    },
    "session_id": "s-42",
    "refresh_token": "rt-secret",
    "refresh_expires_at": "2026-03-01T08:00:00+00:00",
}


def test_a_sessions_principal_becomes_the_tokens_claims():
    user_id, claims = session_claims(SESSION)

    assert user_id == "u-manager-01"
    assert claims == {
        "username": "manager01",
        "department_id": "d-east",
        "roles": ["sales_manager"],
        "permissions": ["customer:read", "customer:merge"],
        "grants": SESSION["principal"]["grants"],
        "ver": 7,
        "sid": "s-42",
    }
    assert "rt-secret" not in json.dumps(claims)


@pytest.mark.parametrize(
    "broken",
    [
        {"principal": None},
        {"session_id": ""},
        {"principal": {**SESSION["principal"], "user_id": None}},
        {"principal": {**SESSION["principal"], "authz_version": "7"}},
        {"principal": {**SESSION["principal"], "authz_version": True}},
    ],
)
def test_a_session_without_user_version_or_id_makes_no_token(broken):
    with pytest.raises(ValueError):
        session_claims({**SESSION, **broken})


def test_access_tokens_live_fifteen_minutes_unless_configured():
    assert TokenSettings.from_config({}).ttl == 900
    assert TokenSettings(secret="s", issuer="i", audience="a").ttl == 900
