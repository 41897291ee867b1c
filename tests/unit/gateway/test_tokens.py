"""Access and service tokens: EdDSA only, keys by kid, who may sign what, rotation, and the
key settings a process refuses to start with (``crm_common.identity``)."""

import base64
import json
import time

import jwt
import pytest

from crm_common.context import Principal
from crm_common.identity import (
    InvalidToken,
    KeyConfigurationError,
    Trust,
    ensure_keys,
    mint,
    service_subject,
    verify,
)
from tests.support.tokens import AUDIENCE, ISSUER, KEYS, TRUST, TestKeys

NAMES = {"TOKEN_ISSUER": ISSUER, "TOKEN_AUDIENCE": AUDIENCE}


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def refusal(trust, token):
    with pytest.raises(InvalidToken) as caught:
        verify(trust, token)
    return caught.value.reason


def test_a_minted_token_verifies_and_names_its_key():
    token = mint(TRUST, "org", "u-sales-01", claims={"sid": "s-1"}, ttl=120)

    claims = verify(TRUST, token)
    assert (claims["sub"], claims["sid"], claims["exp"] - claims["iat"]) == (
        "u-sales-01",
        "s-1",
        120,
    )
    assert jwt.get_unverified_header(token) == {"alg": "EdDSA", "kid": "org.test", "typ": "JWT"}


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: f"{_b64({'alg': 'none'})}.{_b64({'sub': 'u1'})}.", "algorithm"),
        (lambda: jwt.encode({"sub": "u1"}, "x" * 40, algorithm="HS256"), "algorithm"),
        (
            lambda: mint(TestKeys(("org",), "guessed").trust(), "org", "u1"),
            "signing key is not known",
        ),
        (lambda: mint(TRUST, "customer", "u-admin"), "may not sign"),
        (lambda: mint(TRUST, "customer", service_subject("org")), "may not sign"),
        (lambda: mint(TRUST, "org", "u1", ttl=10, now=time.time() - 600), "expired"),
        (lambda: mint(TRUST, "org", "u1", now=time.time() + 3600), "not valid yet"),
        (lambda: "not.a.jwt", "malformed"),
        (lambda: "", "empty"),
    ],
)
def test_tokens_that_must_not_be_trusted_are_refused(make, reason):
    assert reason in refusal(TRUST, make())


def test_issuer_and_audience_must_match():
    other = Trust(TRUST.public_keys, TRUST.private_keys, issuer="evil", audience=TRUST.audience)
    elsewhere = Trust(TRUST.public_keys, TRUST.private_keys, TRUST.issuer, "another-api")

    assert "issuer" in refusal(TRUST, mint(other, "org", "u1"))
    assert "audience" in refusal(TRUST, mint(elsewhere, "org", "u1"))


def test_leeway_accepts_a_token_just_expired():
    assert verify(TRUST, mint(TRUST, "org", "u1", ttl=10, now=time.time() - 20))["sub"] == "u1"


def test_a_service_token_is_the_service_with_its_declared_permissions_only():
    token = mint(TRUST, "customer", service_subject("customer"), claims={"permissions": ["*"]})

    principal = Principal.from_claims(verify(TRUST, token))
    assert principal.user_id == "service:customer"
    assert principal.permissions == ("org:structure:read",)
    assert principal.is_service


def test_rotation_keeps_the_old_key_valid_until_its_kid_is_removed():
    keys = TestKeys(("org",), "old")
    old_trust = keys.trust()
    old_token = mint(old_trust, "org", "u1")
    keys.add("org.new")
    # The new key is listed first for the signer; both are public during the switch.
    signer_config = {
        **NAMES,
        "PUBLIC_KEYS": json.dumps(keys.public_jwks()),
        "PRIVATE_KEYS": json.dumps(keys.private_jwks(("org.new",))),
    }
    switching = Trust.from_config(signer_config, signs=True)
    new_token = mint(switching, "org", "u1")

    assert jwt.get_unverified_header(new_token)["kid"] == "org.new"
    assert verify(switching, old_token)["sub"] == "u1"
    assert verify(switching, new_token)["sub"] == "u1"
    after = Trust.from_config({**NAMES, "PUBLIC_KEYS": json.dumps(keys.public_jwks(("org.new",)))})
    assert "signing key is not known" in refusal(after, old_token)
    assert verify(after, new_token)["sub"] == "u1"


@pytest.mark.parametrize(
    ("config", "setting"),
    [
        ({}, "PUBLIC_KEYS is not set"),
        ({"PUBLIC_KEYS": "/nonexistent/public.jwks"}, "not a readable file"),
        ({"PUBLIC_KEYS": '{"keys": []}'}, "PUBLIC_KEYS is not a JWK set"),
        (
            {"PUBLIC_KEYS": json.dumps({"keys": [{"kty": "oct", "kid": "org", "k": "c2VjcmV0"}]})},
            "not an Ed25519 key",
        ),
        (
            {"PUBLIC_KEYS": json.dumps(TestKeys(("org",)).public_jwks())},
            "PRIVATE_KEYS is not set",
        ),
        (
            {
                "PUBLIC_KEYS": json.dumps(TestKeys(("org",)).public_jwks()),
                "PRIVATE_KEYS": json.dumps(KEYS.private_jwks()),
            },
            "which PUBLIC_KEYS lacks",
        ),
    ],
)
def test_a_process_refuses_to_start_naming_the_setting(config, setting):
    with pytest.raises(KeyConfigurationError) as caught:
        Trust.from_config(config, signs=True)
    assert setting in str(caught.value)


def test_outside_development_dev_keys_and_shared_private_files_are_refused(tmp_path):
    dev = TestKeys(("org",), "dev-1a2b")
    dev_config = {"PUBLIC_KEYS": json.dumps(dev.public_jwks()), "CRM_ENV": "production"}
    with pytest.raises(KeyConfigurationError) as caught:
        Trust.from_config(dev_config)
    assert "development key org.dev-1a2b" in str(caught.value)
    assert Trust.from_config({**dev_config, "CRM_ENV": "development"}).public_keys

    files = KEYS.write(tmp_path / "keys")
    (tmp_path / "keys" / "private.jwks").chmod(0o644)
    with pytest.raises(KeyConfigurationError) as caught:
        Trust.from_config({**files, "CRM_ENV": "production"}, signs=True)
    assert "chmod 600" in str(caught.value)
    (tmp_path / "keys" / "private.jwks").chmod(0o600)
    assert Trust.from_config({**files, "CRM_ENV": "production"}, signs=True).private_keys


def test_generated_keys_are_kept_and_only_missing_services_get_one(tmp_path):
    assert ensure_keys(tmp_path, ["org", "gateway"], "dev-x") == ["org.dev-x", "gateway.dev-x"]
    first = (tmp_path / "private.jwks").read_text()
    assert ensure_keys(tmp_path, ["org", "gateway", "customer"], "dev-y") == ["customer.dev-y"]

    assert (tmp_path / "private.jwks").stat().st_mode & 0o077 == 0
    trust = Trust.from_config(
        {
            "PUBLIC_KEYS": str(tmp_path / "public.jwks"),
            "PRIVATE_KEYS": str(tmp_path / "private.jwks"),
        },
        signs=True,
    )
    assert trust.signing_key("org")[0] == "org.dev-x"
    assert (
        json.loads(first)["keys"][0] in json.loads((tmp_path / "private.jwks").read_text())["keys"]
    )
