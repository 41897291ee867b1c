"""Rows dumped through a schema give what the schema's own dump gives; lists hanging off a
row come back in their order from the same statement."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import Schema, fields, post_dump
from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Uuid,
    create_engine,
    insert,
    select,
)

from crm_common.reads import RowDumper, value_list
from crm_common.schemas import UtcDateTime

metadata = MetaData()
records = Table(
    "records",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", String),
    Column("count", Integer),
    Column("amount", Numeric(12, 2)),
    Column("active", Boolean),
    Column("day", Date),
    Column("at", DateTime),
    Column("internal", String),
)
labels = Table(
    "labels",
    metadata,
    Column("record_id", Uuid, ForeignKey("records.id"), primary_key=True),
    Column("label", String, primary_key=True),
    Column("position", Integer),
)


class RecordSchema(Schema):
    id = fields.UUID()
    name = fields.String(allow_none=True)
    count = fields.Integer(allow_none=True)
    amount = fields.Decimal(as_string=True, allow_none=True)
    active = fields.Boolean(allow_none=True)
    day = fields.Date(allow_none=True)
    at = UtcDateTime(allow_none=True)
    renamed = fields.String(attribute="internal", data_key="shown", allow_none=True)
    labels = fields.List(fields.String())
    not_selected = fields.String()


ROWS = [
    {
        "id": uuid.uuid4(),
        "name": "华东机电",
        "count": 3,
        "amount": Decimal("12.50"),
        "active": True,
        "day": dt.date(2026, 1, 2),
        "at": dt.datetime(2026, 1, 2, 3, 4, 5),
        "internal": "内部",
    },
    {
        "id": uuid.uuid4(),
        "name": None,
        "count": None,
        "amount": None,
        "active": None,
        "day": None,
        "at": None,
        "internal": None,
    },
]


@pytest.fixture(scope="module")
def engine():
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(insert(records), ROWS)
        connection.execute(
            insert(labels),
            [
                {"record_id": ROWS[0]["id"], "label": label, "position": position}
                for position, label in enumerate(["重点", "A", "华东"])
            ],
        )
    return engine


def selected_rows(engine):
    label_list = value_list(
        "sqlite", labels.c.label, labels.c.record_id == records.c.id, labels.c.position
    )
    with engine.connect() as connection:
        stmt = select(*records.c, label_list.label("labels")).order_by(records.c.name.desc())
        return connection.execute(stmt).all()


def test_rows_dump_as_the_schema_dumps_the_same_values(engine):
    rows = selected_rows(engine)
    dumped = RowDumper(RecordSchema()).dump_all(rows)
    expected = [RecordSchema().dump(row._mapping) for row in rows]
    assert [list(d.items()) for d in dumped] == [list(e.items()) for e in expected]
    assert dumped[0]["labels"] == ["重点", "A", "华东"]
    assert dumped[1]["labels"] == []
    assert dumped[0]["at"] == "2026-01-02T03:04:05+00:00"
    assert dumped[0]["shown"] == "内部"
    assert "not_selected" not in dumped[0]


def test_one_row_dumps_alone(engine):
    row = selected_rows(engine)[0]
    assert RowDumper(RecordSchema(only=("id", "name"))).dump(row) == {
        "id": str(ROWS[0]["id"]),
        "name": "华东机电",
    }


def test_schemas_that_read_the_object_itself_are_refused():
    class Hooked(Schema):
        name = fields.String()

        @post_dump
        def shout(self, data, **kwargs):
            return {key: value.upper() for key, value in data.items()}

    class Computed(Schema):
        name = fields.Method("upper")

        def upper(self, obj):
            return obj.name.upper()

    for schema in (Hooked(), Computed()):
        with pytest.raises(ValueError):
            RowDumper(schema)


# -- mappings of values -----------------------------------------------------------------------
class LineSchema(Schema):
    line_no = fields.Integer()
    amount = fields.Decimal(as_string=True, places=2)
    ratio = fields.Decimal(allow_none=True)
    shipped = fields.Boolean()


class DocumentSchema(Schema):
    id = fields.UUID()
    name = fields.String(allow_none=True)
    day = fields.Date(allow_none=True)
    at = UtcDateTime(allow_none=True)
    plain_at = fields.DateTime(allow_none=True)
    stamp = fields.DateTime(format="timestamp", allow_none=True)
    tags = fields.List(fields.String())
    lines = fields.List(fields.Nested(LineSchema))
    main_line = fields.Nested(LineSchema, allow_none=True)
    kind = fields.String(dump_default="standard")
    score = fields.Float(allow_none=True)


def value_strategies():
    decimals = st.decimals(
        allow_nan=False, allow_infinity=False, places=4, min_value=-(10**9), max_value=10**9
    )
    moments = st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2100, 1, 1))
    line = st.fixed_dictionaries(
        {"line_no": st.integers(0, 999), "amount": decimals, "shipped": st.booleans()},
        optional={"ratio": st.none() | decimals},
    )
    return st.fixed_dictionaries(
        {"id": st.uuids()},
        optional={
            "name": st.none() | st.text(max_size=4) | st.integers(),
            "day": st.none() | st.dates(),
            "at": st.none() | moments | moments.map(lambda m: m.replace(tzinfo=dt.UTC)),
            "plain_at": st.none() | moments.map(lambda m: m.replace(tzinfo=dt.UTC)),
            "stamp": st.none() | moments.map(lambda m: m.replace(tzinfo=dt.UTC)),
            "tags": st.lists(st.text(max_size=3), max_size=3),
            "lines": st.lists(line, max_size=3),
            "main_line": st.none() | line,
            "kind": st.text(max_size=3),
            "score": st.none() | st.floats(allow_nan=False),
            "unrelated": st.integers(),
        },
    )


def test_mappings_dump_as_the_schema_dumps_them():
    dumper = RowDumper(DocumentSchema())

    @settings(max_examples=300, deadline=None)
    @given(values=value_strategies())
    def same(values):
        expected = DocumentSchema().dump(values)
        assert list(dumper.dump_values(values).items()) == list(expected.items())

    same()


def test_a_mapping_dumps_nested_records_and_defaults():
    values = {
        "id": uuid.UUID(int=1),
        "at": dt.datetime(2026, 1, 2, 3, 4, 5),
        "lines": [{"line_no": 1, "amount": Decimal("2.5"), "shipped": True}],
    }
    assert RowDumper(DocumentSchema()).dump_values(values) == {
        "id": str(uuid.UUID(int=1)),
        "at": "2026-01-02T03:04:05+00:00",
        "lines": [{"line_no": 1, "amount": "2.50", "shipped": True}],
        "kind": "standard",
    }
