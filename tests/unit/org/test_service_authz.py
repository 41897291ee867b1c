"""Exactly the users whose effective principal changes get a new authz_version, announced in
one grants_changed event."""

import pytest

from demo.org import DEMO_PASSWORD, DEMO_USERS

SALES_REPS = {f"u-sales-0{n}" for n in range(1, 7)}


@pytest.fixture
def bumped(outbox_events):
    """The users of every grants_changed event since the last call, with their versions."""
    seen = len(outbox_events("grants_changed"))

    def read():
        nonlocal seen
        found = outbox_events("grants_changed")[seen:]
        seen += len(found)
        return [{u["user_id"]: u["authz_version"] for u in data["users"]} for _, data in found]

    return read


def version(admin, user_id):
    return admin.get_record("users", user_id)["authz_version"]


def principal(admin, username):
    return admin.sign_in(username, DEMO_PASSWORD)["principal"]


def test_a_role_permission_change_bumps_every_holder(admin, demo, bumped):
    admin.update_record("roles", "role-sales-rep", {"permissions": ["customer:read"]}, 1)
    assert bumped() == [dict.fromkeys(SALES_REPS, 2)]
    assert version(admin, "u-sales-01") == 2 and version(admin, "u-manager-01") == 1
    assert principal(admin, "sales03")["permissions"] == ["customer:read"]
    assert principal(admin, "sales03")["authz_version"] == 2


def test_changes_that_alter_no_principal_bump_nobody(admin, demo, bumped, outbox_events):
    admin.update_record("roles", "role-sales-rep", {"name": "销售员", "description": "x"}, 1)
    admin.update_record("grants", "g-branch-east", {"name": "华东"}, 1)
    admin.update_record("departments", "d-east", {"name": "华东大区", "city": "杭州"}, 1)
    admin.update_record("users", "u-sales-01", {"username": "wang.wei"}, 1)
    admin.create_record("regions", {"code": "3205", "name": "苏州", "parent_id": "rg-east-js"})
    admin.create_record("departments", {"code": "05", "name": "华中分公司", "type": "sales"})
    assert bumped() == []
    [(_, renamed)] = outbox_events("user_changed")
    assert renamed == {
        "user_id": "u-sales-01",
        "username": "wang.wei",
        "disabled": False,
        "authz_version": 1,
    }


def test_a_grant_of_a_role_bumps_its_holders_and_one_of_a_user_that_user(admin, demo, bumped):
    grant = admin.create_record(
        "grants", {"role_id": "role-marketing", "categories": ["A"], "name": "A 类"}
    )
    assert bumped() == [{"u-marketing-01": 2}]
    assert principal(admin, "marketing01")["grants"] == [
        {"categories": ["A"]},
        {"regions": [{"path": "华东", "subtree": True}]},
    ]
    admin.update_record("grants", grant["id"], {"role_id": None, "user_id": "u-sales-01"}, 1)
    assert bumped() == [{"u-marketing-01": 3, "u-sales-01": 2}]
    admin.set_disabled("grants", grant["id"], True)
    assert bumped() == [{"u-sales-01": 3}]
    admin.set_disabled("grants", "g-sales-rep-own", True)
    assert bumped() == [{**dict.fromkeys(SALES_REPS - {"u-sales-01"}, 2), "u-sales-01": 4}]
    assert principal(admin, "sales02")["grants"] == []


def test_a_users_roles_or_person_change_bumps_that_user(admin, demo, bumped, outbox_events):
    admin.update_record("users", "u-sales-01", {"role_ids": ["role-sales-manager"]}, 1)
    assert bumped() == [{"u-sales-01": 2}]
    assert outbox_events("user_changed")[-1][1]["authz_version"] == 2
    admin.update_record("people", "p-sales-02", {"department_id": "d-east-sh"}, 1)
    assert bumped() == [{"u-sales-02": 2}]
    assert principal(admin, "sales02")["department_id"] == "d-east-sh"
    person = admin.create_record("people", {"code": "P9", "name": "新人", "department_id": "d-hq"})
    admin.update_record("users", "u-sales-03", {"person_id": person["id"]}, 1)
    assert bumped() == [{"u-sales-03": 2}]


def test_a_department_move_bumps_exactly_the_users_whose_compiled_grants_change(
    admin, demo, bumped
):
    admin.update_record("departments", "d-east-js", {"parent_id": "d-north"}, 1)
    assert bumped() == [{"u-branch-east": 2, "u-branch-north": 2, "u-manager-01": 2}]
    assert principal(admin, "branch.north")["grants"] == [
        {"departments": ["d-east-js", "d-north", "d-north-bj", "d-north-tj"]}
    ]
    assert principal(admin, "branch.east")["grants"] == [{"departments": ["d-east", "d-east-sh"]}]


def test_a_new_sub_department_joins_the_grants_above_it(admin, demo, bumped):
    office = admin.create_record(
        "departments",
        {"code": "0203", "name": "浙江办事处", "type": "sales", "parent_id": "d-east"},
    )
    assert bumped() == [{"u-branch-east": 2, "u-manager-01": 2}]
    assert office["id"] in principal(admin, "branch.east")["grants"][0]["departments"]


def test_disabled_departments_stay_in_compiled_grants(admin, demo, bumped):
    admin.set_disabled("departments", "d-east-js", True)
    assert bumped() == []
    assert principal(admin, "branch.east")["grants"] == [
        {"departments": ["d-east", "d-east-js", "d-east-sh"]}
    ]


def test_a_region_rename_bumps_the_users_with_grants_on_it(admin, demo, bumped):
    admin.update_record("regions", "rg-east", {"name": "华东区"}, 1)
    assert bumped() == [{"u-engineer-01": 2, "u-marketing-01": 2}]
    assert principal(admin, "engineer01")["grants"] == [
        {"regions": [{"path": "华东区/上海", "subtree": True}]}
    ]
    admin.update_record("regions", "rg-north-bj", {"name": "北京市"}, 1)
    assert bumped() == []


def test_disabling_a_role_takes_its_permissions_and_grants(admin, demo, bumped):
    admin.set_disabled("roles", "role-business", True)
    assert bumped() == [{"u-business-01": 2}]
    business = principal(admin, "business01")
    assert business["roles"] == [] and business["permissions"] == [] and business["grants"] == []
    admin.set_disabled("roles", "role-business", False)
    assert bumped() == [{"u-business-01": 3}]


def test_disabling_a_user_or_person_bumps_and_announces(admin, demo, bumped, outbox_events):
    disabled = admin.set_disabled("users", "u-sales-04", True)
    assert disabled["authz_version"] == 2 and disabled["disabled"] is True
    assert bumped() == [{"u-sales-04": 2}]
    assert outbox_events("user_changed")[-1][1] == {
        "user_id": "u-sales-04",
        "username": "sales04",
        "disabled": True,
        "authz_version": 2,
    }
    admin.set_disabled("people", "p-sales-05", True)
    assert bumped() == [{"u-sales-05": 2}]
    admin.update_record("people", "p-sales-06", {"status": "left"}, 1)
    assert bumped() == [{"u-sales-06": 2}]


def test_every_demo_user_starts_at_version_one(admin, demo):
    assert {u["authz_version"] for u in admin.list_records("users")["items"]} == {1}
    assert len(DEMO_USERS) == 16
