"""``due_records``: what notify's scheduled rules ask the customer service for — contacts'
birthdays and customers' founding anniversaries within N days, care coming due."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from crm_common.context import Principal
from crm_common.errors import Forbidden, ValidationFailed
from crm_common.ids import BUSINESS_TZ
from crm_common.models import utcnow

from .conftest import CUSTOMER_PERMISSIONS

NOTIFY = Principal.for_service("notify")
OPERATOR = Principal(
    "u-admin", "d-east", ("admin",), ("system:admin",), ({"departments": ["d-east"]},)
)


@pytest.fixture
def people(service, make_customer):
    """Two customers (one in each branch), one disabled, with contacts born around the year
    end and on 29 February."""
    east = make_customer(
        "上海华东机电设备有限公司", department_id="d-east", established_on="2003-01-02"
    )
    north = make_customer(
        "北京北方机电有限公司",
        owner_id="u-sales-02",
        department_id="d-north",
        established_on="2010-12-31",
    )
    gone = make_customer("广州停用机电有限公司", established_on="2000-01-01")
    service.update_customer(gone["id"], {"status": "disabled"}, 1)
    contacts = {
        "wang": service.create_contact(
            east["id"], {"name": "王建国", "mobile": "13812345678", "birthday": "1975-12-30"}
        ),
        "li": service.create_contact(east["id"], {"name": "李娜", "birthday": "1988-01-03"}),
        "leap": service.create_contact(north["id"], {"name": "赵闰", "birthday": "1980-02-29"}),
        "zhou": service.create_contact(north["id"], {"name": "周明", "birthday": "1990-06-18"}),
        "none": service.create_contact(north["id"], {"name": "无生日"}),
        "gone": service.create_contact(gone["id"], {"name": "停用", "birthday": "1975-12-31"}),
    }
    return {"east": east, "north": north, "gone": gone, **contacts}


def due(service, kind, days, as_of=None):
    query = {"days": days} if as_of is None else {"days": days, "as_of": as_of}
    return service.due_records(kind, query)["items"]


def test_birthdays_across_the_year_end(service, people, act_as):
    act_as(NOTIFY)
    items = due(service, "birthdays", 5, "2026-12-29")
    assert [(i["record_id"], i["due_on"]) for i in items] == [
        (people["wang"]["id"], "2026-12-30"),
        (people["li"]["id"], "2027-01-03"),
    ]
    wang = items[0]
    assert wang == {
        "record_type": "contact",
        "record_id": people["wang"]["id"],
        "code": people["east"]["code"],
        "owner_id": "u-sales-01",
        "department_id": "d-east",
        "customer_id": people["east"]["id"],
        "due_on": "2026-12-30",
        "fields": {
            "contact_name": "王建国",
            "title": None,
            "mobile": "13812345678",
            "email": None,
            "birthday": "1975-12-30",
            "age": 51,
            "days_until": 1,
            "customer_code": people["east"]["code"],
            "customer_name": "上海华东机电设备有限公司",
            "owner_id": "u-sales-01",
        },
    }
    # the window's last day is in it, the day after is not
    assert [i["due_on"] for i in due(service, "birthdays", 4, "2026-12-30")] == [
        "2026-12-30",
        "2027-01-03",
    ]
    assert [i["due_on"] for i in due(service, "birthdays", 3, "2026-12-31")] == ["2027-01-03"]
    assert due(service, "birthdays", 2, "2026-12-31") == []


@pytest.mark.parametrize(
    ("as_of", "days", "expected"),
    [
        ("2027-02-21", 7, "2027-02-28"),  # common year: greeted on the 28th
        ("2027-02-28", 0, "2027-02-28"),
        ("2027-03-01", 30, None),
        ("2028-02-22", 7, "2028-02-29"),  # leap year: on the day
        ("2028-02-28", 0, None),
    ],
)
def test_a_birthday_on_29_february(service, people, act_as, as_of, days, expected):
    act_as(NOTIFY)
    found = [i["due_on"] for i in due(service, "birthdays", days, as_of)]
    assert found == ([expected] if expected else [])


def test_founding_anniversaries(service, people, act_as):
    act_as(NOTIFY)
    items = due(service, "founding_anniversaries", 7, "2026-12-28")
    assert [(i["record_id"], i["due_on"], i["fields"]["years"]) for i in items] == [
        (people["north"]["id"], "2026-12-31", 16),
        (people["east"]["id"], "2027-01-02", 24),
    ]
    north = items[0]
    assert north["record_type"] == "customer"
    assert north["customer_id"] == north["record_id"] == people["north"]["id"]
    assert (north["code"], north["owner_id"], north["department_id"]) == (
        people["north"]["code"],
        "u-sales-02",
        "d-north",
    )
    assert north["fields"]["customer_name"] == "北京北方机电有限公司"
    assert north["fields"]["established_on"] == "2010-12-31"
    # the disabled customer founded on 1 January is left out
    assert due(service, "founding_anniversaries", 0, "2027-01-01") == []


def test_care_is_never_due(service, people, act_as):
    service.add_care_record(
        people["east"]["id"], {"kind": "visit", "date": (date.today() + timedelta(3)).isoformat()}
    )
    act_as(NOTIFY)
    assert due(service, "care_due", 30) == []


def test_today_is_the_business_day_unless_given(service, people, act_as):
    today = utcnow().astimezone(BUSINESS_TZ).date()
    born = today.replace(year=1988)  # a leap year: any day of the year, 29 February too
    made = service.create_contact(
        people["east"]["id"], {"name": "今天", "birthday": born.isoformat()}
    )
    act_as(NOTIFY)
    items = due(service, "birthdays", 0)
    assert [i["due_on"] for i in items if i["record_id"] == made["id"]] == [today.isoformat()]
    assert {i["due_on"] for i in items} == {today.isoformat()}


def test_an_operator_sees_the_records_of_their_scope(service, people, act_as):
    act_as(OPERATOR)
    items = due(service, "birthdays", 366, "2026-06-01")
    assert {i["customer_id"] for i in items} == {people["east"]["id"]}


@pytest.mark.parametrize(
    "caller",
    [
        Principal("u-sales-01", "d-east", ("sales",), CUSTOMER_PERMISSIONS, ({},)),
        Principal("u-x", "d-east", (), ("customer:read", "customer:snapshot:read"), ({},)),
    ],
    ids=["a salesperson", "a user holding the snapshot permission"],
)
def test_refused_to_a_plain_user(service, people, act_as, caller):
    act_as(caller)
    with pytest.raises(Forbidden):
        service.due_records("birthdays", {"days": 7})


@pytest.mark.parametrize(
    ("kind", "query", "field"),
    [
        ("anniversaries", {"days": 7}, "kind"),
        (None, {"days": 7}, "kind"),
        ("birthdays", {}, "days"),
        ("birthdays", {"days": -1}, "days"),
        ("birthdays", {"days": 367}, "days"),
        ("birthdays", {"days": "7"}, "days"),
        ("birthdays", {"days": 7.5}, "days"),
        ("founding_anniversaries", {"days": None}, "days"),
        ("care_due", {"days": 7, "as_of": "next week"}, "as_of"),
        ("birthdays", {"days": 7, "hours": 3}, "hours"),
    ],
)
def test_bad_questions_are_refused_on_the_field(service, act_as, kind, query, field):
    act_as(NOTIFY)
    with pytest.raises(ValidationFailed) as info:
        service.due_records(kind, query)
    assert list(info.value.field_errors) == [field]
