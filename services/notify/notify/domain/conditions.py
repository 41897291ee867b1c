"""Conditions of alert rules, as data: a small expression form checked when a rule is saved and
evaluated without ``eval``.

A condition is one of::

    {"field": "days_overdue", "op": ">=", "value": 30}      # a comparison
    {"all": [condition, ...]}                                # every one holds (and)
    {"any": [condition, ...]}                                # at least one holds (or)
    {"not": condition}                                       # it does not hold

``field`` is a dotted path into the record (``opportunity.amount``, ``waiting_for.level``).
Operators: ``= != > >= < <=``, ``in`` and ``not_in`` (``value`` is a list), ``contains`` (a
list holding the value, or a text holding it), ``exists`` (the field is there and not null;
``value`` false turns it round). Numbers and decimal strings (``"1234.50"``) compare as
``Decimal``, so ``"100.00" = 100`` holds and ``"9.5" < "10"`` too; other texts compare as
text (ISO dates order correctly that way). A comparison with a missing or null field, or of
values that do not order (a text with a number), does not hold. No condition (``None`` or
``{}``) always holds.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

OPERATORS = ("=", "!=", ">", ">=", "<", "<=", "in", "not_in", "contains", "exists")
ORDERING = frozenset({">", ">=", "<", "<="})
LISTS = frozenset({"in", "not_in"})
FIELD_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*")
DECIMAL_TEXT = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
MAX_DEPTH = 6
MAX_NODES = 100
MAX_LIST = 200
MISSING = object()


class ConditionErrors(dict[str, list[str]]):
    """Reasons per dotted path (``conditions.all.1.op``)."""

    def add(self, path: str, reason: str) -> None:
        self.setdefault(path, []).append(reason)


def validate(condition: Any, path: str = "conditions") -> dict[str, list[str]]:
    """The reasons ``condition`` cannot be saved, per dotted path; empty when it can."""
    errors = ConditionErrors()
    if condition is None or condition == {}:
        return errors
    nodes = [0]
    _check(condition, path, 1, errors, nodes)
    if nodes[0] > MAX_NODES:
        errors.add(path, f"has more than {MAX_NODES} parts")
    return dict(errors)


def _check(node: Any, path: str, depth: int, errors: ConditionErrors, nodes: list[int]) -> None:
    nodes[0] += 1
    if not isinstance(node, Mapping):
        errors.add(path, "is not a condition (an object)")
        return
    if depth > MAX_DEPTH:
        errors.add(path, f"is nested deeper than {MAX_DEPTH} levels")
        return
    groups = [key for key in ("all", "any", "not") if key in node]
    if groups:
        if len(node) != 1:
            errors.add(path, "a group has exactly one key: all, any or not")
            return
        key = groups[0]
        if key == "not":
            _check(node["not"], f"{path}.not", depth + 1, errors, nodes)
            return
        parts = node[key]
        if not isinstance(parts, list) or not parts:
            errors.add(f"{path}.{key}", "is a non-empty list of conditions")
            return
        for index, part in enumerate(parts):
            _check(part, f"{path}.{key}.{index}", depth + 1, errors, nodes)
        return
    _check_comparison(node, path, errors)


def _check_comparison(node: Mapping[str, Any], path: str, errors: ConditionErrors) -> None:
    unknown = sorted(set(node) - {"field", "op", "value"})
    for key in unknown:
        errors.add(f"{path}.{key}", "unknown key (a comparison has field, op and value)")
    field = node.get("field")
    if not isinstance(field, str) or not FIELD_PATH.fullmatch(field):
        errors.add(f"{path}.field", "is a field name or a dotted path (opportunity.amount)")
    op = node.get("op")
    if op not in OPERATORS:
        errors.add(f"{path}.op", f"unknown operator (one of {' '.join(OPERATORS)})")
        return
    value = node.get("value", MISSING)
    if op == "exists":
        if value is not MISSING and not isinstance(value, bool):
            errors.add(f"{path}.value", "is true or false for exists")
        return
    if value is MISSING:
        errors.add(f"{path}.value", "is required")
        return
    if op in LISTS:
        if not isinstance(value, list) or not value:
            errors.add(f"{path}.value", f"is a non-empty list for {op}")
        elif len(value) > MAX_LIST:
            errors.add(f"{path}.value", f"has at most {MAX_LIST} values")
        elif not all(_scalar(item) for item in value):
            errors.add(f"{path}.value", "holds texts, numbers, booleans or nulls")
        return
    if not _scalar(value):
        errors.add(f"{path}.value", "is a text, a number, a boolean or null")
        return
    if op in ORDERING and (value is None or isinstance(value, bool)):
        errors.add(f"{path}.value", f"is a number, a decimal string or a text for {op}")


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool | Decimal)


# -- evaluation -------------------------------------------------------------------------------
def lookup(data: Any, path: str) -> Any:
    """The value at the dotted ``path`` of ``data`` (mappings, and lists by index), or
    ``MISSING``. Never an attribute: only what the record holds."""
    current = data
    for part in path.split("."):
        if isinstance(current, Mapping):
            if part not in current:
                return MISSING
            current = current[part]
        elif isinstance(current, Sequence) and not isinstance(current, str) and part.isdigit():
            index = int(part)
            if index >= len(current):
                return MISSING
            current = current[index]
        else:
            return MISSING
    return current


def holds(condition: Any, data: Mapping[str, Any]) -> bool:
    """Whether a (validated) condition holds for ``data``."""
    if condition is None or condition == {}:
        return True
    if "all" in condition:
        return all(holds(part, data) for part in condition["all"])
    if "any" in condition:
        return any(holds(part, data) for part in condition["any"])
    if "not" in condition:
        return not holds(condition["not"], data)
    return compare(lookup(data, condition["field"]), condition["op"], condition.get("value", True))


def compare(actual: Any, op: str, expected: Any) -> bool:
    """``actual op expected``, Decimal-aware; a missing or null ``actual`` holds only for
    ``!=``, ``not_in`` and ``exists false``."""
    if op == "exists":
        present = actual is not MISSING and actual is not None
        return present if expected is not False else not present
    if actual is MISSING:
        actual = None
    if op == "=":
        return _equal(actual, expected)
    if op == "!=":
        return not _equal(actual, expected)
    if op == "in":
        return any(_equal(actual, item) for item in expected)
    if op == "not_in":
        return not any(_equal(actual, item) for item in expected)
    if op == "contains":
        if isinstance(actual, str):
            return isinstance(expected, str) and expected in actual
        if isinstance(actual, list | tuple):
            return any(_equal(item, expected) for item in actual)
        return False
    ordered = _ordered(actual, expected)
    if ordered is None:
        return False
    left, right = ordered
    if op == ">":
        return bool(left > right)
    if op == ">=":
        return bool(left >= right)
    if op == "<":
        return bool(left < right)
    if op == "<=":
        return bool(left <= right)
    raise ValueError(f"unknown operator {op!r}")


def as_decimal(value: Any) -> Decimal | None:
    """``value`` as a Decimal if it is a number or a decimal string; else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, str) and DECIMAL_TEXT.fullmatch(value.strip()):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            return None
    return None


def _equal(actual: Any, expected: Any) -> bool:
    if isinstance(actual, bool) or isinstance(expected, bool):
        return actual is expected if isinstance(actual, bool) else False
    left, right = as_decimal(actual), as_decimal(expected)
    if left is not None and right is not None:
        return left == right
    return bool(actual == expected)


def _ordered(actual: Any, expected: Any) -> tuple[Any, Any] | None:
    left, right = as_decimal(actual), as_decimal(expected)
    if left is not None and right is not None:
        return left, right
    if isinstance(actual, str) and isinstance(expected, str):
        return actual, expected
    return None


# -- compiled once, evaluated per event ---------------------------------------------------------
Predicate = Callable[[Mapping[str, Any]], bool]
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


def _always(data: Mapping[str, Any]) -> bool:
    return True


def compile_condition(condition: Any) -> Predicate:
    """A (validated) condition as a function of the record, holding exactly when ``holds``
    does: field paths split and constants read as Decimals once, so that evaluating many
    rules per event costs little more than their comparisons."""
    if condition is None or condition == {}:
        return _always
    if "all" in condition:
        parts = tuple(compile_condition(part) for part in condition["all"])

        def every(data: Mapping[str, Any]) -> bool:
            return all(part(data) for part in parts)

        return every
    if "any" in condition:
        options = tuple(compile_condition(part) for part in condition["any"])

        def some(data: Mapping[str, Any]) -> bool:
            return any(option(data) for option in options)

        return some
    if "not" in condition:
        inner = compile_condition(condition["not"])
        return lambda data: not inner(data)
    return _compile_comparison(
        tuple(condition["field"].split(".")), condition["op"], condition.get("value", True)
    )


def _walk(data: Any, path: tuple[str, ...]) -> Any:
    current = data
    for part in path:
        if isinstance(current, Mapping):
            current = current.get(part, MISSING)
            if current is MISSING:
                return MISSING
        elif isinstance(current, Sequence) and not isinstance(current, str) and part.isdigit():
            index = int(part)
            if index >= len(current):
                return MISSING
            current = current[index]
        else:
            return MISSING
    return current


def _compile_comparison(path: tuple[str, ...], op: str, expected: Any) -> Predicate:
    if op in _COMPARE:
        check = _COMPARE[op]
        number = as_decimal(expected)
        text = expected if isinstance(expected, str) else None

        def ordered(data: Mapping[str, Any]) -> bool:
            actual = _walk(data, path)
            if number is not None:
                left = actual if type(actual) is int else as_decimal(actual)
                if left is not None:
                    return check(left, number)
            if text is not None and isinstance(actual, str):
                return check(actual, text)
            return False

        return ordered
    return lambda data: compare(_walk(data, path), op, expected)
