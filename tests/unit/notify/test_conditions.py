"""Conditions of alert rules: validation with field paths, evaluation without eval, Decimal-aware
comparison; templates rendered from the record's fields and nothing else."""

from decimal import Decimal

import pytest

from notify.domain import conditions, templates
from notify.domain.conditions import holds, validate

RECORD = {
    "days_overdue": 31,
    "outstanding": "1234.50",
    "credit_used_percent": "92.00",
    "status": "open",
    "customer": {"name": "华东机电设备有限公司", "category": "A"},
    "tags": ["vip", "华东"],
    "due_on": "2026-11-01",
    "disabled": False,
    "note": None,
    "lines": [{"amount": "10.00"}, {"amount": "20"}],
}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (None, True),
        ({}, True),
        ({"field": "days_overdue", "op": ">=", "value": 30}, True),
        ({"field": "days_overdue", "op": ">=", "value": 32}, False),
        ({"field": "days_overdue", "op": "=", "value": "31"}, True),
        ({"field": "days_overdue", "op": "=", "value": "31.00"}, True),
        ({"field": "outstanding", "op": ">", "value": 1234.49}, True),
        ({"field": "outstanding", "op": ">", "value": "1234.5"}, False),
        ({"field": "outstanding", "op": "=", "value": "1234.5"}, True),
        ({"field": "outstanding", "op": "<", "value": "10000"}, True),
        ({"field": "outstanding", "op": "<=", "value": "999.99"}, False),
        ({"field": "credit_used_percent", "op": ">=", "value": 90}, True),
        ({"field": "status", "op": "!=", "value": "paid"}, True),
        ({"field": "status", "op": "in", "value": ["open", "partial"]}, True),
        ({"field": "status", "op": "not_in", "value": ["open", "partial"]}, False),
        ({"field": "customer.category", "op": "in", "value": ["A", "VIP"]}, True),
        ({"field": "customer.name", "op": "contains", "value": "华东"}, True),
        ({"field": "customer.name", "op": "contains", "value": "华北"}, False),
        ({"field": "tags", "op": "contains", "value": "vip"}, True),
        ({"field": "tags", "op": "contains", "value": "svip"}, False),
        ({"field": "due_on", "op": "<", "value": "2026-12-01"}, True),
        ({"field": "lines.1.amount", "op": "=", "value": 20}, True),
        ({"field": "note", "op": "exists"}, False),
        ({"field": "note", "op": "exists", "value": False}, True),
        ({"field": "status", "op": "exists", "value": True}, True),
        ({"field": "missing", "op": "exists"}, False),
        ({"field": "missing", "op": ">", "value": 1}, False),
        ({"field": "missing", "op": "!=", "value": 1}, True),
        ({"field": "missing", "op": "not_in", "value": [1]}, True),
        ({"field": "status", "op": ">", "value": 1}, False),
        ({"field": "disabled", "op": "=", "value": False}, True),
        ({"field": "disabled", "op": "=", "value": 0}, False),
        ({"field": "customer.name.__class__", "op": "exists"}, False),
        (
            {
                "all": [
                    {"field": "days_overdue", "op": ">=", "value": 30},
                    {
                        "any": [
                            {"field": "status", "op": "=", "value": "paid"},
                            {"not": {"field": "note", "op": "exists"}},
                        ]
                    },
                ]
            },
            True,
        ),
        (
            {
                "any": [
                    {"field": "days_overdue", "op": ">=", "value": 60},
                    {"field": "credit_used_percent", "op": ">=", "value": "95"},
                ]
            },
            False,
        ),
    ],
)
def test_conditions_evaluate_on_the_record(condition, expected):
    assert validate(condition) == {}
    assert holds(condition, RECORD) is expected
    assert conditions.compile_condition(condition)(RECORD) is expected


@pytest.mark.parametrize(
    ("condition", "errors"),
    [
        ({"field": "days", "op": "~", "value": 1}, {"conditions.op"}),
        (
            {
                "all": [
                    {"field": "a", "op": "=", "value": 1},
                    {"field": "b", "op": "like", "value": 1},
                ]
            },
            {"conditions.all.1.op"},
        ),
        ({"all": []}, {"conditions.all"}),
        ({"any": "x"}, {"conditions.any"}),
        ({"field": "a b", "op": "=", "value": 1}, {"conditions.field"}),
        ({"field": "a", "op": "="}, {"conditions.value"}),
        ({"field": "a", "op": "in", "value": 1}, {"conditions.value"}),
        ({"field": "a", "op": "in", "value": [[1]]}, {"conditions.value"}),
        ({"field": "a", "op": ">", "value": None}, {"conditions.value"}),
        ({"field": "a", "op": "=", "value": {"x": 1}}, {"conditions.value"}),
        ({"field": "a", "op": "exists", "value": "yes"}, {"conditions.value"}),
        ({"field": "a", "op": "=", "value": 1, "extra": 2}, {"conditions.extra"}),
        ({"all": [{"field": "a", "op": "=", "value": 1}], "any": []}, {"conditions"}),
        ("days_overdue >= 30", {"conditions"}),
        ({"not": {"any": [{"field": "a", "op": "=="}]}}, {"conditions.not.any.0.op"}),
    ],
)
def test_a_condition_that_cannot_be_saved_names_the_field(condition, errors):
    assert set(validate(condition)) == errors


def test_unknown_operator_reads_as_such():
    reasons = validate({"all": [{"field": "a", "op": "=", "value": 1}, {"field": "b", "op": "~"}]})
    assert reasons["conditions.all.1.op"][0].startswith("unknown operator")


def test_too_deep_or_too_large_is_refused():
    deep: dict = {"field": "a", "op": "=", "value": 1}
    for _ in range(conditions.MAX_DEPTH + 1):
        deep = {"not": deep}
    assert validate(deep)
    wide = {"any": [{"field": "a", "op": "=", "value": n} for n in range(conditions.MAX_NODES + 1)]}
    assert validate(wide) == {"conditions": [f"has more than {conditions.MAX_NODES} parts"]}


def test_decimals_compare_exactly_not_as_floats():
    assert conditions.compare("0.1", "=", Decimal("0.10"))
    assert conditions.compare(0.1, "=", "0.1")
    assert not conditions.compare("0.30000000000000004", "=", "0.3")
    assert conditions.compare("9.5", "<", "10")
    assert not conditions.compare("abc", "<", 10)


@pytest.mark.parametrize(
    ("template", "rendered"),
    [
        ("发票 {code} 已逾期 {days_overdue} 天", "发票 INV-1 已逾期 31 天"),
        ("{customer.name}", "华东机电设备有限公司"),
        ("{missing}|{note}", "|"),
        ("{outstanding:>10}", "   1234.50"),
        ("{days_overdue:.2f}", "31.00"),
        ("{status:.2f}", "open"),
        ("{{literal}} {code}", "{literal} INV-1"),
    ],
)
def test_templates_render_the_record(template, rendered):
    assert templates.check(template) is None
    assert templates.render(template, {**RECORD, "code": "INV-1"}) == rendered


@pytest.mark.parametrize(
    "template", ["{0}", "{}", "{a!r}", "{a[0]}", "{a.__class__.__mro__}x{", "{a:{b}}"]
)
def test_templates_asking_for_more_than_fields_are_refused(template):
    assert templates.check(template) is not None


def test_a_template_cannot_reach_attributes():
    # a dotted path only walks mappings: an object's attribute renders as nothing
    assert templates.render("{code.__class__}", {"code": "x"}) == ""
