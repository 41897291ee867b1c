"""Walking an OpenAPI document in tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def refs_in(node: Any) -> Iterator[str]:
    """Every ``$ref`` value anywhere in ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs_in(value)


def resolve(document: dict[str, Any], ref: str) -> Any:
    """What the local reference ``ref`` points at in ``document``; fails when it dangles."""
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
        node = node[part]
    return node
