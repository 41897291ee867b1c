"""The customer snapshot other services catch up from: every customer and contact, page by
page, as their events carry them, only for a service holding ``customer:snapshot:read``."""

import pytest

from crm_common.context import Principal
from crm_common.errors import Forbidden, ValidationFailed


def whole(service, kind, limit):
    items, cursor = [], None
    while True:
        page = service.customer_snapshot(kind, cursor, limit)
        assert len(page["items"]) <= limit
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


def test_the_sales_service_pages_through_every_customer_and_contact(service, make_customer, act_as):
    made = [make_customer(f"华东机电{n}号有限公司", region="华东/上海") for n in range(7)]
    service.merge_customers(made[0]["id"], made[1]["id"])
    contact = service.create_contact(made[2]["id"], {"name": "王经理", "mobile": "13812345678"})
    act_as(Principal.for_service("sales"))

    customers = {c["id"]: c for c in whole(service, "customers", limit=3)}
    contacts = whole(service, "contacts", limit=2)

    assert set(customers) == {c["id"] for c in made}
    assert customers[made[1]["id"]]["status"] == "merged"
    assert customers[made[1]["id"]]["merged_into_id"] == made[0]["id"]
    assert {"code", "name", "status", "category", "region", "owner_id", "version"} <= set(
        customers[made[3]["id"]]
    )
    assert [(c["id"], c["customer_id"], c["mobile"]) for c in contacts] == [
        (contact["id"], made[2]["id"], "13812345678")
    ]


@pytest.mark.parametrize(
    "caller",
    [
        Principal("u-admin", permissions=("customer:read", "customer:snapshot:read")),
        Principal.for_service("gateway"),
    ],
    ids=["a user, whatever they hold", "a service without the permission"],
)
def test_only_a_service_holding_snapshot_read_gets_it(service, act_as, caller):
    act_as(caller)
    with pytest.raises(Forbidden):
        service.customer_snapshot("customers")


def test_the_kind_and_cursor_are_checked(service, act_as):
    act_as(Principal.for_service("sales"))
    with pytest.raises(ValidationFailed) as info:
        service.customer_snapshot("relationships")
    assert set(info.value.field_errors) == {"kind"}
    with pytest.raises(ValidationFailed) as info:
        service.customer_snapshot("customers", "not-a-cursor")
    assert set(info.value.field_errors) == {"cursor"}
