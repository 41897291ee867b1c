"""People in the org structure carry the codes of their user's enabled roles: in the people
snapshot, and in a ``person_changed`` with a newer version whenever those codes change."""

from .conftest import act_as
from .test_structure import CUSTOMER_SERVICE, whole


def announced(outbox_events):
    return [data["person"] for _, data in outbox_events("person_changed")]


def test_the_snapshot_lists_each_persons_role_codes(service, demo):
    act_as(*CUSTOMER_SERVICE)
    people = {person["id"]: person for person in whole(service, "people", limit=50)}
    assert people["p-sales-01"]["role_codes"] == ["sales_rep"]
    assert people["p-ceo"]["role_codes"] == ["general_manager"]
    assert people["p-marketing-mgr"]["role_codes"] == []  # no user account


def test_changing_a_users_roles_announces_their_person_with_a_newer_version(
    admin, demo, outbox_events
):
    person = admin.get_record("people", "p-sales-01")
    user = admin.get_record("users", "u-sales-01")
    admin.update_record(
        "users", "u-sales-01", {"role_ids": ["role-sales-rep", "role-marketing"]}, user["version"]
    )

    changed = announced(outbox_events)[-1]
    assert (changed["id"], changed["user_id"]) == ("p-sales-01", "u-sales-01")
    assert changed["role_codes"] == ["marketing", "sales_rep"]
    assert changed["version"] == person["version"] + 1


def test_an_edit_of_a_user_that_keeps_their_roles_announces_no_person(admin, demo, outbox_events):
    user = admin.get_record("users", "u-sales-01")
    admin.update_record("users", "u-sales-01", {"username": "zhang.wei"}, user["version"])
    assert announced(outbox_events) == []


def test_renaming_or_disabling_a_role_announces_its_holders_people(admin, demo, outbox_events):
    role = admin.get_record("roles", "role-branch-manager")
    admin.update_record("roles", role["id"], {"code": "branch_head"}, role["version"])
    renamed = {person["id"]: person["role_codes"] for person in announced(outbox_events)}
    assert renamed == {
        "p-branch-east": ["branch_head"],
        "p-branch-north": ["branch_head"],
        "p-branch-south": ["branch_head"],
    }

    admin.update_record("roles", role["id"], {"name": "分公司总经理"}, role["version"] + 1)
    assert len(announced(outbox_events)) == 3  # the code is the same: nobody announced

    admin.set_disabled("roles", role["id"], True)
    disabled = announced(outbox_events)[3:]
    assert sorted(person["id"] for person in disabled) == sorted(renamed)
    assert all(person["role_codes"] == [] for person in disabled)
