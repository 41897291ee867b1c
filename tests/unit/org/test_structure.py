"""The org structure snapshot other services catch up from, and the region events."""

import pytest

from crm_common.errors import Forbidden, ValidationFailed

from .conftest import act_as

CUSTOMER_SERVICE = ("service:customer", "org:structure:read")


def whole(service, kind, limit=7):
    items, cursor = [], None
    while True:
        page = service.structure_snapshot(kind, cursor, limit)
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


def test_a_service_pages_through_every_department_and_region(service, demo, db):
    act_as("u-root", "org:admin")
    service.set_disabled("departments", "d-north-tj", True)
    act_as(*CUSTOMER_SERVICE)
    departments = whole(service, "departments")
    regions = whole(service, "regions")
    assert len(departments) == 13 and len(regions) == 25
    by_id = {d["id"]: d for d in departments}
    assert by_id["d-east-sh"]["path"] == "总部 › 华东分公司 › 上海办事处"
    assert by_id["d-east-sh"]["parent_id"] == "d-east"
    assert by_id["d-north-tj"]["disabled"] is True
    jiangsu = next(r for r in regions if r["id"] == "rg-east-js")
    assert (jiangsu["path"], jiangsu["parent_id"], jiangsu["disabled"]) == (
        "华东/江苏",
        "rg-east",
        False,
    )


@pytest.mark.parametrize(
    "caller",
    [
        ("u-admin", "org:admin", "org:structure:read"),  # a user, whatever they hold
        ("service:gateway", "org:sessions:read"),  # a service without the permission
    ],
)
def test_only_a_service_holding_structure_read_gets_the_snapshot(service, demo, caller):
    act_as(*caller)
    with pytest.raises(Forbidden):
        service.structure_snapshot("departments")


def test_the_snapshot_kind_is_checked(service, demo):
    act_as(*CUSTOMER_SERVICE)
    with pytest.raises(ValidationFailed) as info:
        service.structure_snapshot("users")
    assert set(info.value.field_errors) == {"kind"}


def test_region_changes_are_published_with_what_a_consumer_needs(admin, demo, outbox_events):
    created = admin.create_record(
        "regions", {"code": "32-05", "name": "苏州", "parent_id": "rg-east-js"}
    )
    east = admin.get_record("regions", "rg-east")
    admin.update_record("regions", "rg-east", {"name": "华东区"}, east["version"])
    admin.set_disabled("regions", created["id"], True)
    events = [data["region"] for _, data in outbox_events("region_changed")]
    first = events[0]
    assert {"id", "code", "name", "parent_id", "path", "disabled", "version"} <= set(first)
    assert first["path"] == "华东/江苏/苏州"
    renamed = {e["id"]: e["path"] for e in events[1:-1]}
    assert renamed["rg-east"] == "华东区" and renamed[created["id"]] == "华东区/江苏/苏州"
    assert events[-1]["id"] == created["id"] and events[-1]["disabled"] is True
