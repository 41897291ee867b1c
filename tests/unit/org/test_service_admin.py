import json

import pytest

from crm_common.context import bind
from crm_common.errors import Conflict, Forbidden, NotFound, Unauthenticated, ValidationFailed

from .conftest import act_as


def department(service, code="09", name="测试部", type="sales", **fields):
    return service.create_record(
        "departments", {"code": code, "name": name, "type": type, **fields}
    )


def region(service, code, name, parent_id=None):
    return service.create_record("regions", {"code": code, "name": name, "parent_id": parent_id})


def audit(service, **query):
    return service.audit_log(query)["items"]


def changes(service, **query):
    """The audit entries but the demo's ``created`` ones."""
    return [e for e in audit(service, **query) if e["action"] != "created"]


# -- access ------------------------------------------------------------------------------------
ADMIN_CALLS = [
    ("list_records", ("departments",)),
    ("get_record", ("departments", "d-hq")),
    ("create_record", ("roles", {"code": "x", "name": "x"})),
    ("update_record", ("roles", "role-admin", {"name": "x"}, 1)),
    ("set_disabled", ("users", "u-sales-01", True)),
    ("reset_password", ("u-sales-01", "Another-pw-2026")),
    ("unlock_user", ("u-sales-01",)),
    ("list_permissions", ()),
    ("audit_log", ()),
]


@pytest.mark.parametrize(("method", "args"), ADMIN_CALLS)
def test_administration_needs_org_admin(service, demo, method, args):
    act_as("u-sales-01", "customer:read", "customer:write")
    with pytest.raises(Forbidden) as info:
        getattr(service, method)(*args)
    assert info.value.details == {"permission": "org:admin"}
    bind(None, None)
    with pytest.raises(Unauthenticated):
        getattr(service, method)(*args)


def test_an_unknown_kind_is_a_field_error(admin):
    with pytest.raises(ValidationFailed) as info:
        admin.list_records("customers")
    assert "kind" in info.value.field_errors
    with pytest.raises(ValidationFailed):
        admin.create_record("audit_entries", {})


def test_get_of_a_missing_record_is_not_found(admin):
    with pytest.raises(NotFound):
        admin.get_record("departments", "d-nowhere")
    with pytest.raises(NotFound):
        admin.get_record("users", {"id": "x"})


def test_the_permission_catalog_is_listed(admin):
    codes = [p["code"] for p in admin.list_permissions()]
    assert "customer:read" in codes and "org:admin" in codes


# -- departments -------------------------------------------------------------------------------
def test_create_department_with_path_audit_and_event(admin, outbox_events):
    root = department(admin, "01", "总部", "operations", city="上海")
    child = department(admin, "02", "华东分公司", parent_id=root["id"])
    for record in (root, child):
        assert {"id", "version", "created_at", "updated_at", "disabled"} <= set(record)
        assert record["version"] == 1 and record["disabled"] is False
    assert child["path"] == "总部 › 华东分公司" and child["parent_id"] == root["id"]
    assert root["created_at"].endswith("+00:00")
    [entry] = audit(admin, entity_type="department", entity_id=child["id"])
    assert entry["action"] == "created" and entry["actor_id"] == "u-root"
    assert {"field": "name", "old": None, "new": "华东分公司"} in entry["changes"]
    changed = outbox_events("department_changed")
    assert [d["department"]["id"] for _, d in changed] == [root["id"], child["id"]]
    assert changed[1][1]["department"]["path"] == "总部 › 华东分公司"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "x", "type": "sales"}, "code"),
        ({"code": "09", "type": "sales"}, "name"),
        ({"code": "09", "name": "  ", "type": "sales"}, "name"),
        ({"code": "09", "name": "x"}, "type"),
        ({"code": "09", "name": "x", "type": "factory"}, "type"),
        ({"code": "0 9", "name": "x", "type": "sales"}, "code"),
        ({"code": "09", "name": "x", "type": "sales", "colour": "red"}, "colour"),
        ({"code": "09", "name": "x", "type": "sales", "parent_id": "d-nowhere"}, "parent_id"),
        ({"code": "09", "name": "x", "type": "sales", "manager_id": "p-nobody"}, "manager_id"),
    ],
)
def test_department_input_errors_name_the_field(admin, data, field):
    with pytest.raises(ValidationFailed) as info:
        admin.create_record("departments", data)
    assert field in info.value.field_errors


def test_a_taken_code_is_a_conflict_on_code(admin, demo):
    with pytest.raises(Conflict) as info:
        department(admin, "02", "另一个华东")
    assert info.value.details["errors"] == {"code": ["is already used by d-east"]}
    with pytest.raises(Conflict) as info:
        admin.update_record("departments", "d-north", {"code": "02", "version": 1})
    assert "code" in info.value.details["errors"]


@pytest.mark.parametrize("parent", ["d-east", "d-east-sh", "d-east-js"])
def test_a_department_cannot_move_under_itself_or_its_descendants(admin, demo, parent):
    with pytest.raises(ValidationFailed) as info:
        admin.update_record("departments", "d-east", {"parent_id": parent}, 1)
    assert "parent_id" in info.value.field_errors
    assert admin.get_record("departments", "d-east")["parent_id"] == "d-hq"


def test_rename_and_move_update_the_paths_below(admin, demo, outbox_events):
    renamed = admin.update_record("departments", "d-east", {"name": "华东大区", "version": 1})
    assert renamed["path"] == "总部 › 华东大区" and renamed["version"] == 2
    assert admin.get_record("departments", "d-east-js")["path"] == "总部 › 华东大区 › 江苏办事处"
    changed = {d["department"]["id"] for _, d in outbox_events("department_changed")}
    assert changed == {"d-east", "d-east-sh", "d-east-js"}
    js = admin.get_record("departments", "d-east-js")
    assert js["version"] == 2  # a new path is a new version
    moved = admin.update_record("departments", "d-east-js", {"parent_id": "d-north"}, 2)
    assert moved["path"] == "总部 › 华北分公司 › 江苏办事处" and moved["version"] == 3
    [entry] = changes(admin, entity_id="d-east-js", entity_type="department")
    assert entry["changes"] == [{"field": "parent_id", "old": "d-east", "new": "d-north"}]


def test_updates_need_the_version_read(admin, demo):
    with pytest.raises(ValidationFailed) as info:
        admin.update_record("departments", "d-east", {"city": "杭州"})
    assert "version" in info.value.field_errors
    with pytest.raises(ValidationFailed):
        admin.update_record("departments", "d-east", {"city": "杭州"}, "one")
    first = admin.update_record("departments", "d-east", {"city": "杭州"}, 1)
    assert first["version"] == 2
    with pytest.raises(Conflict) as info:
        admin.update_record("departments", "d-east", {"city": "南京", "version": 1})
    assert info.value.details["current_version"] == 2
    second = admin.update_record("departments", "d-east", {"city": "南京"}, "2")
    assert second["version"] == 3 and second["city"] == "南京"


def test_an_update_that_changes_nothing_keeps_the_version_and_writes_no_audit(admin, demo):
    before = len(audit(admin))
    same = admin.update_record("departments", "d-east", {"name": "华东分公司", "version": 1})
    assert same["version"] == 1
    assert len(audit(admin)) == before


def test_disable_and_enable(admin, demo, outbox_events, clock):
    disabled = admin.set_disabled("departments", "d-east-js", True)
    assert disabled["disabled"] is True and disabled["version"] == 2
    assert admin.set_disabled("departments", "d-east-js", "true")["version"] == 2
    clock.advance(seconds=1)
    enabled = admin.set_disabled("departments", "d-east-js", "false")
    assert enabled["disabled"] is False
    actions = [e["action"] for e in changes(admin, entity_id="d-east-js")]
    assert actions == ["enabled", "disabled"]
    flags = [d["department"]["disabled"] for _, d in outbox_events("department_changed")]
    assert flags == [True, False]
    with pytest.raises(ValidationFailed) as info:
        admin.set_disabled("departments", "d-east-js", "maybe")
    assert "disabled" in info.value.field_errors


# -- regions -----------------------------------------------------------------------------------
def test_region_paths_follow_renames_and_moves(admin):
    east = region(admin, "HD", "华东")
    js = region(admin, "32", "江苏", east["id"])
    sz = region(admin, "3205", "苏州", js["id"])
    assert (east["path"], js["path"], sz["path"]) == ("华东", "华东/江苏", "华东/江苏/苏州")
    admin.update_record("regions", east["id"], {"name": "华东区"}, 1)
    assert admin.get_record("regions", sz["id"])["path"] == "华东区/江苏/苏州"
    north = region(admin, "HB", "华北")
    moved = admin.update_record("regions", js["id"], {"parent_id": north["id"]}, 2)
    assert moved["path"] == "华北/江苏"
    assert admin.get_record("regions", sz["id"])["path"] == "华北/江苏/苏州"
    with pytest.raises(ValidationFailed) as info:
        admin.update_record("regions", north["id"], {"parent_id": sz["id"]}, 1)
    assert "parent_id" in info.value.field_errors


def test_region_names_are_unique_among_siblings_and_hold_no_slash(admin):
    east = region(admin, "HD", "华东")
    region(admin, "32", "江苏", east["id"])
    with pytest.raises(Conflict) as info:
        region(admin, "32b", "江苏", east["id"])
    assert "name" in info.value.details["errors"]
    north = region(admin, "HB", "华北")
    other = region(admin, "HB-JS", "江苏", north["id"])
    with pytest.raises(Conflict):
        admin.update_record("regions", other["id"], {"parent_id": east["id"]}, 1)
    with pytest.raises(Conflict):
        region(admin, "HD2", "华东")
    with pytest.raises(ValidationFailed) as info:
        region(admin, "X", "华东/江苏")
    assert "name" in info.value.field_errors
    with pytest.raises(ValidationFailed) as info:
        region(admin, "X", "苏州", "rg-nowhere")
    assert "parent_id" in info.value.field_errors


# -- people ------------------------------------------------------------------------------------
def test_people(admin, demo):
    person = admin.create_record(
        "people",
        {
            "code": "P9001",
            "name": "钱多多",
            "department_id": "d-east-sh",
            "position": "销售代表",
            "mobile": "+86 139-0188-9001",
            "email": "qian@example.com",
            "is_salesperson": True,
        },
    )
    assert person["mobile"] == "13901889001" and person["status"] == "active"
    assert person["is_service_engineer"] is False
    left = admin.update_record("people", person["id"], {"status": "left"}, 1)
    assert left["status"] == "left"
    for data, field in [
        ({"code": "P9002", "name": "x", "department_id": "d-nowhere"}, "department_id"),
        ({"code": "P9002", "name": "x", "mobile": "12345"}, "mobile"),
        ({"code": "P9002", "name": "x", "email": "not-an-email"}, "email"),
        ({"code": "P9002", "name": "x", "status": "retired"}, "status"),
    ]:
        with pytest.raises(ValidationFailed) as info:
            admin.create_record("people", data)
        assert field in info.value.field_errors
    with pytest.raises(Conflict) as info:
        admin.create_record("people", {"code": "P9001", "name": "同号"})
    assert "code" in info.value.details["errors"]


# -- users -------------------------------------------------------------------------------------
def test_create_user_never_returns_or_audits_the_password(admin, demo, db, outbox_events):
    person = admin.create_record("people", {"code": "P9001", "name": "钱多多"})
    user = admin.create_record(
        "users",
        {
            "username": "Qian.DD",
            "password": "Qian-secret-77",
            "person_id": person["id"],
            "role_ids": ["role-sales-rep", "role-sales-rep"],
        },
    )
    assert user["username"] == "Qian.DD" and user["role_ids"] == ["role-sales-rep"]
    assert user["authz_version"] == 1 and user["failed_attempts"] == 0
    assert user["locked_until"] is None and user["password_changed_at"]
    assert "password" not in user and "password_hash" not in user
    everything = json.dumps([user, audit(admin), outbox_events()], ensure_ascii=False)
    assert "Qian-secret-77" not in everything and "argon2" not in everything
    [(_, event)] = outbox_events("user_changed")
    assert event == {
        "user_id": user["id"],
        "username": "Qian.DD",
        "disabled": False,
        "authz_version": 1,
    }


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"username": "new.user"}, "password"),
        ({"username": "new.user", "password": "short1"}, "password"),
        ({"username": "new.user", "password": "no-digits-here"}, "password"),
        ({"username": "new.user", "password": "new.user-2026"}, "password"),
        ({"username": "x", "password": "Good-pass-2026"}, "username"),
        ({"username": "new user", "password": "Good-pass-2026"}, "username"),
        ({"username": "new.user", "password": "Good-pass-2026", "person_id": "p-x"}, "person_id"),
        ({"username": "new.user", "password": "Good-pass-2026", "role_ids": ["r-x"]}, "role_ids"),
        ({"username": "new.user", "password": "Good-pass-2026", "disabled": True}, "disabled"),
    ],
)
def test_user_input_errors_name_the_field(admin, demo, data, field):
    with pytest.raises(ValidationFailed) as info:
        admin.create_record("users", data)
    assert field in info.value.field_errors
    assert "Good-pass-2026" not in json.dumps(info.value.details)


def test_usernames_are_unique_regardless_of_case_and_people_have_one_user(admin, demo):
    with pytest.raises(Conflict) as info:
        admin.create_record("users", {"username": "SALES01", "password": "Good-pass-2026"})
    assert info.value.details["errors"] == {"username": ["is already used by u-sales-01"]}
    with pytest.raises(Conflict) as info:
        admin.create_record(
            "users",
            {"username": "another", "password": "Good-pass-2026", "person_id": "p-sales-01"},
        )
    assert "person_id" in info.value.details["errors"]
    with pytest.raises(Conflict):
        admin.update_record("users", "u-sales-02", {"username": "Sales01"}, 1)
    renamed = admin.update_record("users", "u-sales-01", {"username": "SALES01"}, 1)
    assert renamed["username"] == "SALES01"


def test_a_password_is_not_changed_through_update(admin, demo):
    with pytest.raises(ValidationFailed) as info:
        admin.update_record("users", "u-sales-01", {"password": "Good-pass-2026"}, 1)
    assert "password" in info.value.field_errors


def test_changing_only_the_roles_still_bumps_the_version_and_is_audited(admin, demo):
    user = admin.update_record(
        "users", "u-sales-01", {"role_ids": "role-sales-rep,role-marketing"}, 1
    )
    assert user["role_ids"] == ["role-marketing", "role-sales-rep"] and user["version"] == 2
    [entry] = changes(admin, entity_id="u-sales-01", entity_type="user")
    assert entry["changes"] == [
        {
            "field": "role_ids",
            "old": ["role-sales-rep"],
            "new": ["role-marketing", "role-sales-rep"],
        }
    ]


# -- roles and grants --------------------------------------------------------------------------
def test_roles(admin):
    role = admin.create_record(
        "roles",
        {"code": "auditor", "name": "审计", "permissions": ["customer:read", "customer:read"]},
    )
    assert role["permissions"] == ["customer:read"] and role["description"] is None
    with pytest.raises(ValidationFailed) as info:
        admin.create_record("roles", {"code": "x", "name": "x", "permissions": ["customer:fly"]})
    assert "customer:fly" in str(info.value.field_errors["permissions"])
    with pytest.raises(Conflict) as info:
        admin.create_record("roles", {"code": "auditor", "name": "又一个"})
    assert "code" in info.value.details["errors"]


def test_grants(admin, demo):
    grant = admin.create_record(
        "grants",
        {
            "name": "江苏 A 类",
            "user_id": "u-sales-02",
            "departments": [
                {"department_id": "d-east-js"},
                {"department_id": "d-east-js", "include_children": True},
            ],
            "categories": "VIP,A",
        },
    )
    assert grant["departments"] == [{"department_id": "d-east-js", "include_children": True}]
    assert grant["categories"] == ["A", "VIP"]
    assert grant["regions"] is None and grant["owner_self"] is False and grant["role_id"] is None
    updated = admin.update_record("grants", grant["id"], {"categories": None}, 1)
    assert updated["categories"] is None and updated["departments"] == grant["departments"]
    empty = admin.update_record("grants", grant["id"], {"regions": []}, 2)
    assert empty["regions"] == []


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        ({}, {"role_id", "user_id"}),
        ({"role_id": "role-admin", "user_id": "u-admin"}, {"role_id", "user_id"}),
        ({"role_id": "role-nowhere"}, {"role_id"}),
        ({"user_id": "u-nobody"}, {"user_id"}),
        ({"user_id": "u-admin", "departments": [{"department_id": "d-x"}]}, {"departments"}),
        ({"user_id": "u-admin", "regions": [{"region_id": "rg-x"}]}, {"regions"}),
        ({"user_id": "u-admin", "regions": [{"region": "rg-east"}]}, {"regions"}),
        ({"user_id": "u-admin", "categories": ["D"]}, {"categories"}),
    ],
)
def test_grant_input_errors_name_the_field(admin, demo, data, fields):
    with pytest.raises(ValidationFailed) as info:
        admin.create_record("grants", data)
    assert fields <= {path.split(".")[0] for path in info.value.field_errors}


def test_a_grant_keeps_exactly_one_holder_when_updated(admin, demo):
    with pytest.raises(ValidationFailed):
        admin.update_record("grants", "g-branch-east", {"role_id": "role-admin"}, 1)
    moved = admin.update_record(
        "grants", "g-branch-east", {"role_id": "role-branch-manager", "user_id": None}, 1
    )
    assert moved["role_id"] == "role-branch-manager" and moved["user_id"] is None


# -- lists and the audit log -------------------------------------------------------------------
def test_lists_filter_in_sql_and_page_with_cursors(admin, demo):
    ids = lambda page: [r["id"] for r in page["items"]]  # noqa: E731
    assert ids(admin.list_records("departments", {"parent_id": "d-east"})) == [
        "d-east-sh",
        "d-east-js",
    ]
    assert ids(admin.list_records("departments", {"q": "华东"})) == [
        "d-east",
        "d-east-sh",
        "d-east-js",
    ]
    assert ids(admin.list_records("regions", {"q": "华东/江"})) == ["rg-east-js"]
    assert ids(admin.list_records("people", {"department_id": "d-service"})) == [
        "p-service-mgr",
        "p-engineer-01",
    ]
    assert ids(admin.list_records("users", {"q": "王伟"})) == ["u-sales-01"]
    assert len(ids(admin.list_records("users", {"role_id": "role-sales-rep"}))) == 6
    assert ids(admin.list_records("grants", {"user_id": "u-manager-01"})) == [
        "g-manager-01-own",
        "g-manager-01-east-key",
    ]
    assert ids(admin.list_records("grants", {"role_id": "role-admin"})) == ["g-admin-all"]
    admin.set_disabled("roles", "role-marketing", True)
    assert ids(admin.list_records("roles", {"disabled": "true"})) == ["role-marketing"]
    assert len(ids(admin.list_records("roles", {"disabled": "false"}))) == 8

    seen, cursor = [], None
    while True:
        page = admin.list_records("regions", {"limit": "4", "cursor": cursor})
        seen += ids(page)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 25
    paths = [admin.get_record("regions", i)["path"] for i in seen]
    assert paths == sorted(paths)


@pytest.mark.parametrize(
    "query", [{"cursor": "garbage"}, {"limit": 0}, {"colour": "red"}, {"disabled": "maybe"}]
)
def test_bad_list_queries_are_field_errors(admin, demo, query):
    with pytest.raises(ValidationFailed) as info:
        admin.list_records("users", query)
    assert set(query) <= set(info.value.field_errors)


def test_the_audit_log_filters_and_pages_newest_first(admin, demo, clock):
    admin.update_record("roles", "role-marketing", {"description": "市场活动与线索"}, 1)
    clock.advance(minutes=1)
    admin.set_disabled("roles", "role-marketing", True)
    entries = audit(admin, entity_type="role", entity_id="role-marketing")
    assert [e["action"] for e in entries] == ["disabled", "updated", "created"]
    assert [e["actor_id"] for e in entries] == ["u-root", "u-root", None]
    assert audit(admin, actor_id="u-root", limit=1)[0]["action"] == "disabled"
    page = admin.audit_log({"limit": 50})
    assert len(page["items"]) == 50 and page["next_cursor"]
    rest = admin.audit_log({"limit": 200, "cursor": page["next_cursor"]})["items"]
    everything = {e["id"] for e in page["items"]} | {e["id"] for e in rest}
    assert len(everything) == len(page["items"]) + len(rest)
    with pytest.raises(ValidationFailed):
        admin.audit_log({"entity_type": "customer"})
