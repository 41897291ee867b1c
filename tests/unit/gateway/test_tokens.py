import base64
import json
import time

import jwt
import pytest

from gateway import tokens
from gateway.tokens import InvalidToken, TokenSettings, mint, verify

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


def test_cli_prints_a_token_signed_with_the_environment_secret(monkeypatch, capsys):
    monkeypatch.setenv("TOKEN_SECRET", SETTINGS.secret)
    monkeypatch.setenv("TOKEN_ISSUER", "crm")
    monkeypatch.setenv("TOKEN_AUDIENCE", "crm-api")

    assert tokens.main(["--user", "u-sales-01", "--ttl", "300"]) == 0

    token = capsys.readouterr().out.strip()
    claims = verify(SETTINGS, token)
    assert claims["sub"] == "u-sales-01"
    assert claims["exp"] - claims["iat"] == 300


def test_cli_reads_a_config_file_and_the_environment_wins(tmp_path, monkeypatch, capsys):
    config = tmp_path / "config.yml"
    config.write_text(
        "TOKEN_SECRET: ${CLI_TEST_SECRET:file-secret-0123456789abcdef0123456}\n"
        "TOKEN_ISSUER: file-issuer\n"
        "TOKEN_AUDIENCE: file-audience\n"
        "TOKEN_TTL: 900\n",
        encoding="utf-8",
    )
    for key in ("TOKEN_SECRET", "TOKEN_ISSUER", "TOKEN_AUDIENCE", "TOKEN_TTL", "CLI_TEST_SECRET"):
        monkeypatch.delenv(key, raising=False)

    assert tokens.main(["--user", "u1", "--config", str(config)]) == 0
    from_file = capsys.readouterr().out.strip()
    monkeypatch.setenv("TOKEN_AUDIENCE", "env-audience")
    assert tokens.main(["--user", "u1", "--config", str(config)]) == 0
    from_env = capsys.readouterr().out.strip()

    file_settings = TokenSettings(
        "file-secret-0123456789abcdef0123456", "file-issuer", "file-audience"
    )
    claims = verify(file_settings, from_file)
    assert claims["exp"] - claims["iat"] == 900
    assert claims_of(from_env)["aud"] == "env-audience"


def test_cli_refuses_a_nonsense_ttl(capsys):
    assert tokens.main(["--user", "u1", "--ttl", "0"]) == 2
    assert "ttl" in capsys.readouterr().err
