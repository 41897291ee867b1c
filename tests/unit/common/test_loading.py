"""The compiled loader gives what ``Schema.load`` gives: the same data for input that loads,
the same errors for input that does not, for the envelope and every ERP event schema, on
the simulator's stream and on generated input of every shape."""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError, fields, post_load, validates

from crm_common.events import EnvelopeSchema
from crm_common.loading import SchemaLoader, Unsupported
from crm_common.schemas import Text
from sales.schemas.erp import ERP_EVENT_SCHEMAS
from tools.erp_simulator.delivery import plan
from tools.erp_simulator.world import Stream, customers_from, numbered_customer_records

SCHEMAS = {"envelope": EnvelopeSchema, **ERP_EVENT_SCHEMAS}


def outcome(load: Any, data: Any) -> tuple[str, Any]:
    try:
        return "loaded", load(data)
    except ValidationError as exc:
        return "refused", exc.messages


def assert_same(schema: Schema, data: Any) -> tuple[str, Any]:
    expected = outcome(schema.load, data)
    assert outcome(SchemaLoader(schema).load, data) == expected
    return expected


def simulated_envelopes(count: int = 1500) -> list[dict[str, Any]]:
    rng = random.Random(11)
    records = numbered_customer_records(rng, 12, "载入客户")
    events = Stream(11, customers_from(rng, records)).events(count)
    return [m.envelope for m in plan(events, rng, duplicates=0.0, out_of_order=0.0).messages]


def test_the_simulators_stream_loads_as_with_the_schemas():
    envelopes = simulated_envelopes()
    assert {envelope["type"] for envelope in envelopes} >= set(ERP_EVENT_SCHEMAS) - {
        "order_rejected"
    }
    for envelope in envelopes:
        assert assert_same(EnvelopeSchema(), envelope)[0] == "loaded"
        schema = ERP_EVENT_SCHEMAS[envelope["type"]]()
        assert assert_same(schema, envelope["data"])[0] == "loaded"


def order(**changes: Any) -> dict[str, Any]:
    data = {
        "erp_order_no": "  SO-1  ",
        "crm_order_id": None,
        "customer": {"erp_code": "C1", "name": "华东轴承", "credit_code": "  "},
        "order_date": "2026-12-01",
        "currency": "CNY",
        "lines": [
            {
                "line_no": 1,
                "item_code": "B-6204",
                "item_name": "深沟球轴承",
                "quantity": "2",
                "unit": "套",
                "unit_price": "10.50",
                "tax_rate": "0.13",
                "amount": "21.00",
                "extra": "dropped",
            }
        ],
        "total_amount": "21.00",
        "salesperson_code": "",
    }
    data.update(changes)
    return data


@pytest.mark.parametrize(
    "data",
    [
        order(),
        order(customer=None),
        order(customer="C1"),
        order(customer={"name": "no code"}),
        order(lines=[]),
        order(lines="B-6204"),
        order(lines=[None]),
        order(lines=[{**order()["lines"][0], "line_no": "1"}]),
        order(lines=[{**order()["lines"][0], "quantity": 2}]),
        order(lines=[{**order()["lines"][0], "tax_rate": "1.5"}]),
        order(currency="cny"),
        order(order_date="yesterday"),
        order(crm_order_id="not-a-uuid"),
        order(erp_order_no="   "),
        order(erp_order_no="SO\x00-1"),
        order(erp_order_no="\ud800"),
        order(erp_order_no=None),
        order(total_amount="NaN"),
        {key: value for key, value in order().items() if key != "lines"},
        [],
        "order",
    ],
)
def test_malformed_input_is_refused_with_the_schemas_reasons(data):
    assert_same(ERP_EVENT_SCHEMAS["order_created"](), data)


def test_the_envelope_keeps_unknown_fields_and_refuses_as_before():
    envelope = {
        "event_id": str(uuid.uuid4()),
        "type": "order_shipped",
        "version": "1.3",
        "occurred_at": "2026-12-01T08:00:00+08:00",
        "source": "erp",
        "data": {},
        "trace": {"hop": 1},
    }
    assert assert_same(EnvelopeSchema(), envelope)[1]["trace"] == {"hop": 1}
    for broken in (
        {**envelope, "version": "one"},
        {**envelope, "occurred_at": "2026-12-01T08:00:00"},
        {**envelope, "event_id": 7},
        {**envelope, "data": []},
        {key: value for key, value in envelope.items() if key != "source"},
    ):
        assert assert_same(EnvelopeSchema(), broken)[0] == "refused"


def test_strict_schemas_refuse_unknown_fields_as_before():
    class Strict(Schema):
        name = Text(required=True)

    assert assert_same(Strict(), {"name": "a", "other": 1})[0] == "refused"
    assert assert_same(Strict(), {"name": " a "}) == ("loaded", {"name": "a"})


def test_schemas_that_load_more_than_field_by_field_are_refused():
    class Hooked(Schema):
        name = fields.String()

        @post_load
        def shout(self, data, **kwargs):
            return {key: value.upper() for key, value in data.items()}

    class Validated(Schema):
        name = fields.String()

        @validates("name")
        def check(self, value, **kwargs):
            raise ValidationError("never")

    class Dotted(Schema):
        name = fields.String(attribute="person.name")

    class Plain(Schema):
        name = fields.String()

    for schema in (Hooked(), Validated(), Dotted(), Plain(many=True)):
        with pytest.raises(Unsupported):
            SchemaLoader(schema)


# -- generated input --------------------------------------------------------------------------
def field_values(field: fields.Field[Any]) -> st.SearchStrategy[Any]:
    """Values a field may meet: what it takes, near misses, and anything JSON carries."""
    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    anything = st.recursive(
        scalars | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner),
        max_leaves=4,
    )
    likely = st.sampled_from(
        [
            "2026-12-01",
            "2026-12-01T08:00:00+08:00",
            "2026-12-01T08:00:00",
            str(uuid.UUID(int=7)),
            "12.50",
            "0.13",
            "1e3",
            " ",
            "CNY",
            True,
            1,
            "1",
            "a\x00b",
        ]
    )
    if isinstance(field, fields.Nested) and not field.many:
        return st.one_of(record_of(field.schema), anything)
    if isinstance(field, fields.List):
        return st.one_of(st.lists(field_values(field.inner), max_size=3), anything)
    return st.one_of(likely, anything)


def record_of(schema: Schema) -> st.SearchStrategy[dict[str, Any]]:
    keys = {
        (field.data_key or name): field_values(field) for name, field in schema.load_fields.items()
    }
    return st.fixed_dictionaries({}, optional={**keys, "unknown_key": st.text(max_size=3)})


@pytest.mark.parametrize("name", sorted(SCHEMAS))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_generated_input_loads_or_is_refused_as_with_the_schema(name, data):
    schema = SCHEMAS[name]()
    raw = data.draw(record_of(schema))
    json.dumps(raw)  # only what a message can carry
    assert_same(schema, raw)
