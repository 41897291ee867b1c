"""Notify's copy of org's people and departments: mobiles in the 11-digit form, newer versions
only, managers found up the chart, caught up from org's snapshot page by page, read once."""

from __future__ import annotations

from typing import Any

from crm_common.db import SessionScope
from notify.application.catch_up import CatchUp
from notify.application.read_models import ReadModels, email_or_none, mobile_or_none
from notify.repository import rules as repository

from . import rules_support
from .rules_support import NOW

db = rules_support.db


def test_recipients_contact_details_are_normalised(db):
    with db.session() as session:
        admin = repository.person(session, "u-admin")
        sales = repository.person(session, "u-sales-01")
        other = repository.person(session, "u-sales-02")
        left = repository.person(session, "u-left")
    assert admin is not None and admin.mobile == "13901880002" and admin.active
    assert sales is not None and sales.email == "Zhang@example.com"
    assert sales.mobile == "13901880301" and sales.department_id == "d-east-sh"
    assert other is not None and other.mobile is None  # not a mainland mobile: never texted
    assert left is not None and not left.active
    assert (
        mobile_or_none("０１３９") is None and mobile_or_none("＋86 13812345678") == "13812345678"
    )
    assert email_or_none("no-at-sign") is None and email_or_none("a b@x.cn") is None


def test_an_older_version_never_overwrites_a_newer_one(db):
    person = {
        "id": "p-sales-01",
        "user_id": "u-sales-01",
        "code": "P1",
        "name": "张伟（新）",
        "department_id": "d-east-js",
        "mobile": "13901880309",
        "email": "zw@example.com",
    }
    with db.session() as session:
        assert ReadModels(session, NOW).keep_person({**person, "version": 3})
        assert not ReadModels(session, NOW).keep_person({**person, "version": 2, "name": "旧"})
        assert not ReadModels(session, NOW).keep_person({**person, "version": 3, "name": "同"})
    with db.session() as session:
        moved = repository.person(session, "u-sales-01")
    assert moved is not None and moved.name == "张伟（新）" and moved.department_id == "d-east-js"


def test_the_manager_is_the_nearest_active_one_up_the_chart(db):
    with db.session() as session:
        office = repository.manager_of(session, "d-east-sh")
        branch = repository.manager_of(session, "d-east")
        ReadModels(session, NOW).keep_person(
            {
                "id": "p-branch-east",
                "version": 2,
                "user_id": "u-branch-east",
                "code": "P",
                "name": "李华东",
                "department_id": "d-east",
                "disabled": True,
            }
        )
    with db.session() as session:
        after = repository.manager_of(session, "d-east-sh")
        nobody = repository.manager_of(session, "d-unknown")
    assert office is not None and office.user_id == "u-branch-east"
    assert branch is not None and branch.user_id == "u-branch-east"
    assert after is not None and after.user_id == "u-ceo"  # the branch manager left
    assert nobody is None


class Org:
    """Org's ``structure_snapshot`` as notify's RPC proxy sees it: pages of two."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.rows = {
            "departments": [
                {
                    "id": "d-new",
                    "version": 1,
                    "code": "09",
                    "name": "西北办事处",
                    "path": "总部 › 西北",
                }
            ],
            "people": [
                {
                    "id": f"p-new-{n}",
                    "version": 1,
                    "user_id": f"u-new-{n}",
                    "code": f"N{n}",
                    "name": f"新人{n}",
                    "department_id": "d-new",
                    "mobile": f"1390188100{n}",
                }
                for n in range(5)
            ]
            + [{"id": "broken", "version": 1}],
        }

    def structure_snapshot(self, kind: str, cursor: Any, limit: int) -> dict[str, Any]:
        self.calls.append((kind, cursor))
        start = int(cursor or 0)
        rows = self.rows[kind][start : start + 2]
        more = start + 2 < len(self.rows[kind])
        return {"items": rows, "next_cursor": str(start + 2) if more else None}


def test_a_fresh_database_catches_up_from_orgs_snapshot_once(db: SessionScope):
    catch_up = CatchUp(db)
    assert catch_up.pending_services() == ["org"]
    org = Org()
    kept = catch_up.read("org", org)
    assert kept == {"org.departments": 1, "org.people": 5}  # the broken row left out
    assert [call for call in org.calls if call[0] == "people"] == [
        ("people", None),
        ("people", "2"),
        ("people", "4"),
    ]
    assert catch_up.pending() == []
    with db.session() as session:
        people = repository.people_in_department(session, "d-new", include_children=False)
    assert sorted(person.user_id for person in people) == [f"u-new-{n}" for n in range(5)]
