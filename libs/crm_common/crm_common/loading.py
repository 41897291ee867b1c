"""``Schema.load`` for the hot paths (event envelopes, the ERP's event data), at a fraction of
its cost and with the same result.

``SchemaLoader(schema).load(data)`` walks the schema's load fields once, compiled: each value
goes through its field's own ``_deserialize`` and validators, as ``Field.deserialize`` does,
without ``Schema.load``'s per-field bookkeeping (error store, getters, partial loading).
Input that anything refuses is loaded again by ``schema.load``, which raises the usual
``ValidationError`` with every field's reason: well-formed input takes the short way, and
malformed input is answered exactly as before.

Only schemas whose load is field by field qualify (``Unsupported`` otherwise): one record at a
time, no load hooks or ``@validates`` methods, no dotted attributes, no field-level pre/post-load
functions.
A nested schema that does not qualify is loaded by its field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from marshmallow import EXCLUDE, INCLUDE, RAISE, Schema, ValidationError, fields, missing
from marshmallow.decorators import POST_LOAD, PRE_LOAD, VALIDATES, VALIDATES_SCHEMA

from crm_common.schemas import Text

Convert = Callable[[Any, Any, Any], Any]
"""A present, non-null raw value (with its key and the data it came in) to its loaded value;
raises ``Refused`` or ``ValidationError`` when the value does not load."""


class Unsupported(ValueError):
    """The schema's load is more than field by field: load with the schema itself."""


class Refused(Exception):
    """The short way does not load this input (the schema will say why)."""


class SchemaLoader:
    """``schema.load`` for one schema object (see the module)."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self._load = _compile(schema, schema.unknown)

    def load(self, data: Any) -> dict[str, Any]:
        try:
            return self._load(data)
        except (Refused, ValidationError):
            pass
        loaded: dict[str, Any] = self.schema.load(data)
        return loaded


def _compile(schema: Schema, unknown: str) -> Callable[[Any], dict[str, Any]]:
    hooks = (PRE_LOAD, POST_LOAD, VALIDATES, VALIDATES_SCHEMA)
    if schema.many:
        raise Unsupported(f"{type(schema).__name__} loads many records")
    if any(schema._hooks[hook] for hook in hooks):
        raise Unsupported(f"{type(schema).__name__} has load hooks or validators")
    if unknown not in (EXCLUDE, INCLUDE, RAISE):
        raise Unsupported(f"unknown={unknown!r}")
    steps: list[tuple[str, str, fields.Field[Any], Convert]] = []
    for name, field in schema.load_fields.items():
        attribute = field.attribute or name
        if "." in attribute:
            raise Unsupported(f"{type(schema).__name__}.{name} loads into a dotted attribute")
        key = field.data_key if field.data_key is not None else name
        steps.append((key, attribute, field, _converter(field)))
    known = frozenset(key for key, _, _, _ in steps)

    def load(data: Any) -> dict[str, Any]:
        if not isinstance(data, Mapping):
            raise Refused
        loaded: dict[str, Any] = {}
        for key, attribute, field, convert in steps:
            raw = data.get(key, missing)
            if raw is missing:
                if field.required:
                    raise Refused
                default = field.load_default
                if default is missing:
                    continue
                loaded[attribute] = default() if callable(default) else default
            elif raw is None:
                if not field.allow_none:
                    raise Refused
                loaded[attribute] = None
            else:
                loaded[attribute] = convert(raw, key, data)
        if unknown != EXCLUDE:
            extra = data.keys() - known
            if extra and unknown == RAISE:
                raise Refused
            for key in extra:
                loaded[key] = data[key]
        return loaded

    return load


def _converter(field: fields.Field[Any]) -> Convert:
    """How one field loads a present, non-null value: its own ``_deserialize`` and validators,
    nested schemas and list items the short way too where they qualify."""
    if field.pre_load or field.post_load:
        raise Unsupported(f"{type(field).__name__} has field-level load functions")
    kind = type(field)
    validate = field._validate if field.validators else None
    if kind is fields.Nested and not (field.many or field.schema.many):  # type: ignore[attr-defined]
        nested = field.schema  # type: ignore[attr-defined]
        try:
            load_nested = _compile(nested, field.unknown or nested.unknown)  # type: ignore[attr-defined]
        except Unsupported:
            return _whole(field)
        return _checked(lambda raw, key, data: load_nested(raw), validate)
    if kind is fields.List:
        inner: fields.Field[Any] = field.inner  # type: ignore[attr-defined]
        if inner.pre_load or inner.post_load:
            raise Unsupported("a list item field has field-level load functions")
        load_item = _item_loader(inner)

        def load_list(raw: Any, key: Any, data: Any) -> Any:
            if type(raw) is not list:
                raise Refused
            return [load_item(each) for each in raw]

        return _checked(load_list, validate)
    if kind is Text:
        blank_is_none = field.allow_none
        deserialize = field._deserialize

        def load_text(raw: Any, key: Any, data: Any) -> Any:
            if blank_is_none and type(raw) is str and not raw.strip():
                return None  # Text.deserialize: a blank optional text is null
            return deserialize(raw, key, data)

        return _checked(load_text, validate)
    if kind.deserialize is not fields.Field.deserialize:
        return _whole(field)
    return _checked(field._deserialize, validate)


def _item_loader(inner: fields.Field[Any]) -> Callable[[Any], Any]:
    """A list item as ``inner.deserialize(item)`` loads it (no key, no data)."""
    convert = _converter(inner)
    allow_none = inner.allow_none

    def load_item(each: Any) -> Any:
        if each is None:
            if not allow_none:
                raise Refused
            return None
        return convert(each, None, None)

    return load_item


def _checked(convert: Convert, validate: Callable[[Any], None] | None) -> Convert:
    if validate is None:
        return convert

    def convert_and_validate(raw: Any, key: Any, data: Any) -> Any:
        value = convert(raw, key, data)
        validate(value)
        return value

    return convert_and_validate


def _whole(field: fields.Field[Any]) -> Convert:
    deserialize = field.deserialize
    return lambda raw, key, data: deserialize(raw, key, data)
