"""Customer tags: short free labels, compared exactly after tidying."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

MAX_TAGS = 20
MAX_TAG_LENGTH = 32


def normalize_tag(value: str) -> str:
    tag = " ".join(unicodedata.normalize("NFKC", str(value)).split())
    if not tag:
        raise ValueError("a tag cannot be empty")
    if len(tag) > MAX_TAG_LENGTH:
        raise ValueError(f"a tag has at most {MAX_TAG_LENGTH} characters")
    if "," in tag or ";" in tag or "|" in tag:
        raise ValueError("a tag cannot contain , ; or |")
    return tag


def normalize_tags(values: Iterable[str]) -> list[str]:
    """Distinct tidy tags in first-seen order; ``ValueError`` on a bad tag or too many."""
    tags: dict[str, None] = {}
    for value in values:
        tags.setdefault(normalize_tag(value), None)
    if len(tags) > MAX_TAGS:
        raise ValueError(f"a customer has at most {MAX_TAGS} tags")
    return list(tags)


def split_tags(text: str | None) -> list[str]:
    """Tags written in one cell: separated by ``;``, ``|``, ``,`` or the Chinese ``；、，``."""
    if not text:
        return []
    for sep in ("；", "、", "，", "|", ","):
        text = text.replace(sep, ";")
    return [part for part in (p.strip() for p in text.split(";")) if part]
