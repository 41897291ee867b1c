"""Helpers for tests that read an OpenAPI document."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def refs_in(node: Any) -> Iterator[str]:
    """Every ``$ref`` anywhere in a JSON document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs_in(value)
