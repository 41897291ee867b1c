"""The read path every service shares: rows dumped through a schema without building objects.

A read RPC answers with what one statement selected. The statement selects table columns
(not mapped entities, which the ORM would turn into objects it then tracks), named after the
fields of the response schema, and is built once per shape of the call (cached with
``functools.lru_cache``; the values go in as parameters: see ``crm_common.scope`` and
``crm_common.pagination``). ``RowDumper`` then turns each row into the very dict the schema's
``dump`` gives for an object carrying the same values, key for key and in the same order, at a
fraction of its cost::

    CUSTOMER_ROWS = RowDumper(CustomerSchema())

    with db.read() as session:
        result = session.execute(customer_statement(scope_shape(principal)), parameters)
        return CUSTOMER_ROWS.dump_all(result)
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from decimal import Decimal
from functools import partial
from typing import Any

from marshmallow import Schema, fields, missing
from marshmallow.decorators import POST_DUMP, PRE_DUMP
from sqlalchemy import ColumnElement, Row, String, TypeDecorator, func, select, type_coerce
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.engine import Dialect

from crm_common.schemas import UtcDateTime

Converter = Callable[[Any], Any]
Plan = list[tuple[str, int, Converter]]
ValuePlan = list[tuple[str, Callable[[Mapping[str, Any]], Any]]]


class RowDumper:
    """``schema.dump`` for rows, and for plain mappings of values: each field takes the column
    (or key) of its name or ``attribute``; a field whose column the statement does not select
    is left out (as ``dump`` leaves out an attribute the object lacks), and values go through
    the field's own serialization, short-cut where it is a plain conversion.

    Only schemas whose output depends on field values alone qualify: no dump hooks, no
    ``Method`` or ``Function`` fields (those read the object itself), no dotted attributes;
    nested schemas qualify alike."""

    def __init__(self, schema: Schema) -> None:
        if schema._hooks[PRE_DUMP] or schema._hooks[POST_DUMP]:
            raise ValueError(f"{type(schema).__name__} has dump hooks: dump it with the schema")
        self._fields: list[tuple[str, str, fields.Field[Any], Converter]] = []
        for name, field in schema.dump_fields.items():
            if isinstance(field, fields.Method | fields.Function):
                raise ValueError(f"{type(schema).__name__}.{name} reads the object itself")
            attribute = field.attribute or name
            if "." in attribute:
                raise ValueError(f"{type(schema).__name__}.{name} reads a dotted attribute")
            self._fields.append((field.data_key or name, attribute, field, _converter(field)))
        self._plans: dict[tuple[str, ...], Plan] = {}
        self._value_plans: dict[tuple[str, ...], ValuePlan] = {}

    def dump_all(self, rows: Sequence[Row[Any]]) -> list[dict[str, Any]]:
        """Every row dumped (rows of one statement)."""
        if not rows:
            return []
        plan = self._plan(rows[0]._fields)
        return [{key: convert(row[index]) for key, index, convert in plan} for row in rows]

    def dump(self, row: Row[Any]) -> dict[str, Any]:
        return {key: convert(row[index]) for key, index, convert in self._plan(row._fields)}

    def dump_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """What ``schema.dump(values)`` gives for a mapping of attribute names to values."""
        plan = self._value_plans.get(tuple(values))
        if plan is None:
            plan = self._value_plans[tuple(values)] = self._plan_values(values)
        return {key: convert(values) for key, convert in plan}

    def _plan(self, keys: tuple[str, ...]) -> Plan:
        """Which column each dumped key comes from, worked out once per set of columns."""
        plan = self._plans.get(keys)
        if plan is None:
            position = {name: index for index, name in enumerate(keys)}
            plan = []
            for key, attribute, field, convert in self._fields:
                index = position.get(attribute)
                if index is not None:
                    plan.append((key, index, convert))
                elif field.dump_default is not missing:
                    raise ValueError(f"select {attribute}: its field has a dump default")
            self._plans[keys] = plan
        return plan

    def _plan_values(self, values: Mapping[str, Any]) -> ValuePlan:
        """How each dumped key is made from a mapping with ``values``' keys: converted from
        its value, or (a field with a dump default whose key is missing) by the field."""
        plan: ValuePlan = []
        for key, attribute, field, convert in self._fields:
            if attribute in values:
                plan.append((key, partial(_convert_item, attribute, convert)))
            elif field.dump_default is not missing:
                plan.append((key, partial(field.serialize, attribute)))
        return plan


def _convert_item(attribute: str, convert: Converter, values: Mapping[str, Any]) -> Any:
    return convert(values[attribute])


def _converter(field: fields.Field[Any]) -> Converter:
    """The field's serialization of one value, short-cut where the value already is, or
    plainly converts to, what the field would make of it."""
    kind = type(field)
    if kind is fields.String:
        return _text
    if kind is fields.UUID:
        return _uuid_text
    if kind is fields.Integer and not field.as_string:  # type: ignore[attr-defined]
        return _exact(field, int)
    if kind is fields.Boolean:
        return _exact(field, bool)
    if kind is fields.Decimal:
        return _decimal(field)  # type: ignore[arg-type]
    if kind is fields.Date and field.format in ISO_FORMATS:  # type: ignore[attr-defined]
        return _iso(field, dt.date, utc=False)
    if kind in (fields.DateTime, UtcDateTime) and field.format in ISO_FORMATS:  # type: ignore[attr-defined]
        return _iso(field, dt.datetime, utc=kind is UtcDateTime)
    if kind is fields.List:
        return _list(_converter(field.inner))  # type: ignore[attr-defined]
    if kind is fields.Nested and not (field.many or field.schema.many):  # type: ignore[attr-defined]
        with suppress(ValueError):
            return _nested(field, RowDumper(field.schema))  # type: ignore[attr-defined]
    serialize = field._serialize
    return lambda value: serialize(value, None, None)


ISO_FORMATS = (None, "iso", "iso8601")


def _text(value: Any) -> Any:
    if value is None or type(value) is str:
        return value
    return str(value)


def _uuid_text(value: Any) -> Any:
    return None if value is None else str(value)


def _exact(field: fields.Field[Any], kind: type) -> Converter:
    """A value already of ``kind`` (or None) is what the field makes of it."""
    serialize = field._serialize

    def convert(value: Any) -> Any:
        if value is None or type(value) is kind:
            return value
        return serialize(value, None, None)

    return convert


def _decimal(field: fields.Decimal) -> Converter:
    serialize, places, rounding = field._serialize, field.places, field.rounding
    as_string = field.as_string

    def convert(value: Any) -> Any:
        if type(value) is not Decimal or not value.is_finite():
            return serialize(value, None, None)
        number = value if places is None else value.quantize(places, rounding=rounding)
        return format(number, "f") if as_string else number

    return convert


def _iso(field: fields.Field[Any], kind: type, *, utc: bool) -> Converter:
    serialize = field._serialize

    def convert(value: Any) -> Any:
        if type(value) is not kind:
            return serialize(value, None, None)
        moment: Any = value
        if utc and moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return moment.isoformat()

    return convert


def _list(convert_each: Converter) -> Converter:
    def convert(value: Any) -> Any:
        return None if value is None else [convert_each(each) for each in value]

    return convert


def _nested(field: fields.Field[Any], dumper: RowDumper) -> Converter:
    """A nested record given as a mapping is dumped by ``dumper``; anything else by the field."""
    serialize = field._serialize

    def convert(value: Any) -> Any:
        if isinstance(value, Mapping):
            return dumper.dump_values(value)
        return serialize(value, None, None)

    return convert


class ValueList(TypeDecorator[list[Any]]):
    """A list-valued column of ``value_list``: a PostgreSQL array, or SQLite's JSON text."""

    impl = String
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Dialect) -> list[Any]:
        if value is None:
            return []
        if isinstance(value, str):
            decoded: list[Any] = json.loads(value)
            return decoded
        return list(value)


def value_list(
    dialect: str,
    column: ColumnElement[Any],
    where: ColumnElement[bool],
    order_by: ColumnElement[Any],
) -> ColumnElement[list[Any]]:
    """The values of ``column`` in the rows matching ``where`` (which correlates them to the
    enclosing statement's row), in ``order_by`` order, as one column of that statement: one
    statement answers a record with a list hanging off it."""
    table = column.table
    if dialect == "postgresql":
        values = select(func.array_agg(aggregate_order_by(column, order_by))).where(where)
        return type_coerce(values.scalar_subquery(), ValueList())
    ordered = (
        select(column.label("value"))
        .where(where)
        .order_by(order_by)
        .correlate_except(table)
        .subquery()
    )
    values = select(func.json_group_array(ordered.c.value))
    return type_coerce(values.scalar_subquery(), ValueList())
