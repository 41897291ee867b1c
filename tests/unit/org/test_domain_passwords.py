import pytest

from org.domain.passwords import policy_problems
from org.hashing import HashCost, Passwords

from .conftest import CHEAP


@pytest.mark.parametrize(
    ("password", "username", "problem"),
    [
        ("abc123", None, "at least 8"),
        ("abcdefghij", None, "letters and digits"),
        ("1234567890", None, "letters and digits"),
        ("________1a", None, None),
        ("x" * 127 + "1", None, None),
        ("x" * 128 + "1", None, "at most 128"),
        ("Sales01-secret", "sales01", "username"),
        ("my-SALES01-pw", "Sales01", "username"),
        ("Crm-demo-2026", "sales01", None),
        ("密码密码密码2026", None, None),
    ],
)
def test_policy(password, username, problem):
    problems = policy_problems(password, username)
    if problem is None:
        assert problems == []
    else:
        assert any(problem in p for p in problems), problems


def test_hash_verify_and_no_plain_text():
    passwords = Passwords(CHEAP)
    stored = passwords.hash("Crm-demo-2026")
    assert stored.startswith("$argon2id$") and "Crm-demo-2026" not in stored
    assert "m=8,t=1,p=1" in stored
    assert passwords.verify(stored, "Crm-demo-2026")
    assert not passwords.verify(stored, "crm-demo-2026")
    assert not passwords.verify("not a hash", "Crm-demo-2026")
    assert passwords.hash("Crm-demo-2026") != stored  # salted


def test_hashes_made_with_other_parameters_need_rehashing():
    cheap, stronger = Passwords(CHEAP), Passwords(HashCost(2, 16, 1))
    stored = cheap.hash("Crm-demo-2026")
    assert not cheap.needs_rehash(stored)
    assert stronger.needs_rehash(stored)
    assert stronger.verify(stored, "Crm-demo-2026")
    assert cheap.needs_rehash("garbage")


def test_the_dummy_hash_is_made_once_with_the_current_parameters():
    passwords = Passwords(CHEAP)
    assert passwords.dummy_hash is passwords.dummy_hash
    assert not passwords.needs_rehash(passwords.dummy_hash)


def test_the_defaults_are_argon2_cffis_recommendation():
    assert HashCost() == HashCost(time_cost=3, memory_cost=65536, parallelism=4)
