"""Nobody may leave the suite without an administrator, and nobody may disable themselves."""

import pytest

from crm_common.errors import Conflict

from .conftest import act_as

ADMIN_USER = "u-admin"
ADMIN_ROLE = "role-admin"
ADMIN_PERSON = "p-admin"


@pytest.fixture
def only_admin(service, demo):
    """The demo's administrator, the only holder of org:admin, making the calls."""
    act_as(ADMIN_USER, "org:admin")
    return service


def version(service, kind, record_id):
    return service.get_record(kind, record_id)["version"]


def assert_last_administrator(info):
    assert info.value.details["reason"] == "last_administrator"
    assert info.value.status == 409


def test_an_administrator_cannot_disable_themselves(only_admin):
    for kind, record_id in (("users", ADMIN_USER), ("people", ADMIN_PERSON)):
        with pytest.raises(Conflict) as info:
            only_admin.set_disabled(kind, record_id, True)
        assert info.value.details["reason"] == "self_disable"
    with pytest.raises(Conflict) as info:
        only_admin.update_record(
            "people", ADMIN_PERSON, {"status": "left"}, version(only_admin, "people", ADMIN_PERSON)
        )
    assert info.value.details["reason"] == "self_disable"
    assert only_admin.get_record("users", ADMIN_USER)["disabled"] is False


def test_the_last_administrator_keeps_org_admin_every_way_it_could_be_lost(only_admin):
    attempts = [
        lambda: only_admin.update_record(
            "users",
            ADMIN_USER,
            {"role_ids": ["role-sales-rep"]},
            version(only_admin, "users", ADMIN_USER),
        ),
        lambda: only_admin.update_record(
            "roles",
            ADMIN_ROLE,
            {"permissions": ["customer:read"]},
            version(only_admin, "roles", ADMIN_ROLE),
        ),
        lambda: only_admin.set_disabled("roles", ADMIN_ROLE, True),
    ]
    for attempt in attempts:
        with pytest.raises(Conflict) as info:
            attempt()
        assert_last_administrator(info)
    assert "org:admin" in only_admin.get_record("roles", ADMIN_ROLE)["permissions"]
    assert only_admin.get_record("users", ADMIN_USER)["role_ids"] == [ADMIN_ROLE]


def test_another_administrator_cannot_remove_the_last_one_either(service, demo):
    act_as("u-root", "org:admin")  # a principal the database does not hold
    with pytest.raises(Conflict) as info:
        service.set_disabled("users", ADMIN_USER, True)
    assert_last_administrator(info)
    with pytest.raises(Conflict) as info:
        service.set_disabled("people", ADMIN_PERSON, True)
    assert_last_administrator(info)


def test_org_admin_may_go_once_another_enabled_user_holds_it(only_admin):
    only_admin.update_record(
        "users",
        "u-branch-east",
        {"role_ids": ["role-branch-manager", ADMIN_ROLE]},
        version(only_admin, "users", "u-branch-east"),
    )
    only_admin.update_record(
        "users", ADMIN_USER, {"role_ids": []}, version(only_admin, "users", ADMIN_USER)
    )
    assert only_admin.get_record("users", ADMIN_USER)["role_ids"] == []
    act_as("u-branch-east", "org:admin")
    with pytest.raises(Conflict) as info:
        only_admin.set_disabled("roles", ADMIN_ROLE, True)
    assert_last_administrator(info)
    only_admin.set_disabled("users", ADMIN_USER, True)
    assert only_admin.get_record("users", ADMIN_USER)["disabled"] is True
