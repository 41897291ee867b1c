"""Sales targets through the sales service: set by holders of sales:admin per person or
department and month or quarter, read within the reader's data scope."""

from __future__ import annotations

import pytest

from crm_common.errors import Conflict, Forbidden, NotFound, ValidationFailed

from .sample_org import ADMIN, COLLEAGUE, MANAGER, SALES


@pytest.fixture
def target(service, act_as):
    def make(subject_id="p-sales-01", period="2026-03", amount="100000", subject_type="person"):
        act_as(ADMIN)
        made = service.create_target(
            {
                "subject_type": subject_type,
                "subject_id": subject_id,
                "period": period,
                "amount": amount,
            }
        )
        act_as(SALES)
        return made

    return make


def test_admins_set_change_and_remove_targets(service, act_as):
    with pytest.raises(Forbidden):
        service.create_target(
            {"subject_type": "person", "subject_id": "p-sales-01", "period": "2026-03", "amount": 1}
        )
    act_as(ADMIN)
    made = service.create_target(
        {
            "subject_type": "person",
            "subject_id": "p-sales-01",
            "period": "2026-q1",
            "amount": "300000.005",
        }
    )
    assert (made["subject_name"], made["period"], made["amount"], made["currency"]) == (
        "张伟",
        "2026-Q1",
        "300000.01",
        "CNY",
    )
    with pytest.raises(Conflict) as caught:
        service.create_target(
            {"subject_type": "person", "subject_id": "p-sales-01", "period": "2026-Q1", "amount": 1}
        )
    assert caught.value.details == {"reason": "target_exists", "id": made["id"]}
    changed = service.update_target(made["id"], {"amount": "320000"}, 1)
    assert (changed["amount"], changed["version"]) == ("320000.00", 2)
    with pytest.raises(Conflict):
        service.update_target(made["id"], {"amount": "1"}, 1)
    assert service.get_target(made["id"])["amount"] == "320000.00"
    service.delete_target(made["id"])
    with pytest.raises(NotFound):
        service.get_target(made["id"])


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"period": "2026-13"}, "period"),
        ({"period": "2026-Q5"}, "period"),
        ({"period": "26-03"}, "period"),
        ({"subject_id": "p-nobody"}, "subject_id"),
        ({"subject_type": "team"}, "subject_type"),
        ({"amount": "-5"}, "amount"),
        ({"amount": 12.5}, "amount"),
    ],
)
def test_refusals_name_the_field(service, act_as, fields, field):
    act_as(ADMIN)
    data = {"subject_type": "person", "subject_id": "p-sales-01", "period": "2026-03"}
    with pytest.raises(ValidationFailed) as caught:
        service.create_target({**data, "amount": "1000", **fields})
    assert list(caught.value.field_errors) == [field]


def test_targets_are_read_within_the_readers_scope(service, target, act_as):
    mine = target("p-sales-01", "2026-03")
    theirs = target("p-sales-02", "2026-03")
    office = target("d-east-sh", "2026-Q1", subject_type="department")
    region = target("d-east", "2026-Q1", subject_type="department")

    def ids(**query):
        return [t["id"] for t in service.list_targets(query)["items"]]

    assert ids() == [mine["id"]]
    with pytest.raises(NotFound):
        service.get_target(theirs["id"])
    act_as(COLLEAGUE)
    assert ids() == [theirs["id"]]
    act_as(MANAGER)
    assert set(ids()) == {mine["id"], theirs["id"], office["id"]}
    assert ids(subject_type="department") == [office["id"]]
    assert ids(period="2026-03,2026-04") == [mine["id"], theirs["id"]]
    assert ids(year=2026, subject_id="p-sales-02") == [theirs["id"]]
    assert ids(year=2025) == []
    act_as(ADMIN)
    assert region["id"] in ids()
    assert service.list_targets({"subject_type": "department"})["items"][0]["subject_name"]
