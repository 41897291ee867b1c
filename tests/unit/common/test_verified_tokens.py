"""A token is verified once per process, and never answered from memory once it is too old."""

import time

import pytest

from crm_common.context import Principal
from crm_common.identity import InvalidToken, VerifiedTokens
from tests.support.tokens import TRUST, TestKeys, service_token, user_token


def _with_another_signature(token: str) -> str:
    signed, signature = token.rsplit(".", 1)
    return f"{signed}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"


class Reads:
    """A ``read`` that counts its calls: one per verification."""

    def __init__(self) -> None:
        self.tokens: list[str] = []

    def __call__(self, token: str, claims: dict) -> Principal:
        self.tokens.append(token)
        return Principal.from_claims(claims)


def test_a_token_presented_again_is_answered_without_verifying_it_again():
    reads = Reads()
    principals = VerifiedTokens(TRUST, reads)
    token = user_token("u-sales-01")

    first = principals(token)
    again = principals(token)

    assert first.user_id == "u-sales-01"
    assert again is first
    assert reads.tokens == [token]


def test_past_its_expiry_and_leeway_a_kept_token_is_verified_afresh():
    now = [time.time()]
    reads = Reads()
    principals = VerifiedTokens(TRUST, reads, clock=lambda: now[0])
    token = user_token(ttl=60)
    principals(token)

    now[0] += 60 + TRUST.leeway - 2
    principals(token)
    assert len(reads.tokens) == 1

    now[0] += 3
    principals(token)
    assert len(reads.tokens) == 2


def test_an_expired_token_is_refused_every_time_and_never_kept():
    principals = VerifiedTokens(TRUST, Reads())
    expired = user_token(ttl=60, now=time.time() - 3600)

    for _ in range(2):
        with pytest.raises(InvalidToken, match="expired"):
            principals(expired)
    assert len(principals) == 0


@pytest.mark.parametrize(
    "token",
    [
        user_token(trust=TestKeys(("org",)).trust()),  # an org key nobody published
        _with_another_signature(user_token()),
        service_token("customer") + ".",
        "",
        None,
    ],
)
def test_tokens_that_do_not_verify_are_refused_and_never_kept(token):
    principals = VerifiedTokens(TRUST, Reads())

    for _ in range(2):
        with pytest.raises(InvalidToken):
            principals(token)
    assert len(principals) == 0


def test_a_token_read_refuses_is_refused_every_time_and_never_kept():
    def users_only(token: str, claims: dict) -> str:
        if str(claims["sub"]).startswith("service:"):
            raise InvalidToken("a service token does not sign in a user")
        return str(claims["sub"])

    callers = VerifiedTokens(TRUST, users_only)

    for _ in range(2):
        with pytest.raises(InvalidToken, match="service token"):
            callers(service_token("customer"))
    assert len(callers) == 0


def test_at_most_size_tokens_are_kept_the_oldest_dropped_first():
    reads = Reads()
    principals = VerifiedTokens(TRUST, reads, size=2)
    first, second, third = (user_token(f"u-{n}") for n in range(3))

    for token in (first, second, third, third, second):
        principals(token)
    assert len(principals) == 2
    assert reads.tokens == [first, second, third]

    principals(first)
    assert reads.tokens == [first, second, third, first]
    assert len(principals) == 2
