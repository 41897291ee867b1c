"""People in the org structure other services copy: the people snapshot and ``person_changed``,
each person with the user account linked to them."""

from .conftest import act_as
from .test_structure import CUSTOMER_SERVICE, whole

SALES_SERVICE = ("service:sales", "org:structure:read")


def test_a_service_pages_through_every_person_with_their_user(service, demo):
    act_as("u-root", "org:admin")
    service.set_disabled("people", "p-sales-06", True)
    act_as(*SALES_SERVICE)
    people = {person["id"]: person for person in whole(service, "people", limit=5)}
    act_as(*CUSTOMER_SERVICE)
    assert {person["id"] for person in whole(service, "people", limit=50)} == set(people)

    sales = people["p-sales-01"]
    assert (sales["user_id"], sales["department_id"], sales["code"]) == (
        "u-sales-01",
        "d-east-sh",
        "P0103",
    )
    assert {"name", "mobile", "email", "status", "disabled", "version", "updated_at"} <= set(sales)
    assert people["p-ceo"]["user_id"] == "u-ceo"
    assert people["p-marketing-mgr"]["user_id"] is None  # no account of their own
    assert people["p-sales-06"]["disabled"] is True


def test_person_changes_are_published_with_their_user(admin, demo, outbox_events):
    created = admin.create_record("people", {"code": "P9001", "name": "钱多多"})
    admin.update_record("people", created["id"], {"department_id": "d-east-sh"}, 1)
    admin.set_disabled("people", created["id"], True)

    published = [data["person"] for _, data in outbox_events("person_changed")]
    assert [(p["id"], p["version"]) for p in published] == [
        (created["id"], 1),
        (created["id"], 2),
        (created["id"], 3),
    ]
    assert published[0]["user_id"] is None and published[0]["name"] == "钱多多"
    assert published[1]["department_id"] == "d-east-sh"
    assert published[2]["disabled"] is True


def test_moving_a_user_to_another_person_announces_both_people_with_newer_versions(
    admin, demo, outbox_events
):
    spare = admin.create_record("people", {"code": "P9002", "name": "孙小美"})
    user = admin.create_record(
        "users", {"username": "sun.xm", "password": "Sun-secret-2026", "person_id": spare["id"]}
    )
    gained = outbox_events("person_changed")[-1][1]["person"]
    assert (gained["id"], gained["user_id"], gained["version"]) == (spare["id"], user["id"], 2)

    admin.update_record("users", user["id"], {"person_id": None}, user["version"])
    before = admin.get_record("people", "p-sales-02")
    moved = admin.get_record("users", "u-sales-02")
    admin.update_record("users", "u-sales-02", {"person_id": spare["id"]}, moved["version"])

    freed, left, taken = [data["person"] for _, data in outbox_events("person_changed")][-3:]
    assert (freed["id"], freed["user_id"], freed["version"]) == (spare["id"], None, 3)
    assert (left["id"], left["user_id"]) == ("p-sales-02", None)
    assert left["version"] == before["version"] + 1
    assert (taken["id"], taken["user_id"], taken["version"]) == (spare["id"], "u-sales-02", 4)
