import datetime as dt
import enum
import uuid
from decimal import Decimal

from crm_common.history import FieldChange, created, diff, filled, jsonable, snapshot


class Colour(enum.Enum):
    RED = "red"


def test_jsonable_turns_values_into_json_and_empties_into_none():
    uid = uuid.uuid4()
    assert jsonable(uid) == str(uid)
    assert jsonable(Decimal("1.50")) == "1.50"
    assert jsonable(Colour.RED) == "red"
    assert jsonable(dt.date(2026, 5, 1)) == "2026-05-01"
    assert jsonable({1: {3, 2}, "t": (uid,)}) == {"1": [2, 3], "t": [str(uid)]}
    assert [jsonable(v) for v in ("", [], {}, set(), None)] == [None] * 5
    assert [jsonable(v) for v in (0, False, "x")] == [0, False, "x"]


def test_snapshot_reads_attributes_as_json():
    class Record:
        name, tags, at = "华东", ("a",), dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC)

    assert snapshot(Record, ("name", "tags", "at")) == {
        "name": "华东",
        "tags": ["a"],
        "at": "2026-01-02T03:04:00+00:00",
    }


def test_diff_reports_changed_fields_in_order_and_empty_values_as_none():
    before = {"name": "甲", "phone": "", "note": "x", "roles": ["a"]}
    after = {"name": "乙", "phone": None, "note": "", "roles": ["a"]}
    assert diff(before, after) == [
        FieldChange("name", "甲", "乙"),
        FieldChange("note", "x", None),
    ]
    assert diff(before, before) == []


def test_diff_compares_declared_set_fields_unordered_and_reports_them_sorted():
    before, after = {"tags": ["b", "a"]}, {"tags": ["a", "b"]}
    assert diff(before, after) == [FieldChange("tags", ["b", "a"], ["a", "b"])]
    assert diff(before, after, unordered={"tags"}) == []
    [change] = diff({"tags": ["c", "a"]}, {"tags": ["b", "c"]}, unordered={"tags"})
    assert change.as_dict() == {"field": "tags", "old": ["a", "c"], "new": ["b", "c"]}


def test_diff_only_looks_at_the_fields_asked_for():
    before, after = {"a": 1, "b": 1}, {"a": 2, "b": 2}
    assert diff(before, after, ["b", "missing"]) == [FieldChange("b", 1, 2)]


def test_a_new_record_lists_only_the_fields_that_have_a_value():
    values = {"name": "x", "parent_id": None, "tags": [], "code": "", "active": False}
    assert filled(values) == {"name": "x", "active": False}
    assert filled(values, ["name", "tags"]) == {"name": "x"}
    assert created(values) == [FieldChange("name", None, "x"), FieldChange("active", None, False)]
