"""Function permissions and data scope on every customer use case.

A small book of customers in three offices, created by an unrestricted caller, then read and
written by callers whose grants cover part of it."""

from __future__ import annotations

import csv
import io
import json
import uuid

import pytest

from crm_common.context import Principal
from crm_common.errors import Conflict, Forbidden, NotFound, ValidationFailed

from .conftest import CUSTOMER_PERMISSIONS, SALES

EAST = ["d-east", "d-east-js", "d-east-sh"]
OUTSIDE = ["is outside your data scope"]
WRITER = ("customer:read", "customer:write", "customer:export")

REP = Principal(
    "u-sales-01", "d-east-sh", ("sales_rep",), CUSTOMER_PERMISSIONS, ({"owner": "self"},)
)
BRANCH = Principal(
    "u-branch-east", "d-east", ("branch_manager",), CUSTOMER_PERMISSIONS, ({"departments": EAST},)
)
MANAGER = Principal(
    "u-manager-01",
    "d-east",
    ("sales_manager",),
    WRITER,
    ({"owner": "self"}, {"departments": EAST, "categories": ["A", "VIP"]}),
)
MARKETING = Principal(
    "u-marketing-01", "d-marketing", ("marketing",), WRITER, ({"regions": [{"path": "华东"}]},)
)
NOBODY = Principal("u-nobody", "d-hq", (), CUSTOMER_PERMISSIONS, ())


@pytest.fixture
def book(service, act_as):
    """mine (u-sales-01's), colleague (u-sales-02's, same branch) and north (another branch),
    each with a contact and a care record; mine is related to both others."""
    act_as(SALES)
    fields = ("name", "owner_id", "department_id", "region", "category", "credit_code")
    rows = {
        "mine": (
            "上海华东机电设备有限公司",
            "u-sales-01",
            "d-east-sh",
            "华东/上海",
            "A",
            "91350100M000100Y43",
        ),
        "colleague": (
            "苏州恒达机电轴承有限公司",
            "u-sales-02",
            "d-east-js",
            "华东/江苏/苏州",
            "B",
            "914403001922038216",
        ),
        "north": (
            "北京北方机电五金有限公司",
            "u-sales-03",
            "d-north-bj",
            "华北/北京",
            "VIP",
            "9144030071526726XG",
        ),
    }
    made = {}
    for key, values in rows.items():
        made[key] = service.create_customer(dict(zip(fields, values, strict=True)), True)
        made[key]["contact"] = service.create_contact(made[key]["id"], {"name": f"{key}联系人"})
        service.add_care_record(made[key]["id"], {"kind": "visit", "date": "2026-03-01"})
    for other in ("colleague", "north"):
        made[f"rel_{other}"] = service.add_relationship(
            made["mine"]["id"], {"related_customer_id": made[other]["id"], "kind": "partner"}
        )
    return made


def ids(items):
    return sorted(item["id"] for item in items)


def every_page(service, query):
    seen, cursor = [], None
    while True:
        page = service.list_customers({**query, "cursor": cursor})
        seen += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return seen


# -- 404 exactly like a missing record -------------------------------------------------------
def _customer_calls(mine):
    return {
        "get_customer": lambda s, x: s.get_customer(x),
        "update_customer": lambda s, x: s.update_customer(x, {"industry": "轴承"}, 1),
        "customer_history": lambda s, x: s.customer_history(x),
        "list_contacts": lambda s, x: s.list_contacts(x),
        "create_contact": lambda s, x: s.create_contact(x, {"name": "王建国"}),
        "list_relationships": lambda s, x: s.list_relationships(x),
        "add_relationship": lambda s, x: s.add_relationship(
            x, {"related_customer_id": mine, "kind": "influences"}
        ),
        "add_relationship_to": lambda s, x: s.add_relationship(
            mine, {"related_customer_id": x, "kind": "influences"}
        ),
        "remove_relationship": lambda s, x: s.remove_relationship(x, str(uuid.uuid4())),
        "list_care_records": lambda s, x: s.list_care_records(x),
        "add_care_record": lambda s, x: s.add_care_record(
            x, {"kind": "call", "date": "2026-04-01"}
        ),
        "merge_as_survivor": lambda s, x: s.merge_customers(x, mine),
        "merge_as_merged": lambda s, x: s.merge_customers(mine, x),
    }


CUSTOMER_CALLS = sorted(_customer_calls("x"))


def refusal(service, call, target):
    """The NotFound a call gives, with the id asked for replaced by a placeholder."""
    with pytest.raises(NotFound) as info:
        call(service, target)
    error = info.value
    details = json.loads(json.dumps(error.details).replace(str(target), "<id>"))
    return error.message.replace(str(target), "<id>"), details


@pytest.mark.parametrize("name", CUSTOMER_CALLS)
def test_an_out_of_scope_customer_is_answered_like_a_missing_one(
    service, book, act_as, outbox_events, name
):
    call = _customer_calls(book["mine"]["id"])[name]
    before = len(outbox_events())
    act_as(REP)
    hidden = refusal(service, call, book["north"]["id"])
    assert hidden == refusal(service, call, str(uuid.uuid4()))
    assert hidden[1]["resource"] == "customer"
    if name not in ("merge_as_survivor", "merge_as_merged", "add_relationship_to"):
        # (These validate the id's form first, which tells nothing about any record.)
        assert hidden == refusal(service, call, "not-an-id")
    assert len(outbox_events()) == before
    act_as(SALES)
    north = service.get_customer(book["north"]["id"])
    assert north["version"] == 1 and north["contacts_count"] == 1
    assert len(service.list_relationships(north["id"])) == 1


@pytest.mark.parametrize(
    "name",
    ["get_contact", "update_contact", "remove_relationship"],
)
def test_out_of_scope_contacts_and_relationships_are_answered_like_missing_ones(
    service, book, act_as, name
):
    mine = book["mine"]["id"]
    calls = {
        "get_contact": (lambda s, x: s.get_contact(x), book["north"]["contact"]["id"]),
        "update_contact": (
            lambda s, x: s.update_contact(x, {"title": "经理"}, 1),
            book["north"]["contact"]["id"],
        ),
        # The relationship is mine's, but its other side is outside the caller's scope.
        "remove_relationship": (
            lambda s, x: s.remove_relationship(mine, x),
            book["rel_north"]["id"],
        ),
    }
    call, hidden_id = calls[name]
    act_as(REP)
    hidden = refusal(service, call, hidden_id)
    assert hidden == refusal(service, call, str(uuid.uuid4()))
    assert hidden == refusal(service, call, "not-an-id")
    act_as(SALES)
    assert service.get_contact(book["north"]["contact"]["id"])["title"] is None
    assert len(service.list_relationships(mine)) == 2


def test_in_scope_records_stay_usable(service, book, act_as):
    act_as(REP)
    mine = book["mine"]
    assert service.get_customer(mine["id"])["contacts_count"] == 1
    assert ids(service.list_contacts(mine["id"])) == [mine["contact"]["id"]]
    assert service.get_contact(mine["contact"]["id"])["name"] == "mine联系人"
    assert len(service.list_care_records(mine["id"])) == 1
    assert service.customer_history(mine["id"])["items"]
    updated = service.update_customer(mine["id"], {"industry": "机电设备"}, mine["version"])
    assert updated["industry"] == "机电设备"


# -- lists, searches, counts, summaries, exports ---------------------------------------------
@pytest.mark.parametrize(
    ("principal", "visible"),
    [
        (SALES, {"mine", "colleague", "north"}),
        (REP, {"mine"}),
        (BRANCH, {"mine", "colleague"}),
        (MANAGER, {"mine"}),
        (MARKETING, {"mine", "colleague"}),
        (NOBODY, set()),
    ],
)
def test_every_reading_path_shows_exactly_the_scope(service, book, act_as, principal, visible):
    expected = sorted(book[key]["id"] for key in visible)
    act_as(principal)
    assert ids(every_page(service, {"limit": 1})) == expected
    assert ids(service.list_customers({"q": "机电", "limit": 200})["items"]) == expected
    assert service.count_customers({}) == {"count": len(expected)}
    assert service.count_customers({"q": "机电"}) == {"count": len(expected)}
    summary = service.summarize_customers({})
    assert summary["total"] == len(expected)
    assert summary["by_department"] == {book[key]["department_id"]: 1 for key in visible}
    exported = list(csv.DictReader(io.StringIO(service.export_customers({})[1:])))
    assert sorted(row["code"] for row in exported) == sorted(book[k]["code"] for k in visible)
    for key in ("mine", "colleague", "north"):
        if key in visible:
            assert service.get_customer(book[key]["id"])["id"] == book[key]["id"]
        else:
            with pytest.raises(NotFound):
                service.get_customer(book[key]["id"])


def test_relationships_are_listed_only_with_visible_customers(service, book, act_as):
    mine, colleague = book["mine"]["id"], book["colleague"]["id"]
    act_as(REP)
    assert service.list_relationships(mine) == []
    act_as(BRANCH)
    [rel] = service.list_relationships(mine)
    assert rel["related_customer_id"] == colleague
    assert book["north"]["code"] not in json.dumps(service.list_relationships(mine))
    [back] = service.list_relationships(colleague)
    assert back["related_customer_id"] == mine
    with pytest.raises(NotFound):
        service.remove_relationship(mine, book["rel_north"]["id"])
    assert service.remove_relationship(colleague, book["rel_colleague"]["id"])["id"]
    act_as(SALES)
    assert [r["related_customer_id"] for r in service.list_relationships(mine)] == [
        book["north"]["id"]
    ]


def test_count_and_summary_take_the_list_filters(service, book, act_as):
    act_as(SALES)
    service.merge_customers(book["mine"]["id"], book["colleague"]["id"])
    assert service.count_customers({}) == {"count": 2}
    assert service.count_customers({"status": "merged"}) == {"count": 1}
    assert service.count_customers({"region": "华东", "category": "A,B"}) == {"count": 1}
    assert service.count_customers(None) == {"count": 2}
    assert service.summarize_customers({"status": ["potential", "merged"]}) == {
        "total": 3,
        "by_status": {"merged": 1, "potential": 2},
        "by_category": {"A": 1, "B": 1, "VIP": 1},
        "by_department": {"d-east-js": 1, "d-east-sh": 1, "d-north-bj": 1},
    }
    service.create_customer({"name": "无分类客户有限公司", "department_id": None})
    summary = service.summarize_customers({})
    assert summary["by_category"]["none"] == 1 and summary["by_department"]["none"] == 1
    for query in ({"cursor": "x"}, {"limit": 5}, {"sort": "name"}, {"status": "gone"}):
        with pytest.raises(ValidationFailed):
            service.count_customers(query)
        with pytest.raises(ValidationFailed):
            service.summarize_customers(query)


# -- mass assignment -------------------------------------------------------------------------
def refused_fields(call):
    with pytest.raises(ValidationFailed) as info:
        call()
    return info.value.field_errors


def test_create_defaults_to_the_caller_and_refuses_owners_outside_the_scope(
    service, act_as, outbox_events
):
    act_as(REP)
    assert refused_fields(
        lambda: service.create_customer({"name": "甲机电有限公司", "owner_id": "u-sales-02"})
    ) == {"owner_id": OUTSIDE}
    assert outbox_events() == []
    created = service.create_customer({"name": "甲机电有限公司"})
    assert (created["owner_id"], created["department_id"]) == ("u-sales-01", "d-east-sh")
    act_as(BRANCH)
    assert refused_fields(
        lambda: service.create_customer({"name": "乙机电有限公司", "department_id": "d-north-bj"})
    ) == {"department_id": OUTSIDE}
    assert refused_fields(
        lambda: service.create_customer({"name": "乙机电有限公司", "department_id": None})
    ) == {"department_id": OUTSIDE}
    created = service.create_customer({"name": "乙机电有限公司", "owner_id": "u-sales-02"})
    assert (created["owner_id"], created["department_id"]) == ("u-sales-02", "d-east")


def test_crossed_grants_blame_the_fields_the_write_got_wrong(service, book, act_as):
    act_as(MARKETING)
    assert refused_fields(
        lambda: service.create_customer({"name": "丙机电有限公司", "region": "华北/北京"})
    ) == {"region": OUTSIDE}
    assert refused_fields(lambda: service.create_customer({"name": "丙机电有限公司"})) == {
        "region": OUTSIDE
    }
    act_as(MANAGER)
    mine = book["mine"]
    assert refused_fields(
        lambda: service.update_customer(mine["id"], {"category": "B"}, mine["version"])
    ) == {"category": OUTSIDE}
    # Either field alone would do: a department outside the branch, or the manager as owner.
    assert refused_fields(
        lambda: service.create_customer(
            {
                "name": "丁机电有限公司",
                "owner_id": "u-sales-03",
                "department_id": "d-north-bj",
                "category": "A",
            }
        )
    ) == {"owner_id": OUTSIDE, "department_id": OUTSIDE}
    act_as(NOBODY)
    assert refused_fields(lambda: service.create_customer({"name": "戊机电有限公司"})) == {
        name: OUTSIDE for name in ("owner_id", "department_id", "region", "category")
    }


def test_reassigning_re_scopes_the_customer_at_once(service, book, act_as, outbox_events):
    mine = book["mine"]
    act_as(REP)
    assert refused_fields(
        lambda: service.update_customer(mine["id"], {"owner_id": "u-sales-02"}, mine["version"])
    ) == {"owner_id": OUTSIDE}
    act_as(BRANCH)
    assert refused_fields(
        lambda: service.update_customer(
            mine["id"], {"department_id": "d-north-bj"}, mine["version"]
        )
    ) == {"department_id": OUTSIDE}
    assert outbox_events("customer_owner_changed") == []
    moved = service.update_customer(
        mine["id"], {"owner_id": "u-sales-02", "department_id": "d-east-js"}, mine["version"]
    )
    assert moved["owner_id"] == "u-sales-02"
    act_as(REP)
    with pytest.raises(NotFound):
        service.get_customer(mine["id"])
    with pytest.raises(NotFound):
        service.get_contact(mine["contact"]["id"])
    assert service.count_customers({}) == {"count": 0}


def test_import_only_creates_and_updates_inside_the_scope(service, book, act_as):
    mine, north = book["mine"], book["north"]
    act_as(REP)
    free_code = "C2019000777"
    text = "\n".join(
        [
            "code,name,owner_id,credit_code,industry",
            ",己五金工具有限公司,u-sales-02,,",  # 2: someone else's customer
            f"{north['code']},北京改名有限公司,,,",  # 3: code of a hidden customer
            f",深圳鹏城轴承有限公司,,{north['credit_code']},",  # 4: its credit code
            f"{free_code},某新公司,,{north['credit_code']},",  # 5: same, with a free code
            f",{north['name']},,,",  # 6: its name
            f"{mine['code']},,u-sales-03,,",  # 7: giving mine away
            f"{mine['code']},,,,机电设备",  # 8: fine
            ",庚机电有限公司,,,",  # 9: fine, owned by the caller
        ]
    )
    result = service.import_customers(text)
    errors = {e["row"]: e["errors"] for e in result["errors"]}
    assert (result["created"], result["updated"]) == (1, 1)
    assert errors[2] == {"owner_id": OUTSIDE}
    assert set(errors[3]) == {"code"}
    assert (
        errors[4]
        == errors[5]
        == {"credit_code": ["already used by a customer outside your data scope"]}
    )
    assert set(errors[6]) == {"name"}
    assert errors[7] == {"owner_id": OUTSIDE}
    leaked = json.dumps(result, ensure_ascii=False)
    assert north["name"] not in leaked and north["id"] not in leaked
    assert north["code"] not in leaked and "北方" not in leaked
    act_as(SALES)
    assert service.get_customer(north["id"])["name"] == north["name"]
    assert service.get_customer(mine["id"])["owner_id"] == "u-sales-01"
    assert service.count_customers({}) == {"count": 4}


def test_an_unknown_code_and_a_hidden_one_are_refused_alike(service, book, act_as):
    act_as(REP)
    result = service.import_customers(f"code,name\nC20A,甲公司\n{book['north']['code']},乙公司\n")
    [malformed, hidden] = result["errors"]
    assert set(malformed["errors"]) == set(hidden["errors"]) == {"code"}
    assert all(
        message.startswith("no customer you can see has this code")
        for row in result["errors"]
        for message in row["errors"]["code"]
    )


# -- duplicates ------------------------------------------------------------------------------
def test_duplicates_outside_the_scope_are_reported_without_identity(service, book, act_as):
    act_as(REP)
    with pytest.raises(Conflict) as info:
        service.create_customer({"name": "北京北方机电五金股份有限公司"})
    [candidate] = info.value.details["candidates"]
    assert candidate == {"in_scope": False}
    with pytest.raises(Conflict) as info:
        service.create_customer({"name": "上海华东机电设备股份有限公司"})
    [candidate] = info.value.details["candidates"]
    assert candidate["in_scope"] is True and candidate["id"] == book["mine"]["id"]
    assert candidate["code"] == book["mine"]["code"]


def test_a_credit_code_taken_outside_the_scope_is_refused_without_identity(service, book, act_as):
    north = book["north"]
    act_as(REP)
    for call in (
        lambda: service.create_customer(
            {"name": "全新的公司", "credit_code": north["credit_code"]}, allow_duplicate=True
        ),
        lambda: service.update_customer(
            book["mine"]["id"], {"credit_code": north["credit_code"]}, 1
        ),
    ):
        with pytest.raises(Conflict) as info:
            call()
        error = info.value
        assert error.details["reason"] == "credit_code_taken"
        assert error.details["candidates"] == [{"in_scope": False}]
        text = error.message + json.dumps(error.details, ensure_ascii=False)
        assert north["id"] not in text and north["code"] not in text and "北方" not in text


# -- merge -----------------------------------------------------------------------------------
def test_merge_needs_both_customers_in_scope(service, book, act_as):
    act_as(BRANCH)
    with pytest.raises(NotFound):
        service.merge_customers(book["mine"]["id"], book["north"]["id"])
    result = service.merge_customers(book["mine"]["id"], book["colleague"]["id"])
    assert result["owner_id"] == "u-sales-01"
    assert {c["name"] for c in service.list_contacts(book["mine"]["id"])} == {
        "mine联系人",
        "colleague联系人",
    }


# -- function permissions --------------------------------------------------------------------
PERMISSION_CALLS = {
    "customer:read": {
        "get_customer": lambda s, b: s.get_customer(b["mine"]["id"]),
        "list_customers": lambda s, b: s.list_customers({}),
        "count_customers": lambda s, b: s.count_customers({}),
        "summarize_customers": lambda s, b: s.summarize_customers({}),
        "customer_history": lambda s, b: s.customer_history(b["mine"]["id"]),
        "list_contacts": lambda s, b: s.list_contacts(b["mine"]["id"]),
        "get_contact": lambda s, b: s.get_contact(b["mine"]["contact"]["id"]),
        "list_relationships": lambda s, b: s.list_relationships(b["mine"]["id"]),
        "list_care_records": lambda s, b: s.list_care_records(b["mine"]["id"]),
    },
    "customer:write": {
        "create_customer": lambda s, b: s.create_customer({"name": "新公司"}),
        "update_customer": lambda s, b: s.update_customer(b["mine"]["id"], {"industry": "x"}, 1),
        "create_contact": lambda s, b: s.create_contact(b["mine"]["id"], {"name": "王"}),
        "update_contact": lambda s, b: s.update_contact(
            b["mine"]["contact"]["id"], {"title": "x"}, 1
        ),
        "add_relationship": lambda s, b: s.add_relationship(
            b["mine"]["id"], {"related_customer_id": b["north"]["id"], "kind": "influences"}
        ),
        "remove_relationship": lambda s, b: s.remove_relationship(
            b["mine"]["id"], b["rel_north"]["id"]
        ),
        "add_care_record": lambda s, b: s.add_care_record(
            b["mine"]["id"], {"kind": "call", "date": "2026-04-01"}
        ),
    },
    "customer:merge": {
        "merge_customers": lambda s, b: s.merge_customers(b["mine"]["id"], b["colleague"]["id"])
    },
    "customer:import": {"import_customers": lambda s, b: s.import_customers("name\n新公司\n")},
    "customer:export": {"export_customers": lambda s, b: s.export_customers({})},
}
PERMISSION_CASES = [
    (permission, name) for permission, calls in PERMISSION_CALLS.items() for name in calls
]


@pytest.mark.parametrize(("permission", "name"), PERMISSION_CASES)
def test_each_use_case_needs_its_permission(service, book, act_as, permission, name):
    call = PERMISSION_CALLS[permission][name]
    others = tuple(p for p in CUSTOMER_PERMISSIONS if p != permission)
    act_as(Principal("u-admin", "d-hq", ("x",), others, ({},)))
    with pytest.raises(Forbidden) as info:
        call(service, book)
    assert info.value.details == {"permission": permission}
    act_as(Principal("u-admin", "d-hq", ("x",), (permission,), ({},)))
    call(service, book)


def test_a_missing_permission_is_told_before_whether_the_record_exists(service, act_as):
    act_as(Principal("u-reader", "d-hq", (), ("customer:read",), ({},)))
    with pytest.raises(Forbidden):
        service.update_customer(str(uuid.uuid4()), {"industry": "x"}, 1)
    with pytest.raises(NotFound):
        service.get_customer(str(uuid.uuid4()))


def test_a_region_grant_covers_whole_path_levels_only(service, make_customer, act_as):
    near = make_customer("甲机电有限公司", region="华东/江")
    below = make_customer("乙机电有限公司", region="华东/江/南通")
    make_customer("丙机电有限公司", region="华东/江苏/苏州")
    make_customer("丁机电有限公司", region="华东")
    grant = {"regions": [{"path": "华东/江", "subtree": True}]}
    act_as(Principal("u-x", None, (), WRITER, (grant,)))
    assert ids(service.list_customers({})["items"]) == sorted([near["id"], below["id"]])
    grant = {"regions": [{"path": "华东/江", "subtree": False}]}
    act_as(Principal("u-x", None, (), WRITER, (grant,)))
    assert ids(service.list_customers({})["items"]) == [near["id"]]


def history_text(service, customer_id):
    return json.dumps(service.customer_history(customer_id)["items"], ensure_ascii=False)


def test_history_does_not_name_customers_the_reader_may_not_see(service, book, act_as):
    mine = book["mine"]["id"]
    act_as(SALES)
    assert book["north"]["code"] in history_text(service, mine)
    act_as(BRANCH)
    text = history_text(service, mine)
    assert book["north"]["code"] not in text
    assert book["colleague"]["code"] in text, "visible customers stay named"
    relationship_ends = [
        (entry["new"]["from"], entry["new"]["to"])
        for entry in service.customer_history(mine)["items"]
        if entry["entity_type"] == "relationship"
    ]
    assert sorted(relationship_ends, key=str) == sorted(
        [(book["mine"]["code"], book["colleague"]["code"]), (book["mine"]["code"], None)], key=str
    )


def test_history_of_a_survivor_hides_a_merged_customer_the_reader_may_not_see(
    service, book, act_as
):
    act_as(SALES)
    service.merge_customers(book["mine"]["id"], book["north"]["id"])
    assert book["north"]["code"] in history_text(service, book["mine"]["id"])
    act_as(BRANCH)
    text = history_text(service, book["mine"]["id"])
    assert book["north"]["code"] not in text
    assert "北京北方机电五金有限公司" not in text
    assert book["north"]["id"] not in text
