import json
import logging
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from crm_common.context import bind
from crm_common.errors import TooManyRequests, Unauthenticated, ValidationFailed
from demo.org import DEMO_PASSWORD, MANAGING, SELLING
from org.application.sign_in import BAD_CREDENTIALS
from org.domain.lockout import LockoutPolicy
from org.hashing import HashCost, Passwords
from org.models import AuditEntry, AuthSession, RefreshToken, User
from org.runtime import Settings

from .conftest import CHEAP, act_as

NEW_PASSWORD = "Fresh-start-2027"


def refused(service, username, password):
    with pytest.raises(Unauthenticated) as info:
        service.sign_in(username, password)
    assert info.value.message == BAD_CREDENTIALS
    return info.value


def revoked(outbox_events):
    return [(d["session_id"], d["reason"]) for _, d in outbox_events("session_revoked")]


# -- sign-in -----------------------------------------------------------------------------------
def test_sign_in_gives_a_session_with_the_compiled_principal(service, demo, clock):
    bind(None, None)
    session = service.sign_in(" Manager01 ", DEMO_PASSWORD)
    assert set(session) == {
        "access_token",
        "token_type",
        "expires_in",
        "principal",
        "session_id",
        "refresh_token",
        "refresh_expires_at",
    }
    assert session["principal"] == {
        "user_id": "u-manager-01",
        "username": "manager01",
        "department_id": "d-east",
        "roles": ["sales_manager"],
        "permissions": sorted(
            [
                "customer:export",
                "customer:merge",
                "customer:read",
                "customer:write",
                *SELLING,
                *MANAGING,
            ]
        ),
        "grants": [
            {"categories": ["A", "VIP"], "departments": ["d-east", "d-east-js", "d-east-sh"]},
            {"owner": "self"},
        ],
        "authz_version": 1,
    }
    expires = datetime.fromisoformat(session["refresh_expires_at"])
    assert expires == clock.now + timedelta(days=14)
    assert DEMO_PASSWORD not in json.dumps(session)


def test_a_successful_sign_in_is_recorded_without_a_new_version(admin, demo, clock):
    admin.sign_in("sales01", DEMO_PASSWORD)
    user = admin.get_record("users", "u-sales-01")
    assert user["last_sign_in_at"] == clock.now.isoformat()
    assert user["version"] == 1


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("sales01", "Crm-demo-2025"),
        ("sales01", DEMO_PASSWORD.lower()),
        ("nobody", DEMO_PASSWORD),
        ("sales0", DEMO_PASSWORD),
    ],
)
def test_wrong_credentials_get_one_answer(service, demo, username, password):
    refused(service, username, password)


def test_blank_credentials_are_field_errors(service, demo):
    with pytest.raises(ValidationFailed) as info:
        service.sign_in("  ", DEMO_PASSWORD)
    assert "username" in info.value.field_errors
    with pytest.raises(ValidationFailed) as info:
        service.sign_in("sales01", "")
    assert "password" in info.value.field_errors


def test_disabled_users_and_people_and_people_who_left_cannot_sign_in(admin, demo):
    admin.set_disabled("users", "u-sales-01", True)
    refused(admin, "sales01", DEMO_PASSWORD)
    admin.set_disabled("people", "p-sales-02", True)
    refused(admin, "sales02", DEMO_PASSWORD)
    admin.update_record("people", "p-sales-03", {"status": "left"}, 1)
    refused(admin, "sales03", DEMO_PASSWORD)
    admin.set_disabled("users", "u-sales-01", False)
    assert admin.sign_in("sales01", DEMO_PASSWORD)["principal"]["user_id"] == "u-sales-01"


def held_back(service, username, password):
    with pytest.raises(TooManyRequests) as info:
        service.sign_in(username, password)
    return info.value.details["retry_after"]


def test_wrong_passwords_in_a_row_make_sign_ins_wait_longer_up_to_a_minute(admin, demo, clock):
    for _ in range(4):
        refused(admin, "sales01", "wrong-password-1")
    assert admin.get_record("users", "u-sales-01")["failed_attempts"] == 4
    refused(admin, "sales01", "wrong-password-1")
    user = admin.get_record("users", "u-sales-01")
    assert user["failed_attempts"] == 5
    assert user["locked_until"] == (clock.now + timedelta(seconds=1)).isoformat()
    assert held_back(admin, "sales01", DEMO_PASSWORD) == 1  # the right password, but too soon
    waits = []
    for _ in range(8):
        clock.advance(seconds=held_back(admin, "sales01", "wrong-password-1"))
        refused(admin, "sales01", "wrong-password-1")
        waits.append(held_back(admin, "sales01", DEMO_PASSWORD))
    assert waits == [2, 4, 8, 16, 32, 60, 60, 60], "doubling, never more than the longest wait"
    assert admin.get_record("users", "u-sales-01")["failed_attempts"] == 13, (
        "attempts made while waiting do not count"
    )
    clock.advance(seconds=60)
    assert admin.sign_in("sales01", DEMO_PASSWORD)["principal"]["user_id"] == "u-sales-01"
    user = admin.get_record("users", "u-sales-01")
    assert user["failed_attempts"] == 0 and user["locked_until"] is None
    locked = [e for e in admin.audit_log({"entity_id": "u-sales-01"})["items"]]
    assert [e["action"] for e in locked].count("locked") == 1, "one audit entry per streak"
    assert locked[0]["action"] == "locked" and locked[0]["actor_id"] is None


def test_only_consecutive_failures_count(admin, demo):
    for _ in range(4):
        refused(admin, "sales01", "wrong-password-1")
    admin.sign_in("sales01", DEMO_PASSWORD)
    for _ in range(4):
        refused(admin, "sales01", "wrong-password-1")
    assert admin.sign_in("sales01", DEMO_PASSWORD)


def test_an_administrator_lifts_a_lock(admin, demo, clock):
    for _ in range(5):
        refused(admin, "sales01", "wrong-password-1")
    clock.advance(minutes=1)
    unlocked = admin.unlock_user("u-sales-01")
    assert unlocked["locked_until"] is None and unlocked["failed_attempts"] == 0
    [entry, *_] = admin.audit_log({"entity_id": "u-sales-01"})["items"]
    assert entry["action"] == "unlocked" and entry["actor_id"] == "u-root"
    assert admin.sign_in("sales01", DEMO_PASSWORD)
    again = admin.unlock_user("u-sales-01")
    assert again["version"] == unlocked["version"]


def test_the_lockout_follows_the_settings(service_with, demo, clock):
    service = service_with(Settings(hash_cost=CHEAP, lockout=LockoutPolicy(2, 3)))
    refused(service, "sales01", "wrong-password-1")
    refused(service, "sales01", "wrong-password-1")
    assert held_back(service, "sales01", DEMO_PASSWORD) == 1
    for _ in range(3):
        clock.advance(seconds=3)
        refused(service, "sales01", "wrong-password-1")
    assert held_back(service, "sales01", DEMO_PASSWORD) == 3
    clock.advance(seconds=3)
    assert service.sign_in("sales01", DEMO_PASSWORD)


def test_a_hash_made_with_other_parameters_is_replaced_at_sign_in(service_with, demo, db):
    stronger = Settings(hash_cost=HashCost(time_cost=2, memory_cost=16, parallelism=1))
    service = service_with(stronger)
    service.sign_in("sales01", DEMO_PASSWORD)
    with db.session() as session:
        stored = session.scalar(select(User.password_hash).where(User.id == "u-sales-01"))
        version = session.scalar(select(User.version).where(User.id == "u-sales-01"))
    assert "m=16,t=2,p=1" in stored and version == 1
    assert Passwords(stronger.hash_cost).verify(stored, DEMO_PASSWORD)


# -- refresh and sign-out ----------------------------------------------------------------------
def test_refresh_rotates_and_a_reused_token_ends_the_session(service, demo, outbox_events):
    first = service.sign_in("sales01", DEMO_PASSWORD)
    second = service.refresh(first["refresh_token"])
    assert second["session_id"] == first["session_id"]
    assert second["refresh_token"] != first["refresh_token"]
    assert second["principal"] == first["principal"]
    third = service.refresh(second["refresh_token"])
    with pytest.raises(Unauthenticated):
        service.refresh(first["refresh_token"])  # spent: somebody else has it
    assert revoked(outbox_events) == [(first["session_id"], "token_reused")]
    with pytest.raises(Unauthenticated):
        service.refresh(third["refresh_token"])  # the whole family is gone
    other = service.sign_in("sales01", DEMO_PASSWORD)
    assert service.refresh(other["refresh_token"])["session_id"] == other["session_id"]


def test_refresh_tokens_are_stored_only_as_digests(service, demo, db):
    session = service.sign_in("sales01", DEMO_PASSWORD)
    with db.session() as s:
        [row] = s.scalars(select(RefreshToken)).all()
    assert row.token_hash != session["refresh_token"] and len(row.token_hash) == 64
    assert session["refresh_token"] not in json.dumps([row.token_hash, row.id, row.session_id])


@pytest.mark.parametrize("token", ["", None, "not-a-token", 42])
def test_unknown_refresh_tokens_are_refused(service, demo, token):
    with pytest.raises(Unauthenticated):
        service.refresh(token)


def test_refresh_tokens_expire_and_sessions_have_an_absolute_lifetime(service, demo, clock):
    session = service.sign_in("sales01", DEMO_PASSWORD)
    clock.advance(days=14)
    with pytest.raises(Unauthenticated):
        service.refresh(session["refresh_token"])

    session = service.sign_in("sales01", DEMO_PASSWORD)
    ends = clock.now + timedelta(days=30)
    for _ in range(3):
        clock.advance(days=10, seconds=-1)
        session = service.refresh(session["refresh_token"])
    assert datetime.fromisoformat(session["refresh_expires_at"]) == ends
    clock.advance(seconds=3)
    with pytest.raises(Unauthenticated):
        service.refresh(session["refresh_token"])


def test_refresh_carries_the_principal_as_it_is_now(admin, demo):
    session = admin.sign_in("sales01", DEMO_PASSWORD)
    admin.update_record("users", "u-sales-01", {"role_ids": ["role-branch-manager"]}, 1)
    refreshed = admin.refresh(session["refresh_token"])
    assert refreshed["principal"]["roles"] == ["branch_manager"]
    assert refreshed["principal"]["authz_version"] == 2


def test_disabling_a_user_ends_their_sessions(admin, demo, outbox_events):
    one = admin.sign_in("sales01", DEMO_PASSWORD)
    two = admin.sign_in("SALES01", DEMO_PASSWORD)
    admin.sign_in("sales02", DEMO_PASSWORD)
    admin.set_disabled("users", "u-sales-01", True)
    assert sorted(revoked(outbox_events)) == sorted(
        [(one["session_id"], "user_disabled"), (two["session_id"], "user_disabled")]
    )
    assert {d["user_id"] for _, d in outbox_events("session_revoked")} == {"u-sales-01"}
    for session in (one, two):
        with pytest.raises(Unauthenticated):
            admin.refresh(session["refresh_token"])


def test_sign_out_ends_the_session(service, demo, outbox_events):
    session = service.sign_in("sales01", DEMO_PASSWORD)
    refreshed = service.refresh(session["refresh_token"])
    assert service.sign_out(session["refresh_token"]) is None  # any token of the family
    assert revoked(outbox_events) == [(session["session_id"], "signed_out")]
    with pytest.raises(Unauthenticated):
        service.refresh(refreshed["refresh_token"])
    service.sign_out(refreshed["refresh_token"])
    service.sign_out("unknown")
    service.sign_out(None)
    assert len(revoked(outbox_events)) == 1


# -- the signed-in user ------------------------------------------------------------------------
def test_describe_me(service, demo):
    act_as("u-manager-01")
    me = service.describe_me()
    assert me["user"]["username"] == "manager01"
    assert me["person"]["name"] == "黄志强" and me["department"]["path"] == "总部 › 华东分公司"
    assert me["roles"] == [
        {"id": "role-sales-manager", "code": "sales_manager", "name": "销售经理"}
    ]
    assert "customer:merge" in me["permissions"]
    assert [(g["id"], g["source"]) for g in me["grants"]] == [
        ("g-manager-01-own", "user"),
        ("g-manager-01-east-key", "user"),
    ]
    assert me["scope"] == service.sign_in("manager01", DEMO_PASSWORD)["principal"]["grants"]
    act_as("u-sales-02")
    me = service.describe_me()
    assert [(g["id"], g["source"]) for g in me["grants"]] == [("g-sales-rep-own", "role")]
    assert me["scope"] == [{"owner": "self"}]


def test_describe_me_needs_an_active_caller(admin, demo):
    admin.set_disabled("users", "u-sales-01", True)
    for user_id in ("u-sales-01", "u-ghost"):
        act_as(user_id)
        with pytest.raises(Unauthenticated):
            admin.describe_me()
    bind(None, None)
    with pytest.raises(Unauthenticated):
        admin.describe_me()


def test_change_password(service, demo, db, outbox_events):
    mine = service.sign_in("sales01", DEMO_PASSWORD)
    other = service.sign_in("sales01", DEMO_PASSWORD)
    act_as("u-sales-01")
    result = service.change_password(DEMO_PASSWORD, NEW_PASSWORD, mine["session_id"])
    assert result["revoked_sessions"] == 1
    assert revoked(outbox_events) == [(other["session_id"], "password_changed")]
    assert service.refresh(mine["refresh_token"])
    with pytest.raises(Unauthenticated):
        service.refresh(other["refresh_token"])
    refused(service, "sales01", DEMO_PASSWORD)
    assert service.sign_in("sales01", NEW_PASSWORD)
    with db.session() as session:
        [entry] = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "password_changed")
        ).all()
        assert entry.actor_id == "u-sales-01" and entry.changes is None
        user = session.get(User, "u-sales-01")
        assert user.version == 2 and user.password_changed_at is not None


def test_change_password_without_a_session_id_ends_every_session(service, demo, db):
    service.sign_in("sales01", DEMO_PASSWORD)
    act_as("u-sales-01")
    assert service.change_password(DEMO_PASSWORD, NEW_PASSWORD)["revoked_sessions"] == 1
    with db.session() as session:
        assert all(s.revoked_at for s in session.scalars(select(AuthSession)))


@pytest.mark.parametrize(
    ("current", "new", "fields"),
    [
        ("Crm-demo-2025", NEW_PASSWORD, {"current_password"}),
        (DEMO_PASSWORD, "short1", {"new_password"}),
        (DEMO_PASSWORD, "sales01-and-more", {"new_password"}),
        (DEMO_PASSWORD, DEMO_PASSWORD, {"new_password"}),
        ("wrong-one-1", "short", {"current_password", "new_password"}),
        (None, NEW_PASSWORD, {"current_password"}),
        (DEMO_PASSWORD, None, {"new_password"}),
    ],
)
def test_change_password_errors_name_the_field(service, demo, current, new, fields):
    act_as("u-sales-01")
    with pytest.raises(ValidationFailed) as info:
        service.change_password(current, new)
    assert set(info.value.field_errors) == fields
    assert service.sign_in("sales01", DEMO_PASSWORD)


def test_change_password_needs_a_caller(service, demo):
    bind(None, None)
    with pytest.raises(Unauthenticated):
        service.change_password(DEMO_PASSWORD, NEW_PASSWORD)


def test_reset_password_by_an_administrator(admin, demo, outbox_events, clock):
    session = admin.sign_in("sales01", DEMO_PASSWORD)
    for _ in range(5):
        refused(admin, "sales01", "wrong-password-1")
    clock.advance(minutes=1)
    with pytest.raises(ValidationFailed) as info:
        admin.reset_password("u-sales-01", "sales01sales01")
    assert "new_password" in info.value.field_errors
    user = admin.reset_password("u-sales-01", NEW_PASSWORD)
    assert user["locked_until"] is None and user["failed_attempts"] == 0
    assert revoked(outbox_events) == [(session["session_id"], "password_reset")]
    assert admin.sign_in("sales01", NEW_PASSWORD)
    [entry, *_] = admin.audit_log({"entity_id": "u-sales-01"})["items"]
    assert entry["action"] == "password_reset" and entry["changes"] is None


# -- no password anywhere ----------------------------------------------------------------------
def test_no_password_or_hash_in_any_answer_or_log_line(admin, demo, db, caplog):
    caplog.set_level(logging.DEBUG)
    answers = []
    answers.append(admin.sign_in("sales01", DEMO_PASSWORD))
    for password in ("Wrong-guess-11", "Wrong-guess-12"):
        with pytest.raises(Unauthenticated) as info:
            admin.sign_in("sales01", password)
        answers.append(info.value.details)
    with pytest.raises(Unauthenticated):
        admin.sign_in("nobody.here", "Wrong-guess-13")
    answers.append(admin.create_record("users", {"username": "zz.top", "password": "Zz-top-1969"}))
    answers.append(admin.reset_password("u-sales-02", "Reset-pass-42"))
    answers.append(admin.list_records("users", {"limit": 200}))
    answers.append(admin.audit_log({"limit": 200}))
    act_as("u-sales-03")
    answers.append(admin.change_password(DEMO_PASSWORD, "Changed-pass-43"))
    answers.append(admin.describe_me())
    with db.session() as session:
        hashes = list(session.scalars(select(User.password_hash)))
    secrets = [DEMO_PASSWORD, "Wrong-guess-1", "Zz-top-1969", "Reset-pass-42", "Changed-pass-43"]
    text = json.dumps(answers, ensure_ascii=False, default=str)
    logged = "\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records)
    for secret in secrets + hashes:
        assert secret not in text
        assert secret not in logged
    failures = [r.getMessage() for r in caplog.records if "sign-in refused" in r.getMessage()]
    assert len(failures) == 3
    assert "'sales01'" in failures[0] and "wrong password" in failures[0]
    assert "'nobody.here'" in failures[2] and "unknown username" in failures[2]
