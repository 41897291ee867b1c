"""Message templates: ``{placeholders}`` filled from the record's fields.

``render("{code} 已逾期 {days_overdue} 天", fields)`` formats like ``str.format_map`` on a safe
mapping: a placeholder is a field name or a dotted path into the record
(``{customer.name}``), looked up in mappings only (never an attribute, so a template cannot
reach into objects), a missing or null field renders as nothing, and a format spec that does
not fit the value (``{name:.2f}`` on a text) renders the value as it is. ``placeholders``
lists a template's fields, and ``check`` refuses a template that does not parse or asks for
something else than a field (``{0}``, ``{x!r}``, ``{a[0]}``).
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from notify.domain.conditions import FIELD_PATH, MISSING, lookup

MAX_TEMPLATE = 4000


class SafeFields(dict[str, Any]):
    """What a template reads: the record's fields; a missing one is empty."""

    def __missing__(self, key: str) -> str:
        return ""


class _Formatter(string.Formatter):
    def get_field(self, field_name: str, args: Any, kwargs: Any) -> tuple[Any, str]:
        value = lookup(kwargs, field_name)
        return ("" if value is MISSING or value is None else value), field_name

    def format_field(self, value: Any, format_spec: str) -> str:
        if isinstance(value, float):
            value = Decimal(str(value))
        try:
            return format(value, format_spec)
        except (TypeError, ValueError):
            return str(value)

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        return value


_formatter = _Formatter()


def placeholders(template: str) -> list[str]:
    """The field names a template asks for, in order (``ValueError`` if it does not parse)."""
    return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]


def check(template: Any) -> str | None:
    """Why ``template`` cannot be saved, or None."""
    if not isinstance(template, str):
        return "is a text"
    if len(template) > MAX_TEMPLATE:
        return f"is at most {MAX_TEMPLATE} characters"
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        return f"does not parse: {exc} (write {{{{ and }}}} for literal braces)"
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not FIELD_PATH.fullmatch(name):
            return f"{{{name}}} is not a field name or dotted path"
        if conversion is not None:
            return f"{{{name}!{conversion}}}: conversions are not supported"
        if spec and "{" in spec:
            return f"{{{name}:{spec}}}: nested placeholders are not supported"
    return None


def render(template: str, fields: Mapping[str, Any]) -> str:
    """``template`` with its placeholders filled from ``fields``."""
    return _formatter.vformat(template, (), SafeFields(fields))
