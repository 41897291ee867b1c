"""The revocation list: what org events make the gateway refuse, and for how long."""

import logging

import pytest

from crm_common.events import make_envelope
from gateway.revocation import DISABLED, ENDED, OUTDATED, Revocations


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def revocations(clock):
    return Revocations(retention=930, clock=clock)


def event(event_type, data):
    return make_envelope(event_type, data, source="org", actor_id="u-admin")


def test_nothing_heard_refuses_nothing(revocations):
    assert revocations.refusal("u1", 0, "s1") is None


def test_grants_changed_outdates_older_tokens_of_the_users_listed(revocations):
    revocations.heard(
        "grants_changed",
        event(
            "grants_changed",
            {
                "users": [
                    {"user_id": "u1", "authz_version": 5},
                    {"user_id": "u2", "authz_version": 2},
                ]
            },
        ),
    )

    assert revocations.refusal("u1", 4, "s1") == OUTDATED
    assert revocations.refusal("u1", 5, "s1") is None
    assert revocations.refusal("u1", 6, "s1") is None
    assert revocations.refusal("u2", 1, "s2") == OUTDATED
    assert revocations.refusal("u3", 0, "s3") is None


def test_an_older_event_never_lowers_the_version(revocations):
    revocations.raise_version("u1", 5)
    revocations.raise_version("u1", 3)

    assert revocations.refusal("u1", 4, "s1") == OUTDATED


def test_session_revoked_ends_that_session_only(revocations):
    revocations.heard(
        "session_revoked", event("session_revoked", {"session_id": "s1", "user_id": "u1"})
    )

    assert revocations.refusal("u1", 1, "s1") == ENDED
    assert revocations.refusal("u1", 1, "s2") is None


def test_user_changed_carries_the_version_and_the_disabled_flag(revocations):
    disabled = {"user_id": "u1", "username": "x", "disabled": True, "authz_version": 4}
    enabled = {**disabled, "disabled": False, "authz_version": 5}

    revocations.heard("user_changed", event("user_changed", disabled))
    assert revocations.refusal("u1", 4, "s1") == DISABLED
    revocations.heard("user_changed", event("user_changed", enabled))
    assert revocations.refusal("u1", 4, "s1") == OUTDATED
    assert revocations.refusal("u1", 5, "s1") is None


def test_entries_expire_after_the_retention(revocations, clock):
    revocations.raise_version("u1", 5)
    revocations.end_session("s1")
    revocations.set_disabled("u2", True)

    clock.now += 929
    assert revocations.refusal("u1", 4, "s0") == OUTDATED
    assert revocations.refusal("u9", 1, "s1") == ENDED
    assert revocations.refusal("u2", 1, "s2") == DISABLED
    clock.now += 2
    assert revocations.refusal("u1", 4, "s0") is None
    assert revocations.refusal("u9", 1, "s1") is None
    assert revocations.refusal("u2", 1, "s2") is None
    revocations.end_session("s-new")
    assert len(revocations) == 1


def test_a_repeated_event_extends_the_entry(revocations, clock):
    revocations.raise_version("u1", 5)
    clock.now += 900
    revocations.raise_version("u1", 5)
    clock.now += 900

    assert revocations.refusal("u1", 4, "s1") == OUTDATED


@pytest.mark.parametrize(
    ("event_type", "payload"),
    [
        ("grants_changed", {"no": "envelope"}),
        ("grants_changed", event("grants_changed", {"users": "u1"})),
        ("grants_changed", event("grants_changed", {"users": [{"authz_version": 3}]})),
        (
            "grants_changed",
            event("grants_changed", {"users": [{"user_id": "u1", "authz_version": "9"}]}),
        ),
        ("user_changed", event("user_changed", {"username": "nobody"})),
        ("session_revoked", event("session_revoked", {"user_id": "u1"})),
        ("department_changed", event("department_changed", {"department": {}})),
        ("session_revoked", "not even a dict"),
    ],
)
def test_malformed_events_are_logged_and_change_nothing(revocations, caplog, event_type, payload):
    with caplog.at_level(logging.WARNING, logger="gateway.revocation"):
        revocations.heard(event_type, payload)

    assert len(revocations) == 0
    assert caplog.records


def test_unknown_fields_are_tolerated(revocations):
    data = {"users": [{"user_id": "u1", "authz_version": 2, "reason": "role changed"}], "more": 1}

    revocations.heard("grants_changed", {**event("grants_changed", data), "extra": True})

    assert revocations.refusal("u1", 1, "s1") == OUTDATED


def test_retention_must_be_positive():
    with pytest.raises(ValueError):
        Revocations(retention=0)
