import datetime as dt
import uuid
from dataclasses import replace

import pytest
from sqlalchemy.exc import IntegrityError

from crm_common.errors import Conflict, NotFound, ValidationFailed
from customer.models import Contact

from .conftest import SALES


def test_contact_mobile_is_normalized_and_the_first_contact_is_primary(
    service, make_customer, outbox_events
):
    customer = make_customer()
    contact = service.create_contact(
        customer["id"],
        {
            "name": "王建国",
            "title": "采购经理",
            "mobile": "+86 138-1234-5678",
            "email": "wang.jg@huadong-jd.com",
            "birthday": "1978-05-12",
            "purchase_role": "decision_maker",
        },
    )
    assert contact["mobile"] == "13812345678"
    assert contact["is_primary"] is True
    assert contact["birthday"] == "1978-05-12"
    assert contact["customer_id"] == customer["id"]
    [(_, event)] = outbox_events("contact_created")
    assert event["contact"]["id"] == contact["id"]
    assert service.get_contact(contact["id"]) == contact


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "李四", "mobile": "12345678901"}, "mobile"),
        ({"name": "李四", "mobile": "+852 9123 4567"}, "mobile"),
        ({"name": "李四", "email": "not-an-email"}, "email"),
        (
            {"name": "李四", "birthday": (dt.date.today() + dt.timedelta(days=1)).isoformat()},
            "birthday",
        ),
        ({"name": "李四", "purchase_role": "boss"}, "purchase_role"),
        ({"mobile": "13812345678"}, "name"),
        ({"name": "李四", "wechat": "x"}, "wechat"),
    ],
)
def test_contact_validation(service, make_customer, data, field):
    customer = make_customer()
    with pytest.raises(ValidationFailed) as info:
        service.create_contact(customer["id"], data)
    assert field in info.value.field_errors


def test_contacts_of_an_unknown_customer_are_not_found(service):
    with pytest.raises(NotFound):
        service.create_contact(str(uuid.uuid4()), {"name": "李四"})
    with pytest.raises(NotFound):
        service.list_contacts(str(uuid.uuid4()))
    with pytest.raises(NotFound):
        service.get_contact(str(uuid.uuid4()))


def test_at_most_one_primary_contact(service, make_customer):
    customer = make_customer()
    first = service.create_contact(customer["id"], {"name": "王建国"})
    second = service.create_contact(customer["id"], {"name": "李红"})
    assert (first["is_primary"], second["is_primary"]) == (True, False)
    third = service.create_contact(customer["id"], {"name": "赵敏", "is_primary": True})
    assert third["is_primary"]
    contacts = service.list_contacts(customer["id"])
    assert [c["name"] for c in contacts if c["is_primary"]] == ["赵敏"]
    assert contacts[0]["name"] == "赵敏"
    promoted = service.update_contact(second["id"], {"is_primary": True}, second["version"])
    assert promoted["is_primary"]
    assert [c["name"] for c in service.list_contacts(customer["id"]) if c["is_primary"]] == ["李红"]
    history = service.customer_history(customer["id"])["items"]
    assert any(
        h["entity_id"] == third["id"] and h["field"] == "is_primary" and h["new"] is False
        for h in history
    )


def test_the_database_refuses_a_second_primary(db, service, make_customer):
    customer = make_customer()
    service.create_contact(customer["id"], {"name": "王建国"})
    with pytest.raises(IntegrityError), db.session() as session:
        session.add(Contact(customer_id=uuid.UUID(customer["id"]), name="x", is_primary=True))
        session.flush()


def test_update_contact_with_version_and_event(service, make_customer, outbox_events):
    customer = make_customer()
    contact = service.create_contact(customer["id"], {"name": "王建国", "title": "采购员"})
    updated = service.update_contact(contact["id"], {"title": "采购经理"}, contact["version"])
    assert updated["title"] == "采购经理" and updated["version"] == contact["version"] + 1
    [(_, event)] = outbox_events("contact_updated")
    assert event["changes"] == [{"field": "title", "old": "采购员", "new": "采购经理"}]
    with pytest.raises(Conflict):
        service.update_contact(contact["id"], {"title": "总经理"}, contact["version"])


# -- relationships -------------------------------------------------------------------------
def test_relationships_read_from_both_sides(service, make_customer):
    group = make_customer("华东机电集团有限公司")
    branch = make_customer("苏州华东机电销售有限公司")
    added = service.add_relationship(
        branch["id"], {"related_customer_id": group["id"], "kind": "parent", "note": "全资子公司"}
    )
    assert added["related_customer_code"] == group["code"]
    assert (added["kind"], added["direction"]) == ("parent", "outgoing")
    [from_group] = service.list_relationships(group["id"])
    assert from_group["related_customer_id"] == branch["id"]
    assert (from_group["kind"], from_group["direction"]) == ("subsidiary", "incoming")
    assert from_group["note"] == "全资子公司" and from_group["created_by"] == "u-sales-01"


def test_relationship_rules(service, make_customer):
    a = make_customer("甲机电有限公司")
    b = make_customer("乙五金有限公司")
    with pytest.raises(ValidationFailed) as info:
        service.add_relationship(a["id"], {"related_customer_id": a["id"], "kind": "partner"})
    assert "related_customer_id" in info.value.field_errors
    with pytest.raises(ValidationFailed) as info:
        service.add_relationship(a["id"], {"related_customer_id": b["id"], "kind": "friend"})
    assert "kind" in info.value.field_errors
    with pytest.raises(NotFound):
        service.add_relationship(
            a["id"], {"related_customer_id": str(uuid.uuid4()), "kind": "partner"}
        )
    service.add_relationship(a["id"], {"related_customer_id": b["id"], "kind": "partner"})
    with pytest.raises(Conflict):
        service.add_relationship(b["id"], {"related_customer_id": a["id"], "kind": "partner"})
    service.add_relationship(a["id"], {"related_customer_id": b["id"], "kind": "influences"})
    service.add_relationship(b["id"], {"related_customer_id": a["id"], "kind": "influences"})
    assert len(service.list_relationships(a["id"])) == 3


def test_remove_relationship(service, make_customer):
    a = make_customer("甲机电有限公司")
    b = make_customer("乙五金有限公司")
    c = make_customer("丙轴承有限公司")
    rel = service.add_relationship(a["id"], {"related_customer_id": b["id"], "kind": "partner"})
    with pytest.raises(NotFound):
        service.remove_relationship(c["id"], rel["id"])
    removed = service.remove_relationship(b["id"], rel["id"])
    assert removed["id"] == rel["id"]
    assert service.list_relationships(a["id"]) == []
    with pytest.raises(NotFound):
        service.remove_relationship(a["id"], rel["id"])
    changes = [h["change"] for h in service.customer_history(a["id"])["items"]]
    assert "removed" in changes


# -- care ----------------------------------------------------------------------------------
def test_care_records(service, make_customer, act_as):
    customer = make_customer()
    other = make_customer("乙五金有限公司")
    contact = service.create_contact(customer["id"], {"name": "王建国", "birthday": "1978-05-12"})
    stranger = service.create_contact(other["id"], {"name": "李四"})
    birthday = service.add_care_record(
        customer["id"],
        {"kind": "birthday", "date": "2026-05-12", "contact_id": contact["id"], "note": "生日蛋糕"},
    )
    assert birthday["by_user_id"] == "u-sales-01"
    festival = {"kind": "festival", "date": "2026-09-25", "note": "中秋月饼"}
    # Naming someone else needs customer:care-on-behalf, which a salesperson lacks.
    with pytest.raises(ValidationFailed) as info:
        service.add_care_record(customer["id"], {**festival, "by_user_id": "u-sales-02"})
    assert set(info.value.field_errors) == {"by_user_id"}
    assert len(service.list_care_records(customer["id"])) == 1
    act_as(replace(SALES, permissions=(*SALES.permissions, "customer:care-on-behalf")))
    service.add_care_record(customer["id"], {**festival, "by_user_id": "u-sales-02"})
    records = service.list_care_records(customer["id"])
    assert [r["kind"] for r in records] == ["festival", "birthday"]
    assert records[0]["by_user_id"] == "u-sales-02"
    with pytest.raises(ValidationFailed) as info:
        service.add_care_record(
            customer["id"], {"kind": "gift", "date": "2026-01-01", "contact_id": stranger["id"]}
        )
    assert "contact_id" in info.value.field_errors
    with pytest.raises(ValidationFailed) as info:
        service.add_care_record(customer["id"], {"kind": "party", "date": "someday"})
    assert {"kind", "date"} <= set(info.value.field_errors)


# -- history -------------------------------------------------------------------------------
def test_history_pages_newest_first(service, make_customer):
    customer = make_customer()
    version = customer["version"]
    for i in range(5):
        version = service.update_customer(customer["id"], {"industry": f"行业{i}"}, version)[
            "version"
        ]
    seen, cursor = [], None
    while True:
        page = service.customer_history(customer["id"], cursor=cursor, limit=2)
        seen += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 6 == len({h["id"] for h in seen})
    assert seen[-1]["change"] == "created"
    assert [h["new"] for h in seen[:5]] == [f"行业{i}" for i in range(4, -1, -1)]
    with pytest.raises(NotFound):
        service.customer_history(str(uuid.uuid4()))
