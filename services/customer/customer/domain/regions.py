"""Sales regions as a path: 大区 / 省级 / 城市, e.g. ``华东``, ``华东/上海``, ``华东/江苏/苏州``.

A filter on a region matches the region itself and every region below it, so ``华东`` finds
customers in ``华东/江苏/苏州`` but not in ``华东区``.
"""

from __future__ import annotations

import unicodedata

AREAS = ("华东", "华北", "华南", "华中", "西南", "西北", "东北", "港澳台", "海外")
SEPARATOR = "/"
MAX_LEVELS = 3


def normalize_region(value: str) -> str:
    """Tidied path (full-width slashes folded, spaces removed) or ``ValueError``."""
    text = unicodedata.normalize("NFKC", value or "").replace("\\", SEPARATOR)
    parts = [p.strip() for p in text.split(SEPARATOR)]
    if not parts or any(not p for p in parts):
        raise ValueError("a region is written 大区/省/市, e.g. 华东/江苏/苏州, with no empty part")
    if len(parts) > MAX_LEVELS:
        raise ValueError(f"a region has at most {MAX_LEVELS} levels: 大区/省/市")
    if parts[0] not in AREAS:
        raise ValueError("a region starts with one of " + "、".join(AREAS))
    return SEPARATOR.join(p.replace(" ", "") for p in parts)


def region_area(region: str | None) -> str | None:
    return region.split(SEPARATOR, 1)[0] if region else None


def within(region: str | None, scope: str) -> bool:
    """Whether ``region`` is ``scope`` or lies below it."""
    if not region:
        return False
    return region == scope or region.startswith(scope + SEPARATOR)
